package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestExporter refreshes the rolling gauges from real data and checks the
// exposition with promtool: per service (its team "(none)" when it has
// none), per team and for the organisation, and no label with an empty
// value, though a change that reached no environment slices by none.
func TestExporter(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	now := time.Now().UTC().Truncate(time.Second)
	paid := func(e *event.Event) *event.Event { e.Deployment.Team = "payments"; return e }
	write(t, st,
		dep("x1", "checkout", "production", now.Add(-2*24*time.Hour), event.DeploymentSuccess),
		dep("x2", "checkout", "production", now.Add(-20*24*time.Hour), event.DeploymentFailure),
		paid(dep("x3", "billing", "production", now.Add(-3*24*time.Hour), event.DeploymentSuccess)),
		paid(dep("x4", "ledger", "production", now.Add(-4*24*time.Hour), event.DeploymentFailure)),
		&event.Event{Kind: event.KindChange, ID: "e-cx", Time: now.Add(-time.Hour),
			Change: &event.Change{ID: "c-x", Service: "checkout", AuthoredAt: now.Add(-time.Hour)}},
	)
	exp := metrics.NewExporter(st.Conn(), metrics.Query{}, nil, testenv.Logger(t))
	if err := exp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	text := []byte(testenv.Exposition(t, exp))
	for _, want := range []string{
		`opsmetrics_kpi_deployments{environment="production",service="checkout",team="(none)",window="7d"} 1`,
		`opsmetrics_kpi_deployments{environment="production",service="checkout",team="(none)",window="30d"} 2`,
		`opsmetrics_kpi_change_failure_ratio{environment="production",service="checkout",team="(none)",window="30d"} 0.5`,
		`opsmetrics_kpi_change_failure_ratio{environment="production",service="checkout",team="(none)",window="7d"} 0`,
		`opsmetrics_kpi_change_failure_ratio{environment="production",service="ledger",team="payments",window="7d"} 1`,
		`opsmetrics_kpi_team_deployments{team="payments",window="7d"} 2`,
		`opsmetrics_kpi_team_change_failure_ratio{team="payments",window="7d"} 0.5`,
		`opsmetrics_kpi_org_deployments{window="30d"} 4`,
		`opsmetrics_kpi_org_change_failure_ratio{window="30d"} 0.5`,
		`opsmetrics_kpi_org_deployments_per_day{window="7d"} 0.2857142857142857`,
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^opsmetrics_\w+\{[^}]*=""`).Find(text); m != nil {
		t.Errorf("a label with an empty value: %s", m)
	}
	if bytes.Contains(text, []byte("opsmetrics_kpi_team_deployments{team=\"(none)\"")) {
		t.Error("services without a team exported as a team")
	}
	if bytes.Contains(text, []byte("opsmetrics_kpi_mttr_median_seconds{")) {
		t.Error("MTTR exported without incidents; absent values must have no sample")
	}
	if bytes.Contains(text, []byte("opsmetrics_kpi_org_deployments_outside_window{")) {
		t.Error("deployments outside window exported with no change calendar")
	}
	testenv.CheckMetrics(t, string(text))

	// With a change calendar frozen for the century, every deployment
	// breaks it.
	cal, err := calendar.New(calendar.Config{Freezes: []calendar.FreezeConfig{{Name: "century", From: "2000-01-01", To: "2100-01-01"}}})
	if err != nil {
		t.Fatal(err)
	}
	exp = metrics.NewExporter(st.Conn(), metrics.Query{Calendar: cal}, nil, testenv.Logger(t))
	if err := exp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	text = []byte(testenv.Exposition(t, exp))
	for _, want := range []string{
		`opsmetrics_kpi_org_deployments_outside_window{window="30d"} 4`,
		`opsmetrics_kpi_org_deployments_outside_window_ratio{window="30d"} 1`,
		`opsmetrics_kpi_team_deployments_outside_window{team="payments",window="7d"} 2`,
		`opsmetrics_kpi_org_unplanned_fixes_outside_window{window="7d"} 0`,
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	testenv.CheckMetrics(t, string(text))
}

// TestExporterHostileLabels exports slices whose names are huge, hold
// control and bidirectional characters or invalid UTF-8, and more services
// than the cap: every label value is cut and escaped, at most the cap of
// services is exported, and promtool accepts the exposition.
func TestExporterHostileLabels(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	now := time.Now().UTC().Truncate(time.Second)
	hostile := []string{strings.Repeat("s", 900<<10), "nul\x00esc\x1b[31mcr\rend", "rtl\u202Eevil", "caf\xe9", "line\u2028sep"}
	var events []*event.Event
	for i, s := range hostile {
		e := dep(fmt.Sprintf("h%d", i), s, "production", now.Add(-time.Hour), event.DeploymentSuccess)
		// More deployments for the hostile services: they rank first.
		events = append(events, e, dep(fmt.Sprintf("h%d-b", i), s, "production", now.Add(-2*time.Hour), event.DeploymentSuccess))
	}
	for i := range 20 {
		events = append(events, dep(fmt.Sprintf("n%d", i), fmt.Sprintf("svc-%02d", i), "production", now.Add(-time.Hour), event.DeploymentSuccess))
	}
	write(t, st, events...)
	exp := metrics.NewExporter(st.Conn(), metrics.Query{}, nil, testenv.Logger(t))
	exp.LimitLabels(64, 8)
	if err := exp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	text := testenv.Exposition(t, exp)
	if len(text) > 64<<10 {
		t.Fatalf("/metrics: %d bytes", len(text))
	}
	services := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if strings.ContainsAny(line, "\x00\x1b\r\u202E\u2028") || !utf8.ValidString(line) {
			t.Errorf("raw control, bidi or invalid character in %q", line)
		}
		if _, rest, ok := strings.Cut(line, `service="`); ok && strings.HasPrefix(line, "opsmetrics_kpi_deployments{") {
			v, _, _ := strings.Cut(rest, `",`)
			services[v] = true
			if len(v) > 64+8 { // escaping may add the backslashes of the text format
				t.Errorf("label value of %d bytes: %.80s", len(v), v)
			}
		}
	}
	if len(services) != 8 {
		t.Errorf("%d services exported, want the cap of 8: %v", len(services), services)
	}
	for _, want := range []string{`rtl\\u202Eevil`, `caf\\xe9`, `nul\\u0000esc\\u001B[31mcr\\u000Dend`, "ssssssss…"} {
		if !strings.Contains(text, want) {
			t.Errorf("no escaped or cut label %q in the exposition", want)
		}
	}
	if !strings.Contains(text, "opsmetrics_kpi_slices_dropped ") || strings.Contains(text, "opsmetrics_kpi_slices_dropped 0\n") {
		t.Errorf("dropped slices not counted")
	}
	testenv.CheckMetrics(t, text)
}

func TestLabelValue(t *testing.T) {
	q := regexp.QuoteMeta
	for _, c := range []struct{ in, want string }{ // want is a regular expression
		{"checkout", q("checkout")},
		{"tab\there", q(`tab\u0009here`)},
		{"über", q("über")},
		{strings.Repeat("a", 40), q(strings.Repeat("a", 20)+"…") + "[0-9a-f]{8}"},
	} {
		got := metrics.LabelValue(c.in, 31)
		if !regexp.MustCompile("^"+c.want+"$").MatchString(got) || len(got) > 31 {
			t.Errorf("LabelValue(%.20q) = %q, want %q (at most 31 bytes)", c.in, got, c.want)
		}
	}
	if metrics.LabelValue(strings.Repeat("a", 40)+"x", 31) == metrics.LabelValue(strings.Repeat("a", 40)+"y", 31) {
		t.Error("two long values cut to the same label")
	}
}
