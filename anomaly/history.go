package anomaly

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// BackfillOptions are one judgement of past intervals (Backfill).
type BackfillOptions struct {
	// From and To bound the intervals judged: those that start in
	// [From, To) and have closed by Now.
	From, To time.Time
	Learn    baselines.Config
	Detect   Config
	Now      time.Time
	// Each, when set, is given the evaluation of every interval judged in
	// the range, with the model that judged it (Alerts words what would
	// have fired from it): by series and start within each 28 days.
	Each func(Evaluation)
}

// BackfillResult counts what a Backfill judged, over its steps.
type BackfillResult struct {
	Intervals int // series-intervals recorded in judged_intervals
	Judged    int // of them, judged by a ready baseline
	Anomalies int
	Firing    int // anomalies that would have alerted (none is sent)
}

// Backfill judges every closed interval that starts in [o.From, o.To), of
// every series, with the baseline as it would have been learnt then: the
// model of an interval is fitted, as Learn fits it, to the training window
// that ends at the UTC midnight that starts the interval's day (a daily
// relearn), and so from data before the interval only; the intervals
// flagged before it, in this run or recorded earlier, leave the training
// as Relearn leaves them. It records every interval in judged_intervals
// (the band of the interval, flagged or not) and the anomalous ones in
// anomalies, replacing the rows of an earlier run, so that running it
// again gives the same rows; the anomalies that would have fired name
// their contributing factors, from the events stored now. It sends no
// alert: Firing counts what persistence would have fired.
func Backfill(ctx context.Context, conn driver.Conn, o BackfillOptions, log *slog.Logger) (BackfillResult, error) {
	var res BackfillResult
	now := o.Now.UTC()
	learn := o.Learn
	if learn.Training <= 0 {
		learn.Training = baselines.DefaultTraining
	}
	steps := o.Detect.Steps
	if len(steps) == 0 {
		steps = []metrics.Step{metrics.StepDay, metrics.StepHour}
	}
	for _, step := range steps {
		from, to := ceilStep(step, o.From), ceilStep(step, o.To)
		if closed := step.Truncate(now); to.After(closed) {
			to = closed
		}
		// A chunk at a time, so that memory does not grow with the range;
		// each chunk reads the anomalies recorded by the one before, and
		// judges as one pass over the whole range would.
		for c := from; c.Before(to); c = c.Add(backfillChunk) {
			if err := backfillRange(ctx, conn, o.Detect, learn, step, c, minTime(c.Add(backfillChunk), to), now, o.Each, &res, log); err != nil {
				return res, err
			}
		}
	}
	log.Info("judged past intervals", "from", o.From, "to", o.To, "intervals", res.Intervals, "judged", res.Judged,
		"anomalies", res.Anomalies, "would_fire", res.Firing)
	return res, nil
}

// backfillChunk is the most of a range Backfill judges at once.
const backfillChunk = 28 * 24 * time.Hour

