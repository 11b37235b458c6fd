package catalog_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
)

// The fixtures under testdata/backstage are written in the shapes of
// Backstage's descriptor format (docs/features/software-catalog/
// descriptor-format.md and the examples in packages/catalog-model/examples
// of backstage/backstage): several entities per file, every core kind, a
// namespace, string and compound owner references, annotations, labels,
// tags, links and a trailing document separator; beside them a
// Kubernetes manifest, a README and a dot-directory that must be skipped.
func TestLoadBackstageTree(t *testing.T) {
	c, err := catalog.Load("testdata/backstage", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]catalog.Entity{
		"checkout": {Name: "checkout", Namespace: "default", Owner: "payments",
			OwnerRef: catalog.Ref{Kind: "group", Namespace: "default", Name: "payments"},
			System:   "payments-platform", Lifecycle: "production", Type: "service", Tier: "tier-1",
			Annotations: map[string]string{"opsmetrics.dev/tier": "Tier-1", "github.com/project-slug": "example-org/checkout",
				"backstage.io/techdocs-ref": "dir:."},
			Labels: map[string]string{"example.org/cost-centre": "cc-4411"},
			Source: filepath.Join("testdata/backstage/payments/catalog-info.yaml") + "#2"},
		"ledger": {Name: "ledger", Namespace: "default", Owner: "payments", OwnerRef: catalog.Ref{Name: "payments"},
			System: "payments-platform", Lifecycle: "production", Type: "service", Tier: "tier-2",
			Labels: map[string]string{"opsmetrics.dev/tier": "tier-2"},
			Source: "testdata/backstage/payments/catalog-info.yaml#4"},
		"search-api": {Name: "search-api", Namespace: "discovery", Owner: "search-team", OwnerRef: catalog.Ref{Kind: "group", Name: "search-team"},
			System: "search", Lifecycle: "production", Type: "service", Tier: "3",
			Annotations: map[string]string{"opsmetrics.dev/tier": "3"},
			Source:      "testdata/backstage/search/catalog-info.yml#1"},
		"Indexer": {Name: "Indexer", Namespace: "default", Owner: "jdoe", OwnerRef: catalog.Ref{Kind: "user", Namespace: "default", Name: "jdoe"},
			Lifecycle: "experimental", Type: "service", Source: "testdata/backstage/search/catalog-info.yml#2"},
		"reranker": {Name: "reranker", Namespace: "default", Owner: "ranking", OwnerRef: catalog.Ref{Kind: "Group", Namespace: "discovery", Name: "ranking"},
			Lifecycle: "production", Type: "service", Source: "testdata/backstage/search/catalog-info.yml#4"},
	}
	got := map[string]catalog.Entity{}
	for _, e := range c.Entities() {
		got[e.Name] = e
	}
	if !reflect.DeepEqual(got, want) {
		for name := range mergeKeys(got, want) {
			if !reflect.DeepEqual(got[name], want[name]) {
				t.Errorf("%s:\n got %+v\nwant %+v", name, got[name], want[name])
			}
		}
	}
	wantStats := catalog.Stats{Files: 4, Components: 5, Foreign: 1,
		Skipped: map[string]int{"System": 1, "API": 1, "Resource": 1, "Group": 2, "User": 1, "Domain": 1, "Location": 1, "Template": 1}}
	if s := c.Stats(); !reflect.DeepEqual(s, wantStats) {
		t.Errorf("stats: got %+v, want %+v", s, wantStats)
	}
	// Lookup ignores case, as Backstage names are unique without it.
	for _, name := range []string{"indexer", "INDEXER", " Indexer "} {
		if e, ok := c.Lookup(name); !ok || e.Owner != "jdoe" {
			t.Errorf("Lookup(%q) = %+v, %v; want the Indexer component", name, e, ok)
		}
	}
	if _, ok := c.Lookup("search-index"); ok {
		t.Error("a Resource was looked up as a service")
	}
}

