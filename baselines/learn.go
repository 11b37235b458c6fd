package baselines

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// Window is a time range, optionally limited to one service, whose
// intervals do not train baselines: a maintenance window, a migration, a
// known outage.
type Window struct {
	From    time.Time `yaml:"from"`
	To      time.Time `yaml:"to"`
	Service string    `yaml:"service"` // empty: every series
	Reason  string    `yaml:"reason"`
}

// Config configures learning.
//
// Its tagged fields are the configuration file's baselines section
// (DefaultConfig, Validate); Production is the kpi section's.
type Config struct {
	// Training is the length of the training window (default 8 weeks).
	Training time.Duration `yaml:"training"`
	// Steps are the granularities learnt (default day and hour).
	Steps      []metrics.Step   `yaml:"steps"`
	Production []string         `yaml:"-"`
	Options    `yaml:",inline"` // Step and Exclude are set per series
	// Maintenance windows are excluded from training, as are the Flagged
	// intervals of counts and rates (ExcludesFlagged).
	Maintenance []Window `yaml:"maintenance"`
	// Flagged are the intervals already recorded as anomalies, read by
	// their owner (anomaly.Relearn reads them for the TrainingSpan).
	Flagged Flagged `yaml:"-"`
	// RelearnInterval is how often serve relearns.
	RelearnInterval time.Duration `yaml:"relearn_interval"`
}

// DefaultTraining is the training window when none is configured.
const DefaultTraining = 8 * 7 * 24 * time.Hour

func (c Config) withDefaults() Config {
	if c.Training <= 0 {
		c.Training = DefaultTraining
	}
	if len(c.Steps) == 0 {
		c.Steps = []metrics.Step{metrics.StepDay, metrics.StepHour}
	}
	return c
}

// Flagged is a set of intervals by series key (Series.Key) and start.
type Flagged map[string]map[time.Time]bool

// TrainingSpan is the range that the training windows of every step of a
// learn as of now cover.
func (c Config) TrainingSpan(now time.Time) (from, to time.Time) {
	c = c.withDefaults()
	for i, step := range c.Steps {
		t := step.Truncate(now.UTC())
		if i == 0 || t.Add(-c.Training).Before(from) {
			from = t.Add(-c.Training)
		}
		if i == 0 || t.After(to) {
			to = t
		}
	}
	return from, to
}

// Result summarises one learn.
type Result struct {
	Generation uint64
	Series     int
	Ready      int // the others are learning
}

