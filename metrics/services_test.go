package metrics_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// services is a plain catalog of three services in two systems; indexer
// has neither system nor tier, and legacy is not in it.
const services = `
- name: checkout
  owner: payments
  system: shop
  tier: Tier-1
- name: Cart
  owner: payments
  system: shop
  annotations:
    opsmetrics.dev/tier: tier-2
- name: search
  owner: discovery
  system: "discovery's"
  tier: tier-2
- name: indexer
  owner: discovery
`

// TestSystemAndTier slices and filters the KPIs by the system and tier
// the service catalog gives each service, mapped at query time.
func TestSystemAndTier(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	cat, err := catalog.Parse("catalog.yaml", []byte(services), "")
	if err != nil {
		t.Fatal(err)
	}
	h := time.Hour
	write(t, st,
		dep("c-1", "checkout", "production", t0, event.DeploymentSuccess),
		dep("c-2", "checkout", "production", t0.Add(h), event.DeploymentFailure),
		dep("k-1", "cart", "production", t0.Add(2*h), event.DeploymentSuccess), // the catalog's Cart: names ignore case
		dep("s-1", "search", "production", t0, event.DeploymentSuccess),
		dep("s-2", "search", "production", t0.Add(h), event.DeploymentSuccess),
		dep("s-3", "search", "production", t0.Add(2*h), event.DeploymentSuccess),
		dep("i-1", "indexer", "production", t0, event.DeploymentSuccess),
		dep("l-1", "legacy", "production", t0, event.DeploymentSuccess),
		inc("INC-1", "checkout", "production", t0.Add(3*h), "", ""),
	)
	run := func(q metrics.Query) map[string]string {
		t.Helper()
		q.From, q.To, q.Catalog = t0.Add(-h), t0.Add(24*h), cat
		sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range sums {
			var key []string
			for _, d := range q.By {
				key = append(key, s.Slice[d])
			}
			out[strings.Join(key, "/")] = fmt.Sprintf("%d deployments, %d failed, %d incidents", s.Deployments, s.FailedDeployments, s.Incidents)
		}
		return out
	}
	cases := []struct {
		name string
		q    metrics.Query
		want map[string]string
	}{
		{"by system", metrics.Query{By: []metrics.Dimension{metrics.System}}, map[string]string{
			"shop":        "3 deployments, 2 failed, 1 incidents", // c-2 failed, and INC-1 blames c-1
			"discovery's": "3 deployments, 0 failed, 0 incidents",
			"":            "2 deployments, 0 failed, 0 incidents",
		}},
		{"by tier", metrics.Query{By: []metrics.Dimension{metrics.Tier}}, map[string]string{
			"tier-1": "2 deployments, 2 failed, 1 incidents",
			"tier-2": "4 deployments, 0 failed, 0 incidents",
			"":       "2 deployments, 0 failed, 0 incidents",
		}},
		{"by system and service", metrics.Query{By: []metrics.Dimension{metrics.System, metrics.Service}, Systems: []string{"shop"}}, map[string]string{
			"shop/checkout": "2 deployments, 2 failed, 1 incidents",
			"shop/cart":     "1 deployments, 0 failed, 0 incidents",
		}},
		{"tier filter, upper case", metrics.Query{By: []metrics.Dimension{metrics.Service}, Tiers: []string{"TIER-2"}}, map[string]string{
			"cart":   "1 deployments, 0 failed, 0 incidents",
			"search": "3 deployments, 0 failed, 0 incidents",
		}},
		{"system filter with a quote", metrics.Query{Systems: []string{"discovery's"}}, map[string]string{
			"": "3 deployments, 0 failed, 0 incidents",
		}},
	}
	for _, c := range cases {
		got := run(c.q)
		if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(c.want)) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, sorted(got), sorted(c.want))
		}
	}
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

// TestSystemNeedsCatalog: slicing or filtering by system or tier without
// a service catalog is an error that says what to configure.
func TestSystemNeedsCatalog(t *testing.T) {
	for _, p := range []metrics.Params{{By: "service,system"}, {Tiers: "tier-1"}} {
		_, err := p.Parse(t0)
		if err == nil || !strings.Contains(err.Error(), "catalog.path") {
			t.Errorf("%+v: %v, want an error naming catalog.path", p, err)
		}
	}
	cat, _ := catalog.Parse("c.yaml", []byte(services), "")
	p := metrics.Params{By: "tier", Systems: "shop", Defaults: metrics.Query{Catalog: cat}}
	r, err := p.Parse(t0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Query.Catalog != cat || fmt.Sprint(r.Query.By, r.Query.Systems) != "[tier] [shop]" {
		t.Errorf("parsed %v %v %v", r.Query.Catalog != nil, r.Query.By, r.Query.Systems)
	}
}

// TestTooManyDimensions: a query's rows hold three dimensions and the
// step, so a request slices by at most three, each once.
func TestTooManyDimensions(t *testing.T) {
	cat, _ := catalog.Parse("c.yaml", []byte(services), "")
	for by, want := range map[string]string{"service,team,environment,system": "at most 3", "tier,service,tier": "tier given twice"} {
		_, err := metrics.Params{By: by, Defaults: metrics.Query{Catalog: cat}}.Parse(t0)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("by %s: %v, want %q", by, err, want)
		}
	}
}

// TestTeamMismatches finds the deployments and incidents stored with a
// team other than their service's owner, ignoring case, services the
// catalog does not know and events without a team.
func TestTeamMismatches(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	cat, err := catalog.Parse("catalog.yaml", []byte(services), "")
	if err != nil {
		t.Fatal(err)
	}
	h := time.Hour
	owned := func(e *event.Event, team string) *event.Event {
		if e.Deployment != nil {
			e.Deployment.Team = team
		} else {
			e.Incident.Team = team
		}
		return e
	}
	write(t, st,
		owned(dep("c-1", "checkout", "production", t0, event.DeploymentSuccess), "payments"),
		owned(dep("c-2", "checkout", "staging", t0.Add(h), event.DeploymentSuccess), "web"),
		owned(dep("c-3", "Checkout", "production", t0.Add(2*h), event.DeploymentSuccess), "web"),
		owned(dep("k-1", "cart", "production", t0, event.DeploymentSuccess), "PAYMENTS"),
		owned(dep("l-1", "legacy", "production", t0, event.DeploymentSuccess), "anyone"),
		owned(dep("s-1", "search", "production", t0, event.DeploymentSuccess), ""),
		owned(dep("s-old", "search", "production", t0.Add(-48*h), event.DeploymentSuccess), "web"), // before the range
		owned(inc("INC-1", "search", "production", t0, "", ""), "payments"),
	)
	got, err := metrics.TeamMismatches(context.Background(), st.Conn(), cat, t0.Add(-h), t0.Add(24*h))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range got {
		rows = append(rows, fmt.Sprintf("%s %s %s (owner %s): %d, last %s", m.Kind, m.Service, m.Team, m.Owner, m.Entities, m.Last.Format(time.TimeOnly)))
	}
	want := []string{
		"deployment Checkout web (owner payments): 1, last 14:00:00",
		"deployment checkout web (owner payments): 1, last 13:00:00",
		"incident search payments (owner discovery): 1, last 12:00:00",
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("mismatches:\n got %q\nwant %q", rows, want)
	}
}
