package dashboards_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/dashboards"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// tieredCalendar has a window for tier-1 services and one for the rest of
// production, so that a service's tier decides whether its deployment was
// inside.
const tieredCalendar = `
time_zone: UTC
windows:
  - name: tier-1-mornings
    tiers: [tier-1]
    days: [tue, thu]
    from: "09:00"
    to: "12:00"
  - name: production-weekdays
    environments: [production]
    days: [mon-fri]
    from: "08:00"
    to: "18:00"
`

// testCatalog puts the services but the last in the catalog: alternately
// in systems shop and search, tier-1 those of tier1, tier-2 the third,
// the rest without a tier, the second spelt in capitals (names match
// without regard to case).
func testCatalog(t *testing.T, services []string, tier1 ...string) *catalog.Catalog {
	t.Helper()
	var b strings.Builder
	for i, svc := range services[:len(services)-1] {
		name, system, tier := svc, []string{"shop", "search"}[i%2], ""
		if i == 1 {
			name = strings.ToUpper(svc)
		}
		switch {
		case slices.Contains(tier1, svc):
			tier = "tier-1"
		case i == 2:
			tier = "Tier-2"
		}
		fmt.Fprintf(&b, "- {name: %q, owner: %q, system: %q, tier: %q}\n", name, "owner-"+svc, system, tier)
	}
	c, err := catalog.Parse("catalog.yaml", []byte(b.String()), "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// doraStats are the DORA overview's "this period" stats, by title, for the
// variables vars over [from, to).
func doraStats(t *testing.T, st *store.Store, d []dashboardPanel, from, to time.Time, vars map[string]string) map[string]*float64 {
	t.Helper()
	out := map[string]*float64{}
	for _, p := range d {
		var v *float64
		if err := st.Conn().QueryRow(context.Background(), expand(p.sql, from, to, vars)).Scan(&v); err != nil {
			t.Fatalf("%s: %v", p.title, err)
		}
		out[p.title] = v
	}
	return out
}

type dashboardPanel struct{ title, sql string }

// TestCatalogVariables: the KPI dashboards' system and tier variables list
// the stored service catalog's, the service variable the services of the
// ones chosen, and with a tier or a system chosen every DORA stat is what
// `opsmetrics kpi --tier/--system` gives (metrics.Summaries with the
// catalog), the change-window one judging tier-scoped windows by the
// stored tiers. A changed catalog, once stored, changes them without the
// dashboards being rebuilt; storing the same catalog writes nothing.
func TestCatalogVariables(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	testenv.StoreGenerated(t, st, generator.Config{Services: 6, Teams: 2, Days: 45, Seed: 5, End: end}, 1<<20)
	services := testenv.Rows(t, st, "SELECT DISTINCT service FROM deployment_events ORDER BY service")
	if len(services) < 5 {
		t.Fatalf("services %v: too few to slice", services)
	}
	var ccfg calendar.Config
	if err := yaml.Unmarshal([]byte(tieredCalendar), &ccfg); err != nil {
		t.Fatal(err)
	}
	cal, err := calendar.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashboards.DORA(dashboards.Options{Calendar: cal}).Build()
	if err != nil {
		t.Fatal(err)
	}
	var stats []dashboardPanel
	vars := map[string]string{}
	for _, p := range d.Panels {
		if p.Panel != nil && p.Panel.Type == "stat" {
			stats = append(stats, dashboardPanel{*p.Panel.Title, p.Panel.Targets[0].(dashboards.ClickHouseQuery).RawSQL})
		}
	}
	for _, v := range d.Templating.List {
		vars[v.Name] = *v.Query.String
	}
	if len(stats) != 6 || vars["system"] == "" || vars["tier"] == "" || vars["service"] == "" {
		t.Fatalf("DORA overview: %d stats, variables %v", len(stats), vars)
	}
	from, to := end.AddDate(0, 0, -30), end
	all := map[string]string{"service": "__all", "team": "__all", "environment": "__all", "system": "__all", "tier": "__all"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range all {
			m[a] = b
		}
		m[k] = v
		return m
	}
	kpi := func(c *catalog.Catalog, systems, tiers []string) map[string]*float64 {
		t.Helper()
		q := metrics.Query{From: from, To: to, Calendar: cal, Systems: systems, Tiers: tiers}.WithCatalog(c)
		sums, err := metrics.Summaries(ctx, st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		s := sums[0]
		outside := float64(s.DeploymentsOutsideWindow)
		return map[string]*float64{"Change failure rate": s.ChangeFailureRate, "Deployment rework rate": s.ReworkRate,
			"Change lead time (median)": s.LeadTimeMedianSeconds, "Failed-deployment recovery time (median)": s.RecoveryMedianSeconds,
			"Deployment frequency (per day)": &s.DeploymentsPerDay, metrics.Title(metrics.KPIDeploymentsOutsideWindow): &outside}
	}
	same := func(what string, got, want map[string]*float64) {
		t.Helper()
		for title, w := range want {
			g, ok := got[title]
			if !ok {
				t.Errorf("%s: no stat %q", what, title)
				continue
			}
			if (g == nil) != (w == nil) || (g != nil && math.Abs(*g-*w) > 1e-9*math.Max(1, math.Abs(*w))) {
				t.Errorf("%s %s: dashboard %v, kpi %v", what, title, deref(g), deref(w))
			}
		}
	}
	options := func(sql string, v map[string]string) []string {
		t.Helper()
		return testenv.Rows(t, st, expand(sql, from, to, v))
	}

	cat := testCatalog(t, services, services[0])
	if wrote, err := metrics.StoreCatalog(ctx, st.Conn(), cat); err != nil || !wrote {
		t.Fatalf("StoreCatalog: %v, %v; want it written", wrote, err)
	}
	if got := options(vars["system"], all); !slices.Equal(got, []string{"search", "shop"}) {
		t.Errorf("system variable: %v", got)
	}
	if got := options(vars["tier"], all); !slices.Equal(got, []string{"tier-1", "tier-2"}) {
		t.Errorf("tier variable: %v (tiers are lower-cased)", got)
	}
	if got := options(vars["service"], all); !slices.Equal(got, services) {
		t.Errorf("service variable with every system and tier: %v, want %v", got, services)
	}
	if got := options(vars["service"], with("system", "search")); !slices.Equal(got, []string{services[1], services[3]}) {
		t.Errorf("service variable of system search: %v, want %v (the second spelt in capitals in the catalog)", got, []string{services[1], services[3]})
	}
	if got := options(vars["service"], with("tier", "tier-2")); !slices.Equal(got, []string{services[2]}) {
		t.Errorf("service variable of tier-2: %v", got)
	}

	allBefore := doraStats(t, st, stats, from, to, all)
	same("all", allBefore, kpi(cat, nil, nil))
	same("tier-1", doraStats(t, st, stats, from, to, with("tier", "tier-1")), kpi(cat, nil, []string{"tier-1"}))
	same("system search", doraStats(t, st, stats, from, to, with("system", "search")), kpi(cat, []string{"search"}, nil))
	if a, s := *allBefore["Deployment frequency (per day)"], *doraStats(t, st, stats, from, to, with("system", "search"))["Deployment frequency (per day)"]; s <= 0 || s >= a {
		t.Errorf("deployments per day: %v of system search, %v of all: the filter does not filter", s, a)
	}

	// The same catalog again: nothing written.
	if wrote, err := metrics.StoreCatalog(ctx, st.Conn(), testCatalog(t, services, services[0])); err != nil || wrote {
		t.Errorf("StoreCatalog of the same catalog: %v, %v; want nothing written", wrote, err)
	}
	// A fourth service moves to tier-1: the same dashboards follow.
	moved := testCatalog(t, services, services[0], services[3])
	if wrote, err := metrics.StoreCatalog(ctx, st.Conn(), moved); err != nil || !wrote {
		t.Fatalf("StoreCatalog of a changed catalog: %v, %v", wrote, err)
	}
	allAfter := doraStats(t, st, stats, from, to, all)
	same("all, after the move", allAfter, kpi(moved, nil, nil))
	same("tier-1, after the move", doraStats(t, st, stats, from, to, with("tier", "tier-1")), kpi(moved, nil, []string{"tier-1"}))
	title := metrics.Title(metrics.KPIDeploymentsOutsideWindow)
	if *allAfter[title] == *allBefore[title] {
		t.Errorf("deployments outside their windows: %v before and after a service moved to tier-1; the test proves nothing", *allAfter[title])
	}
	if got := options(vars["service"], with("tier", "tier-1")); !slices.Equal(got, []string{services[0], services[3]}) {
		t.Errorf("service variable of tier-1 after the move: %v", got)
	}
	// A third store keeps two generations.
	if _, err := metrics.StoreCatalog(ctx, st.Conn(), cat); err != nil {
		t.Fatal(err)
	}
	if n := testenv.Count(t, st, "SELECT uniqExact(generation) FROM service_catalog"); n != 2 {
		t.Errorf("%d stored catalogs kept, want 2", n)
	}
	same("tier-1, moved back", doraStats(t, st, stats, from, to, with("tier", "tier-1")), kpi(cat, nil, []string{"tier-1"}))
}

// TestAnomaliesOwnerTierAndFactors: the anomalies table shows each
// anomaly's owner and tier as its alert's labels are made (Tiers.Owner,
// from the stored catalog: the catalog's owner, else the slice's team,
// else unowned; the tier's level name), and the factors table the stored
// factors one by one, the largest share first.
func TestAnomaliesOwnerTierAndFactors(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	services := []string{"checkout", "cart", "search", "legacy"}
	cat := testCatalog(t, services, "checkout")
	if _, err := metrics.StoreCatalog(ctx, st.Conn(), cat); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	b, err := st.Conn().PrepareBatch(ctx, `INSERT INTO anomalies (series, kpi, step, service, team, environment, interval_start, interval_end,
		observed, num, den, expected, lower, upper, direction, tail, severity, firing, generation, detected_at, factors,
		factor_dimensions, factor_values, factor_observed, factor_trials, factor_expected, factor_excess, factor_shares, factor_of)`)
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct{ series, service, team string }{
		{"a", "checkout", "web"}, {"b", "search", "web"}, {"c", "legacy", "web"}, {"d", "", ""}, {"e", "CART", ""},
	}
	for _, r := range rows {
		dims, values := []string{}, []string{}
		obs, trials, exp, excess, shares, of := []float64{}, []float64{}, []float64{}, []float64{}, []float64{}, []float64{}
		if r.series == "a" {
			dims, values = []string{"version", "actor"}, []string{"v2", "new-hire"}
			obs, trials, exp, excess, shares, of = []float64{3, 7}, []float64{5, 8}, []float64{0.9, 1.2}, []float64{2.1, 5.8},
				[]float64{0.25, 0.7}, []float64{2, 9}
		}
		if err := b.Append(r.series, "change_failure_rate", "day", r.service, r.team, "production", at, at.Add(24*time.Hour),
			0.5, 4.0, 8.0, 0.1, 0.0, 0.3, "up", 1e-6, "critical", uint8(1), uint64(1), at, "7 of the 9 failed deployments were by actor new-hire",
			dims, values, obs, trials, exp, excess, shares, of); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	custom := anomaly.Tiers{Levels: []anomaly.Tier{{Name: "gold", Aliases: []string{"tier-1"}, Severity: "critical"},
		{Name: "silver", Aliases: []string{"tier-2"}, Severity: "detected"}, {Name: "bronze", Severity: "warning"}}, Default: "bronze"}
	from, to := at.Add(-time.Hour), at.Add(time.Hour)
	for _, tiers := range []anomaly.Tiers{anomaly.DefaultTiers, custom} {
		for _, r := range rows {
			got := testenv.Rows(t, st, "SELECT owner, tier FROM ("+expand(dashboards.AnomaliesSQL(tiers), from, to, map[string]string{"series": r.series})+")")
			owner, tier := tiers.Owner(cat, r.service, r.team)
			if want := owner + " | " + tier; len(got) != 1 || got[0] != want {
				t.Errorf("tiers %v, anomaly of service %q team %q: owner and tier %v, want %q", tiers.Levels[0].Name, r.service, r.team, got, want)
			}
		}
	}
	got := testenv.Rows(t, st, "SELECT * FROM ("+expand(dashboards.FactorsSQL, from, to, map[string]string{"series": "a"})+")")
	want := []string{
		"2026-03-02 00:00:00 +0000 UTC | actor | new-hire | 7 | 8 | 1.2 | 5.8 | 70 | 9",
		"2026-03-02 00:00:00 +0000 UTC | version | v2 | 3 | 5 | 0.9 | 2.1 | 25 | 2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("factors of the anomaly:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := testenv.Rows(t, st, "SELECT * FROM ("+expand(dashboards.FactorsSQL, from, to, map[string]string{"series": "b"})+")"); len(got) != 0 {
		t.Errorf("factors of an anomaly without any: %v", got)
	}
}
