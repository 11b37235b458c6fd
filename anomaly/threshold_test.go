package anomaly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func target(t *testing.T, kpi, s string) *float64 {
	t.Helper()
	v, err := anomaly.ParseTarget(kpi, s)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestThresholdRules: "change failure rate above 15% over 7 days for
// service search" and "MTTR p90 above 4h" on hand-made data.
func TestThresholdRules(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	h := &history{r: rand.New(rand.NewPCG(4, 4))}
	now := start.Add(14 * day)
	for d := start; d.Before(now); d = d.Add(day) {
		failures := 0
		if !d.Before(now.Add(-7 * day)) {
			failures = 4 // 4 of 20: 20%
		}
		h.day(d, 5, failures)
	}
	// checkout: two incidents in the last week, resolved after 1h and 6h.
	h.incident("checkout", "payments", now.Add(-3*day))
	h.incident("checkout", "payments", now.Add(-2*day))
	for i, after := range []time.Duration{time.Hour, 6 * time.Hour} {
		inc := h.recs[len(h.recs)-2+i].Event.Incident
		inc.ResolvedAt = inc.DetectedAt.Add(after)
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	rules := []anomaly.ThresholdRule{
		{Name: "search-cfr", KPI: "change_failure_rate", Above: target(t, "change_failure_rate", "15%"), Services: []string{"search"}},
		{Name: "checkout-cfr", KPI: "change_failure_rate", Above: target(t, "change_failure_rate", "15%"), Services: []string{"checkout"}},
		{Name: "mttr-p90", KPI: "mttr_p90", Above: target(t, "mttr_p90", "4h"), By: []metrics.Dimension{metrics.Service}, Severity: "critical"},
		{Name: "deploys", KPI: "deployments_per_day", Below: target(t, "deployments_per_day", "30"), Window: 3 * 24 * time.Hour},
	}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	results, err := anomaly.EvaluateThresholds(ctx, st.Conn(), rules, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	fire, resolve := anomaly.ThresholdAlerts(results, anomaly.AlertConfig{DefaultRunbook: "https://runbooks.example/kpis"})
	got := map[string]anomaly.Alert{}
	for _, a := range fire {
		got[a.Labels["rule"]+" "+a.Labels["service"]] = a
	}
	want := map[string]string{ // rule and service → direction
		"search-cfr search": "up",
		"mttr-p90 checkout": "up",
		"deploys ":          "down", // 25 a day across both services, below 30
	}
	for k, dir := range want {
		a, ok := got[k]
		if !ok {
			t.Errorf("%s did not fire (fired: %v)", k, keys(got))
			continue
		}
		if a.Labels["alertname"] != anomaly.ThresholdAlert || a.Labels["direction"] != dir || a.Annotations["runbook_url"] == "" {
			t.Errorf("%s: labels %v, annotations %v", k, a.Labels, a.Annotations)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fired %v, want exactly %v", keys(got), want)
	}
	if a := got["search-cfr search"]; !strings.Contains(a.Annotations["summary"], "20.0%") || !strings.Contains(a.Annotations["summary"], "15.0%") {
		t.Errorf("CFR summary: %q", a.Annotations["summary"])
	}
	if a := got["mttr-p90 checkout"]; a.Labels["severity"] != "critical" || !strings.Contains(a.Annotations["summary"], "5.5 h") {
		t.Errorf("MTTR p90 alert: %v %q", a.Labels, a.Annotations["summary"])
	}
	resolved := false
	for _, l := range resolve {
		if l["rule"] == "checkout-cfr" {
			resolved = true
		}
	}
	if !resolved {
		t.Error("checkout-cfr is not firing, but is not among the alerts to resolve")
	}

	// From a plain catalog: a rule without a severity takes the tier's; one
	// with its own keeps it; the tier-1 alert comes first.
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	plain := "- {name: search, owner: search-squad, tier: tier-1}\n- {name: checkout, owner: payments, tier: tier-3}\n"
	if err := os.WriteFile(file, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := catalog.NewWatcher(catalog.Config{Path: file}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	acfg := anomaly.DefaultAlertingConfig().AlertConfig
	acfg.Catalog = w
	fire, _ = anomaly.ThresholdAlerts(results, acfg)
	for _, a := range fire {
		got[a.Labels["rule"]+" "+a.Labels["service"]] = a
	}
	for k, want := range map[string]string{
		"search-cfr search": "owner=search-squad tier=tier-1 severity=critical",
		"mttr-p90 checkout": "owner=payments tier=tier-3 severity=critical", // the rule's own
		"deploys ":          "owner=unowned tier=none severity=warning",
	} {
		l := got[k].Labels
		if g := fmt.Sprintf("owner=%s tier=%s severity=%s", l["owner"], l["tier"], l["severity"]); g != want {
			t.Errorf("%s with the catalog: %s, want %s", k, g, want)
		}
	}
	if len(fire) == 0 || fire[0].Labels["rule"] != "search-cfr" {
		t.Errorf("the tier-1 alert does not come first: %v", fire)
	}
}

func keys(m map[string]anomaly.Alert) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		kpi, in string
		want    float64
		ok      bool
	}{
		{"change_failure_rate", "15%", 0.15, true},
		{"change_failure_rate", "0.15", 0.15, true},
		{"change_failure_rate", "15", 0, false},
		{"mttr_p90", "4h", 4 * 3600, true},
		{"mttr_p90", "four hours", 0, false},
		{"patches_overdue", "3", 3, true},
		{"vibes", "1", 0, false},
	} {
		got, err := anomaly.ParseTarget(c.kpi, c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseTarget(%s, %q) = %v, %v; want %v, ok %v", c.kpi, c.in, got, err, c.want, c.ok)
		}
	}
}
