package api

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestRoutesDocumented: the routes the handler serves are the paths of the
// OpenAPI document, no more, no fewer (TestOpenAPI checks each one's
// parameters and responses against its handler).
func TestRoutesDocumented(t *testing.T) {
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for p := range doc.Paths {
		documented = append(documented, p)
	}
	for _, r := range (&handler{}).routes() {
		served = append(served, r.path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("documented paths %q, served %q", documented, served)
	}
}

// TestSeriesCoversCatalog: every KPI of the catalogue has its figure in a
// summary, so that its series can be served.
func TestSeriesCoversCatalog(t *testing.T) {
	for _, k := range metrics.Catalog {
		if values[k.Name] == nil {
			t.Errorf("KPI %s has no value for its series", k.Name)
		}
	}
	if len(values) != len(metrics.Catalog) {
		t.Errorf("%d series values for %d KPIs", len(values), len(metrics.Catalog))
	}
}
