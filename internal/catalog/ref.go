package catalog

import (
	"fmt"
	"strings"
)

// Ref is a Backstage entity reference, [<kind>:][<namespace>/]<name>
// (docs/features/software-catalog/references.md in backstage/backstage).
// Kind and Namespace are empty when the reference leaves them out.
type Ref struct {
	Kind, Namespace, Name string
}

// ParseRef reads the string form of an entity reference as Backstage
// does: the kind is what precedes the first colon and the namespace what
// precedes the first slash, except that a slash before the colon makes
// the rest of the string the name ("ns/a:b" is the name "a:b" in
// namespace ns). No part may be empty.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("empty entity reference")
	}
	colon, slash := strings.Index(s, ":"), strings.Index(s, "/")
	if slash >= 0 && slash < colon {
		colon = -1
	}
	var r Ref
	if colon >= 0 {
		r.Kind = s[:colon]
	}
	if slash >= 0 {
		r.Namespace = s[colon+1 : slash]
	}
	r.Name = s[max(colon, slash)+1:]
	if (colon >= 0 && r.Kind == "") || (slash >= 0 && r.Namespace == "") || r.Name == "" {
		return Ref{}, fmt.Errorf("entity reference %q is not of the form [<kind>:][<namespace>/]<name>", s)
	}
	return r, nil
}

// String is the reference in its compact form, with the parts it has.
func (r Ref) String() string {
	s := r.Name
	if r.Namespace != "" {
		s = r.Namespace + "/" + s
	}
	if r.Kind != "" {
		s = r.Kind + ":" + s
	}
	return s
}
