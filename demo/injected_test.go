package demo_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/demo"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// injectedRun is one generated stream and what detection made of it.
type injectedRun struct {
	seed       uint64
	end        time.Time
	burst      bool // the failure burst alerted on some day
	stop       bool // so did the deployment stop
	newHire    bool // an alert of the burst names the new hire first among its contributing factors
	factors    []string
	falseAlarm []string
	judged     int // ready service and team series-days judged, the denominator of false alarms
}

// maxFalseAlarmRate bounds the false alarms of the demo's detection: the
// days on which a ready service or team series with neither injected
// anomaly in it alerts, per such series-day judged. Each test judges an
// interval at α = 0.002 two-sided, so it alerts by chance in the harmful
// direction with a probability of at most 0.001; three tests (the
// interval, the window, the silence) make at most 0.003, and an alert
// lasts as long as its anomaly is the latest of the persistence window
// (one day for daily series). The bound, 0.005, leaves room for the
// heavier tails of real series than the models assume (make bench-anomaly
// measures 0.0023 flags a series-day in both directions on the same
// generator); measured here: 0.0013 (28 in 21,960), judged as
// point-in-time history.
const maxFalseAlarmRate = 0.005

// minNewHireRuns is the least share of runs in which an alert of the
// failure burst names the new hire first among its contributing factors.
// In the others the burst's day holds too few deployments (5 failed, 3 of
// them the new hire's) for the new hire to stand out from the service's
// other engineers beyond chance, and the factors say the excess is
// spread. Measured on the generator's streams (our own data): 38 of the
// 42 runs.
const minNewHireRuns = 0.8

// TestInjectedAnomaliesFireOnAnyDate runs the demo's generator (its
// defaults: 20 services, 90 days) and its detection (demo.WatchInjected)
// for 14 consecutive end dates and 3 seeds, and requires both injected
// anomalies to alert every time: the failure burst on a harmful series of
// its service (change failure rate, rework rate or incidents up), the
// deployment stop on its service's deployments, down. In most runs
// (minNewHireRuns), an alert of the burst (its service's, team's or the
// organisation's) names the new hire who caused it first among its
// contributing factors. False alarms are
// counted and bounded by maxFalseAlarmRate. All runs share one ClickHouse,
// each in its own database, two at a time.
func TestInjectedAnomaliesFireOnAnyDate(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and judges 42 streams")
	}
	ctx := context.Background()
	srv := testenv.ClickHouse(t)
	first := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var runs []*injectedRun
	for seed := uint64(1); seed <= 3; seed++ {
		for d := range 14 {
			runs = append(runs, &injectedRun{seed: seed, end: first.AddDate(0, 0, d)})
		}
	}
	if os.Getenv("OPSMETRICS_DEMO_RUNS") == "1" {
		runs = runs[:1]
	}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = r.run(ctx, t, testenv.MigratedDatabase(t, srv))
		}()
	}
	wg.Wait()
	alarms, judged, named := 0, 0, 0
	for i, r := range runs {
		if errs[i] != nil {
			t.Fatalf("seed %d, end %s: %v", r.seed, r.end.Format(time.DateOnly), errs[i])
		}
		if !r.burst || !r.stop {
			t.Errorf("seed %d, end %s (a %s): failure burst alerted %v, deployment stop alerted %v", r.seed,
				r.end.Format(time.DateOnly), r.end.Weekday(), r.burst, r.stop)
		}
		if r.newHire {
			named++
		} else {
			t.Logf("seed %d, end %s: no alert of the failure burst names the new hire first: %q", r.seed, r.end.Format(time.DateOnly), r.factors)
		}
		alarms += len(r.falseAlarm)
		judged += r.judged
		if len(r.falseAlarm) > 0 {
			t.Logf("seed %d, end %s: false alarms %v", r.seed, r.end.Format(time.DateOnly), r.falseAlarm)
		}
	}
	t.Logf("%d of %d runs name the new hire first among the factors of an alert of the burst (bound %.0f%%)", named, len(runs), 100*minNewHireRuns)
	if float64(named) < minNewHireRuns*float64(len(runs)) {
		t.Errorf("%d of %d runs name the new hire first among the factors of an alert of the burst, fewer than %.0f%%", named, len(runs), 100*minNewHireRuns)
	}
	rate := float64(alarms) / float64(judged)
	t.Logf("%d runs: %d false alarms in %d service and team series-days judged (%.4f; bound %.3f)", len(runs), alarms, judged, rate, maxFalseAlarmRate)
	if rate > maxFalseAlarmRate {
		t.Errorf("false alarms: %d in %d series-days (%.4f), above the bound %.3f", alarms, judged, rate, maxFalseAlarmRate)
	}
}

