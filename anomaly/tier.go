package anomaly

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// Tier is one level of business impact, as the service catalog names it
// (package catalog): the severity its services' alerts carry.
type Tier struct {
	// Name is the tier as the catalog writes it, compared without regard
	// to case: tier-1.
	Name string `yaml:"name"`
	// Aliases are other spellings that mean the same tier: "1", "tier1".
	Aliases []string `yaml:"aliases"`
	// Severity is the severity of the tier's alerts: critical, warning or
	// info, whatever the detector said; or detected, which keeps the
	// detector's (warning, or critical when the tail probability is below
	// α/200) or the threshold rule's.
	Severity string `yaml:"severity"`
}

// Tiers maps a service's tier to the severity and the order of its
// alerts: the first level outranks the second, and so on, so that a
// tier-1 service's failure burst comes before a tier-3 one's. Services
// without a tier, or with one not listed, take Default's level; with no
// Default, they rank after every level and keep the detector's severity.
type Tiers struct {
	Levels  []Tier `yaml:"levels"`
	Default string `yaml:"default"`
}

// The severities an alert can carry, most urgent first, and the one that
// keeps the detector's.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
	SeverityDetected = "detected"
)

var severityRank = map[string]int{SeverityCritical: 0, SeverityWarning: 1, SeverityInfo: 2}

// DefaultTiers is the mapping when none is configured: a tier-1
// service's alerts are critical, a tier-2 one's keep the detector's
// severity, a tier-3 one's are warnings.
var DefaultTiers = Tiers{Levels: []Tier{
	{Name: "tier-1", Aliases: []string{"1", "tier1", "t1"}, Severity: SeverityCritical},
	{Name: "tier-2", Aliases: []string{"2", "tier2", "t2"}, Severity: SeverityDetected},
	{Name: "tier-3", Aliases: []string{"3", "tier3", "t3"}, Severity: SeverityWarning},
}}

// Validate checks the mapping, under the configuration's alerting.tiers
// key (its errors name the field from tiers): every level named once (aliases included, without regard to
// case), a known severity, and a Default that is one of the levels.
func (t Tiers) Validate() error {
	seen := map[string]string{}
	for i, l := range t.Levels {
		field := fmt.Sprintf("tiers.levels[%d]", i)
		if strings.TrimSpace(l.Name) == "" {
			return fmt.Errorf("%s.name: required", field)
		}
		for j, n := range append([]string{l.Name}, l.Aliases...) {
			f := field + ".name"
			if j > 0 {
				f = fmt.Sprintf("%s.aliases[%d]", field, j-1)
			}
			key := normTier(n)
			if key == "" {
				return fmt.Errorf("%s: must not be empty", f)
			}
			if other, ok := seen[key]; ok {
				return fmt.Errorf("%s: %q already names tier %s", f, n, other)
			}
			seen[key] = l.Name
		}
		if _, ok := severityRank[l.Severity]; !ok && l.Severity != SeverityDetected {
			return fmt.Errorf("%s.severity: want critical, warning, info or detected, got %q", field, l.Severity)
		}
	}
	if t.Default != "" {
		if _, ok := seen[normTier(t.Default)]; !ok {
			return fmt.Errorf("tiers.default: %q is none of the levels", t.Default)
		}
	}
	return nil
}

func normTier(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// level finds the level of a tier and its rank (0 first); a tier not
// listed takes Default's, else it ranks len(Levels).
func (t Tiers) level(tier string) (Tier, int, bool) {
	for _, name := range []string{tier, t.Default} {
		key := normTier(name)
		if key == "" {
			continue
		}
		for i, l := range t.Levels {
			if normTier(l.Name) == key {
				return l, i, true
			}
			for _, a := range l.Aliases {
				if normTier(a) == key {
					return l, i, true
				}
			}
		}
	}
	return Tier{}, len(t.Levels), false
}

// Name is the tier's canonical name, for the alert's tier label: the
// level's name for an alias ("1" is tier-1), Default's for a service
// without a tier, else the tier as given, lower-cased.
func (t Tiers) Name(tier string) string {
	if l, _, ok := t.level(tier); ok {
		return l.Name
	}
	return normTier(tier)
}

// NameSQL is Name over the SQL expression x of a tier as the catalog
// stores it (trimmed and lower-cased), NoTier where it is empty: the tier
// label of an alert, in SQL.
func (t Tiers) NameSQL(x string) string {
	var keys, names []string
	for _, l := range t.Levels {
		for _, n := range append([]string{l.Name}, l.Aliases...) {
			keys, names = append(keys, normTier(n)), append(names, l.Name)
		}
	}
	other := x // a tier not listed, without a Default
	if l, _, ok := t.level(t.Default); ok && t.Default != "" {
		other = chsql.Quote(l.Name)
	}
	name := other
	if len(keys) > 0 { // transform's arrays cannot be empty on 18.16
		k, _ := chsql.Literal(keys)
		n, _ := chsql.Literal(names)
		name = "transform(" + x + ", " + k + ", " + n + ", " + other + ")"
	}
	return "if((" + name + ") = '', '" + NoTier + "', " + name + ")"
}

// Rank is the tier's place in the order, 0 first; unlisted tiers rank
// after every level.
func (t Tiers) Rank(tier string) int {
	_, r, _ := t.level(tier)
	return r
}

// Severity is the severity of an alert of a service of tier that the
// detector (or the threshold rule) rated given.
func (t Tiers) Severity(tier, given string) string {
	if l, _, ok := t.level(tier); ok && l.Severity != SeverityDetected {
		return l.Severity
	}
	return given
}

// Ranked is what orders alerts: the service's tier, the alert's severity
// and its tail probability (anomalies; threshold alerts pass 1).
type Ranked struct {
	Tier, Severity string
	Tail           float64
}

// Compare orders alerts for lists and reports: by tier rank, then by
// severity (critical first), then by tail probability (the rarer first).
// It suits slices.SortStableFunc.
func (t Tiers) Compare(a, b Ranked) int {
	if c := cmp.Compare(t.Rank(a.Tier), t.Rank(b.Tier)); c != 0 {
		return c
	}
	sa, ok := severityRank[a.Severity]
	if !ok {
		sa = len(severityRank)
	}
	sb, ok := severityRank[b.Severity]
	if !ok {
		sb = len(severityRank)
	}
	if c := cmp.Compare(sa, sb); c != 0 {
		return c
	}
	return cmp.Compare(a.Tail, b.Tail)
}
