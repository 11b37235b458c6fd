package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestSystemAndTierParameters: /api/v1/kpis slices by the system of the
// service catalog the server holds now, and refuses system and tier
// without a catalog, saying what to configure.
func TestSystemAndTierParameters(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	at := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	var recs []store.Record
	for i, svc := range []string{"checkout", "checkout", "search"} {
		recs = append(recs, store.Record{Event: &event.Event{Kind: event.KindDeployment, ID: "e-" + string(rune('a'+i)), Time: at,
			Deployment: &event.Deployment{ID: "d-" + string(rune('a'+i)), Service: svc, Environment: "production", FinishedAt: at,
				Status: event.DeploymentSuccess}}, Topic: "t", Offset: int64(i)})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Parse("c.yaml", []byte("- {name: checkout, owner: payments, system: shop, tier: tier-1}\n- {name: search, owner: discovery, system: find}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	var current *catalog.Catalog
	serve := func(withCatalog bool) *httptest.Server {
		o := api.Options{Conn: st.Conn(), Defaults: metrics.Query{Production: []string{"production"}}}
		if withCatalog {
			o.Catalog = func() *catalog.Catalog { return current }
		}
		s := httptest.NewServer(api.New(o))
		t.Cleanup(s.Close)
		return s
	}
	get := func(s *httptest.Server, params string) (int, string) {
		resp, err := http.Get(s.URL + "/api/v1/kpis?from=2026-01-01&to=2026-02-01&" + params)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	slices := func(body string) map[string]uint64 {
		t.Helper()
		var doc struct {
			Summaries []struct {
				Slice       map[string]string `json:"slice"`
				Deployments uint64            `json:"deployments"`
			} `json:"summaries"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("%v: %.300s", err, body)
		}
		out := map[string]uint64{}
		for _, s := range doc.Summaries {
			out[s.Slice["system"]+"|"+s.Slice["tier"]] = s.Deployments
		}
		return out
	}
	with := serve(true)
	current = cat
	code, body := get(with, "by=system,tier")
	if got := slices(body); code != 200 || got["shop|tier-1"] != 2 || got["find|"] != 1 || len(got) != 2 {
		t.Errorf("by system and tier: %d %v", code, got)
	}
	if code, body := get(with, "tier=tier-1"); code != 200 || slices(body)["|"] != 2 {
		t.Errorf("tier filter: %d %.300s", code, body)
	}
	// The catalog of the moment: search moves to the shop.
	current, _ = catalog.Parse("c.yaml", []byte("- {name: checkout, owner: payments, system: shop}\n- {name: search, owner: discovery, system: shop}\n"), "")
	if code, body := get(with, "by=system"); code != 200 || slices(body)["shop|"] != 3 {
		t.Errorf("after the catalog changed: %d %.300s", code, body)
	}
	without := serve(false)
	for _, p := range []string{"by=system", "tier=tier-1"} {
		if code, body := get(without, p); code != 400 || !strings.Contains(body, "catalog.path") {
			t.Errorf("%s without a catalog: %d %.300s, want 400 naming catalog.path", p, code, body)
		}
	}
}
