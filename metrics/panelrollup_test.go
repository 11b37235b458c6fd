package metrics_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// panelRows runs a panel statement and renders its rows: value, or
// key and value, or time, value and partial.
func panelRows(t *testing.T, st *store.Store, sql string) string {
	t.Helper()
	rows, err := st.Conn().Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rows.Close()
	f := func(v *float64) string {
		if v == nil {
			return "NULL"
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	}
	var out []string
	n := len(rows.Columns())
	for rows.Next() {
		var key string
		var at time.Time
		var v, partial *float64
		var err error
		switch n {
		case 1:
			err = rows.Scan(&v)
			out = append(out, f(v))
		case 2:
			err = rows.Scan(&key, &v)
			out = append(out, key+" "+f(v))
		default:
			err = rows.Scan(&at, &v, &partial)
			out = append(out, at.UTC().Format(time.DateTime)+" "+f(v)+" "+f(partial))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "; ")
}

// wholeDays are the UTC midnights at or before from and at or after to,
// as SQL: the raw-row range a panel reading the rollup over [from, to)
// counts.
func wholeDays(from, to time.Time) (string, string) {
	day := 24 * time.Hour
	return fmt.Sprintf("toDateTime(%d)", from.Truncate(day).Unix()), fmt.Sprintf("toDateTime(%d)", to.Add(day-time.Second).Truncate(day).Unix())
}

// tableRows runs a panel table's statement and renders its rows.
func tableRows(t *testing.T, st *store.Store, sql string) []string {
	t.Helper()
	rows, err := st.Conn().Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]any, len(rows.ColumnTypes()))
		for i, ct := range rows.ColumnTypes() {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, v := range vals {
			rv := reflect.Indirect(reflect.ValueOf(v))
			switch {
			case rv.Kind() == reflect.Pointer && rv.IsNil():
				cols = append(cols, "NULL")
			default:
				cols = append(cols, fmt.Sprint(reflect.Indirect(rv).Interface()))
			}
		}
		out = append(out, strings.Join(cols, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPanelRollupOracle: the panels that read the KPI rollup give exactly
// the raw-row statements' rows over the same whole UTC days, for every KPI
// they cover, bucketed, grouped and filtered, over ranges cut at any
// second, of whole days, inside one day and reaching into the day the
// rollup was built in, on a disordered stream with duplicates, replays and
// late messages. A row stored after the build shows once it is built
// again, and not before: the panels read the rollup, and say when it was
// built.
func TestPanelRollupOracle(t *testing.T) {
	ctx := context.Background()
	end := time.Now().UTC().Truncate(24 * time.Hour)
	st := testenv.Store(t, testenv.Database(t))
	stream := oracleStream(t, 21, end, 4)
	for i, b := range stream {
		writeEvents(t, st, b)
		if i == 2 {
			writeEvents(t, st, stream[1])
		}
	}
	day := 24 * time.Hour
	var svc, team string
	if err := st.Conn().QueryRow(ctx, `SELECT any(service), any(team) FROM deployment_events WHERE environment = 'production'`).Scan(&svc, &team); err != nil {
		t.Fatal(err)
	}
	// Open critical patch targets due 3 hours after the end of the range
	// cut at seconds (below), before the midnight after it: not yet due
	// nor overdue at the range's end, both at that midnight.
	due := end.Add(-2*day + 20*time.Hour)
	var edge []*event.Event
	for i := range 2 {
		id := fmt.Sprintf("edge-patch-%d", i)
		edge = append(edge, &event.Event{Kind: event.KindPatch, ID: id, Time: due.Add(-7 * day), Patch: &event.Patch{
			ID: id, Severity: event.SeverityCritical, Target: fmt.Sprintf("host-%d", i), Service: svc, Team: team,
			Environment: "production", ReleasedAt: due.Add(-7 * day)}})
	}
	writeEvents(t, st, edge)
	r, built, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{})
	if err != nil || !built {
		t.Fatalf("rollup: built %v, %v", built, err)
	}
	ranges := []struct {
		name     string
		from, to time.Time
	}{
		{"whole days", end.Add(-30 * day), end},
		{"cut at seconds", end.Add(-30*day + 5*time.Hour + 13*time.Minute + 7*time.Second), end.Add(-2*day + 17*time.Hour)},
		{"into the day of the build", end.Add(-20*day + 3*time.Hour), time.Now().UTC()},
		{"inside a day", end.Add(-5*day + 2*time.Hour), end.Add(-5*day + 9*time.Hour)},
		{"before and after the rows", end.Add(-60 * day), end.Add(2 * day)},
	}
	only := func(dim, value string) func(string) string {
		return func(col string) string {
			if col == dim {
				return col + " = '" + value + "'"
			}
			return "1"
		}
	}
	kpis := []string{metrics.PanelDeploymentFrequency, metrics.PanelChangeFailureRate, metrics.PanelReworkRate, metrics.PanelDeployments,
		metrics.PanelLeadTime, metrics.PanelRecoveryTime, metrics.PanelIncidents, metrics.PanelMTTR, metrics.PanelMTTD, metrics.PanelMTTA,
		metrics.PanelPatchLatency, metrics.PanelPatchCompliance, metrics.PanelPatchesOverdue}
	sqlTime := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	// compare runs each KPI over the range in each of the shapes (bucket
	// or group) with the filter, and counts the values that agree and
	// those that differ.
	compare := func(name string, from, to time.Time, filter func(string) string, shapes ...metrics.PanelOptions) (same, differ int) {
		for _, kpi := range kpis {
			for _, o := range shapes {
				if o.GroupBy == "severity" && kpi != metrics.PanelIncidents && !strings.HasPrefix(kpi, "patch") {
					continue
				}
				o.Filter, o.Rollup = filter, true
				o.From, o.To = sqlTime(from), sqlTime(to)
				fast, err := metrics.PanelSQL(kpi, o)
				if err != nil {
					t.Fatal(err)
				}
				// The same days; patch deadlines judged at the range's end.
				o.Rollup, o.JudgeAt = false, sqlTime(to)
				o.From, o.To = wholeDays(from, to)
				raw, err := metrics.PanelSQL(kpi, o)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := panelRows(t, st, fast), panelRows(t, st, raw); got != want {
					differ++
					if name != "stale" {
						t.Errorf("%s, %s %s %s: rollup\n%s\nraw rows\n%s", name, kpi, o.Bucket, o.GroupBy, got, want)
					}
				} else {
					same += strings.Count(want, ";") + 1 - strings.Count(want, "NULL")
				}
			}
		}
		return same, differ
	}
	values := 0
	for i, rg := range ranges {
		shapes := []metrics.PanelOptions{{}}
		if i == 1 || i == 2 {
			shapes = append(shapes, metrics.PanelOptions{Bucket: "week"}, metrics.PanelOptions{GroupBy: "service"})
		}
		if i == 1 {
			shapes = append(shapes, metrics.PanelOptions{Bucket: "month"}, metrics.PanelOptions{GroupBy: "severity"})
		}
		n, _ := compare(rg.name, rg.from, rg.to, nil, shapes...)
		values += n
	}
	for _, c := range []struct {
		name   string
		filter func(string) string
		shape  metrics.PanelOptions
	}{{"one service", only("service", svc), metrics.PanelOptions{}}, {"one service", only("service", svc), metrics.PanelOptions{Bucket: "week"}},
		{"one team", only("team", team), metrics.PanelOptions{Bucket: "month"}}} {
		n, _ := compare(c.name, ranges[1].from, ranges[1].to, c.filter, c.shape)
		values += n
	}
	if values < 150 {
		t.Errorf("only %d values compared", values)
	}
	// The KPIs of several ranges in one statement: each as the panel
	// statement of its range gives it.
	periodKPIs := []string{metrics.PanelDeploymentFrequency, metrics.PanelChangeFailureRate, metrics.PanelReworkRate, metrics.PanelDeployments,
		metrics.PanelLeadTime, metrics.PanelRecoveryTime, metrics.PanelIncidents, metrics.PanelMTTR, metrics.PanelMTTD, metrics.PanelMTTA,
		metrics.PanelPatchLatency, metrics.PanelPatchCompliance, metrics.PanelPatchesOverdue}
	for _, filter := range []func(string) string{nil, only("service", svc)} {
		var periods [][2]string
		for _, rg := range ranges {
			periods = append(periods, [2]string{sqlTime(rg.from), sqlTime(rg.to)})
		}
		sql, err := metrics.PanelPeriodsSQL(periodKPIs, periods, metrics.PanelOptions{Filter: filter, Rollup: true})
		if err != nil {
			t.Fatal(err)
		}
		got := tableRows(t, st, sql)
		if len(got) != 1 {
			t.Fatalf("periods: %d rows, want 1", len(got))
		}
		cols := strings.Fields(got[0])
		k, nonNull := 0, 0
		for i, rg := range ranges {
			for _, kpi := range periodKPIs {
				one, err := metrics.PanelSQL(kpi, metrics.PanelOptions{Filter: filter, Rollup: true, From: periods[i][0], To: periods[i][1]})
				if err != nil {
					t.Fatal(err)
				}
				if want := panelRows(t, st, one); cols[k] != want {
					t.Errorf("periods, %s, %s: %s, its own statement %s", rg.name, kpi, cols[k], want)
				} else if want != "NULL" {
					nonNull++
				}
				k++
			}
		}
		if nonNull < len(periodKPIs) {
			t.Errorf("periods: only %d values not NULL", nonNull)
		}
	}
	// The tables that read the rollup: the incidents with their causes,
	// and the patch latencies (a histogram's rows, in no order).
	tables, overdue := 0, 0
	for _, rg := range ranges[1:3] {
		for _, filter := range []func(string) string{nil, only("service", svc)} {
			for _, name := range []string{metrics.TableAttributions, metrics.TablePatchLatencies, metrics.TableOverduePatches} {
				o := metrics.PanelOptions{Filter: filter, Rollup: true, From: sqlTime(rg.from), To: sqlTime(rg.to)}
				fast, err := metrics.PanelTableSQL(name, o)
				if err != nil {
					t.Fatal(err)
				}
				o.Rollup, o.JudgeAt = false, sqlTime(rg.to)
				o.From, o.To = wholeDays(rg.from, rg.to)
				raw, err := metrics.PanelTableSQL(name, o)
				if err != nil {
					t.Fatal(err)
				}
				got, want := tableRows(t, st, fast), tableRows(t, st, raw)
				if name == metrics.TablePatchLatencies {
					slices.Sort(got)
					slices.Sort(want)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s, table %s: rollup %d rows\n%s\nraw rows %d\n%s", rg.name, name, len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
				}
				tables += len(want)
				if name == metrics.TableOverduePatches {
					overdue += len(want)
					if rg.name == "cut at seconds" && strings.Contains(strings.Join(got, "\n"), "edge-patch") {
						t.Errorf("%s: the overdue table lists targets due after the range's end", rg.name)
					}
				}
			}
		}
	}
	if tables < 50 || overdue == 0 {
		t.Errorf("only %d table rows compared, %d of them overdue patches", tables, overdue)
	}
	age, err := metrics.PanelRollupAgeSQL(metrics.PanelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	var secs float64
	if err := st.Conn().QueryRow(ctx, age).Scan(&at, &secs); err != nil || !at.Equal(r.BuiltAt) || secs < 0 || secs > 3600 {
		t.Errorf("rollup age: built at %v, %v s, %v; want %v", at, secs, err, r.BuiltAt)
	}

	// Deployments stored after the build, on days the rollup holds, are in
	// the rollup's panels once it is built again, and not before.
	var late []*event.Event
	for i := range 3 {
		at := end.Add(-time.Duration(10+i) * day)
		id := fmt.Sprintf("late-deploy-%d", i)
		late = append(late, &event.Event{Kind: event.KindDeployment, ID: id, Time: at, Deployment: &event.Deployment{
			ID: id, Service: svc, Team: team, Environment: "production", Status: event.DeploymentFailure,
			StartedAt: at.Add(time.Hour), FinishedAt: at.Add(2 * time.Hour)}})
	}
	writeEvents(t, st, late)
	if _, differ := compare("stale", ranges[0].from, ranges[0].to, nil, metrics.PanelOptions{}); differ == 0 {
		t.Error("the panels show rows stored after the rollup's build: they do not read it")
	}
	if _, built, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{}); err != nil || !built {
		t.Fatalf("rebuild: built %v, %v", built, err)
	}
	compare("rebuilt", ranges[0].from, ranges[0].to, nil, metrics.PanelOptions{})
}

// TestWindowPanelRollupOracle: with a rollup built with a change calendar
// and the catalog's tiers, the calendar's panels and their list of
// deployments read it and give exactly the raw-row statements' rows over
// the same whole UTC days, judging by the tiers given or by those of the
// stored catalog; without a calendar the panels read 0 from the rollup as
// the raw rows do.
func TestWindowPanelRollupOracle(t *testing.T) {
	ctx := context.Background()
	st, end, cat := windowStream(t)
	if _, err := metrics.StoreCatalog(ctx, st.Conn(), cat); err != nil {
		t.Fatal(err)
	}
	cal := windowCalendar(t)
	q := metrics.Query{Calendar: cal}.WithCatalog(cat)
	if _, built, err := metrics.RefreshRollup(ctx, st.Conn(), q); err != nil || !built {
		t.Fatalf("rollup: built %v, %v", built, err)
	}
	day := 24 * time.Hour
	sqlTime := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	ranges := [][2]time.Time{
		{end.Add(-30*day + 5*time.Hour + 13*time.Minute + 7*time.Second), end.Add(-2*day + 17*time.Hour)},
		{end.Add(-20*day + 3*time.Hour), time.Now().UTC()},
	}
	outside, listed := 0.0, 0
	for _, c := range []struct {
		name string
		o    metrics.PanelOptions
	}{
		{"tiers given", metrics.PanelOptions{Calendar: cal, ServiceTiers: q.ServiceTiers}},
		{"stored tiers", metrics.PanelOptions{Calendar: cal, StoredTiers: true}},
		{"no calendar", metrics.PanelOptions{}},
	} {
		for _, rg := range ranges {
			for _, shape := range []metrics.PanelOptions{{}, {Bucket: "week"}, {GroupBy: "service"}} {
				o := c.o
				o.Bucket, o.GroupBy, o.Rollup = shape.Bucket, shape.GroupBy, true
				o.From, o.To = sqlTime(rg[0]), sqlTime(rg[1])
				fast, err := metrics.PanelSQL(metrics.KPIDeploymentsOutsideWindow, o)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(fast, "kpi_window_daily") && c.o.Calendar != nil {
					t.Errorf("%s: the panel does not read the rollup's counts", c.name)
				}
				o.Rollup = false
				o.From, o.To = wholeDays(rg[0], rg[1])
				raw, err := metrics.PanelSQL(metrics.KPIDeploymentsOutsideWindow, o)
				if err != nil {
					t.Fatal(err)
				}
				got, want := panelRows(t, st, fast), panelRows(t, st, raw)
				if got != want {
					t.Errorf("%s, %v %s %s: rollup\n%s\nraw rows\n%s", c.name, rg, shape.Bucket, shape.GroupBy, got, want)
				}
				if shape.Bucket == "" && shape.GroupBy == "" {
					v, _ := strconv.ParseFloat(want, 64)
					outside += v
				}
			}
			o := c.o
			o.Filter, o.Rollup, o.From, o.To = nil, true, sqlTime(rg[0]), sqlTime(rg[1])
			fast, err := metrics.PanelTableSQL(metrics.TableOutsideWindow, o)
			if err != nil {
				t.Fatal(err)
			}
			o.Rollup = false
			o.From, o.To = wholeDays(rg[0], rg[1])
			raw, err := metrics.PanelTableSQL(metrics.TableOutsideWindow, o)
			if err != nil {
				t.Fatal(err)
			}
			got, want := tableRows(t, st, fast), tableRows(t, st, raw)
			if !slices.Equal(got, want) {
				t.Errorf("%s, %v, the list: rollup %d rows\n%s\nraw rows %d\n%s", c.name, rg, len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
			}
			listed += len(want)
		}
	}
	if outside == 0 || listed == 0 {
		t.Errorf("%v deployments outside windows, %d listed: the test proves nothing", outside, listed)
	}
	// A calendar the rollup was not built with has no value there (the
	// raw rows would count), not 0, until serve builds it.
	other, err := calendar.New(calendar.Config{TimeZone: "UTC", Windows: []calendar.WindowConfig{
		{Name: "mornings", Scope: calendar.Scope{Environments: []string{"production"}}, Days: []string{"mon-fri"}, From: "08:00", To: "12:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	o := metrics.PanelOptions{Calendar: other, StoredTiers: true, Rollup: true, From: sqlTime(ranges[0][0]), To: sqlTime(ranges[0][1])}
	sql, err := metrics.PanelSQL(metrics.KPIDeploymentsOutsideWindow, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := panelRows(t, st, sql); got != "NULL" {
		t.Errorf("a calendar the rollup lacks: %s, want NULL", got)
	}
}
