package anomaly_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
)

// TestReadSeriesExports reads exports in the shapes the monitoring
// systems publish (testdata/exports, written by hand after the API
// references: CloudWatch GetMetricData returns its timestamps newest
// first and GetMetricStatistics its datapoints in no order, Prometheus
// writes Unix seconds with a fraction and values as strings, "NaN"
// included, Datadog writes milliseconds and null), as rows in file order.
func TestReadSeriesExports(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cases := []struct {
		file    string
		rows    int
		missing int
		first   time.Time
		value   float64 // of the first row
		second  time.Time
	}{
		{"cloudwatch_get_metric_data.json", 6, 0, at("2026-03-02T10:30:00Z"), 41.27, at("2026-03-02T10:25:00Z")},
		{"cloudwatch_get_metric_statistics.json", 5, 0, at("2026-03-02T10:10:00Z"), 0.212, at("2026-03-02T10:00:00Z")},
		{"prometheus_query_range.json", 7, 2, at("2026-03-02T10:00:00Z"), 118.2, at("2026-03-02T10:01:00Z")},
		{"prometheus_range.csv", 6, 1, at("2026-03-02T10:00:00Z"), 118.2, at("2026-03-02T10:01:00Z")},
		{"datadog_query.json", 6, 1, at("2026-03-02T10:00:00Z"), 3, at("2026-03-02T10:01:00Z")},
		{"datadog_export.csv", 5, 1, at("2026-03-02T10:00:00Z"), 12.5, at("2026-03-02T10:01:00Z")},
		{"irregular.csv", 8, 2, at("2026-03-02T10:00:00Z"), 10.5, at("2026-03-02T10:05:00Z")},
	}
	for _, c := range cases {
		f, err := os.Open(filepath.Join("testdata", "exports", c.file))
		if err != nil {
			t.Fatal(err)
		}
		pts, rates, err := anomaly.ReadSeries(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		missing := 0
		for _, p := range pts {
			if !p.Present {
				missing++
			}
		}
		if len(pts) != c.rows || missing != c.missing || rates || !pts[0].Start.Equal(c.first) || pts[0].Value != c.value ||
			!pts[1].Start.Equal(c.second) {
			t.Errorf("%s: %d rows (%d missing), first %v = %v, second %v; want %d (%d), %v = %v, %v", c.file, len(pts), missing,
				pts[0].Start, pts[0].Value, pts[1].Start, c.rows, c.missing, c.first, c.value, c.second)
		}
	}
	// The fraction of a Prometheus timestamp is kept.
	f, _ := os.Open(filepath.Join("testdata", "exports", "prometheus_query_range.json"))
	pts, _, _ := anomaly.ReadSeries(f)
	f.Close()
	if got := pts[5].Start; !got.Equal(at("2026-03-02T10:06:00.5Z")) {
		t.Errorf("prometheus 1772445960.5 read as %v", got)
	}
}

// TestReadSeriesRefuses: only what cannot be read is refused, naming the
// line.
func TestReadSeriesRefuses(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a value that is not one", "timestamp,value\n2026-03-02,1\n2026-03-03,twelve\n", "line 3: value \"twelve\""},
		{"a timestamp that is not one", "timestamp,value\n2026-03-02,1\nyesterday,2\n", "line 3: timestamp"},
		{"too few fields", "timestamp,value\n2026-03-02,1\n2026-03-03\n", "line 3: 1 fields"},
		{"no value column", "when,what,why\n2026-03-02,1,2\n", "line 1: header"},
		{"broken JSON", "{\n  \"data\": {\n    \"result\": [,]\n  }\n}\n", "line 3"},
		{"two series", `{"status":"success","data":{"resultType":"matrix","result":[{"values":[]},{"values":[]}]}}`, "2 series"},
		{"an unknown JSON", `{"hello":"world"}`, "no known export"},
		{"rates with den below num", "timestamp,num,den\n2026-03-02,3,2\n", "line 2: den"},
	}
	for _, c := range cases {
		_, _, err := anomaly.ReadSeries(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// cpuSeries is three days of a five-minute CPU-like series with a daily
// curve and noise, and a spike at row spikeAt.
func cpuSeries(r *rand.Rand, spikeAt int) []baselines.Point {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	pts := make([]baselines.Point, 3*288)
	for i := range pts {
		t := start.Add(time.Duration(i) * 5 * time.Minute)
		h := float64(t.Hour()) + float64(t.Minute())/60
		v := 30 + 20*math.Max(0, math.Sin(math.Pi*(h-7)/12)) + r.NormFloat64()
		if i == spikeAt {
			v += 40
		}
		pts[i] = baselines.Point{Start: t, Value: v, Present: true}
	}
	return pts
}

// TestScoreIrregular: a series spoilt in every way a real export is
// (rows dropped, repeated, out of order, off the grid, empty or NaN, the
// interval doubling for its last day) still gets exactly one output row
// per input row, in input order; warm-up rows have no band; the spike is
// still flagged, and only it.
func TestScoreIrregular(t *testing.T) {
	const spike = 700
	r := rand.New(rand.NewPCG(13, 13))
	clean := cpuSeries(r, spike)
	var in []baselines.Point
	for i, p := range clean {
		switch {
		case i == spike:
			in = append(in, p)
		case i > 2*288 && i%2 == 1: // the last day at ten minutes
		case r.Float64() < 0.08: // dropped
		case r.Float64() < 0.05: // repeated
			in = append(in, p, p)
		case r.Float64() < 0.05: // empty
			in = append(in, baselines.Point{Start: p.Start})
		case r.Float64() < 0.1: // off the grid by up to 40 s
			p.Start = p.Start.Add(time.Duration(r.IntN(80)-40) * time.Second)
			in = append(in, p)
		default:
			in = append(in, p)
		}
	}
	for i := 10; i+1 < len(in); i += 37 { // out of order
		in[i], in[i+1] = in[i+1], in[i]
	}
	for _, kind := range []string{"auto", "dense"} {
		rows, rep, err := anomaly.ScoreSeries(in, false, anomaly.ScoreOptions{Kind: kind})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if len(rows) != len(in) || rep.Kind != "dense" || rep.Step != 5*time.Minute {
			t.Fatalf("%s: %d rows for %d, kind %s, step %v", kind, len(rows), len(in), rep.Kind, rep.Step)
		}
		if rep.Missing == 0 || rep.Repeated == 0 || rep.OutOfOrder == 0 || rep.OffGrid == 0 || rep.Gaps == 0 {
			t.Errorf("%s: report %+v does not see every irregularity", kind, rep)
		}
		flagged := 0
		for i, row := range rows {
			p := in[i]
			if !row.Time.Equal(p.Start) || row.Present != p.Present || (p.Present && row.Value != p.Value) {
				t.Fatalf("%s: row %d is %v %v, input %v %v: not in input order", kind, i, row.Time, row.Value, p.Start, p.Value)
			}
			if row.Anomaly {
				flagged++
				if !p.Start.Equal(clean[spike].Start) {
					t.Errorf("%s: row %d (%v, %.1f, expected %.1f in [%.1f, %.1f]) flagged", kind, i, p.Start, p.Value,
						row.Expected, row.Lower, row.Upper)
				}
			}
			if !p.Present && row.Judged {
				t.Errorf("%s: row %d has no value but was judged", kind, i)
			}
		}
		if flagged != 1 {
			t.Errorf("%s: %d rows flagged, want the spike", kind, flagged)
		}
		// Warm-up rows are written with empty expected values and bands.
		var buf bytes.Buffer
		if err := anomaly.WriteScores(&buf, rows); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(recs) != len(in)+1 {
			t.Fatalf("%s: %d CSV rows, %v", kind, len(recs), err)
		}
		if first := recs[1]; first[2] != "" || first[3] != "" || first[4] != "" || first[5] != "" {
			t.Errorf("%s: the first row, in warm-up, is written %v; want empty expected, band and score", kind, first)
		}
		if last := recs[len(recs)-1]; last[2] == "" || last[5] == "" && last[1] != "" {
			t.Errorf("%s: the last row is written %v; want a band and a score", kind, last)
		}
	}
}

// TestScoreIntervalsIrregular: the interval models (counts here) take the
// same spoilt rows: every row gets its output row, repeated rows share
// their interval's verdict, and a missing interval is neither zero nor
// judged.
func TestScoreIntervalsIrregular(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	day0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 84 {
		v := []int{7, 8, 6, 7, 9, 0, 0}[i%7] + i%3 - 1
		v = max(v, 0)
		if i == 80 {
			v = 40
		}
		if i == 40 || i == 41 {
			continue // two days missing from the export
		}
		stamp := day0.AddDate(0, 0, i).Add(time.Duration(i%5) * time.Minute) // off the midnight grid by minutes
		lines = append(lines, fmt.Sprintf("%s,%d", stamp.Format(time.RFC3339), v))
		if i == 80 || i == 60 {
			lines = append(lines, lines[len(lines)-1]) // repeated
		}
	}
	lines[20], lines[21] = lines[21], lines[20]
	b.WriteString(strings.Join(lines, "\n"))
	pts, _, err := anomaly.ReadSeries(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	rows, rep, err := anomaly.ScoreSeries(pts, false, anomaly.ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(pts) || rep.Kind != "count" || rep.Step != 24*time.Hour || rep.Gaps != 2 || rep.Repeated != 2 || rep.OutOfOrder != 1 {
		t.Fatalf("%d rows for %d, report %+v", len(rows), len(pts), rep)
	}
	var flagged []string
	for i, r := range rows {
		if !r.Time.Equal(pts[i].Start) {
			t.Fatalf("row %d out of input order", i)
		}
		if r.Anomaly {
			flagged = append(flagged, r.Time.Format(time.DateOnly))
		}
	}
	if want := day0.AddDate(0, 0, 80).Format(time.DateOnly); strings.Join(flagged, " ") != want+" "+want {
		t.Errorf("flagged %v, want the spike on %s, both its rows", flagged, want)
	}
}

// TestScoreNABPerturbed: public NAB series with a tenth of their rows
// dropped, a twentieth repeated, some swapped and some moved off the grid
// are still scored row for row, and the labelled windows the intact series
// flag are still flagged, all but one at most. It needs the NAB mirror
// (OPSMETRICS_NAB_GIT_DIR).
func TestScoreNABPerturbed(t *testing.T) {
	dir := os.Getenv("OPSMETRICS_NAB_GIT_DIR")
	if dir == "" {
		dir = nabGitDir
	}
	corpus, err := nabCorpus(dir)
	if err != nil {
		t.Skipf("NAB corpus not available: %v", err)
	}
	flaggedWindows := func(s *denseSeries, pts []baselines.Point) (map[int]bool, []anomaly.Scored) {
		rows, _, err := anomaly.ScoreSeries(pts, false, anomaly.ScoreOptions{Kind: "dense"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]bool{}
		for _, r := range rows {
			for w, win := range s.windows {
				if r.Anomaly && !r.Time.Before(win[0]) && !r.Time.After(win[1]) {
					out[w] = true
				}
			}
		}
		return out, rows
	}
	kept, lost := 0, 0
	for _, name := range []string{"realKnownCause/ec2_request_latency_system_failure.csv", "realTraffic/speed_6005.csv",
		"realTweets/Twitter_volume_KO.csv"} {
		var s *denseSeries
		for _, c := range corpus {
			if c.name == name {
				s = c
			}
		}
		if s == nil {
			t.Fatalf("%s not in the corpus", name)
		}
		intact, _ := flaggedWindows(s, s.points)
		if len(intact) == 0 {
			t.Fatalf("%s: the intact series flags no window", name)
		}
		r := rand.New(rand.NewPCG(5, 5))
		var spoilt []baselines.Point
		for _, p := range s.points {
			switch u := r.Float64(); {
			case u < 0.10:
			case u < 0.15:
				spoilt = append(spoilt, p, p)
			case u < 0.20:
				p.Start = p.Start.Add(time.Duration(r.IntN(40)-20) * time.Second)
				spoilt = append(spoilt, p)
			default:
				spoilt = append(spoilt, p)
			}
		}
		for i := 3; i+1 < len(spoilt); i += 101 {
			spoilt[i], spoilt[i+1] = spoilt[i+1], spoilt[i]
		}
		got, rows := flaggedWindows(s, spoilt)
		if len(rows) != len(spoilt) {
			t.Fatalf("%s: %d output rows for %d", name, len(rows), len(spoilt))
		}
		for i, row := range rows {
			if !row.Time.Equal(spoilt[i].Start) {
				t.Fatalf("%s: row %d out of input order", name, i)
			}
		}
		for w := range intact {
			if got[w] {
				kept++
			} else {
				lost++
				t.Logf("%s: window %v flagged intact, not spoilt", name, s.windows[w])
			}
		}
	}
	if lost > 1 {
		t.Errorf("%d of %d windows flagged in the intact series are lost in the spoilt ones", lost, kept+lost)
	}
}