// backfillRange judges the intervals of step that start in [from, to)
// and records them (Backfill).
func backfillRange(ctx context.Context, conn driver.Conn, cfg Config, learn baselines.Config, step metrics.Step, from, to, now time.Time,
	each func(Evaluation), res *BackfillResult, log *slog.Logger) error {
	d := step.Duration()
	per := cfg.persistence(step)
	// The M-1 intervals before the range are judged too, unrecorded, so
	// that persistence at its start sees them; the first needs its
	// training window and the History before it.
	first := from.Add(-time.Duration(per.M-1) * d)
	loadFrom := minTime(learnedAt(first).Add(-learn.Training), first.Add(-time.Duration(baselines.History(d)-1)*d))
	series, err := baselines.Load(ctx, conn, baselines.LoadOptions{From: loadFrom, To: to, Step: step, Production: cfg.Production})
	if err != nil {
		return err
	}
	prior, err := Flagged(ctx, conn, loadFrom, first)
	if err != nil {
		return err
	}
	var judged []judgement
	var anomalous, evals []Evaluation
	var anomalousAt []int // the index in evals of each of anomalous
	shown := map[baselines.Series][]baselines.Point{}
	for _, s := range baselines.SortedSeries(series) {
		pts := series[s]
		shown[s] = pts[int(from.Sub(loadFrom)/d):]
		for _, j := range backfillSeries(learn, s, pts, loadFrom, first, d, per, prior[s.Key()]) {
			if j.Start.Before(from) {
				continue
			}
			judged = append(judged, j)
			res.Intervals++
			if j.Score.Judged {
				res.Judged++
			}
			ev := Evaluation{Series: s, Model: j.Model, Start: j.Start, End: j.Start.Add(d), Point: j.Point, Score: j.Score,
				Firing: j.Firing, Generation: uint64(j.TrainedTo.UnixNano()), TrainedAt: j.TrainedTo}
			if j.Firing {
				res.Firing++
				ev.Latest = &Interval{Start: j.Start, End: ev.End, Point: j.Point, Score: j.Score, Harmful: true}
			}
			evals = append(evals, ev)
			if j.Score.Anomaly {
				res.Anomalies++
				anomalous, anomalousAt = append(anomalous, ev), append(anomalousAt, len(evals)-1)
			}
		}
	}
	if err := baselines.StoreSeries(ctx, conn, shown, now); err != nil {
		return err
	}
	if err := recordJudged(ctx, conn, judged, now); err != nil {
		return err
	}
	explainFiring(ctx, conn, anomalous, cfg.Production, log)
	// The caller sees each evaluation with the factors of its anomaly.
	for k, i := range anomalousAt {
		evals[i].Factors = anomalous[k].Factors
	}
	if each != nil {
		for _, ev := range evals {
			each(ev)
		}
	}
	return record(ctx, conn, anomalous, now)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// learnedAt is when the baseline that judges the interval starting at t
// was learnt: the UTC midnight that starts its day.
func learnedAt(t time.Time) time.Time { return metrics.StepDay.Truncate(t) }

// ceilStep is the first step boundary at or after t.
func ceilStep(step metrics.Step, t time.Time) time.Time {
	if s := step.Truncate(t); s.Before(t) {
		return s.Add(step.Duration())
	}
	return t.UTC()
}

// backfillSeries judges the intervals of s from first to the end of pts
// (which start at loadFrom, a training window before first's day), each
// with the model learnt at its learnedAt, refitted once a day. Intervals
// it flags leave the training of later models, as Relearn leaves them.
func backfillSeries(learn baselines.Config, s baselines.Series, pts []baselines.Point, loadFrom, first time.Time, d time.Duration,
	per Persistence, flagged map[time.Time]bool) []judgement {
	k, _ := baselines.LookupKPI(s.KPI)
	f := map[time.Time]bool{}
	for t := range flagged {
		f[t] = true
	}
	extra := baselines.History(d) - 1
	index := func(t time.Time) int { return int(t.Sub(loadFrom) / d) }
	var out []judgement
	var harmful []bool
	var m *baselines.Model
	var at time.Time
	for i := index(first); i < len(pts); i++ {
		p := pts[i]
		if l := learnedAt(p.Start); m == nil || !l.Equal(at) {
			at = l
			m = learn.FitSeries(s, pts[index(at.Add(-learn.Training)):index(at)], f)
		}
		j := judgement{Series: s, Model: m, Start: p.Start, Point: p, Status: m.Status, TrainedTo: at,
			Score: m.ScoreRecent(pts[i-extra : i+1]), Band: m.Score(p)}
		if j.Score.Anomaly && baselines.ExcludesFlagged(k.Kind) {
			f[p.Start] = true
		}
		h := j.Score.Anomaly && k.Harmful(j.Score.Direction)
		harmful = append(harmful, h)
		if len(harmful) > per.M {
			harmful = harmful[1:]
		}
		n := 0
		for _, x := range harmful {
			if x {
				n++
			}
		}
		j.Firing = h && n >= per.N
		out = append(out, j)
	}
	return out
}

// judgement is one judged interval as judged_intervals holds it: the
// decision (Score), and the interval's own band (Band), which charts draw.
type judgement struct {
	Series    baselines.Series
	Model     *baselines.Model // that judged it
	Start     time.Time
	Point     baselines.Point
	Status    baselines.Status
	Score     baselines.Score
	Band      baselines.Score
	Firing    bool
	TrainedTo time.Time // the end of the data the baseline was learnt from
}

// recordJudged writes judgements to judged_intervals, replacing earlier
// rows of the same series and interval.
func recordJudged(ctx context.Context, conn driver.Conn, js []judgement, now time.Time) error {
	if len(js) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO judged_intervals (series, kpi, step, service, team, environment,
		interval_start, status, judged, anomaly, firing, test, observed, expected, lower, upper, tail, direction,
		trained_to, judged_at)`)
	if err != nil {
		return fmt.Errorf("prepare judged_intervals insert: %w", err)
	}
	defer batch.Abort()
	for _, j := range js {
		s := j.Series
		if err := batch.Append(s.Key(), s.KPI, string(s.Step), s.Service, s.Team, s.Environment, j.Start, string(j.Status),
			flag(j.Score.Judged), flag(j.Score.Anomaly), flag(j.Firing), j.Score.Test, j.Point.Value, j.Band.Expected,
			j.Band.Lower, j.Band.Upper, j.Score.Tail, j.Score.Direction, j.TrainedTo, now); err != nil {
			return fmt.Errorf("append judged interval of %s: %w", s.Key(), err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record %d judged intervals: %w", len(js), err)
	}
	return nil
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Judged is one interval of one series as detection judged it
// (judged_intervals): the interval's value and its own band under the
// baseline of that time, and the decision.
type Judged struct {
	Series baselines.Series
	Start  time.Time
	Status baselines.Status
	// Judged is false when the baseline was learning or the interval had
	// too little data for a verdict.
	Judged, Anomaly, Firing bool
	Test                    string // what decided (baselines.TestInterval, ...)
	Observed                float64
	Expected, Lower, Upper  float64 // the interval's band
	Tail                    float64
	Direction               string
	TrainedTo               time.Time // the baseline saw data before this only
}

// JudgedQuery selects judged intervals.
type JudgedQuery struct {
	Step     metrics.Step
	From, To time.Time // interval starts in [From, To)
	// Organisation keeps the unsliced series only.
	Organisation bool
}

// judgedSQL reads judged intervals; FINAL keeps the latest judgement of
// each.
const judgedSQL = `SELECT kpi, step, service, team, environment, interval_start, status, judged, anomaly, firing, test,
	observed, expected, lower, upper, tail, direction, trained_to
	FROM judged_intervals FINAL
	WHERE step = ? AND interval_start >= ? AND interval_start < ?
		AND (? = 0 OR (service = '' AND team = '' AND environment = ''))
	ORDER BY interval_start, series`

// ReadJudged reads the judged intervals q selects, in order of start.
func ReadJudged(ctx context.Context, conn driver.Conn, q JudgedQuery) ([]Judged, error) {
	rows, err := conn.Query(ctx, judgedSQL, string(q.Step), q.From.UTC(), q.To.UTC(), flag(q.Organisation))
	if err != nil {
		return nil, fmt.Errorf("read judged intervals: %w", err)
	}
	defer rows.Close()
	var out []Judged
	for rows.Next() {
		var j Judged
		var step, status string
		var judged, anomaly, firing uint8
		if err := rows.Scan(&j.Series.KPI, &step, &j.Series.Service, &j.Series.Team, &j.Series.Environment, &j.Start, &status,
			&judged, &anomaly, &firing, &j.Test, &j.Observed, &j.Expected, &j.Lower, &j.Upper, &j.Tail, &j.Direction,
			&j.TrainedTo); err != nil {
			return nil, fmt.Errorf("read judged intervals: %w", err)
		}
		j.Series.Step, j.Status = metrics.Step(step), baselines.Status(status)
		j.Judged, j.Anomaly, j.Firing = judged == 1, anomaly == 1, firing == 1
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read judged intervals: %w", err)
	}
	return out, nil
}

// LastJudged is the start of the latest interval of the step before
// before judged for any series, and false when none was.
func LastJudged(ctx context.Context, conn driver.Conn, step metrics.Step, before time.Time) (time.Time, bool, error) {
	var n uint64
	var t time.Time
	if err := conn.QueryRow(ctx, `SELECT count(), max(interval_start) FROM judged_intervals WHERE step = ? AND interval_start < ?`,
		string(step), before.UTC()).Scan(&n, &t); err != nil {
		return time.Time{}, false, fmt.Errorf("read the last judged %s: %w", step, err)
	}
	return t.UTC(), n > 0, nil
}

// Write says what a Backfill of o judged, for people.
func (r BackfillResult) Write(w io.Writer, o BackfillOptions) error {
	_, err := fmt.Fprintf(w, "judged %d series-intervals from %s to %s (%d by a ready baseline, the others learning or without data): "+
		"%d anomalies, %d would have alerted; no alert sent for past intervals\n", r.Intervals, o.From.UTC().Format(time.RFC3339),
		o.To.UTC().Format(time.RFC3339), r.Judged, r.Anomalies, r.Firing)
	return err
}
