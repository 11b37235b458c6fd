package anomaly

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Persistence fires a series when at least N of its last M intervals are
// anomalous, so one odd interval among normal ones does not flap.
type Persistence struct {
	N int `yaml:"n"`
	M int `yaml:"m"`
}

// Config configures detection. Its tagged fields are the configuration
// file's anomaly section (DefaultConfig, Validate); Steps are the baselines
// section's and Production the kpi section's.
type Config struct {
	// Steps are the granularities evaluated (default day and hour).
	Steps []metrics.Step `yaml:"-"`
	// Persistence per step; missing steps take 1 of 1 for days and 2 of 3
	// for hours.
	Persistence map[metrics.Step]Persistence `yaml:"persistence"`
	Production  []string                     `yaml:"-"`
	// EvaluationInterval is how often serve detects.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// Backfill is how far back serve judges the intervals never judged
	// (Service.CatchUp): on a new installation, or after a gap in
	// scheduling. 0 turns it off.
	Backfill time.Duration `yaml:"backfill"`
}

func (c Config) persistence(step metrics.Step) Persistence {
	if p, ok := c.Persistence[step]; ok && p.N > 0 && p.M >= p.N {
		return p
	}
	if step == metrics.StepHour {
		return Persistence{N: 2, M: 3}
	}
	return Persistence{N: 1, M: 1}
}

// Evaluation is the verdict on one series at one detection.
type Evaluation struct {
	Series baselines.Series
	Model  *baselines.Model
	// Start and End bound the latest closed interval.
	Start, End time.Time
	Point      baselines.Point
	Score      baselines.Score
	// Firing: at least N of the last M intervals are anomalous. Latest is
	// the most recent anomalous interval of those M (its direction and
	// severity label the alert).
	Firing   bool
	Latest   *Interval
	Previous *Interval // the same, one interval earlier: what may need resolving
	// Open is the interval in progress when its count is already above its
	// band; it then counts as the latest interval of the window.
	Open *Interval
	// WasFiring is whether the window ending one interval earlier fired.
	WasFiring  bool
	Generation uint64 // of the baseline
	TrainedAt  time.Time
	// Factors are what explains the latest anomalous interval of a firing
	// series, when its KPI names them (Explain; Detect fills them).
	Factors *Factors
}

// Interval is one judged interval.
type Interval struct {
	Start time.Time
	End   time.Time
	Point baselines.Point
	Score baselines.Score
	// Harmful: anomalous in the direction that hurts the KPI, which is
	// what persistence counts and alerts on.
	Harmful bool
}