func mergeKeys(a, b map[string]catalog.Entity) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func TestLoadPlainList(t *testing.T) {
	c, err := catalog.Load("testdata/plain.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, owner, system, lifecycle, tier string }{
		{"checkout", "payments", "payments-platform", "production", "tier-1"},
		{"ledger", "payments", "", "", "tier-2"},
		{"search-api", "search-team", "", "production", "tier-3"},
		{"indexer", "jdoe", "", "", ""},
	} {
		e, ok := c.Lookup(tc.name)
		if !ok {
			t.Errorf("%s: missing", tc.name)
			continue
		}
		if e.Owner != tc.owner || e.System != tc.system || e.Lifecycle != tc.lifecycle || e.Tier != tc.tier {
			t.Errorf("%s: got owner %q system %q lifecycle %q tier %q; want %q %q %q %q", tc.name,
				e.Owner, e.System, e.Lifecycle, e.Tier, tc.owner, tc.system, tc.lifecycle, tc.tier)
		}
	}
	if c.Len() != 4 {
		t.Errorf("got %d entities, want 4", c.Len())
	}
}

func TestCustomTierAnnotation(t *testing.T) {
	doc := `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    opsmetrics.dev/tier: tier-1
    example.org/criticality: Gold
spec: {type: service, lifecycle: production, owner: payments}
`
	c, err := catalog.Parse("c.yaml", []byte(doc), "example.org/criticality")
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := c.Lookup("checkout"); e.Tier != "gold" {
		t.Errorf("tier: got %q, want gold (from example.org/criticality, lower-cased)", e.Tier)
	}
}

func TestParseRef(t *testing.T) {
	// The forms of docs/features/software-catalog/references.md.
	for _, tc := range []struct {
		in   string
		want catalog.Ref
		err  bool
	}{
		{in: "artist-relations-team", want: catalog.Ref{Name: "artist-relations-team"}},
		{in: "group:pet-managers", want: catalog.Ref{Kind: "group", Name: "pet-managers"}},
		{in: "default/team-a", want: catalog.Ref{Namespace: "default", Name: "team-a"}},
		{in: "user:default/john.johnson", want: catalog.Ref{Kind: "user", Namespace: "default", Name: "john.johnson"}},
		{in: "internal/a:b", want: catalog.Ref{Namespace: "internal", Name: "a:b"}}, // a slash first: the rest is the name
		{in: "  group:payments  ", want: catalog.Ref{Kind: "group", Name: "payments"}},
		{in: "", err: true},
		{in: "group:", err: true},
		{in: ":payments", err: true},
		{in: "group:/payments", err: true},
		{in: "default/", err: true},
	} {
		got, err := catalog.ParseRef(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back, _ := catalog.ParseRef(got.String()); back != got {
				t.Errorf("ParseRef(%q).String() = %q does not read back", tc.in, got.String())
			}
		}
	}
}

// Errors name the file, the document (from 1), the item of a plain list,
// the line and the field.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"owner missing", `apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a}
spec: {type: service, lifecycle: production, owner: x}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: b
spec:
  type: service
  lifecycle: production
`, []string{"f.yaml: document 2 (line 11): spec.owner: required"}},
		{"owner not a reference", `apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a}
spec:
  owner: "group:"
`, []string{`f.yaml: document 1 (line 5): spec.owner: entity reference "group:" is not of the form [<kind>:][<namespace>/]<name>`}},
		{"owner a list", `apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a}
spec:
  owner: [a, b]
`, []string{"document 1 (line 5): spec.owner: want an entity reference like group:default/payments, got a list"}},
		{"name missing", `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  description: nameless
spec: {owner: x}
`, []string{"document 1 (line 4): metadata.name: required"}},
		{"metadata missing", `apiVersion: backstage.io/v1alpha1
kind: Component
spec: {owner: x}
`, []string{"document 1 (line 1): metadata: required"}},
		{"annotation not a string", `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: a
  annotations:
    opsmetrics.dev/tier: [1]
spec: {owner: x}
`, []string{"document 1 (line 6): metadata.annotations.opsmetrics.dev/tier: want a string, got a list"}},
		{"component without apiVersion", `kind: Component
metadata: {name: a}
spec: {owner: x}
`, []string{"document 1 (line 1): apiVersion: required"}},
		{"backstage entity without kind", `apiVersion: backstage.io/v1alpha1
metadata: {name: a}
`, []string{"document 1 (line 1): kind: required"}},
		{"plain item without owner", `- name: a
  owner: x
- name: b
`, []string{"f.yaml: document 1, item 2 (line 3): owner: required"}},
		{"plain item not a mapping", `- name: a
  owner: x
