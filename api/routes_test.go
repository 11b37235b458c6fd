package api

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"
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
