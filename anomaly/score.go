package anomaly

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
)

// ScoreOptions configure offline scoring.
type ScoreOptions struct {
	// Kind is count, rate, duration, dense (any real series, by seasonal
	// median and MAD) or auto (the default), which picks from the data.
	Kind string
	// Season is the season in intervals; 0 detects it, -1 turns it off.
	Season int
	// Window is how many past intervals train each score (default 8 weeks
	// of the series' step, at least 28 intervals).
	Window  int
	Options baselines.Options
}

// Scored is one scored row.
type Scored struct {
	Time                   time.Time
	Value                  float64
	Expected, Lower, Upper float64
	// Score is in [0, 1], higher for rarer values: 1 minus the two-sided
	// tail probability. It is 0 while the model is learning.
	Score   float64
	Anomaly bool
}

// ScoreReport says what ScoreSeries chose.
type ScoreReport struct {
	Kind   string
	Step   time.Duration
	Season int
}

// ReadSeries reads CSV with a header of timestamp,value (and, for rates,
// num,den). Timestamps are RFC 3339, dates, or Unix seconds; rows must be
// at a regular interval, in order.
func ReadSeries(r io.Reader) ([]baselines.Point, bool, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, false, fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	ti, ok1 := col["timestamp"]
	vi, ok2 := col["value"]
	ni, hasNum := col["num"]
	di, hasDen := col["den"]
	if !ok1 || (!ok2 && !(hasNum && hasDen)) {
		return nil, false, errors.New("header: want timestamp,value (and num,den for rates)")
	}
	rates := hasNum && hasDen
	var out []baselines.Point
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("line %d: %w", line, err)
		}
		t, err := parseStamp(rec[ti])
		if err != nil {
			return nil, false, fmt.Errorf("line %d: timestamp: %w", line, err)
		}
		p := baselines.Point{Start: t, Present: true}
		if ok2 && strings.TrimSpace(rec[vi]) == "" && !rates {
			p.Present = false
		} else if ok2 && !rates {
			if p.Value, err = strconv.ParseFloat(strings.TrimSpace(rec[vi]), 64); err != nil || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				return nil, false, fmt.Errorf("line %d: value %q is not a number", line, rec[vi])
			}
		}
		if rates {
			if p.Num, err = strconv.ParseFloat(strings.TrimSpace(rec[ni]), 64); err != nil || p.Num < 0 {
				return nil, false, fmt.Errorf("line %d: num %q is not a count", line, rec[ni])
			}
			if p.Den, err = strconv.ParseFloat(strings.TrimSpace(rec[di]), 64); err != nil || p.Den < p.Num {
				return nil, false, fmt.Errorf("line %d: den %q is not a count >= num", line, rec[di])
			}
			if p.Den > 0 {
				p.Value = p.Num / p.Den
			} else {
				p.Present = false
			}
		}
		if n := len(out); n > 0 && !t.After(out[n-1].Start) {
			return nil, false, fmt.Errorf("line %d: timestamp %s is not after the previous one", line, rec[ti])
		}
		out = append(out, p)
	}
	if len(out) < 2 {
		return nil, false, errors.New("want at least two rows")
	}
	return out, rates, nil
}

func parseStamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339, a date or Unix seconds, got %q", s)
}