// Detect evaluates the latest closed interval before now of every series
// with a current baseline, finds the contributing factors of those that
// fire (Explain), records its anomalous intervals in ClickHouse
// (idempotently: re-detecting an interval replaces its row) and returns the
// evaluations. It records every latest closed interval, anomalous or not,
// in judged_intervals with the band that judged it. Series still learning
// are returned unjudged.
func Detect(ctx context.Context, conn driver.Conn, cfg Config, now time.Time, log *slog.Logger) ([]Evaluation, error) {
	out, err := detectEach(ctx, conn, cfg, []time.Time{now}, true, log)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// detectEach is Detect as of each of nows, with one read of the series;
// open judges the interval in progress too (only right for the present:
// the rows read hold all of it, not what had happened by an earlier time)
// and records the judged intervals.
func detectEach(ctx context.Context, conn driver.Conn, cfg Config, nows []time.Time, open bool, log *slog.Logger) ([][]Evaluation, error) {
	steps := cfg.Steps
	if len(steps) == 0 {
		steps = []metrics.Step{metrics.StepDay, metrics.StepHour}
	}
	out := make([][]Evaluation, len(nows))
	if len(nows) == 0 {
		return out, nil
	}
	latest := nows[0].UTC()
	for _, now := range nows {
		if now.After(latest) {
			latest = now.UTC()
		}
	}
	for _, step := range steps {
		models, err := baselines.Current(ctx, conn, step)
		if err != nil {
			return nil, err
		}
		if len(models) == 0 {
			continue
		}
		per := cfg.persistence(step)
		d := step.Duration()
		ends := make([]time.Time, len(nows))
		first := step.Truncate(nows[0].UTC())
		for k, now := range nows {
			ends[k] = step.Truncate(now.UTC())
			if ends[k].Before(first) {
				first = ends[k]
			}
		}
		// M closed intervals, one more to know whether the previous window
		// fired, and the open interval: a count already above its band
		// cannot come back, so it fires before its interval closes.
		// The window and silence tests of the oldest need History-1
		// intervals before it.
		extra := baselines.History(d) - 1
		n := per.M + 2 + extra
		from := first.Add(-time.Duration(per.M+1+extra) * d)
		series, err := baselines.Load(ctx, conn, baselines.LoadOptions{From: from, To: step.Truncate(latest).Add(d), Step: step,
			Production: cfg.Production})
		if err != nil {
			return nil, err
		}
		if err := baselines.StoreSeries(ctx, conn, series, latest); err != nil {
			return nil, err
		}
		for k, end := range ends {
			off := int(end.Sub(first) / d)
			for _, st := range models {
				var pts []baselines.Point
				if all := series[st.Series]; all != nil {
					pts = all[off : off+n]
				} else { // nothing at all happened in the range
					pts = make([]baselines.Point, n)
					for i := range pts {
						pts[i] = baselines.Point{Start: from.Add(time.Duration(off+i) * d), Present: st.Model.Kind == baselines.Count}
					}
				}
				out[k] = append(out[k], evaluate(st, pts, extra, end, d, per, open))
			}
		}
	}
	for k := range nows { // what fires, or would have, names its contributing factors
		explainFiring(ctx, conn, out[k], cfg.Production, log)
	}
	firing := 0
	for k := range nows {
		if err := record(ctx, conn, out[k], nows[k].UTC()); err != nil {
			return nil, err
		}
		if open {
			if err := recordJudged(ctx, conn, judgements(out[k]), nows[k].UTC()); err != nil {
				return nil, err
			}
		}
		for _, e := range out[k] {
			if e.Firing {
				firing++
			}
		}
	}
	log.Info("detected anomalies", "series", len(out[0]), "times", len(nows), "firing", firing)
	return out, nil
}

// judgements are the latest closed intervals of evals as judged_intervals
// holds them, with the band of the current baseline that judged them.
func judgements(evals []Evaluation) []judgement {
	out := make([]judgement, 0, len(evals))
	for _, e := range evals {
		out = append(out, judgement{Series: e.Series, Model: e.Model, Start: e.Start, Point: e.Point, Status: e.Model.Status, Score: e.Score,
			Band: e.Model.Score(e.Point), Firing: e.Firing && e.Latest != nil && e.Latest.Start.Equal(e.Start),
			TrainedTo: e.Series.Step.Truncate(e.TrainedAt)})
	}
	return out
}

// evaluate judges the intervals of pts after the first extra, the last of
// them open (end is its start), and applies persistence; the open one
// fires early only when open is set.
func evaluate(st baselines.Stored, pts []baselines.Point, extra int, end time.Time, d time.Duration, per Persistence, open bool) Evaluation {
	ivs := make([]Interval, 0, len(pts)-extra)
	for i := extra; i < len(pts); i++ {
		p := pts[i]
		ivs = append(ivs, Interval{Start: p.Start, End: p.Start.Add(d), Point: p, Score: st.Model.ScoreRecent(pts[i-extra : i+1])})
	}
	k, _ := baselines.LookupKPI(st.Series.KPI)
	for i := range ivs {
		ivs[i].Harmful = ivs[i].Score.Anomaly && k.Harmful(ivs[i].Score.Direction)
	}
	closed, current := ivs[:len(ivs)-1], ivs[len(ivs)-1]
	last := closed[len(closed)-1]
	e := Evaluation{Series: st.Series, Model: st.Model, Start: last.Start, End: end, Point: last.Point, Score: last.Score,
		Generation: st.Generation, TrainedAt: st.TrainedAt}
	e.Firing, e.Latest = window(closed[1:], per)
	if open && st.Model.Kind == baselines.Count && current.Harmful && current.Score.Direction == "up" {
		e.Open = &current
		e.Firing, e.Latest = window(append(append([]Interval(nil), closed[2:]...), current), per)
	}
	e.WasFiring, e.Previous = window(closed[:len(closed)-1], per)
	return e
}

// window applies persistence to consecutive judged intervals.
func window(ivs []Interval, per Persistence) (bool, *Interval) {
	if len(ivs) > per.M {
		ivs = ivs[len(ivs)-per.M:]
	}
	n := 0
	var latest *Interval
	for i := range ivs {
		if ivs[i].Harmful {
			n++
			latest = &ivs[i]
		}
	}
	return n >= per.N, latest
}

// explainFiring finds the contributing factors of the firing evaluations
// (Explain). An anomaly without its factors is better than none: a
// failure is logged.
func explainFiring(ctx context.Context, conn driver.Conn, evals []Evaluation, production []string, log *slog.Logger) {
	for i, e := range evals {
		var err error
		if evals[i].Factors, err = Explain(ctx, conn, e, production); err != nil {
			log.Warn("anomaly without contributing factors", "kpi", e.Series.KPI, "service", e.Series.Service, "err", err)
		}
	}
}

// record stores the anomalous latest intervals (and open ones that fire
// early; their row is replaced once the interval closes), a firing one
// with its contributing factors. A row holds what the decision judged: for
// the window and silence tests, the intervals' total (or rate, or mean
// duration) against their band, under the latest interval's start.
func record(ctx context.Context, conn driver.Conn, evals []Evaluation, now time.Time) error {
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO anomalies (series, kpi, step, service, team, environment,
		interval_start, interval_end, observed, num, den, expected, lower, upper, direction, tail, severity, firing,
		generation, detected_at, factors, factor_dimensions, factor_values, factor_observed, factor_trials, factor_expected,
		factor_excess, factor_shares, factor_of)`)
	if err != nil {
		return fmt.Errorf("prepare anomalies insert: %w", err)
	}
	defer batch.Abort()
	n := 0
	for _, e := range evals {
		for _, iv := range []*Interval{{Start: e.Start, End: e.End, Point: e.Point, Score: e.Score}, e.Open} {
			if iv == nil || !iv.Score.Anomaly {
				continue
			}
			s := e.Series
			firing, factors := uint8(0), ""
			var fc factorColumns
			if e.Firing && e.Latest != nil && e.Latest.Start.Equal(iv.Start) {
				firing = 1
				if e.Factors != nil {
					factors = e.Factors.Summary
					fc = columnsOf(e.Factors.Factors)
				}
			}
			if err := batch.Append(s.Key(), s.KPI, string(s.Step), s.Service, s.Team, s.Environment, iv.Start, iv.End,
				iv.Score.Observed, iv.Score.Num, iv.Score.Den, iv.Score.Expected, iv.Score.Lower, iv.Score.Upper, iv.Score.Direction,
				iv.Score.Tail, iv.Score.Severity, firing, e.Generation, now, factors,
				fc.dims, fc.values, fc.observed, fc.trials, fc.expected, fc.excess, fc.shares, fc.of); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record %d anomalies: %w", n, err)
	}
	return nil
}
