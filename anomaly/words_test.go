package anomaly_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

var bandRE = regexp.MustCompile(`expected ([0-9.]+)(%?) \(band ([0-9.]+)%?–([0-9.]+)%?\)$`)

// TestAlertWords: alerts from real detections on ClickHouse say what the
// decision judged, with the band it used, so that the value quoted lies
// outside the band beside it: one interval alone (search fails 8 of 20
// deployments on a Monday), several together (billing deploys 11 a day
// for three days where it deploys 20), and a silence (checkout stops
// deploying on a Thursday: flagged on Friday and still across the
// weekend). Each says how rare that is, what the series usually does at
// that time, and links to the anomalies dashboard around the interval;
// the recorded anomaly, which the report and dashboards read, holds the
// same figures.
func TestAlertWords(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	h := &history{r: rand.New(rand.NewPCG(3, 3))}
	thursday := anomalyDay.Add(3 * day)
	for d := start; d.Before(anomalyDay.Add(7 * day)); d = d.Add(day) {
		checkout := 0
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday && d.Before(thursday) {
			checkout = 6 + h.r.IntN(3)
		}
		failures := h.r.IntN(2)
		if d.Equal(anomalyDay) {
			failures = 8
		}
		h.day(d, checkout, failures)
		billing := int(poissonDraw(h.r, 20))
		if !d.Before(anomalyDay) && d.Before(anomalyDay.Add(3*day)) {
			billing = 11
		}
		for i := range billing {
			h.deploy("billing", "finance", d.Add(time.Duration(i)*time.Hour+10*time.Minute), event.DeploymentSuccess)
		}
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	steps := []metrics.Step{metrics.StepDay}
	if _, err := anomaly.Relearn(ctx, st.Conn(), baselines.Config{Steps: steps}, anomalyDay, log); err != nil {
		t.Fatal(err)
	}
	acfg := anomaly.AlertConfig{DefaultRunbook: "https://runbooks.example/kpis", DashboardURL: "https://grafana.example/d/opsmetrics-anomalies"}
	alertOf := func(now time.Time, kpi, service string) (anomaly.Alert, bool) {
		evals, err := anomaly.Detect(ctx, st.Conn(), anomaly.Config{Steps: steps}, now, log)
		if err != nil {
			t.Fatal(err)
		}
		fire, _ := anomaly.Alerts(evals, acfg)
		for _, a := range fire {
			if a.Labels["kpi"] == kpi && a.Labels["service"] == service {
				return a, true
			}
		}
		return anomaly.Alert{}, false
	}
	cases := []struct {
		name, kpi, service string
		judged             time.Time // the interval judged
		test               string
		summary, usual     string // substrings
	}{
		{"one interval", "change_failure_rate", "search", anomalyDay, "interval",
			"change failure rate unusually high, 40.0% on Mon 2026-03-02 (UTC); expected", "It usually runs at"},
		{"three days together", "deployments", "billing", anomalyDay.Add(2 * day), "window",
			"deployments unusually low, 3 days (Mon 2026-03-02 to Wed 2026-03-04) together: 33 deployments; expected", "On Wednesdays it usually has"},
		{"a silence from Thursday, on Friday", "deployments", "checkout", thursday.Add(day), "silence",
			"deployments unusually low, no deployments for 2 days (Thu 2026-03-05 to Fri 2026-03-06); expected", "On Fridays it usually has"},
		{"the silence on Saturday", "deployments", "checkout", thursday.Add(2 * day), "silence",
			"no deployments for 3 days (Thu 2026-03-05 to Sat 2026-03-07); expected", "On Saturdays it usually has"},
		{"the silence on Sunday", "deployments", "checkout", thursday.Add(3 * day), "silence",
			"no deployments for 4 days (Thu 2026-03-05 to Sun 2026-03-08); expected", "On Sundays it usually has"},
	}
	for _, c := range cases {
		a, ok := alertOf(c.judged.Add(day+time.Hour), c.kpi, c.service)
		if !ok {
			t.Errorf("%s: no %s alert for %s", c.name, c.kpi, c.service)
			continue
		}
		sum, desc := a.Annotations["summary"], a.Annotations["description"]
		if !strings.Contains(sum, c.summary) || a.Annotations["test"] != c.test {
			t.Errorf("%s: summary %q (test %s), want it to contain %q (test %s)", c.name, sum, a.Annotations["test"], c.summary, c.test)
		}
		if !regexp.MustCompile(`comes (about once in [0-9,]+ days( \([0-9,]+ years\))?|less than once in a thousand years): tail probability`).MatchString(desc) ||
			!strings.Contains(desc, c.usual) {
			t.Errorf("%s: description %q lacks how rare it is or %q", c.name, desc, c.usual)
		}
		// The value quoted lies outside the band beside it.
		observed, expected := a.Annotations["observed"], a.Annotations["expected"]
		m := bandRE.FindStringSubmatch(sum)
		if m == nil {
			t.Errorf("%s: no band in %q", c.name, sum)
			continue
		}
		lo, _ := strconv.ParseFloat(m[3], 64)
		hi, _ := strconv.ParseFloat(m[4], 64)
		v, _ := strconv.ParseFloat(observed, 64)
		if m[2] == "%" {
			v *= 100
		}
		if v >= lo && v <= hi {
			t.Errorf("%s: %v quoted inside its band %v–%v: %q", c.name, v, lo, hi, sum)
		}
		// The dashboard link spans the interval.
		u, err := url.Parse(a.Annotations["dashboard_url"])
		if err != nil {
			t.Fatal(err)
		}
		from, _ := strconv.ParseInt(u.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(u.Query().Get("to"), 10, 64)
		if from > c.judged.UnixMilli() || to < c.judged.Add(day).UnixMilli() || u.Query().Get("var-service") != c.service {
			t.Errorf("%s: dashboard %s does not show %s", c.name, u, c.judged)
		}
		// It names the series as the dashboard's series variable lists it.
		if n := testenv.Rows(t, st, `SELECT toString(count()) FROM current_baselines WHERE series = ?`, u.Query().Get("var-series")); n[0] == "0" {
			t.Errorf("%s: dashboard link's var-series %q is no series of current_baselines", c.name, u.Query().Get("var-series"))
		}
		// The recorded anomaly holds the decision's figures.
		rows := testenv.Rows(t, st, `SELECT toString(observed), toString(expected) FROM anomalies FINAL
			WHERE kpi = ? AND service = ? AND interval_start = ?`, c.kpi, c.service, c.judged)
		if len(rows) != 1 || rows[0] != observed+" | "+expected {
			t.Errorf("%s: recorded %v, the alert says observed %s, expected %s", c.name, rows, observed, expected)
		}
	}
}

// poissonDraw is a Poisson variate by Knuth's method.
func poissonDraw(r *rand.Rand, mu float64) float64 {
	l, k, p := math.Exp(-mu), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return float64(k)
		}
		k++
	}
}