- just-a-name
`, []string{`document 1, item 2 (line 3): want a mapping with name and owner, got "just-a-name"`}},
		{"syntax error", "- name: a\n  owner: [x\n", []string{"f.yaml: document 1: yaml:"}},
		{"duplicate in one file", `- {name: checkout, owner: a}
- {name: Checkout, owner: b}
`, []string{`f.yaml#1.2: metadata.name: service "Checkout" is already defined in f.yaml#1.1`}},
		{"every error reported", `- {name: a}
- {owner: b}
`, []string{"item 1 (line 1): owner: required", "item 2 (line 2): name: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Parse("f.yaml", []byte(tc.doc), "")
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestDuplicateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), "- {name: checkout, owner: payments}\n")
	write(t, filepath.Join(dir, "sub", "b.yml"), `apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: checkout, namespace: other}
spec: {type: service, lifecycle: production, owner: growth}
`)
	_, err := catalog.Load(dir, "")
	want := `b.yml#1: metadata.name: service "checkout" is already defined in ` + filepath.Join(dir, "a.yaml") + "#1.1"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

func TestSkipsNonEntities(t *testing.T) {
	doc := `# an empty document, a scalar, a workflow and a Kubernetes manifest
---
just text
---
name: ci
on: [push]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
---
- {name: checkout, owner: payments}
---
`
	c, err := catalog.Parse("mixed.yaml", []byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Components != 1 || s.Foreign != 3 {
		t.Errorf("stats %+v: want 1 component and 3 foreign documents", s)
	}
}

func TestTeam(t *testing.T) {
	c, err := catalog.Load("testdata/plain.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		service, sent string
		want          catalog.Team
	}{
		{"checkout", "", catalog.Team{Name: "payments", FromCatalog: true, Catalog: "payments"}},
		{"checkout", "payments", catalog.Team{Name: "payments", Catalog: "payments"}},
		{"checkout", "Payments", catalog.Team{Name: "Payments", Catalog: "payments"}},
		{"checkout", "growth", catalog.Team{Name: "growth", Mismatch: true, Catalog: "payments"}},
		{"unknown", "growth", catalog.Team{Name: "growth"}},
		{"unknown", "", catalog.Team{}},
	} {
		if got := c.Team(tc.service, tc.sent); got != tc.want {
			t.Errorf("Team(%q, %q) = %+v, want %+v", tc.service, tc.sent, got, tc.want)
		}
	}
	var none *catalog.Catalog
	if got := none.Team("checkout", ""); got != (catalog.Team{}) {
		t.Errorf("no catalog: got %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  catalog.Config
		want string
	}{
		{"none", catalog.Config{}, ""},
		{"file", catalog.Config{Path: "catalog.yaml"}, ""},
		{"all", catalog.Config{Path: "c", ReloadInterval: 5e9, TierAnnotation: "example.org/criticality"}, ""},
		{"no prefix", catalog.Config{Path: "c", TierAnnotation: "tier"}, ""},
		{"short interval", catalog.Config{Path: "c", ReloadInterval: 1e8}, "catalog.reload_interval: must be at least 1s, got 100ms"},
		{"negative interval", catalog.Config{Path: "c", ReloadInterval: -1e9}, "catalog.reload_interval: must be at least 1s, got -1s"},
		{"bad key", catalog.Config{Path: "c", TierAnnotation: "Example.org/tier"}, `catalog.tier_annotation: want an annotation key like opsmetrics.dev/tier, got "Example.org/tier"`},
		{"bad name", catalog.Config{Path: "c", TierAnnotation: "opsmetrics.dev/-tier"}, `catalog.tier_annotation: want an annotation key`},
		{"no path", catalog.Config{TierAnnotation: "x/tier"}, "catalog.path: required when"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate(%+v) = %v, want %q", tc.name, tc.cfg, err, tc.want)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/plain.yaml", "testdata/backstage/payments/catalog-info.yaml",
		"testdata/backstage/search/catalog-info.yml", "testdata/backstage/org/org.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := catalog.Parse("fuzz.yaml", data, "")
		if err == nil {
			for _, e := range c.Entities() {
				if e.Name == "" || e.Owner == "" {
					t.Fatalf("entity without name or owner: %+v", e)
				}
			}
		}
	})
}