// Learn learns a model for every series from the training window that ends
// at the last closed interval before now, and stores them as a new
// generation that readers switch to at once (current_baselines).
func Learn(ctx context.Context, conn driver.Conn, cfg Config, now time.Time, log *slog.Logger) (Result, error) {
	cfg = cfg.withDefaults()
	now = now.UTC()
	res := Result{Generation: uint64(now.UnixNano())}
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO baselines (generation, series, kpi, step, service, team, environment,
		kind, family, status, params, train_from, train_to, trained_at, slot, expected, lower, upper)`)
	if err != nil {
		return res, fmt.Errorf("prepare baselines insert: %w", err)
	}
	defer batch.Abort()
	for _, step := range cfg.Steps {
		to := step.Truncate(now)
		from := to.Add(-cfg.Training)
		series, err := Load(ctx, conn, LoadOptions{From: from, To: to, Step: step, Production: cfg.Production})
		if err != nil {
			return res, err
		}
		if err := StoreSeries(ctx, conn, series, now); err != nil {
			return res, err
		}
		for _, s := range SortedSeries(series) {
			m := cfg.FitSeries(s, series[s], cfg.Flagged[s.Key()])
			if err := appendModel(batch, res.Generation, s, m, from, to, now); err != nil {
				return res, err
			}
			res.Series++
			if m.Status == Ready {
				res.Ready++
			}
		}
	}
	if err := batch.Send(); err != nil {
		return res, fmt.Errorf("write %d baselines: %w", res.Series, err)
	}
	commit, err := conn.PrepareBatch(ctx, "INSERT INTO baseline_generations (generation, trained_at, series)")
	if err != nil {
		return res, err
	}
	if err := commit.Append(res.Generation, now, uint64(res.Series)); err != nil {
		return res, err
	}
	if err := commit.Send(); err != nil {
		return res, fmt.Errorf("commit baseline generation %d: %w", res.Generation, err)
	}
	log.Info("learnt baselines", "generation", res.Generation, "series", res.Series, "ready", res.Ready)
	return res, nil
}

// FitSeries fits the model of series s to its training points, as Learn
// does: with the options of c, leaving out the maintenance windows and,
// for counts and rates (ExcludesFlagged), the flagged intervals.
func (c Config) FitSeries(s Series, points []Point, flagged map[time.Time]bool) *Model {
	k, _ := LookupKPI(s.KPI)
	opts := c.Options
	opts.Step = s.Step.Duration()
	if !ExcludesFlagged(k.Kind) {
		flagged = nil
	}
	opts.Exclude = c.excluder(s, flagged)
	return Fit(k.Kind, points, opts)
}

// ExcludesFlagged reports whether intervals already flagged as anomalies
// leave the training of a model of kind. They do for counts and rates,
// whose means a past outbreak would raise. Durations keep them: their
// location and spread are medians, which past anomalies hardly move, and
// leaving out every flagged interval, ordinary strays of a heavy tail
// included, narrows the band at each relearn until it flags more
// (make bench-anomaly: duration precision 0.90 with them, 0.80 without).
func ExcludesFlagged(kind Kind) bool { return kind != Duration }

// appendModel appends the rows of one model to a baselines insert: one
// per seasonal slot with its band, the parameters on slot 0.
func appendModel(batch driver.Batch, gen uint64, s Series, m *Model, from, to, now time.Time) error {
	params, err := json.Marshal(m)
	if err != nil {
		return err
	}
	for slot := range m.Slots {
		e, lo, up := m.Band(slot)
		p := ""
		if slot == 0 {
			p = string(params)
		}
		if err := batch.Append(gen, s.Key(), s.KPI, string(s.Step), s.Service, s.Team, s.Environment,
			string(m.Kind), m.Family, string(m.Status), p, from, to, now, uint16(slot), e, lo, up); err != nil {
			return fmt.Errorf("append baseline of %s: %w", s.Key(), err)
		}
	}
	return nil
}

func (c Config) excluder(s Series, flagged map[time.Time]bool) func(time.Time) bool {
	return func(t time.Time) bool {
		if flagged[t] {
			return true
		}
		for _, w := range c.Maintenance {
			if (w.Service == "" || w.Service == s.Service) && !t.Before(w.From) && t.Before(w.To) {
				return true
			}
		}
		return false
	}
}

// Stored is a model read back from ClickHouse with its series.
type Stored struct {
	Series     Series
	Model      *Model
	Generation uint64
	TrainedAt  time.Time
}

// Current reads the models of the current generation, of the given step
// (all when empty).
func Current(ctx context.Context, conn driver.Conn, step metrics.Step) ([]Stored, error) {
	rows, err := conn.Query(ctx, `SELECT kpi, step, service, team, environment, params, generation, trained_at
		FROM current_baselines WHERE slot = 0 AND (? = '' OR step = ?) ORDER BY series`, string(step), string(step))
	if err != nil {
		return nil, fmt.Errorf("read current baselines: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var s Stored
		var st, params string
		if err := rows.Scan(&s.Series.KPI, &st, &s.Series.Service, &s.Series.Team, &s.Series.Environment, &params,
			&s.Generation, &s.TrainedAt); err != nil {
			return nil, err
		}
		s.Series.Step = metrics.Step(st)
		s.Model = &Model{}
		if err := json.Unmarshal([]byte(params), s.Model); err != nil {
			return nil, fmt.Errorf("baseline of %s: %w", s.Series.Key(), err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
