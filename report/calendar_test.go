package report_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/opsmetrics/opsmetrics/report"
)

// TestChangeCalendarSection: a fortnight of production deployments of two
// teams under a calendar of weekday windows (payments' own on Tuesday and
// Thursday) and a freeze, with an unplanned fix while an incident is
// open. The report's change calendar section counts, per team and
// environment, what the KPI counts, lists the offenders with the freeze
// first and then the longest wait for a window, names each one's actor
// and the window it missed, and lists the fix apart; without a calendar
// it says none is configured.
func TestChangeCalendarSection(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	paris, _ := time.LoadLocation("Europe/Paris")
	local := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var recs []store.Record
	deploy := func(id, service, team, env, actor string, start time.Time, unplanned bool) {
		d := &event.Deployment{ID: id, Service: service, Team: team, Environment: env, Status: event.DeploymentSuccess,
			StartedAt: start, FinishedAt: start.Add(10 * time.Minute), Actor: actor, Pipeline: service + "-cd", Unplanned: unplanned}
		recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindDeployment,
			ID: "e-" + id, Time: d.FinishedAt, Deployment: d}})
	}
	// Inside: payments on Tuesday and Thursday 11:00, search on weekdays 10:00.
	deploy("pay-tue", "checkout", "payments", "production", "ana", local("2026-11-03 11:00"), false)
	deploy("pay-thu", "checkout", "payments", "production", "ana", local("2026-11-05 11:00"), false)
	deploy("search-mon", "search", "discovery", "production", "bo", local("2026-11-02 10:00"), false)
	deploy("search-wed", "search", "discovery", "production", "bo", local("2026-11-04 10:00"), false)
	// Outside: payments on Monday 10:00 (allowed Tuesday 10:00: a day's
	// wait), Friday 18:00 (allowed Tuesday: the longest), search on
	// Wednesday 18:00 (allowed Thursday 09:00).
	deploy("pay-mon", "checkout", "payments", "production", "new-hire", local("2026-11-02 10:00"), false)
	deploy("pay-fri", "checkout", "payments", "production", "new-hire", local("2026-11-06 18:00"), false)
	deploy("search-eve", "search", "discovery", "production", "bo", local("2026-11-04 18:00"), false)
	// In the freeze of the 11th: search at 11:00, inside its window.
	deploy("search-freeze", "search", "discovery", "production", "release-bot", local("2026-11-11 11:00"), false)
	// An unplanned fix of search on Saturday while INC-9 is open.
	deploy("search-fix", "search", "discovery", "production", "bo", local("2026-11-07 03:00"), true)
	// Staging is not production: not judged.
	deploy("pay-staging", "checkout", "payments", "staging", "new-hire", local("2026-11-07 03:00"), false)
	recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindIncident, ID: "e-inc",
		Time: local("2026-11-07 02:00"), Incident: &event.Incident{ID: "INC-9", Service: "search", Environment: "production",
			DetectedAt: local("2026-11-07 02:00")}}})
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	prod := []string{"production"}
	cal, err := calendar.New(calendar.Config{TimeZone: "Europe/Paris",
		Windows: []calendar.WindowConfig{
			{Name: "payments-tue-thu", Scope: calendar.Scope{Environments: prod, Teams: []string{"payments"}},
				Days: []string{"tue", "thu"}, From: "10:00", To: "16:00"},
			{Name: "weekdays", Scope: calendar.Scope{Environments: prod}, Days: []string{"mon-fri"}, From: "09:00", To: "17:00"},
		},
		Freezes: []calendar.FreezeConfig{{Name: "armistice", Reason: "bank holiday", Scope: calendar.Scope{Environments: prod},
			From: "2026-11-11", To: "2026-11-12"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	from, to := local("2026-11-01 00:00"), local("2026-11-15 00:00")
	q := metrics.Query{Production: prod, Calendar: cal}
	r, err := report.Build(ctx, st.Conn(), report.Options{From: from, To: to, Location: paris, Query: q, Now: to})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	sec := section(t, b.String(), "calendar")

	// The figures are the KPI's.
	kq := q
	kq.From, kq.To, kq.By = from, to, []metrics.Dimension{metrics.Team, metrics.Environment}
	sums, err := metrics.Summaries(ctx, st.Conn(), kq)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][4]uint64{"payments": {4, 2, 0, 0}, "discovery": {5, 2, 1, 1}} // deployments, outside, in freeze, fixes
	deployed := 0
	for _, s := range sums {
		if s.Deployments == 0 { // the incident's slice
			continue
		}
		deployed++
		w := want[s.Slice[metrics.Team]]
		if got := [4]uint64{s.Deployments, s.DeploymentsOutsideWindow, s.DeploymentsInFreeze, s.UnplannedFixesOutsideWindow}; got != w {
			t.Errorf("the KPI of %v: %v, want %v", s.Slice, got, w)
		}
	}
	rows := rowsOf(sec, "calendar-slice")
	if len(rows) != 2 || deployed != 2 {
		t.Fatalf("%d rows by team and environment (%d slices with deployments), want 2:\n%s", len(rows), deployed, sec)
	}
	for _, row := range rows {
		switch {
		case strings.HasPrefix(row, "<td>payments</td><td>production</td>"):
			if !strings.Contains(row, `<td class="num">4</td><td class="num">2</td><td class="num">50.0%</td><td class="num">0</td><td class="num">0</td>`) {
				t.Errorf("payments' row %q, want 4 deployments, 2 outside, 50.0%%, none in a freeze, no fix", row)
			}
		case strings.HasPrefix(row, "<td>discovery</td><td>production</td>"):
			if !strings.Contains(row, `<td class="num">5</td><td class="num">2</td><td class="num">40.0%</td><td class="num">1</td><td class="num">1</td>`) {
				t.Errorf("discovery's row %q, want 5 deployments, 2 outside, 40.0%%, 1 in a freeze, 1 fix", row)
			}
		default:
			t.Errorf("unexpected row %q", row)
		}
	}
	brief := "4 of the 9 production deployments of the period (44.4%) broke the change calendar: 3 outside their windows, 1 in a freeze. " +
		"Unplanned fixes for an open incident deployed outside their windows or in a freeze: 1;"
	if !strings.Contains(sec, brief) {
		t.Errorf("the section does not say %q:\n%s", brief, sec)
	}

	// The offenders, the freeze first, then the longest wait.
	offenders := rowsOf(sec, "offender")
	var ids []string
	for _, row := range offenders {
		ids = append(ids, strings.SplitN(strings.SplitN(row, "</td><td>", 3)[1], "<", 2)[0])
	}
	if got := strings.Join(ids, " "); got != "search-freeze pay-fri pay-mon search-eve" {
		t.Errorf("offenders %q, want search-freeze pay-fri pay-mon search-eve", got)
	}
	if len(offenders) == 4 {
		for _, w := range []string{"<td>Fri 2026-11-06 18:00</td>", "<td>new-hire</td>", "<td>checkout-cd</td>", "<td>outside its windows</td>",
			"<td>payments-tue-thu: tue, thu 10:00–16:00 (Europe/Paris)</td>", "<td>Tue 2026-11-10 10:00</td>"} {
			if !strings.Contains(offenders[1], w) {
				t.Errorf("pay-fri's row %q lacks %s", offenders[1], w)
			}
		}
		if w := "<td>armistice: frozen 2026-11-11 00:00 to 2026-11-12 00:00 (Europe/Paris): bank holiday</td>"; !strings.Contains(offenders[0], w) ||
			!strings.Contains(offenders[0], "<td>in a freeze</td>") {
			t.Errorf("the freeze's row %q lacks %s", offenders[0], w)
		}
	}
	if !strings.Contains(sec, "By actor, most first: new-hire (2), bo (1), release-bot (1).") {
		t.Errorf("the section does not rank the actors:\n%s", sec)
	}
	if fixes := rowsOf(sec, "fix"); len(fixes) != 1 || !strings.Contains(fixes[0], "<td>search-fix</td>") ||
		!strings.Contains(fixes[0], "<td>unplanned fix</td>") {
		t.Errorf("fixes %q, want search-fix's alone", fixes)
	}

	// Without a calendar, the section says so.
	r, err = report.Build(ctx, st.Conn(), report.Options{From: from, To: to, Location: paris, Query: metrics.Query{Production: prod}, Now: to})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if sec := section(t, b.String(), "calendar"); !strings.Contains(sec, "No change calendar is configured") || strings.Contains(sec, "<table") {
		t.Errorf("without a calendar:\n%s", sec)
	}
}
