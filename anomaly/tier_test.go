package anomaly_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestTiersSeverityAndName(t *testing.T) {
	tiers := anomaly.DefaultTiers
	for _, tc := range []struct {
		tier, detected string
		severity, name string
		rank           int
	}{
		{"tier-1", "warning", "critical", "tier-1", 0},
		{"Tier-1", "critical", "critical", "tier-1", 0},
		{"1", "warning", "critical", "tier-1", 0},
		{"tier2", "warning", "warning", "tier-2", 1}, // detected: the detector's
		{"t2", "critical", "critical", "tier-2", 1},
		{"tier-3", "critical", "warning", "tier-3", 2},
		{"", "critical", "critical", "", 3}, // no tier: the detector's, last
		{"gold", "warning", "warning", "gold", 3},
	} {
		if got := tiers.Severity(tc.tier, tc.detected); got != tc.severity {
			t.Errorf("Severity(%q, %q) = %q, want %q", tc.tier, tc.detected, got, tc.severity)
		}
		if got := tiers.Name(tc.tier); got != tc.name {
			t.Errorf("Name(%q) = %q, want %q", tc.tier, got, tc.name)
		}
		if got := tiers.Rank(tc.tier); got != tc.rank {
			t.Errorf("Rank(%q) = %d, want %d", tc.tier, got, tc.rank)
		}
	}
	withDefault := anomaly.Tiers{Levels: tiers.Levels, Default: "tier-3"}
	if got := withDefault.Severity("", "critical"); got != "warning" {
		t.Errorf("a service without a tier takes the default tier's severity: got %q", got)
	}
	if got := withDefault.Name("unknown"); got != "tier-3" {
		t.Errorf("Name of an unlisted tier with a default: got %q", got)
	}
}

// A tier-1 service's failure burst outranks a tier-3 one's, however rare
// the tier-3 one is; within a tier, critical first, then the rarer.
func TestTiersCompare(t *testing.T) {
	tiers := anomaly.DefaultTiers
	alerts := []anomaly.Ranked{
		{Tier: "tier-3", Severity: "warning", Tail: 1e-12},
		{Tier: "", Severity: "critical", Tail: 1e-9},
		{Tier: "tier-1", Severity: "critical", Tail: 1e-3},
		{Tier: "tier-2", Severity: "warning", Tail: 1e-4},
		{Tier: "tier-2", Severity: "critical", Tail: 1e-3},
		{Tier: "tier-2", Severity: "warning", Tail: 1e-6},
		{Tier: "tier-1", Severity: "critical", Tail: 1e-5},
	}
	slices.SortStableFunc(alerts, tiers.Compare)
	var got []string
	for _, a := range alerts {
		got = append(got, a.Tier+"/"+a.Severity)
	}
	want := []string{"tier-1/critical", "tier-1/critical", "tier-2/critical", "tier-2/warning", "tier-2/warning", "tier-3/warning", "/critical"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if alerts[0].Tail != 1e-5 || alerts[3].Tail != 1e-6 {
		t.Errorf("within a tier and severity the rarer comes first: %+v", alerts)
	}
}

func TestTiersValidate(t *testing.T) {
	if err := anomaly.DefaultTiers.Validate(); err != nil {
		t.Errorf("DefaultTiers: %v", err)
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"ok", "levels: [{name: gold, severity: critical}, {name: silver, aliases: [s], severity: detected}]\ndefault: silver", ""},
		{"no name", "levels: [{severity: critical}]", "tiers.levels[0].name: required"},
		{"bad severity", "levels: [{name: gold, severity: critical}, {name: silver, severity: page}]",
			`tiers.levels[1].severity: want critical, warning, info or detected, got "page"`},
		{"no severity", "levels: [{name: gold}]", `tiers.levels[0].severity: want critical, warning, info or detected, got ""`},
		{"alias twice", "levels: [{name: gold, severity: critical}, {name: silver, aliases: [Gold], severity: warning}]",
			`tiers.levels[1].aliases[0]: "Gold" already names tier gold`},
		{"empty alias", "levels: [{name: gold, aliases: [' '], severity: critical}]", "tiers.levels[0].aliases[0]: must not be empty"},
		{"unknown default", "levels: [{name: gold, severity: critical}]\ndefault: bronze", `tiers.default: "bronze" is none of the levels`},
	} {
		var tiers anomaly.Tiers
		if err := yaml.Unmarshal([]byte(tc.yaml), &tiers); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err := tiers.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestTiersNameSQL: the tier label in SQL (the anomalies dashboard's) is
// Name's, NoTier for none, on ClickHouse, for listed tiers, aliases,
// unlisted ones and none, with and without a default.
func TestTiersNameSQL(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	custom := anomaly.Tiers{Levels: []anomaly.Tier{{Name: "Gold", Aliases: []string{"tier-1", "1"}, Severity: "critical"},
		{Name: "silver", Aliases: []string{"s"}, Severity: "detected"}}, Default: "S"}
	for name, tiers := range map[string]anomaly.Tiers{
		"default": anomaly.DefaultTiers, "default with tier-3": {Levels: anomaly.DefaultTiers.Levels, Default: "tier-3"},
		"custom": custom, "none": {},
	} {
		for _, tier := range []string{"", "tier-1", "1", "tier2", "t2", "tier-3", "gold", "silver", "s", "weird", "o'neil"} {
			want := tiers.Name(tier)
			if want == "" {
				want = anomaly.NoTier
			}
			var got string
			if err := st.Conn().QueryRow(context.Background(), "SELECT "+tiers.NameSQL("x")+" FROM (SELECT ? AS x)", tier).Scan(&got); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got != want {
				t.Errorf("%s: tier %q is %q in SQL, want %q", name, tier, got, want)
			}
		}
	}
}
