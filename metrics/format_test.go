package metrics_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestReportFormats(t *testing.T) {
	cfr, mttr, recovery, outside := 0.25, 5400.0, 9000.0, 0.5
	r := &metrics.Report{From: t0, To: t0.Add(24 * time.Hour), By: []metrics.Dimension{metrics.Team, metrics.Environment}, LevelTable: "2024",
		Summaries: []*metrics.Summary{
			{Slice: map[metrics.Dimension]string{metrics.Team: "fulfillment", metrics.Environment: "production-eu"},
				Deployments: 4, ChangeFailureRate: &cfr, MTTRMedianSeconds: &mttr, RecoveryMedianSeconds: &recovery,
				DeploymentsOutsideWindow: 2, OutsideWindowShare: &outside, DeploymentsInFreeze: 1, UnplannedFixesOutsideWindow: 3,
				Levels:      map[string]string{"change_failure_rate": "medium", "recovery_time": "high"},
				LevelLabels: metrics.LevelLabels(map[string]string{"change_failure_rate": "medium", "recovery_time": "high"})},
			{Slice: map[metrics.Dimension]string{metrics.Team: "identity", metrics.Environment: "production"}},
		}}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(table.String()), "\n") {
		if len(line) > 100 {
			t.Errorf("table line of %d columns, want at most 100: %q", len(line), line)
		}
	}
	if !strings.Contains(table.String(), "25.0%") || !strings.Contains(table.String(), "1.5 h") {
		t.Errorf("table lacks human units:\n%s", table.String())
	}
	// Each level sits on the line of the figure it grades: the recovery
	// level beside the recovery time (2.5h), not the MTTR (1.5h).
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^fulfillment +production-eu +recovery time \(median\) +2\.5 h +high \(2nd of 4\)$`),
		regexp.MustCompile(`(?m)^fulfillment +production-eu +change failure rate +25\.0% +medium \(3rd of 4\)$`),
		regexp.MustCompile(`(?m)^identity +production +recovery time \(median\) +- +-$`),
		// The change calendar's figures, in their own table.
		regexp.MustCompile(`(?m)^fulfillment +production-eu +2 +50\.0% +1 +3$`),
		regexp.MustCompile(`(?m)^identity +production +0 +- +0 +0$`),
	} {
		if !want.MatchString(table.String()) {
			t.Errorf("table has no line matching %s:\n%s", want, table.String())
		}
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summaries []map[string]any `json:"summaries"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if v, ok := doc.Summaries[1]["change_failure_rate"]; !ok || v != nil {
		t.Errorf("absent rate in JSON = %v (present %v), want null", v, ok)
	}
	if doc.Summaries[0]["change_failure_rate"] != 0.25 {
		t.Errorf("rate in JSON = %v, want 0.25", doc.Summaries[0]["change_failure_rate"])
	}

	var c bytes.Buffer
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("csv: %v, %d records", err, len(recs))
	}
	cfrCol := slices.Index(recs[0], "change_failure_rate")
	if recs[0][0] != "team" || cfrCol < 0 || recs[1][cfrCol] != "0.25" || recs[2][cfrCol] != "" {
		t.Errorf("csv rows %q", recs)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range []struct{ col, want string }{
		{"recovery_median_seconds", "9000"}, {"dora_level_labels.recovery_time", "high (2nd of 4)"},
		{"dora_level_labels.change_failure_rate", "medium (3rd of 4)"}, {"dora_levels.change_failure_rate", "medium"},
	} {
		if i, ok := col[c.col]; !ok || recs[1][i] != c.want {
			t.Errorf("csv column %s = %q (present %v), want %q", c.col, recs[1][min(i, len(recs[1])-1)], ok, c.want)
		}
	}
}