// ScoreSeries scores every point online: point i is judged by a model
// fitted on the points before it only.
func ScoreSeries(points []baselines.Point, rates bool, o ScoreOptions) ([]Scored, ScoreReport, error) {
	step := points[1].Start.Sub(points[0].Start)
	for i := 2; i < len(points); i++ {
		if points[i].Start.Sub(points[i-1].Start) != step {
			return nil, ScoreReport{}, fmt.Errorf("row %d: the interval changes from %v to %v; rows must be regular",
				i+2, step, points[i].Start.Sub(points[i-1].Start))
		}
	}
	kind := o.Kind
	if kind == "" || kind == "auto" {
		kind = detectKind(points, rates)
	}
	if kind == "rate" && !rates {
		return nil, ScoreReport{}, errors.New("kind rate needs num and den columns")
	}
	season := o.Season
	if season == 0 {
		season = detectSeason(points, step)
	}
	window := o.Window
	if window <= 0 {
		window = max(28, int(8*7*24*time.Hour/step))
	}
	opts := o.Options
	opts.Step = step
	opts.Origin = points[0].Start
	if season > 1 {
		opts.Period = season
	} else {
		opts.NoSeason = true
	}
	var k baselines.Kind
	switch kind {
	case "count":
		k = baselines.Count
	case "dense":
		k, opts.Dense = baselines.Count, true
	case "rate":
		k = baselines.Rate
	case "duration":
		k = baselines.Duration
	default:
		return nil, ScoreReport{}, fmt.Errorf("unknown kind %q: want count, rate, duration, dense or auto", kind)
	}
	out := make([]Scored, len(points))
	flagged := map[time.Time]bool{}
	opts.Exclude = func(t time.Time) bool { return flagged[t] }
	for i, p := range points {
		m := baselines.Fit(k, points[max(0, i-window):i], opts)
		s := m.ScoreRecent(points[max(0, i-baselines.History(step)+1) : i+1])
		out[i] = Scored{Time: p.Start, Value: p.Value, Expected: s.Expected, Lower: s.Lower, Upper: s.Upper, Anomaly: s.Anomaly}
		if s.Anomaly && baselines.ExcludesFlagged(k) {
			flagged[p.Start] = true
		}
		if s.Judged {
			out[i].Score = 1 - math.Min(1, 2*s.Tail)
		}
	}
	return out, ScoreReport{Kind: kind, Step: step, Season: season}, nil
}

// detectKind: num and den make a rate; non-negative integers a count;
// positive values a duration; anything else a dense series.
func detectKind(points []baselines.Point, rates bool) string {
	if rates {
		return "rate"
	}
	ints, positive := true, true
	for _, p := range points {
		if !p.Present {
			continue
		}
		if p.Value < 0 || p.Value != math.Trunc(p.Value) {
			ints = false
		}
		if p.Value <= 0 {
			positive = false
		}
	}
	switch {
	case ints:
		return "count"
	case positive:
		return "duration"
	}
	return "dense"
}

// detectSeason picks the weekly season of daily or hourly series, or the
// lag of highest autocorrelation up to a quarter of the series, when that
// autocorrelation is above 0.3; 1 means none.
func detectSeason(points []baselines.Point, step time.Duration) int {
	var cands []int
	switch step {
	case 24 * time.Hour:
		return 7 // weekly, as live baselines: slots shrink to the mean when there is no season
	case time.Hour:
		return 168
	default:
		for l := 2; l <= len(points)/4; l++ {
			cands = append(cands, l)
		}
	}
	xs := make([]float64, len(points))
	mean, n := 0.0, 0.0
	for i, p := range points {
		if p.Present {
			xs[i] = p.Value
			mean += p.Value
			n++
		}
	}
	if n == 0 {
		return 1
	}
	mean /= n
	type lagACF struct {
		lag int
		acf float64
	}
	var best []lagACF
	for _, l := range cands {
		if 3*l > len(xs) {
			continue
		}
		num, den := 0.0, 0.0
		for i := range xs {
			den += (xs[i] - mean) * (xs[i] - mean)
			if i >= l {
				num += (xs[i] - mean) * (xs[i-l] - mean)
			}
		}
		if den > 0 {
			best = append(best, lagACF{l, num / den})
		}
	}
	sort.Slice(best, func(i, j int) bool { return best[i].acf > best[j].acf })
	if len(best) > 0 && best[0].acf > 0.3 {
		return best[0].lag
	}
	return 1
}

// WriteScores writes the scored rows as CSV: the input columns plus
// expected, lower, upper, score and anomaly.
func WriteScores(w io.Writer, rows []Scored) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"timestamp", "value", "expected", "lower", "upper", "score", "anomaly"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		cw.Write([]string{r.Time.Format(time.RFC3339), f(r.Value), f(r.Expected), f(r.Lower), f(r.Upper), f(r.Score),
			strconv.FormatBool(r.Anomaly)})
	}
	cw.Flush()
	return cw.Error()
}
