package metrics_test

import (
	"strings"
	"testing"

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