// TestCSVCarriesEveryJSONFigure: every leaf of the JSON document's
// summaries (the comparison, the DORA levels, the patch KPIs, the maps) is
// a CSV column of the same value, named by its JSON path.
func TestCSVCarriesEveryJSONFigure(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	from := time.Date(2026, 3, 4, 0, 0, 0, 0, berlin) // a Wednesday
	to := time.Date(2026, 3, 17, 0, 0, 0, 0, berlin)
	cfr, lat, comp := 0.25, 7200.0, 0.5
	var sums []*metrics.Summary
	for i, rg := range metrics.Ranges(from, to, metrics.Week, berlin) {
		start, end := rg[0].In(berlin), rg[1].In(berlin)
		s := &metrics.Summary{Slice: map[metrics.Dimension]string{metrics.Team: "payments"}, Bucket: &start, BucketEnd: &end,
			Partial: metrics.Partial(rg[0], rg[1], metrics.Week, berlin), Deployments: uint64(3 + i), ChangeFailureRate: &cfr,
			Levels: map[string]string{"change_failure_rate": "high"}, PatchesReleased: 4, PatchLatencyMedianSeconds: &lat,
			PatchComplianceBySeverity: map[string]*float64{"critical": &comp, "low": nil},
			IncidentsBySeverity:       map[string]uint64{"sev1": uint64(i)},
			Previous:                  &metrics.Summary{Deployments: 2, Levels: map[string]string{"lead_time": "elite"}}}
		sums = append(sums, s)
	}
	r := &metrics.Report{From: from, To: to, By: []metrics.Dimension{metrics.Team}, Bucket: metrics.Week, TimeZone: "Europe/Berlin",
		LevelTable: "2024", Summaries: sums}
	var js, c bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summaries []map[string]any `json:"summaries"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(recs) != len(sums)+1 {
		t.Fatalf("csv: %v, %d records:\n%s", err, len(recs), c.String())
	}
	for i, s := range doc.Summaries {
		row := map[string]string{}
		for j, name := range recs[0] {
			row[name] = recs[i+1][j]
		}
		leaves := map[string]any{}
		jsonLeaves("", s, leaves)
		for path, want := range leaves {
			if strings.HasPrefix(path, "slice.") || path == "previous.slice" {
				path = "team"
				want = "payments"
			} else if path == "bucket" {
				if wantDay := want.(string)[:10]; row["week"] != wantDay {
					t.Errorf("row %d: week %q, JSON bucket %v", i, row["week"], want)
				}
				continue
			}
			got, ok := row[path]
			if !ok && want == nil {
				continue // a null map: no figure
			}
			if !ok {
				t.Errorf("row %d: no CSV column %s (JSON %v)", i, path, want)
				continue
			}
			if w := fmt.Sprint(want); (want == nil && got != "") || (want != nil && got != w && !sameNumber(got, want)) {
				t.Errorf("row %d: CSV %s = %q, JSON %v", i, path, got, want)
			}
		}
	}
	if p := slices.Index(recs[0], "partial"); p < 0 || recs[1][p] != "true" || recs[2][p] != "false" || recs[3][p] != "true" {
		t.Errorf("partial column of weeks Wed–Sun, Mon–Sun, Mon–Sun clipped: %q", recs)
	}
	if b := slices.Index(recs[0], "bucket_end"); b < 0 || recs[1][b] != "2026-03-09T00:00:00+01:00" {
		t.Errorf("bucket_end not in the report's time zone: %q", recs)
	}
}

func jsonLeaves(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		out[prefix] = v
		return
	}
	if len(m) == 0 && prefix != "" {
		return // an empty map has no figure
	}
	for k, x := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		jsonLeaves(p, x, out)
	}
}

func sameNumber(s string, v any) bool {
	f, ok := v.(float64)
	g, err := strconv.ParseFloat(s, 64)
	return ok && err == nil && f == g
}

// TestPartialBuckets: a bucket clipped by either edge of the range is
// partial, whole ones are not, in the time zone's calendar.
func TestPartialBuckets(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	for _, c := range []struct {
		name     string
		from, to time.Time
		b        metrics.Bucket
		loc      *time.Location
		want     []bool
	}{
		{"weeks from a Wednesday", time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 17, 0, 0, 0, 0, time.UTC), metrics.Week, time.UTC, []bool{true, false, true}},
		{"whole weeks", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 16, 0, 0, 0, 0, time.UTC), metrics.Week, time.UTC, []bool{false, false}},
		{"UTC days in New York", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), metrics.Day, ny, []bool{true, false, true}},
		{"a 23-hour day is whole", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), time.Date(2026, 3, 9, 0, 0, 0, 0, ny), metrics.Day, ny, []bool{false}},
		{"months", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC), metrics.Month, time.UTC, []bool{false, true}},
	} {
		var got []bool
		for _, rg := range metrics.Ranges(c.from, c.to, c.b, c.loc) {
			got = append(got, metrics.Partial(rg[0], rg[1], c.b, c.loc))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: partial %v, want %v", c.name, got, c.want)
		}
	}
}
