package metrics_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestCatalog: every KPI a panel draws or `kpi explain` lists is in the
// catalogue, once, with a title, a unit, a kind, the direction that hurts
// and its formula's place in docs/kpis.md.
func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range metrics.Catalog {
		if seen[k.Name] {
			t.Errorf("%s is twice in the catalogue", k.Name)
		}
		seen[k.Name] = true
		if k.Title == "" || k.Unit == "" || k.Kind == "" || (k.Harm != "up" && k.Harm != "down" && k.Harm != "both") ||
			!strings.HasPrefix(k.Doc, "docs/kpis.md#") {
			t.Errorf("incomplete entry %+v", k)
		}
	}
	for _, name := range append(append([]string{}, metrics.PanelKPIs...), metrics.ExplainableKPIs...) {
		k, ok := metrics.LookupKPI(name)
		if !ok {
			t.Errorf("%s is drawn or explained but not in the catalogue", name)
		}
		if contains(metrics.ExplainableKPIs, name) && k.Formula == "" {
			t.Errorf("%s is explained without a formula", name)
		}
	}
	if got := metrics.Title("lead_time"); got != "Change lead time (median)" {
		t.Errorf("lead_time's title %q", got)
	}
	if got := (metrics.KPI{Unit: "seconds"}).Format(5400); got != "1.5 h" {
		t.Errorf("5400 seconds: %q", got)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// kpiJSONFields are the fields of the published summary (`kpi --format
// json`, the API's kpis resource: docs/kpis.md) that carry each KPI of the
// catalogue, and the numerator and denominator of each rate.
var kpiJSONFields = map[string]struct{ value, num, den string }{
	"deployment_frequency":       {value: "deployments_per_day"},
	"lead_time":                  {value: "lead_time_median_seconds"},
	"change_failure_rate":        {"change_failure_rate", "failed_deployments", "deployments"},
	"recovery_time":              {value: "recovery_median_seconds"},
	"rework_rate":                {"rework_rate", "rework_deployments", "deployments"},
	"deployments":                {value: "deployments"},
	"incidents":                  {value: "incidents"},
	"mttr":                       {value: "mttr_median_seconds"},
	"mttd":                       {value: "mttd_median_seconds"},
	"mtta":                       {value: "mtta_median_seconds"},
	"patches":                    {value: "patch_advisories"},
	"patch_latency":              {value: "patch_latency_median_seconds"},
	"patch_compliance":           {"patch_compliance", "patches_compliant", "patches_due"},
	"patches_overdue":            {value: "patches_overdue"},
	"deployments_outside_window": {value: "deployments_outside_window"},
}

// TestEveryKPIHasAValue: each KPI of the catalogue reads, from summaries
// that ClickHouse computed (over a generated stream: whole range and per
// day, by service, so that some medians and rates are absent), the figure
// of its JSON field; absent exactly where the field is null. A rate's
// trials are its numerator and denominator fields.
func TestEveryKPIHasAValue(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	testenv.StoreGenerated(t, st, generator.Config{Services: 6, Teams: 3, Days: 30, Seed: 15, End: end}, 10_000)
	q := metrics.Query{From: end.AddDate(0, 0, -30), To: end, By: []metrics.Dimension{metrics.Service}}
	var sums []*metrics.Summary
	for _, step := range []metrics.Step{"", metrics.StepDay} {
		q.Step = step
		s, err := metrics.Summaries(context.Background(), st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, s...)
	}
	docs := make([]map[string]any, len(sums))
	for i, s := range sums {
		b, err := json.Marshal(s)
		if err == nil {
			err = json.Unmarshal(b, &docs[i])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string][2]int{} // present, absent
	for _, k := range metrics.Catalog {
		f, ok := kpiJSONFields[k.Name]
		if !ok {
			t.Errorf("KPI %s: the test knows no JSON field of it", k.Name)
			continue
		}
		for i, s := range sums {
			doc := docs[i]
			want, hasField := doc[f.value]
			if !hasField {
				t.Fatalf("KPI %s: the summary has no JSON field %s", k.Name, f.value)
			}
			got, ok := k.Value(s)
			c := seen[k.Name]
			switch {
			case want == nil && ok:
				t.Errorf("KPI %s of %v at %v: Value %v, but %s is null", k.Name, s.Slice, s.Bucket, got, f.value)
			case want != nil && (!ok || got != want.(float64)):
				t.Errorf("KPI %s of %v at %v: Value %v (%v), want %s = %v", k.Name, s.Slice, s.Bucket, got, ok, f.value, want)
			case ok:
				c[0]++
			default:
				c[1]++
			}
			seen[k.Name] = c
			num, den := k.Trials(s)
			if f.num != "" && (float64(num) != doc[f.num].(float64) || float64(den) != doc[f.den].(float64)) {
				t.Errorf("KPI %s of %v at %v: Trials %d of %d, want %s %v of %s %v", k.Name, s.Slice, s.Bucket, num, den, f.num, doc[f.num], f.den, doc[f.den])
			}
			if f.num == "" && (num != 0 || den != 0) {
				t.Errorf("KPI %s (not a rate) has trials %d of %d", k.Name, num, den)
			}
		}
	}
	for _, k := range metrics.Catalog {
		if seen[k.Name][0] == 0 {
			t.Errorf("KPI %s: no summary has a figure of it, so its Value is untested (%d absent)", k.Name, seen[k.Name][1])
		}
	}
	t.Logf("%d summaries; present/absent per KPI: %v", len(sums), seen)
}
