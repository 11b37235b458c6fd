// Package catalog reads a service catalog: who owns each service, the
// system it belongs to, its lifecycle and its tier. It reads Backstage
// descriptor files (catalog-info.yaml, one entity per YAML document, of
// which only kind Component is kept) or a plain YAML list of the same
// fields, from a file or a directory tree, and Watcher reloads them when
// they change. Catalog.Lookup answers by service name; Catalog.Team says
// which team an event belongs to and whether the team it sent disagrees
// with the catalog. docs/catalog.md describes the formats.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Entity is one service of the catalog: a Backstage Component, or an item
// of a plain list.
type Entity struct {
	// Name is metadata.name, the service name events carry.
	Name string `json:"name"`
	// Namespace is metadata.namespace, "default" when absent (Backstage's
	// default).
	Namespace string `json:"namespace"`
	// Owner is the name of spec.owner without its kind and namespace:
	// "payments" for group:default/payments. OwnerRef is spec.owner as
	// written.
	Owner    string `json:"owner"`
	OwnerRef Ref    `json:"owner_ref"`
	// System is the name of spec.system, without kind and namespace.
	System    string `json:"system,omitempty"`
	Lifecycle string `json:"lifecycle,omitempty"`
	Type      string `json:"type,omitempty"`
	// Tier is the tier annotation's value (a label of the same key when
	// there is no such annotation), trimmed and lower-cased; empty when
	// the component has neither.
	Tier        string            `json:"tier,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Source is the file and the document (from 1) the entity came from.
	Source string `json:"source"`
}

// Catalog is an immutable snapshot of the services read.
type Catalog struct {
	entities []Entity       // by name
	byName   map[string]int // lower-cased name → index in entities
	files    int            // files read
	skipped  map[string]int // entities of other kinds, by kind
	foreign  int            // documents that are no catalog entity
}

// Lookup returns the entity of a service. Backstage names are unique
// without regard to case, so lookup ignores case. A nil catalog (none
// configured) has no entities.
func (c *Catalog) Lookup(service string) (Entity, bool) {
	if c == nil {
		return Entity{}, false
	}
	i, ok := c.byName[Key(strings.TrimSpace(service))]
	if !ok {
		return Entity{}, false
	}
	return c.entities[i], true
}

// Tiers maps each service that has a tier to it, by name: what the change
// calendar's tier-scoped windows read. A nil catalog has none.
func (c *Catalog) Tiers() map[string]string {
	out := map[string]string{}
	if c == nil {
		return out
	}
	for _, e := range c.entities {
		if e.Tier != "" {
			out[e.Name] = e.Tier
		}
	}
	return out
}

// Entities returns every entity, ordered by name.
func (c *Catalog) Entities() []Entity {
	if c == nil {
		return nil
	}
	return append([]Entity(nil), c.entities...)
}

// Len is the number of services.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entities)
}

// Stats says what a load read: files, components kept, entities of other
// kinds skipped (by kind), and YAML documents that are no catalog entity
// (other tools' manifests in the same tree).
type Stats struct {
	Files      int            `json:"files"`
	Components int            `json:"components"`
	Skipped    map[string]int `json:"skipped,omitempty"`
	Foreign    int            `json:"foreign,omitempty"`
}

// Stats returns what the load that made c read.
func (c *Catalog) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	sk := make(map[string]int, len(c.skipped))
	for k, v := range c.skipped {
		sk[k] = v
	}
	return Stats{Files: c.files, Components: len(c.entities), Skipped: sk, Foreign: c.foreign}
}

// Team is the team an event about a service belongs to.
type Team struct {
	// Name is the team to slice the event by: the one it sent, else the
	// catalog's owner.
	Name string
	// FromCatalog is set when the event sent no team and Name is the
	// catalog's.
	FromCatalog bool
	// Mismatch is set when the event sent a team that is not the
	// catalog's owner (compared without regard to case); the event keeps
	// its own, and Catalog holds the catalog's for the report.
	Mismatch bool
	Catalog  string
}

// Team resolves the team of an event about service that sent team sent
// (possibly empty). Services the catalog does not know keep what they
// sent.
func (c *Catalog) Team(service, sent string) Team {
	sent = strings.TrimSpace(sent)
	e, ok := c.Lookup(service)
	switch {
	case !ok:
		return Team{Name: sent}
	case sent == "":
		return Team{Name: e.Owner, FromCatalog: true, Catalog: e.Owner}
	}
	return Team{Name: sent, Mismatch: Key(sent) != Key(e.Owner), Catalog: e.Owner}
}

// maxErrors is how many errors one load reports; the rest are counted.
const maxErrors = 20

// Load reads the catalog at path, a file or a directory: every *.yaml and
// *.yml file under it, recursively, skipping names that start with a dot
// (where Kubernetes keeps the versions of a mounted ConfigMap). tierKey is
// the annotation that holds the tier (DefaultTierAnnotation when empty).
// Every error names its file, its document and its field; Load reports
// them all (up to 20) rather than the first.
func Load(path, tierKey string) (*Catalog, error) {
	files, err := catalogFiles(path)
	if err != nil {
		return nil, err
	}
	var docs []parsed
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", f.path, err))
			continue
		}
		p := parse(f.path, data, tierKey)
		docs = append(docs, p)
		errs = append(errs, p.errs...)
	}
	c, dupErrs := build(docs)
	c.files = len(files)
	if errs = append(errs, dupErrs...); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

// Parse reads one file's content as Load does, for callers holding the
// bytes (name only labels errors and sources).
func Parse(name string, data []byte, tierKey string) (*Catalog, error) {
	p := parse(name, data, tierKey)
	c, dupErrs := build([]parsed{p})
	c.files = 1
	if errs := append(p.errs, dupErrs...); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

func joinErrors(errs []error) error {
	if len(errs) > maxErrors {
		n := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], fmt.Errorf("and %d more errors", n))
	}
	return fmt.Errorf("catalog: %w", errors.Join(errs...))
}

type catalogFile struct {
	path string
	info fs.FileInfo // through symlinks
}

// catalogFiles lists the files Load reads, in lexical order, with their
// size and modification time (through symlinks) for Watcher.
func catalogFiles(path string) ([]catalogFile, error) {
	if path == "" {
		return nil, fmt.Errorf("catalog: no path")
	}
	root, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if !root.IsDir() {
		return []catalogFile{{path, root}}, nil
	}
	var out []catalogFile
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if ext := strings.ToLower(filepath.Ext(p)); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		info, err := os.Stat(p) // follows a symlinked file
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			out = append(out, catalogFile{p, info})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: read %s: %w", path, err)
	}
	return out, nil
}

// parsed is what one file holds.
type parsed struct {
	entities []Entity
	skipped  map[string]int
	foreign  int
	errs     []error
}

// build indexes the entities of files by name, reporting names defined
// twice.
func build(files []parsed) (*Catalog, []error) {
	c := &Catalog{byName: map[string]int{}, skipped: map[string]int{}}
	var errs []error
	for _, f := range files {
		for k, n := range f.skipped {
			c.skipped[k] += n
		}
		c.foreign += f.foreign
		for _, e := range f.entities {
			key := Key(e.Name)
			if i, ok := c.byName[key]; ok {
				errs = append(errs, fmt.Errorf("%s: metadata.name: service %q is already defined in %s; service names must be unique, whatever their namespace",
					e.Source, e.Name, c.entities[i].Source))
				continue
			}
			c.byName[key] = len(c.entities)
			c.entities = append(c.entities, e)
		}
	}
	sort.Slice(c.entities, func(i, j int) bool { return c.entities[i].Name < c.entities[j].Name })
	for i, e := range c.entities {
		c.byName[Key(e.Name)] = i
	}
	return c, errs
}

// docError is an error in one document (and item of a plain list) of a
// file, at a field.
type docError struct {
	file       string
	doc, item  int // from 1; item 0 for an entity document
	line       int
	field, msg string
}

func (e *docError) Error() string {
	where := fmt.Sprintf("%s: document %d", e.file, e.doc)
	if e.item > 0 {
		where += fmt.Sprintf(", item %d", e.item)
	}
	if e.line > 0 {
		where += fmt.Sprintf(" (line %d)", e.line)
	}
	if e.field == "" {
		return where + ": " + e.msg
	}
	return where + ": " + e.field + ": " + e.msg
}

// parse reads every YAML document of one file.
func parse(name string, data []byte, tierKey string) parsed {
	if tierKey == "" {
		tierKey = DefaultTierAnnotation
	}
	out := parsed{skipped: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return out
		}
		if err != nil {
			// The decoder cannot resynchronise after a syntax error.
			out.errs = append(out.errs, &docError{file: name, doc: doc, msg: err.Error()})
			return out
		}
		root := resolve(&n)
		if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
			root = resolve(root.Content[0])
		}
		r := reader{file: name, doc: doc, tierKey: tierKey}
		switch {
		case root.Kind == yaml.SequenceNode:
			for i, item := range root.Content {
				r.item = i + 1
				if e, ok := r.plain(resolve(item)); ok {
					out.entities = append(out.entities, e)
				}
			}
		case root.Kind == yaml.MappingNode:
			kind, backstage := r.envelope(root)
			switch {
			case !backstage:
				out.foreign++
			case strings.EqualFold(kind, "Component"):
				if e, ok := r.component(root); ok {
					out.entities = append(out.entities, e)
				}
			case kind != "":
				out.skipped[kind]++
			}
		case root.Kind == yaml.ScalarNode && root.Tag == "!!null", root.Kind == yaml.DocumentNode:
			// An empty document, as after a trailing "---".
		default:
			out.foreign++
		}
		out.errs = append(out.errs, r.errs...)
	}
}

// reader reads the fields of one document, collecting its errors.
type reader struct {
	file      string
	doc, item int
	tierKey   string
	errs      []error
}

func (r *reader) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	r.errs = append(r.errs, &docError{file: r.file, doc: r.doc, item: r.item, line: line, field: field, msg: fmt.Sprintf(format, args...)})
}

func (r *reader) source() string {
	if r.item > 0 {
		return fmt.Sprintf("%s#%d.%d", r.file, r.doc, r.item)
	}
	return fmt.Sprintf("%s#%d", r.file, r.doc)
}

// envelope reads apiVersion and kind. A document is a Backstage entity
// when its apiVersion's group is backstage.io or one of its subdomains
// (scaffolder.backstage.io/v1beta3 for templates); a Component without an
// apiVersion is an error, any other mapping (a Kubernetes manifest, a
// workflow) is no catalog entity.
func (r *reader) envelope(n *yaml.Node) (kind string, backstage bool) {
	api, _ := r.str(n, "apiVersion", "apiVersion")
	kind, _ = r.str(n, "kind", "kind")
	group, _, versioned := strings.Cut(api, "/")
	switch {
	case versioned && (group == "backstage.io" || strings.HasSuffix(group, ".backstage.io")):
		if kind == "" {
			r.fail(n, "kind", "required for a backstage.io entity")
		}
		return kind, true
	case strings.EqualFold(kind, "Component") && api == "":
		r.fail(n, "apiVersion", "required: backstage.io/v1alpha1 for a Component")
		return "", true
	}
	return "", false
}

// component reads a Backstage Component.
func (r *reader) component(n *yaml.Node) (Entity, bool) {
	before := len(r.errs)
	meta := r.mapping(n, "metadata", "metadata", true)
	spec := r.mapping(n, "spec", "spec", true)
	e := Entity{Namespace: "default", Source: r.source()}
	if meta != nil {
		e.Name, _ = r.str(meta, "name", "metadata.name")
		if ns, ok := r.str(meta, "namespace", "metadata.namespace"); ok && ns != "" {
			e.Namespace = ns
		}
		e.Annotations = r.stringMap(meta, "annotations", "metadata.annotations")
		e.Labels = r.stringMap(meta, "labels", "metadata.labels")
		if e.Name == "" {
			r.fail(meta, "metadata.name", "required")
		}
	}
	if spec != nil {
		r.owner(spec, "spec.owner", &e)
		e.System = r.refName(spec, "system", "spec.system")
		e.Lifecycle, _ = r.str(spec, "lifecycle", "spec.lifecycle")
		e.Type, _ = r.str(spec, "type", "spec.type")
	}
	e.Tier = r.tier(e, "")
	return e, len(r.errs) == before
}

// plain reads one item of a plain list: name, owner, system, lifecycle,
// type, tier, annotations and labels, as Backstage would write them but
// flat.
func (r *reader) plain(n *yaml.Node) (Entity, bool) {
	if n.Kind != yaml.MappingNode {
		r.fail(n, "", "want a mapping with name and owner, got %s", describe(n))
		return Entity{}, false
	}
	before := len(r.errs)
	e := Entity{Namespace: "default", Source: r.source()}
	e.Name, _ = r.str(n, "name", "name")
	if e.Name == "" {
		r.fail(n, "name", "required")
	}
	if ns, ok := r.str(n, "namespace", "namespace"); ok && ns != "" {
		e.Namespace = ns
	}
	r.owner(n, "owner", &e)
	e.System = r.refName(n, "system", "system")
	e.Lifecycle, _ = r.str(n, "lifecycle", "lifecycle")
	e.Type, _ = r.str(n, "type", "type")
	e.Annotations = r.stringMap(n, "annotations", "annotations")
	e.Labels = r.stringMap(n, "labels", "labels")
	tier, _ := r.str(n, "tier", "tier")
	e.Tier = r.tier(e, tier)
	return e, len(r.errs) == before
}

// tier is the explicit tier, else the tier annotation, else a label of
// the same key.
func (r *reader) tier(e Entity, explicit string) string {
	t := explicit
	if t == "" {
		t = e.Annotations[r.tierKey]
	}
	if t == "" {
		t = e.Labels[r.tierKey]
	}
	return strings.ToLower(strings.TrimSpace(t))
}

// owner reads spec.owner: a string reference or a compound {kind,
// namespace, name}; required.
func (r *reader) owner(n *yaml.Node, field string, e *Entity) {
	key := field[strings.LastIndex(field, ".")+1:]
	v := get(n, key)
	if v == nil || (v.Kind == yaml.ScalarNode && (v.Tag == "!!null" || strings.TrimSpace(v.Value) == "")) {
		r.fail(n, field, "required: the team (or user) that owns the service")
		return
	}
	ref, ok := r.ref(v, field)
	if !ok {
		return
	}
	e.OwnerRef, e.Owner = ref, ref.Name
}

// refName reads an optional reference and returns its name.
func (r *reader) refName(n *yaml.Node, key, field string) string {
	v := get(n, key)
	if v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		return ""
	}
	ref, ok := r.ref(v, field)
	if !ok {
		return ""
	}
	return ref.Name
}

func (r *reader) ref(v *yaml.Node, field string) (Ref, bool) {
	switch v.Kind {
	case yaml.ScalarNode:
		ref, err := ParseRef(v.Value)
		if err != nil {
			r.fail(v, field, "%v", err)
			return Ref{}, false
		}
		return ref, true
	case yaml.MappingNode:
		var ref Ref
		ref.Kind, _ = r.str(v, "kind", field+".kind")
		ref.Namespace, _ = r.str(v, "namespace", field+".namespace")
		ref.Name, _ = r.str(v, "name", field+".name")
		if ref.Name == "" {
			r.fail(v, field+".name", "required in a compound reference")
			return Ref{}, false
		}
		return ref, true
	}
	r.fail(v, field, "want an entity reference like group:default/payments, got %s", describe(v))
	return Ref{}, false
}

// str reads an optional scalar; ok is false when it is absent or null.
func (r *reader) str(n *yaml.Node, key, field string) (string, bool) {
	v := get(n, key)
	if v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		r.fail(v, field, "want a string, got %s", describe(v))
		return "", false
	}
	return strings.TrimSpace(v.Value), true
}

// mapping reads a mapping field.
func (r *reader) mapping(n *yaml.Node, key, field string, required bool) *yaml.Node {
	v := get(n, key)
	if v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		if required {
			r.fail(n, field, "required")
		}
		return nil
	}
	if v.Kind != yaml.MappingNode {
		r.fail(v, field, "want a mapping, got %s", describe(v))
		return nil
	}
	return v
}

// strings reads a mapping of strings (annotations, labels).
func (r *reader) stringMap(n *yaml.Node, key, field string) map[string]string {
	m := r.mapping(n, key, field, false)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if v.Kind != yaml.ScalarNode {
			r.fail(v, field+"."+k.Value, "want a string, got %s", describe(v))
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

// get is the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// Key is how services and teams are matched without regard to case: A-Z
// lowered, every other byte kept, as ClickHouse's lower() does, so that
// Go and the dashboards' SQL (`lower(service)`) match the same names.
func Key(s string) string {
	var b []byte // a copy, made at the first capital
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			if b == nil {
				b = []byte(s)
			}
			b[i] = c + 'a' - 'A'
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}
