package anomaly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// TestBackfillIsPointInTime judges two weeks around a Monday on which
// checkout stops deploying and search fails 8 of 20 deployments. Every
// interval is judged by a baseline learnt before it; both anomalies are
// recorded, flagged as what would have alerted; running the same range
// again gives the same rows; and data added later changes the bands after
// it, never those before.
func TestBackfillIsPointInTime(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	h := &history{r: rand.New(rand.NewPCG(1, 1))}
	for d := start; d.Before(anomalyDay.Add(14 * day)); d = d.Add(day) {
		if d.Equal(anomalyDay) {
			h.day(d, 0, 8)
			continue
		}
		h.ordinary(d)
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	steps := []metrics.Step{metrics.StepDay}
	o := anomaly.BackfillOptions{From: anomalyDay.Add(-3 * day), To: anomalyDay.Add(11 * day), Learn: baselines.Config{Steps: steps},
		Detect: anomaly.Config{Steps: steps}, Now: anomalyDay.Add(30 * day)}
	res, err := anomaly.Backfill(ctx, st.Conn(), o, log)
	if err != nil {
		t.Fatal(err)
	}
	const cols = `series, toString(interval_start), status, judged, anomaly, firing, test, observed, expected, lower, upper, tail,
		direction, toString(trained_to)`
	rows := func() [][]string {
		var out [][]string
		for _, r := range testenv.Rows(t, st, "SELECT "+cols+" FROM judged_intervals FINAL ORDER BY series, interval_start") {
			out = append(out, strings.Split(r, " | "))
		}
		return out
	}
	first := rows()
	perDay := testenv.Count(t, st, "SELECT uniqExact(series) FROM judged_intervals")
	if res.Intervals != len(first) || len(first) != int(perDay)*14 {
		t.Fatalf("backfill judged %d series-intervals, %d rows stored, %d series; want 14 days of each series", res.Intervals, len(first), perDay)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM judged_intervals WHERE trained_to > interval_start"); n != 0 {
		t.Errorf("%d intervals judged by a baseline trained on data from them or later", n)
	}
	if n := testenv.Count(t, st, "SELECT uniqExact(trained_to) FROM judged_intervals"); n != 14 {
		t.Errorf("%d distinct training ends, want one per day judged (14)", n)
	}
	for _, c := range []struct{ kpi, service, direction string }{
		{"deployments", "checkout", "down"},
		{"change_failure_rate", "search", "up"},
	} {
		q := "SELECT count() FROM judged_intervals FINAL WHERE kpi = ? AND service = ? AND interval_start = ? AND anomaly = 1 AND firing = 1 AND direction = ?"
		if n := testenv.Count(t, st, q, c.kpi, c.service, anomalyDay, c.direction); n != 1 {
			t.Errorf("%s of %s on %s: not judged anomalous %s and firing", c.kpi, c.service, anomalyDay.Format(time.DateOnly), c.direction)
		}
		q = "SELECT count() FROM anomalies FINAL WHERE kpi = ? AND service = ? AND interval_start = ? AND firing = 1"
		if n := testenv.Count(t, st, q, c.kpi, c.service, anomalyDay); n != 1 {
			t.Errorf("%s of %s on %s: %d anomaly rows, want 1", c.kpi, c.service, anomalyDay.Format(time.DateOnly), n)
		}
	}
	if res.Firing < 2 || res.Anomalies < res.Firing {
		t.Errorf("result %+v: want at least the two injected anomalies firing", res)
	}
	// A checkout weekday's band expects several deployments; the day
	// before the range's first Monday was learnt from eight weeks before.
	q := `SELECT count() FROM judged_intervals FINAL WHERE kpi = 'deployments' AND service = 'checkout' AND step = 'day'
		AND interval_start = ? AND status = 'ready' AND expected BETWEEN 5 AND 9 AND upper <= 20`
	if n := testenv.Count(t, st, q, anomalyDay.Add(day)); n != 1 {
		t.Errorf("checkout's band the Tuesday after: %v", testenv.Rows(t, st,
			"SELECT expected, lower, upper, status FROM judged_intervals FINAL WHERE kpi = 'deployments' AND service = 'checkout' AND interval_start = ?", anomalyDay.Add(day)))
	}

	// Idempotent: the same range again gives the same rows, once each.
	if _, err := anomaly.Backfill(ctx, st.Conn(), o, log); err != nil {
		t.Fatal(err)
	}
	again := rows()
	if len(again) != len(first) {
		t.Fatalf("re-run: %d rows, want the %d of the first run", len(again), len(first))
	}
	for i := range first {
		if strings.Join(first[i], " ") != strings.Join(again[i], " ") {
			t.Fatalf("re-run changed a row:\n was %s\n now %s", first[i], again[i])
		}
	}
	if n := testenv.Count(t, st, "SELECT count() FROM (SELECT series, interval_start FROM anomalies FINAL GROUP BY series, interval_start HAVING count() > 1)"); n != 0 {
		t.Errorf("%d anomalies recorded twice", n)
	}

	// Later data: search deploys 24 times instead of 20 on the three days
	// after the Monday, within its band. Bands up to those days stay as
	// they were; those learnt after them move.
	added := anomalyDay.Add(day)
	h.recs = nil
	for d := added; d.Before(added.Add(3 * day)); d = d.Add(day) {
		for i := range 4 {
			h.deploy("search", "discovery", d.Add(time.Duration(20+i)*time.Minute), event.DeploymentSuccess)
		}
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := anomaly.Backfill(ctx, st.Conn(), o, log); err != nil {
		t.Fatal(err)
	}
	later := rows()
	if len(later) != len(first) {
		t.Fatalf("after the added data: %d rows, want %d", len(later), len(first))
	}
	const expected = 8 // column of the expected value
	movedAfter := 0
	for i := range first {
		was, now := first[i], later[i]
		at, err := time.Parse(time.DateTime, was[1])
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case at.Before(added) && strings.Join(was, " ") != strings.Join(now, " "):
			t.Errorf("data added from %s changed the judgement of an earlier interval:\n was %q\n now %q", added.Format(time.DateOnly), was, now)
		case at.Equal(added) && was[expected] != now[expected]:
			t.Errorf("data added on %s changed the expected value of that day, learnt before it: was %q, now %q", was[1], was, now)
		case at.After(added) && was[expected] != now[expected]:
			movedAfter++
		}
	}
	if movedAfter == 0 {
		t.Error("the added data moved no band after it: this test cannot see the leak of the future it looks for")
	}

	// Hours are judged by the baseline learnt at the midnight before.
	hours := []metrics.Step{metrics.StepHour}
	if _, err := anomaly.Backfill(ctx, st.Conn(), anomaly.BackfillOptions{From: anomalyDay, To: anomalyDay.Add(2 * day),
		Learn: baselines.Config{Steps: hours}, Detect: anomaly.Config{Steps: hours}, Now: o.Now}, log); err != nil {
		t.Fatal(err)
	}
	series := testenv.Count(t, st, "SELECT uniqExact(series) FROM judged_intervals WHERE step = 'hour'")
	if n := testenv.Count(t, st, "SELECT count() FROM judged_intervals FINAL WHERE step = 'hour' AND trained_to = toStartOfDay(interval_start)"); series == 0 || n != series*48 {
		t.Errorf("%d hourly judgements learnt at their midnight, want 48 hours of %d series", n, series)
	}
}

// TestServeCatchesUpWithoutAlerting: a new installation's service judges
// the past month on its own, recording a past anomaly, and Alertmanager
// receives nothing for it; after a gap in scheduling it judges only the
// intervals it missed.
func TestServeCatchesUpWithoutAlerting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := testenv.Store(t, testenv.Database(t))
	today := time.Now().UTC().Truncate(day)
	past := today.Add(-5 * day)
	h := &history{r: rand.New(rand.NewPCG(2, 2))}
	for d := today.Add(-90 * day); d.Before(today.Add(day)); d = d.Add(day) {
		if d.Equal(past) {
			h.day(d, 3, 12)
			continue
		}
		h.ordinary(d)
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	log := testenv.Logger(t)
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL, ResendInterval: time.Second}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	steps := []metrics.Step{metrics.StepDay}
	svc := &anomaly.Service{Conn: st.Conn(), Learn: baselines.Config{Steps: steps},
		Detect:             anomaly.Config{Steps: steps, Backfill: 30 * day},
		EvaluationInterval: time.Second, RelearnInterval: time.Hour, Notifier: n, Log: log}
	reg := prometheus.NewRegistry()
	if err := svc.Register(reg); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	testenv.Eventually(t, time.Minute, "two detections", func() (bool, string) {
		return testenv.Counter(t, reg, "opsmetrics_scheduled_runs_total", map[string]string{"job": "detect", "result": "ok"}) >= 2, "not yet"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The past month is judged, each day once, up to yesterday.
	days := testenv.Count(t, st, "SELECT uniqExact(interval_start) FROM judged_intervals WHERE step = 'day'")
	last := testenv.Rows(t, st, "SELECT toString(max(interval_start)) FROM judged_intervals")
	if days != 30 || last[0] != today.Add(-day).Format(time.DateTime) {
		t.Errorf("judged %d days up to %s, want the 30 days up to yesterday %s", days, last[0], today.Add(-day).Format(time.DateOnly))
	}
	if n := testenv.Count(t, st, "SELECT count() FROM anomalies FINAL WHERE kpi = 'change_failure_rate' AND service = 'search' AND interval_start = ? AND firing = 1", past); n != 1 {
		t.Fatalf("the failure burst of %s is not recorded as an anomaly that would have fired", past.Format(time.DateOnly))
	}
	held, err := am.Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range held {
		t.Errorf("Alertmanager received an alert for the past: %v", a.Labels)
	}

	// A gap: nothing judged for the last week; the next catch-up judges
	// those days and no others.
	if err := st.Conn().Exec(context.Background(), "ALTER TABLE judged_intervals DELETE WHERE interval_start >= ?", today.Add(-8*day)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the deletion", func() (bool, string) {
		n := testenv.Count(t, st, "SELECT count() FROM judged_intervals WHERE interval_start >= ?", today.Add(-8*day))
		return n == 0, fmt.Sprintf("%d rows left", n)
	})
	series := testenv.Count(t, st, "SELECT uniqExact(series) FROM judged_intervals WHERE interval_start = ?", today.Add(-9*day))
	res, err := svc.CatchUp(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Intervals != int(series)*7 {
		t.Errorf("after the gap the catch-up judged %d series-intervals, want the 7 missed days of %d series (yesterday is DetectOnce's)", res.Intervals, series)
	}
}
