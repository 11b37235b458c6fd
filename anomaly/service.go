package anomaly

import (
	"context"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Service is the scheduled side of baselines and alerting in `opsmetrics
// serve`: it relearns baselines every RelearnInterval, detects and
// evaluates threshold rules every EvaluationInterval, and hands alerts to
// its Notifier, which re-sends and resolves them. Several replicas may run
// it at once: a relearn writes a new generation and the newest whole one
// wins, detection rows replace each other by series and interval, and
// Alertmanager merges identical alerts.
type Service struct {
	Conn               driver.Conn
	Learn              baselines.Config
	Detect             Config
	Alerts             AlertConfig
	Rules              []ThresholdRule
	RelearnInterval    time.Duration
	EvaluationInterval time.Duration
	Notifier           *Notifier // nil: detect and record, alert nobody
	Log                *slog.Logger

	runs *prometheus.CounterVec
	last *prometheus.GaugeVec
}

// Register registers the service's metrics on reg.
func (s *Service) Register(reg prometheus.Registerer) error {
	s.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opsmetrics_scheduled_runs_total",
		Help: "Runs of scheduled jobs, by job (learn, detect) and result (ok, error)."}, []string{"job", "result"})
	s.last = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opsmetrics_scheduled_last_success_timestamp_seconds",
		Help: "When each scheduled job last succeeded."}, []string{"job"})
	for _, c := range []prometheus.Collector{s.runs, s.last} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) done(job string, err error) {
	if s.runs == nil {
		return
	}
	if err != nil {
		s.runs.WithLabelValues(job, "error").Inc()
		return
	}
	s.runs.WithLabelValues(job, "ok").Inc()
	s.last.WithLabelValues(job).SetToCurrentTime()
}

// Run blocks until ctx is done. It learns at once when the current
// baselines are missing or older than RelearnInterval, then detects. It
// runs the Notifier beside it, and when ctx is done it stops scheduling
// first and then waits for the Notifier's last delivery, so that what the
// last detection queued reaches Alertmanager (within the Notifier's
// timeout) before Run returns.
func (s *Service) Run(ctx context.Context) error {
	if s.Notifier == nil {
		return s.schedule(ctx)
	}
	nctx, stopNotifier := context.WithCancel(context.WithoutCancel(ctx))
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		s.Notifier.Run(nctx)
	}()
	err := s.schedule(ctx)
	stopNotifier()
	<-delivered
	return err
}

