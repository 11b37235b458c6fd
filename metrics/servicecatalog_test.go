package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestStoreCatalog: the stored catalog is the last one stored, an empty
// one included; the same one again writes nothing; two generations stay.
func TestStoreCatalog(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	parse := func(s string) *catalog.Catalog {
		c, err := catalog.Parse("catalog.yaml", []byte(s), "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse("- {name: Checkout, owner: payments, system: shop, tier: Tier-1, lifecycle: production}\n- {name: search, owner: discovery}\n")
	b := parse("- {name: checkout, owner: sre, system: shop, tier: tier-2}\n")
	for i, step := range []struct {
		c     *catalog.Catalog
		wrote bool
		want  string
	}{
		{a, true, "checkout Checkout shop tier-1 payments production; search search   discovery "},
		{a, false, "checkout Checkout shop tier-1 payments production; search search   discovery "},
		{nil, true, ""},
		{nil, false, ""},
		{a, true, "checkout Checkout shop tier-1 payments production; search search   discovery "},
		{b, true, "checkout checkout shop tier-2 sre "},
	} {
		wrote, err := metrics.StoreCatalog(ctx, st.Conn(), step.c)
		if err != nil || wrote != step.wrote {
			t.Fatalf("store %d: wrote %v, %v; want %v", i, wrote, err, step.wrote)
		}
		rows := testenv.Rows(t, st, "SELECT concat(key, ' ', service, ' ', system, ' ', tier, ' ', owner, ' ', lifecycle) FROM "+
			metrics.CurrentServiceCatalog+" ORDER BY key")
		if got := strings.Join(rows, "; "); got != step.want {
			t.Errorf("store %d: stored %q, want %q", i, got, step.want)
		}
	}
	if n := testenv.Count(t, st, "SELECT uniqExact(generation) FROM service_catalog"); n > 2 {
		t.Errorf("%d generations of rows kept, want at most 2", n)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM service_catalog_generations"); n != 4 {
		t.Errorf("%d catalogs committed, want the 4 changes", n)
	}
}

// TestStoreCatalogBackstageExamples stores three of Backstage's own
// example components (testdata/backstage-examples, copied from
// backstage/backstage) as the dashboards read them: the owner is the
// reference's name whatever its kind or namespace, the system as written,
// no tier where there is no annotation.
func TestStoreCatalogBackstageExamples(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	c, err := catalog.Load("testdata/backstage-examples", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.StoreCatalog(context.Background(), st.Conn(), c); err != nil {
		t.Fatal(err)
	}
	got := testenv.Rows(t, st, "SELECT key, system, tier, owner, lifecycle FROM "+metrics.CurrentServiceCatalog+" ORDER BY key")
	want := []string{
		"artist-lookup | artist-engagement-portal |  | team-a | experimental",
		"different-namespace |  |  | team-a | experimental",
		"playback-order | audio-playback |  | guest | production",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCatalogKeyIsClickHouseLower: Go matches services to the catalog by
// catalog.Key, the dashboards' SQL by lower(service); both give the same
// key for any name, those whose Unicode lower case differs included.
func TestCatalogKeyIsClickHouseLower(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	names := []string{"", "checkout", "CheckOut-API", "ÜBER-svc", "Çheckout", "İstanbul", "checKout" /* Kelvin sign */, "ΣΊΣΥΦΟΣ", "ǅ", "ß-ẞ", "a\x00B", "Z_z.9"}
	rows, err := st.Conn().Query(context.Background(), "SELECT s, lower(s) FROM (SELECT arrayJoin(?) AS s)", names)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s, lower string
		if err := rows.Scan(&s, &lower); err != nil {
			t.Fatal(err)
		}
		n++
		if got := catalog.Key(s); got != lower {
			t.Errorf("%q: catalog.Key %q, ClickHouse lower() %q", s, got, lower)
		}
	}
	if err := rows.Err(); err != nil || n != len(names) {
		t.Fatalf("%d of %d names, %v", n, len(names), err)
	}
	if catalog.Key("ÜBER-svc") == strings.ToLower("ÜBER-svc") {
		t.Errorf("the names do not tell ASCII folding from Unicode's")
	}
}
