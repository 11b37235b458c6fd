package metrics_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// windowCalendar is the change calendar of the window tests: payments
// deploys on Tuesdays and Thursdays, the rest of production on weekdays,
// tier-1 services on Tuesday to Thursday mornings, the data team over
// weekday nights, and production freezes over the year end.
func windowCalendar(t *testing.T) *calendar.Calendar {
	t.Helper()
	prod := []string{"production"}
	cal, err := calendar.New(calendar.Config{TimeZone: "Europe/Paris",
		Windows: []calendar.WindowConfig{
			{Name: "payments-tue-thu", Scope: calendar.Scope{Environments: prod, Teams: []string{"payments"}},
				Days: []string{"tue", "thu"}, From: "10:00", To: "16:00"},
			{Name: "production-weekdays", Scope: calendar.Scope{Environments: prod}, Days: []string{"mon-fri"}, From: "09:00", To: "17:00"},
			{Name: "tier-1-mornings", Scope: calendar.Scope{Environments: prod, Tiers: []string{"tier-1"}},
				Days: []string{"tue-thu"}, From: "09:00", To: "12:00"},
			{Name: "data-nights", Scope: calendar.Scope{Environments: prod, Teams: []string{"data"}},
				Days: []string{"mon-fri"}, From: "22:00", To: "02:00"},
		},
		Freezes: []calendar.FreezeConfig{{Name: "year-end", Reason: "year-end trading peak",
			Scope: calendar.Scope{Environments: prod}, From: "2026-12-19", To: "2027-01-04"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

// windowDeployments writes, as a CI tool would send them (native JSON by
// hand, through the real decoder), the deployments of the window tests
// and two incidents of checkout, and returns the range that holds them.
func windowDeployments(t *testing.T, st *store.Store) (from, to time.Time) {
	t.Helper()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	local := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	utc := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	deploy := func(id, service, team, env string, started, finished time.Time, extra string) string {
		start := ""
		if !started.IsZero() {
			start = fmt.Sprintf(`,"started_at":"%s"`, at(started))
		}
		return fmt.Sprintf(`{"kind":"deployment","event_id":"ci-%s","deployment_id":"%s","service":"%s","team":"%s","environment":"%s","status":"success"%s,"finished_at":"%s"%s}`,
			id, id, service, team, env, start, at(finished), extra)
	}
	// at starts a deployment that takes ten minutes.
	d := func(id, service, team string, start time.Time, extra string) string {
		return deploy(id, service, team, "production", start, start.Add(10*time.Minute), extra)
	}
	unplanned := `,"unplanned":true`
	dec := &event.Decoder{Now: func() time.Time { return local("2027-01-10 00:00") }}
	ingestJSON(t, st, dec,
		// Friday 18:00 in a Tuesday/Thursday team, by a new hire.
		d("pay-fri18", "checkout", "payments", local("2026-11-20 18:00"), `,"actor":"new-hire","pipeline":"checkout-cd"`),
		// The team's window decides: Monday 10:00 is outside although the weekdays window is open.
		d("pay-mon", "checkout", "payments", local("2026-11-16 10:00"), ""),
		d("pay-tue", "checkout", "payments", local("2026-11-17 11:00"), ""),
		// Tuesday 11:00 in the year-end freeze: the freeze overrides the window.
		d("pay-freeze", "checkout", "payments", local("2026-12-22 11:00"), ""),
		// An unplanned fix while INC-9 of checkout is open: counted apart.
		d("pay-fix", "checkout", "payments", local("2026-11-20 21:30"), unplanned),
		// Unplanned, but INC-9 was resolved at 23:00: outside.
		d("pay-late-fix", "checkout", "payments", local("2026-11-21 10:00"), unplanned),
		// An unplanned fix in the freeze, INC-10 open: counted apart.
		d("pay-freeze-fix", "checkout", "payments", local("2026-12-23 03:00"), unplanned),
		// Judged at the start (Thursday 15:50), not at the finish.
		deploy("pay-thu-started", "checkout", "payments", "production", local("2026-11-19 15:50"), local("2026-11-19 16:20"), ""),
		// No start: judged at the finish, Thursday 16:20, outside.
		deploy("pay-thu-nostart", "checkout", "payments", "production", time.Time{}, local("2026-11-19 16:20"), ""),
		// An overnight window: Saturday 01:30 belongs to Friday's 22:00–02:00.
		d("data-sat-0130", "etl", "data", local("2026-11-21 01:30"), ""),
		d("data-sat-0230", "etl", "data", local("2026-11-21 02:30"), ""),
		// DST: Paris leaves summer time on 25 October. 07:30 UTC is 09:30
		// on Friday the 23rd (CEST), inside; 08:30 on Monday the 26th (CET), outside.
		d("web-dst-fri", "web", "growth", utc("2026-10-23 07:30"), ""),
		d("web-dst-mon", "web", "growth", utc("2026-10-26 07:30"), ""),
		// A tier-1 service (from the catalog): its tier's window decides.
		d("ledger-wed", "ledger", "growth", local("2026-11-18 14:00"), ""),
		// Unplanned while an incident of another service is open: outside.
		d("web-fri-unplanned", "web", "growth", local("2026-11-20 21:00"), unplanned),
		// Not production: not counted.
		deploy("stg-fri18", "checkout", "payments", "staging", local("2026-11-20 18:00"), local("2026-11-20 18:10"), ""),
		fmt.Sprintf(`{"kind":"incident","event_id":"pd-9","incident_id":"INC-9","service":"checkout","environment":"production","impact_started_at":"%s","detected_at":"%s","resolved_at":"%s"}`,
			at(local("2026-11-20 20:00")), at(local("2026-11-20 20:05")), at(local("2026-11-20 23:00"))),
		fmt.Sprintf(`{"kind":"incident","event_id":"pd-10","incident_id":"INC-10","service":"checkout","environment":"production","detected_at":"%s"}`,
			at(local("2026-12-23 02:00"))),
	)
	return local("2026-10-19 00:00"), local("2027-01-10 00:00")
}

// TestDeploymentsOutsideWindow checks the KPI on hand-written deployments
// in the real ClickHouse: Friday evening in a Tuesday/Thursday team, a
// freeze over a window, a DST boundary, an overnight window, deployments
// with and without a start, and unplanned fixes for an open incident.
func TestDeploymentsOutsideWindow(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	from, to := windowDeployments(t, st)
	cal := windowCalendar(t)
	tiers := map[string]string{"Ledger": "Tier-1"} // as a catalog may write them

	type figures struct{ deployments, outside, freeze, fixes uint64 }
	for _, tc := range []struct {
		name  string
		q     metrics.Query
		want  map[string]figures // by team ("" for all)
		share float64            // of all
	}{
		{name: "all", q: metrics.Query{From: from, To: to, Calendar: cal, ServiceTiers: tiers},
			want: map[string]figures{"": {15, 9, 1, 2}}, share: 9.0 / 15},
		{name: "by team", q: metrics.Query{From: from, To: to, Calendar: cal, ServiceTiers: tiers, By: []metrics.Dimension{metrics.Team}},
			want: map[string]figures{"payments": {9, 5, 1, 2}, "data": {2, 1, 0, 0}, "growth": {4, 3, 0, 0}}},
		// Without the catalog ledger has no tier: the weekdays window decides.
		{name: "no tiers", q: metrics.Query{From: from, To: to, Calendar: cal},
			want: map[string]figures{"": {15, 8, 1, 2}}, share: 8.0 / 15},
		{name: "no calendar", q: metrics.Query{From: from, To: to},
			want: map[string]figures{"": {15, 0, 0, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sums, err := metrics.Summaries(ctx, st.Conn(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range sums {
				team := s.Slice[metrics.Team]
				if s.Deployments == 0 {
					continue // the incidents' slice: they name no team
				}
				n++
				got := figures{s.Deployments, s.DeploymentsOutsideWindow, s.DeploymentsInFreeze, s.UnplannedFixesOutsideWindow}
				if got != tc.want[team] {
					t.Errorf("team %q: (deployments, outside, in freeze, fixes) = %v, want %v", team, got, tc.want[team])
				}
				switch {
				case tc.q.Calendar == nil && s.OutsideWindowShare != nil:
					t.Errorf("a share %v with no calendar", *s.OutsideWindowShare)
				case tc.share > 0 && (s.OutsideWindowShare == nil || *s.OutsideWindowShare != tc.share):
					t.Errorf("share %v, want %v", deref(s.OutsideWindowShare), tc.share)
				}
			}
			if n != len(tc.want) {
				t.Errorf("%d slices with deployments, want %d", n, len(tc.want))
			}
		})
	}

	list, err := metrics.OutsideWindow(ctx, st.Conn(), metrics.Query{From: from, To: to, Calendar: cal, ServiceTiers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	byID := map[string]metrics.WindowDeployment{}
	for _, d := range list {
		ids = append(ids, d.ID)
		byID[d.ID] = d
	}
	want := []string{"web-dst-mon", "pay-mon", "ledger-wed", "pay-thu-nostart", "pay-fri18", "web-fri-unplanned", "pay-fix",
		"data-sat-0230", "pay-late-fix", "pay-freeze", "pay-freeze-fix"}
	if !slices.Equal(ids, want) {
		t.Fatalf("deployments outside the calendar, oldest first:\n got %v\nwant %v", ids, want)
	}
	// Go's verdict of each agrees with the SQL's class, and names what was missed.
	for _, d := range list {
		if v := d.Verdict(cal); string(v.Class) != d.Class {
			t.Errorf("%s: SQL class %s, Classify %s", d.ID, d.Class, v.Class)
		}
	}
	fri := byID["pay-fri18"]
	if v := fri.Verdict(cal); fri.Actor != "new-hire" || fri.Pipeline != "checkout-cd" || fri.Team != "payments" ||
		!slices.Equal(v.Windows, []string{"payments-tue-thu"}) || !strings.HasPrefix(v.NextAllowed.Format(time.RFC3339), "2026-11-24T10:00:00+01:00") {
		t.Errorf("pay-fri18: %+v, verdict %+v", fri, v)
	}
	if v := byID["pay-freeze"].Verdict(cal); v.Freeze != "year-end" || v.FreezeReason != "year-end trading peak" {
		t.Errorf("pay-freeze: verdict %+v, want the year-end freeze", v)
	}
	if d := byID["ledger-wed"]; d.Tier != "tier-1" || !slices.Equal(d.Verdict(cal).Windows, []string{"tier-1-mornings"}) {
		t.Errorf("ledger-wed: tier %q, verdict %+v", d.Tier, d.Verdict(cal))
	}
	if d := byID["pay-fix"]; d.Fix != 1 || d.Class != string(calendar.UnplannedFix) {
		t.Errorf("pay-fix: %+v, want an unplanned fix", d)
	}

	// The panel statement, as Grafana runs it, counts what Summaries counts,
	// over all and for one team; its table lists the same deployments.
	o := metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()), To: fmt.Sprintf("toDateTime(%d)", to.Unix()),
		Calendar: cal, ServiceTiers: tiers}
	for _, tc := range []struct {
		team string
		want float64
	}{{"", 9}, {"payments", 5}} {
		po := o
		if tc.team != "" {
			po.Filter = func(col string) string {
				if col == "team" {
					return "team = '" + tc.team + "'"
				}
				return "1"
			}
		}
		sql, err := metrics.PanelSQL(metrics.KPIDeploymentsOutsideWindow, po)
		if err != nil {
			t.Fatal(err)
		}
		var got *float64
		if err := st.Conn().QueryRow(ctx, sql).Scan(&got); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
		if got == nil || *got != tc.want {
			t.Errorf("panel, team %q: %v, want %v as Summaries", tc.team, deref(got), tc.want)
		}
	}
	sql, err := metrics.PanelTableSQL(metrics.TableOutsideWindow, o)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Conn().Query(ctx, sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	var listed []string
	for rows.Next() {
		var when time.Time
		var id, service, team, env, actor, pipeline, version, class string
		if err := rows.Scan(&when, &id, &service, &team, &env, &actor, &pipeline, &version, &class); err != nil {
			t.Fatal(err)
		}
		if !when.Equal(byID[id].Time) || actor != byID[id].Actor {
			t.Errorf("table row %s at %s by %q, want %s by %q", id, when, actor, byID[id].Time, byID[id].Actor)
		}
		listed = append(listed, id)
	}
	rows.Close()
	var breaking []string
	for _, id := range want {
		if c := byID[id].Class; c != string(calendar.UnplannedFix) {
			breaking = append(breaking, id)
		}
	}
	slices.Reverse(breaking)
	if !slices.Equal(listed, breaking) {
		t.Errorf("table, newest first:\n got %v\nwant %v", listed, breaking)
	}
}

// TestExplainOutsideWindow: `kpi explain deployments_outside_window` lists
// every production deployment of the range with its class, names the
// window missed (or the freeze hit) of those that broke the calendar and
// when they would have been allowed, and notes the KPI's figures, which
// are Summaries'.
func TestExplainOutsideWindow(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	from, to := windowDeployments(t, st)
	cal := windowCalendar(t)
	q := metrics.Query{From: from, To: to, Calendar: cal, ServiceTiers: map[string]string{"Ledger": "Tier-1"}}
	e, err := metrics.Explain(ctx, st.Conn(), metrics.KPIDeploymentsOutsideWindow, q)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := metrics.Summaries(ctx, st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	s := sums[0]
	classes := map[string]int{}
	var fri []string
	for _, r := range e.Rows {
		classes[r[9]]++
		if r[0] == "pay-fri18" {
			fri = r
		}
	}
	if uint64(len(e.Rows)) != s.Deployments || uint64(classes["outside_window"]+classes["in_freeze"]) != s.DeploymentsOutsideWindow ||
		uint64(classes["unplanned_fix"]) != s.UnplannedFixesOutsideWindow || uint64(classes["in_freeze"]) != s.DeploymentsInFreeze {
		t.Errorf("rows by class %v of %d; Summaries: %d deployments, %d outside, %d in freeze, %d fixes", classes, len(e.Rows),
			s.Deployments, s.DeploymentsOutsideWindow, s.DeploymentsInFreeze, s.UnplannedFixesOutsideWindow)
	}
	if len(fri) == 0 || fri[7] != "new-hire" || fri[10] != "payments-tue-thu: tue, thu 10:00–16:00 (Europe/Paris)" ||
		fri[11] != "2026-11-24 09:00" {
		t.Errorf("pay-fri18's row %q, want new-hire, the payments window and allowed from Tuesday 10:00 Paris (09:00 UTC)", fri)
	}
	want := fmt.Sprintf("deployments_outside_window: %d (%d outside_window + %d in_freeze) of %d deployments", s.DeploymentsOutsideWindow,
		classes["outside_window"], classes["in_freeze"], s.Deployments)
	if len(e.Notes) != 1 || !strings.HasPrefix(e.Notes[0], want) {
		t.Errorf("notes %q, want %q…", e.Notes, want)
	}
	q.Calendar = nil
	if e, err := metrics.Explain(ctx, st.Conn(), metrics.KPIDeploymentsOutsideWindow, q); err != nil || len(e.Rows) != 0 ||
		len(e.Notes) != 1 || !strings.Contains(e.Notes[0], "no change calendar is configured") {
		t.Errorf("without a calendar: %+v (%v)", e, err)
	}
}