func (r *injectedRun) run(ctx context.Context, t *testing.T, dsn string) error {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	var recs []store.Record
	stats, err := generator.Generate(generator.Config{Services: 20, Days: 90, Seed: r.seed, End: r.end, Anomalies: true},
		func(e *event.Event) error {
			recs = append(recs, store.Record{Event: e, Topic: "t", Offset: int64(len(recs))})
			return nil
		})
	if err != nil {
		return err
	}
	if err := st.Write(ctx, recs, nil); err != nil {
		return err
	}
	w, err := demo.WatchInjected(ctx, st.Conn(), stats.Anomalies, testenv.Logger(t))
	if err != nil {
		return err
	}
	watched := w.Days
	// The whole range is point-in-time history, each day's band in
	// judged_intervals from data before it.
	js, err := anomaly.ReadJudged(ctx, st.Conn(), anomaly.JudgedQuery{Step: metrics.StepDay, From: w.From, To: w.To})
	if err != nil {
		return err
	}
	days := map[time.Time]bool{}
	for _, j := range js {
		days[j.Start] = true
		if j.TrainedTo.After(j.Start) {
			return fmt.Errorf("%s %s judged by a baseline trained to %s", j.Series.Key(), j.Start.Format(time.DateOnly), j.TrainedTo)
		}
	}
	if len(days) != demo.JudgedDays {
		return fmt.Errorf("judged_intervals holds %d days of [%s, %s), want %d", len(days), w.From.Format(time.DateOnly), w.To.Format(time.DateOnly), demo.JudgedDays)
	}
	var burst, stop generator.Anomaly
	for _, a := range stats.Anomalies {
		switch a.Kind {
		case generator.AnomalyFailureBurst:
			burst = a
		case generator.AnomalyDeploymentStop:
			stop = a
		}
	}
	for _, w := range watched {
		for _, e := range w.Evaluations {
			s := e.Series
			unrelated := (s.Service != "" && s.Service != burst.Service && s.Service != stop.Service) ||
				(s.Service == "" && s.Team != "" && s.Team != burst.Team && s.Team != stop.Team)
			if unrelated && e.Model.Status == baselines.Ready && e.Score.Judged {
				r.judged++
			}
		}
		for _, a := range w.Fire {
			l := a.Labels
			switch {
			case l["service"] == burst.Service && l["direction"] == "up" &&
				(l["kpi"] == "change_failure_rate" || l["kpi"] == "rework_rate" || l["kpi"] == "incidents"):
				r.burst = true
			case l["service"] == stop.Service && l["kpi"] == "deployments" && l["direction"] == "down":
				r.stop = true
			}
			if f := a.Annotations["factors"]; f != "" && (l["service"] == burst.Service || l["service"] == "" && (l["team"] == "" || l["team"] == burst.Team)) {
				first, _, _ := strings.Cut(f, ";")
				r.newHire = r.newHire || strings.Contains(first, "actor "+generator.NewHire+",")
				r.factors = append(r.factors, l["kpi"]+" "+l["service"]+l["team"]+": "+f)
			}
			related := l["service"] == burst.Service || l["service"] == stop.Service ||
				(l["service"] == "" && (l["team"] == "" || l["team"] == burst.Team || l["team"] == stop.Team))
			if !related {
				r.falseAlarm = append(r.falseAlarm, fmt.Sprintf("%s %s %s %s%s", w.Day.Format("Mon"), l["kpi"], l["direction"], l["service"], l["team"]))
			}
		}
	}
	return nil
}