// schedule relearns and detects on schedule until ctx is done.
func (s *Service) schedule(ctx context.Context) error {
	relearnEvery, detectEvery := s.RelearnInterval, s.EvaluationInterval
	if relearnEvery <= 0 {
		relearnEvery = 24 * time.Hour
	}
	if detectEvery <= 0 {
		detectEvery = 5 * time.Minute
	}
	next := time.Now()
	if cur, err := baselines.Current(ctx, s.Conn, ""); err == nil && len(cur) > 0 {
		next = cur[0].TrainedAt.Add(relearnEvery)
	}
	detect := time.NewTicker(detectEvery)
	defer detect.Stop()
	for {
		if !time.Now().Before(next) {
			_, err := Relearn(ctx, s.Conn, s.Learn, time.Now(), s.Log)
			s.done("learn", err)
			if err != nil {
				s.Log.Error("relearning baselines failed; retrying at the next evaluation", "err", err)
				next = time.Now().Add(detectEvery)
			} else {
				next = time.Now().Add(relearnEvery)
			}
		}
		// Detection first, so that a long catch-up (a new installation's
		// month) does not delay what may alert.
		now := time.Now()
		err := s.DetectOnce(ctx, now)
		s.done("detect", err)
		if err != nil && ctx.Err() == nil {
			s.Log.Error("anomaly detection failed", "err", err)
		}
		if _, err := s.CatchUp(ctx, now); err != nil && ctx.Err() == nil {
			s.Log.Error("judging the intervals never judged failed; retrying at the next evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-detect.C:
		}
	}
}

// CatchUp judges, without alerting (Backfill), the closed intervals of
// each step that were never judged since the last judged one before the
// latest closed interval, which DetectOnce judges and may alert on. It
// looks back at most Detect.Backfill from now: the whole look-back on a
// new installation, the missed intervals after a gap in scheduling.
func (s *Service) CatchUp(ctx context.Context, now time.Time) (BackfillResult, error) {
	var res BackfillResult
	if s.Detect.Backfill <= 0 {
		return res, nil
	}
	steps := s.Detect.Steps
	if len(steps) == 0 {
		steps = []metrics.Step{metrics.StepDay, metrics.StepHour}
	}
	for _, step := range steps {
		d := step.Duration()
		from := step.Truncate(now.Add(-s.Detect.Backfill))
		to := step.Truncate(now).Add(-d) // the latest closed interval is DetectOnce's
		last, ok, err := LastJudged(ctx, s.Conn, step, to)
		if err != nil {
			return res, err
		}
		if ok && !last.Add(d).Before(from) {
			from = last.Add(d)
		}
		if !from.Before(to) {
			continue
		}
		cfg := s.Detect
		cfg.Steps = []metrics.Step{step}
		r, err := Backfill(ctx, s.Conn, BackfillOptions{From: from, To: to, Learn: s.Learn, Detect: cfg, Now: now}, s.Log)
		if err != nil {
			return res, err
		}
		res.Intervals, res.Judged, res.Anomalies, res.Firing = res.Intervals+r.Intervals, res.Judged+r.Judged,
			res.Anomalies+r.Anomalies, res.Firing+r.Firing
	}
	return res, nil
}

// Evaluated is one round of detection and threshold rules: the series
// judged, the alerts that fire (anomalies and thresholds) and the anomaly
// alerts to resolve.
type Evaluated struct {
	Series  []Evaluation
	Fire    []Alert
	Resolve []Alert
}

// Evaluate detects anomalies (with the contributing factors of those that
// fire), evaluates the threshold rules, finds the recent deployments
// outside their change windows (WindowAlerts) and builds the alerts, as of
// now, labelled from alerts.Catalog and ordered by tier (Tiers.Compare).
func Evaluate(ctx context.Context, conn driver.Conn, cfg Config, rules []ThresholdRule, alerts AlertConfig, now time.Time,
	log *slog.Logger) (*Evaluated, error) {
	evals, err := Detect(ctx, conn, cfg, now, log)
	if err != nil {
		return nil, err
	}
	fire, resolve := Alerts(evals, alerts)
	results, err := EvaluateThresholds(ctx, conn, rules, cfg.Production, now)
	if err != nil {
		return nil, err
	}
	tfire, _ := ThresholdAlerts(results, alerts)
	wfire, err := WindowAlerts(ctx, conn, alerts, cfg.Production, now)
	if err != nil {
		return nil, err
	}
	// The lists come ordered; sorting them together by tier and severity
	// alone, stably, keeps the anomalies' rarer first within each and puts
	// the threshold alerts, then the change-window ones, after the
	// anomalies of their rank.
	fire = append(append(fire, tfire...), wfire...)
	return &Evaluated{Series: evals, Fire: alerts.order(fire, labelRanks(fire)), Resolve: resolve}, nil
}

// DetectOnce evaluates, and fires and resolves alerts on the Notifier.
func (s *Service) DetectOnce(ctx context.Context, now time.Time) error {
	ev, err := Evaluate(ctx, s.Conn, s.Detect, s.Rules, s.Alerts, now, s.Log)
	if err != nil {
		return err
	}
	fire, resolve := ev.Fire, ev.Resolve
	if s.Notifier == nil {
		return nil
	}
	firing := map[string]bool{}
	for _, a := range fire {
		s.Notifier.Fire(a)
		firing[labelsKey(a.Labels)] = true
	}
	for _, a := range resolve {
		s.Notifier.ResolveFromHistory(a)
	}
	// Whatever this notifier holds active and no longer fires is resolved,
	// which covers evaluations missed while the service was down.
	for _, a := range s.Notifier.Active() {
		if !firing[labelsKey(a.Labels)] {
			s.Notifier.Resolve(a.Labels)
		}
	}
	return nil
}
