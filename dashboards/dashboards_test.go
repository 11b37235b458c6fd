package dashboards_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/dashboards"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden dashboards in testdata")

func TestMain(m *testing.M) { testenv.Main(m) }

// testOptions build the dashboards with the change calendar of
// testdata/change-calendar.yaml.
func testOptions(t *testing.T) dashboards.Options {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "change-calendar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg calendar.Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cal, err := calendar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dashboards.Options{Calendar: cal}
}

// expand expands the plugin's macros and the dashboard variables in sql as
// the grafana-clickhouse-datasource plugin does, for the range [from, to].
func expand(sql string, from, to time.Time, vars map[string]string) string {
	f, t := fmt.Sprint(from.Unix()), fmt.Sprint(to.Unix())
	sql = regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`).ReplaceAllString(sql,
		"$1 >= toDateTime("+f+") AND $1 <= toDateTime("+t+")")
	sql = strings.NewReplacer("$__fromTime", "toDateTime("+f+")", "$__toTime", "toDateTime("+t+")").Replace(sql)
	for k, v := range vars {
		v = strings.ReplaceAll(v, "'", "\\'")
		sql = strings.ReplaceAll(sql, "${"+k+":singlequote}", "'"+v+"'")
		sql = strings.ReplaceAll(sql, "${"+k+"}", v)
	}
	return sql
}

// ClickHouse queries of a dashboard: its panels', its annotations' and its
// variables', by a name for messages.
func queries(t *testing.T, d dashboard.Dashboard) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for i, q := range p.Panel.Targets {
			if ch, ok := q.(dashboards.ClickHouseQuery); ok {
				out[fmt.Sprintf("panel %q target %d", *p.Panel.Title, i)] = ch.RawSQL
			}
		}
	}
	for _, a := range d.Annotations.List {
		if ch, ok := a.Target.(dashboards.ClickHouseQuery); ok {
			out["annotation "+a.Name] = ch.RawSQL
		}
	}
	for _, v := range d.Templating.List {
		if v.Datasource != nil && v.Datasource.Type != nil && *v.Datasource.Type == dashboards.PluginID && v.Query != nil && v.Query.String != nil {
			out["variable "+v.Name] = *v.Query.String
		}
	}
	return out
}

// TestPanelSQLOnClickHouse runs every ClickHouse query of every dashboard,
// with its macros expanded, against ClickHouse 18.16 over a generated
// stream whose baselines were learnt and anomalies detected, and checks
// the columns and types each panel expects.
func TestPanelSQLOnClickHouse(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	stats := testenv.StoreGenerated(t, st, generator.Config{Services: 6, Teams: 3, Days: 80, Seed: 7, End: end, Anomalies: true}, 1<<20)
	log := testenv.Logger(t)
	steps := []metrics.Step{metrics.StepDay}
	if _, err := anomaly.Relearn(ctx, st.Conn(), baselines.Config{Steps: steps}, stats.Anomalies[0].Start, log); err != nil {
		t.Fatal(err)
	}
	if _, err := anomaly.Detect(ctx, st.Conn(), anomaly.Config{Steps: steps}, end.Add(time.Hour), log); err != nil {
		t.Fatal(err)
	}
	// The month the panels draw, judged point-in-time.
	if _, err := anomaly.Backfill(ctx, st.Conn(), anomaly.BackfillOptions{From: end.AddDate(0, 0, -30), To: end,
		Learn: baselines.Config{Steps: steps}, Detect: anomaly.Config{Steps: steps}, Now: end.Add(time.Hour)}, log); err != nil {
		t.Fatal(err)
	}
	// The variables as an alert link sets them: a series with an anomaly.
	rows := testenv.Rows(t, st, "SELECT kpi, step, service, team, environment, series FROM anomalies ORDER BY series LIMIT 1")
	if len(rows) != 1 {
		t.Fatal("no anomaly recorded to draw")
	}
	f := strings.Split(rows[0], " | ")
	vars := map[string]string{"kpi": f[0], "step": f[1], "service": f[2], "team": f[3], "environment": f[4], "series": f[5],
		"system": "__all", "tier": "__all"}
	from, to := end.AddDate(0, 0, -30), end.Add(time.Hour)
	checkSeriesOptions(t, st, from, to, vars)

	want := map[string][]string{ // leading columns and their ClickHouse types, by query
		dashboards.SeriesSQL: {"time DateTime('UTC')", "observed Float64", "expected Nullable(Float64)", "lower Nullable(Float64)",
			"upper Nullable(Float64)", "flagged Nullable(Float64)"},
		dashboards.AnomaliesSQL(anomaly.DefaultTiers): {"time DateTime('UTC')", "observed Float64", "expected Float64", "lower Float64", "upper Float64", "direction String",
			"severity String", "tail Float64", "alerted String", "owner String", "tier String", "factors String"},
		dashboards.AnnotationSQL: {"time DateTime('UTC')", "text String"},
		dashboards.UnitSQL:       {"unit String"},
		dashboards.ForecastSQL: {"time DateTime('UTC')", "observed Nullable(Float64)", "expected Nullable(Float64)", "lower Nullable(Float64)",
			"upper Nullable(Float64)"},
		dashboards.JudgementSQL: {"judgement String"},
	}
	// Pipeline health: what this test wrote was stored in the last hour, by
	// kind, and filtered by the slice variables.
	now := time.Now()
	all := map[string]string{"service": "__all", "team": "__all", "environment": "__all", "system": "__all", "tier": "__all"}
	var kinds, total uint64
	if err := st.Conn().QueryRow(ctx, "SELECT uniqExact(kind), sum(rows) FROM ("+
		expand(dashboards.StoredSQL, now.Add(-time.Hour), now.Add(time.Hour), all)+")").Scan(&kinds, &total); err != nil {
		t.Fatal(err)
	}
	if kinds != 4 || total != uint64(stats.Events) {
		t.Errorf("rows written in the last hour: %d kinds, %d rows; want 4 kinds and the %d written", kinds, total, stats.Events)
	}
	var one uint64
	if err := st.Conn().QueryRow(ctx, "SELECT sum(rows) FROM ("+expand(dashboards.StoredSQL, now.Add(-time.Hour), now.Add(time.Hour),
		map[string]string{"service": vars["service"], "team": "__all", "environment": "__all", "system": "__all", "tier": "__all"})+")").Scan(&one); err != nil {
		t.Fatal(err)
	}
	if one == 0 || one >= total {
		t.Errorf("rows of service %s: %d of %d; the service variable does not filter", vars["service"], one, total)
	}
	// The band is the judged one: every drawn interval of the judged
	// month has the band of its judgement, and the flagged points are the
	// intervals judged anomalous.
	var banded, drawn, flagged, same uint64
	if err := st.Conn().QueryRow(ctx, "SELECT countIf(upper > 0 AND upper >= lower), count(), countIf(isNotNull(flagged)), "+
		"countIf(isNotNull(flagged) AND flagged = observed) FROM ("+expand(dashboards.SeriesSQL, from, to, vars)+")").
		Scan(&banded, &drawn, &flagged, &same); err != nil {
		t.Fatal(err)
	}
	ready := testenv.Count(t, st, "SELECT count() FROM judged_intervals FINAL WHERE kpi = ? AND step = ? AND service = ? AND team = ? AND environment = ? AND status = 'ready'",
		vars["kpi"], vars["step"], vars["service"], vars["team"], vars["environment"])
	anomalous := testenv.Count(t, st, "SELECT count() FROM judged_intervals FINAL WHERE kpi = ? AND step = ? AND service = ? AND team = ? AND environment = ? AND anomaly = 1",
		vars["kpi"], vars["step"], vars["service"], vars["team"], vars["environment"])
	if drawn == 0 || banded != drawn || drawn > ready {
		t.Errorf("%d of %d drawn intervals of %v have a band; %d were judged by a ready baseline", banded, drawn, vars, ready)
	}
	// The month before was never judged: drawn without a band.
	if err := st.Conn().QueryRow(ctx, "SELECT countIf(isNotNull(upper)), count() FROM ("+
		expand(dashboards.SeriesSQL, from.AddDate(0, 0, -30), from.Add(-time.Hour), vars)+")").Scan(&banded, &drawn); err != nil {
		t.Fatal(err)
	}
	if drawn == 0 || banded != 0 {
		t.Errorf("the month never judged: %d of %d drawn intervals have a band, want none", banded, drawn)
	}
	if flagged != anomalous || same != flagged || flagged == 0 {
		t.Errorf("%d flagged points (%d at their value), want the %d intervals judged anomalous (at least the one alerted on)", flagged, same, anomalous)
	}
	checkForecast(t, st, from, to, vars)
	// The anomaly detection alerted on names its contributing factors in
	// the anomalies table of its series.
	explained := testenv.Rows(t, st, "SELECT kpi, step, service, team, environment, series, factors, "+
		"arrayStringConcat(arrayMap((d, v) -> concat(d, '=', v), factor_dimensions, factor_values), ', ') FROM anomalies FINAL "+
		"WHERE factors != '' ORDER BY notEmpty(factor_dimensions) DESC, series LIMIT 1")
	if len(explained) != 1 {
		t.Error("no recorded anomaly names its contributing factors")
	} else {
		f := strings.Split(explained[0], " | ")
		ev := map[string]string{"kpi": f[0], "step": f[1], "service": f[2], "team": f[3], "environment": f[4], "series": f[5]}
		if len(f) != 8 {
			t.Fatalf("explained anomaly row %q", explained[0])
		}
		shown := testenv.Rows(t, st, "SELECT factors FROM ("+expand(dashboards.AnomaliesSQL(anomaly.DefaultTiers), from, end.Add(24*time.Hour), ev)+") WHERE factors != ''")
		if !slices.Contains(shown, f[6]) {
			t.Errorf("the anomalies panel of %v shows factors %q, want %q", ev, shown, f[6])
		}
		// And the factors table its factors one by one, in its columns.
		var listed []string
		r, err := st.Conn().Query(ctx, expand(dashboards.FactorsSQL, from, end.Add(24*time.Hour), ev))
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, c := range r.ColumnTypes() {
			cols = append(cols, c.Name()+" "+c.DatabaseTypeName())
		}
		for r.Next() {
			var at time.Time
			var d, v string
			var events, trials, expected, excess, share, among float64
			if err := r.Scan(&at, &d, &v, &events, &trials, &expected, &excess, &share, &among); err != nil {
				t.Fatal(err)
			}
			listed = append(listed, d+"="+v)
		}
		r.Close()
		if want := "time DateTime('UTC'), dimension String, value String, events Float64, trials Float64, expected Float64, excess Float64, share Float64, among Float64"; strings.Join(cols, ", ") != want {
			t.Errorf("factors table columns %v, want %s", cols, want)
		}
		if len(listed) == 0 {
			t.Errorf("the factors table of %v lists none, want %s", ev, f[7])
		}
		// Sorted by share, so compare as sets.
		stored := strings.Split(f[7], ", ")
		slices.Sort(stored)
		slices.Sort(listed)
		if !slices.Equal(listed, stored) {
			t.Errorf("the factors table of %v lists %v, want the stored %v", ev, listed, stored)
		}
	}
	boards, err := dashboards.All(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range boards {
		for name, sql := range queries(t, d) {
			q := expand(sql, from, to, vars)
			if strings.Contains(q, "$") {
				t.Errorf("%s %s: unexpanded macro or variable:\n%s", *d.Uid, name, q)
				continue
			}
			r, err := st.Conn().Query(ctx, q)
			if err != nil {
				t.Errorf("%s %s fails on ClickHouse: %v\n%s", *d.Uid, name, err, q)
				continue
			}
			var cols []string
			for _, c := range r.ColumnTypes() {
				cols = append(cols, c.Name()+" "+c.DatabaseTypeName())
			}
			n := 0
			for r.Next() {
				n++
			}
			r.Close()
			if *d.Uid == dashboards.DORAUID && !strings.HasPrefix(name, "variable") && !strings.Contains(name, dashboards.OutsideWindowTable) {
				last := cols[len(cols)-1]
				bucketed := len(cols) == 3 && cols[0] == "time DateTime('UTC')" && cols[1] == "value Nullable(Float64)" && cols[2] == "partial Nullable(Float64)"
				if !bucketed && (len(cols) != 1 || !strings.HasSuffix(last, " Nullable(Float64)")) {
					t.Errorf("%s %s: columns %v, want a Nullable(Float64) value, or time, value and partial", *d.Uid, name, cols)
				}
				if n == 0 {
					t.Errorf("%s %s: no rows", *d.Uid, name)
				}
			}
			if (*d.Uid == dashboards.IncidentsUID || *d.Uid == dashboards.PatchesUID || *d.Uid == dashboards.OpsReviewUID) && n == 0 &&
				!strings.Contains(name, "Overdue") && !strings.HasPrefix(name, "variable") {
				t.Errorf("%s %s: no rows over the generated stream", *d.Uid, name)
			}
			if w, ok := want[sql]; ok {
				if len(cols) < len(w) || strings.Join(cols[:len(w)], ", ") != strings.Join(w, ", ") {
					t.Errorf("%s %s: columns %v, want %v first", *d.Uid, name, cols, w)
				}
				if n == 0 {
					t.Errorf("%s %s: no rows for the series %v", *d.Uid, name, vars)
				}
			}
		}
	}
}

// checkForecast runs the forecast panel's query for the series of vars
// over [from, to): one row per day, the observed values where the series
// has them, and from the end of training on the expected value and band
// of the current baseline's slot of each day, as baselines.Current reads
// them.
func checkForecast(t *testing.T, st *store.Store, from, to time.Time, vars map[string]string) {
	t.Helper()
	cur, err := baselines.Current(context.Background(), st.Conn(), metrics.StepDay)
	if err != nil {
		t.Fatal(err)
	}
	var m *baselines.Model
	var trainTo time.Time
	for _, c := range cur {
		if c.Series.Key() == vars["series"] {
			m = c.Model
		}
	}
	if m == nil || m.Step != 24*time.Hour {
		t.Fatalf("no daily baseline of %s", vars["series"])
	}
	r, err := st.Conn().Query(context.Background(), expand(dashboards.ForecastSQL, from, to, vars))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	human := map[metrics.Kind]float64{metrics.KindDuration: 1.0 / 3600, metrics.KindRate: 100, metrics.KindCount: 1}[m.Kind]
	var days, observed, forecast int
	for r.Next() {
		var at time.Time
		var obs, e, lo, hi *float64
		if err := r.Scan(&at, &obs, &e, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if want := metrics.StepDay.Truncate(from).Add(time.Duration(days) * 24 * time.Hour); !at.Equal(want) {
			t.Fatalf("forecast row %d at %s, want %s: one row a day", days, at, want)
		}
		days++
		if obs != nil {
			observed++
		}
		if e == nil {
			if forecast > 0 {
				t.Errorf("%s: no forecast after a day with one", at)
			}
			continue
		}
		if forecast == 0 {
			trainTo = at
		}
		forecast++
		we, wlo, whi := m.Band(m.Slot(at))
		if math.Abs(*e-we*human) > 1e-9 || math.Abs(*lo-wlo*human) > 1e-9 || math.Abs(*hi-whi*human) > 1e-9 {
			t.Errorf("%s: forecast %v [%v, %v], want the baseline's %v [%v, %v] of slot %d", at, *e, *lo, *hi, we*human, wlo*human, whi*human, m.Slot(at))
		}
	}
	points := testenv.Count(t, st, "SELECT count() FROM kpi_series FINAL WHERE series = ? AND present = 1 AND interval_start >= ? AND interval_start <= ?",
		vars["series"], from, to)
	trained := testenv.Count(t, st, "SELECT count() FROM current_baselines WHERE series = ? AND train_to = ?", vars["series"], trainTo)
	if days != int(to.Sub(metrics.StepDay.Truncate(from))/(24*time.Hour)) || uint64(observed) != points || forecast == 0 || trained == 0 {
		t.Errorf("forecast panel of %s: %d days, %d observed (of %d points), %d forecast from %s (the training's end: %v)",
			vars["series"], days, observed, points, forecast, trainTo, trained > 0)
	}
}

// checkSeriesOptions runs the anomalies dashboard's series variable over
// the seeded history as Grafana does, and checks that each option it
// lists is an existing series that every panel draws, under a readable
// name and in its KPI's unit, and that links naming a series by its parts
// (alert's vars) select it.
func checkSeriesOptions(t *testing.T, st *store.Store, from, to time.Time, alert map[string]string) {
	t.Helper()
	ctx := context.Background()
	none := map[string]string{}
	for _, k := range dashboards.LinkVariables {
		none[k] = ""
	}
	options := func(hints map[string]string) (keys, texts []string) {
		r, err := st.Conn().Query(ctx, expand(dashboards.SeriesOptionsSQL, from, to, hints))
		if err != nil {
			t.Fatalf("series variable: %v", err)
		}
		defer r.Close()
		if cols := r.Columns(); len(cols) != 2 {
			t.Fatalf("series variable: columns %v, want the value and the text", cols)
		}
		for r.Next() {
			var k, text string
			if err := r.Scan(&k, &text); err != nil {
				t.Fatal(err)
			}
			keys, texts = append(keys, k), append(texts, text)
		}
		return keys, texts
	}
	keys, texts := options(none)
	// Every series with a current baseline and a point in range, counted
	// apart from the variable's query.
	want := testenv.Count(t, st, `SELECT uniqExact(series) FROM kpi_series FINAL WHERE present = 1
		AND interval_start >= ? AND interval_start <= ? AND series IN (SELECT series FROM current_baselines)`, from, to)
	if uint64(len(keys)) != want || want == 0 {
		t.Fatalf("series variable lists %d series, want the %d with a baseline and a point in range", len(keys), want)
	}
	seen := map[string]bool{}
	units := map[string]bool{}
	for i, key := range keys {
		text := texts[i]
		if seen[key] || seen["text "+text] {
			t.Errorf("series variable: %q (%s) listed twice", text, key)
		}
		seen[key], seen["text "+text] = true, true
		parts := strings.Split(key, "|")
		if len(parts) != 5 {
			t.Fatalf("series variable: value %q is not a series key", key)
		}
		k, ok := baselines.LookupKPI(parts[0])
		if !ok {
			t.Errorf("series variable: %q names no baselined KPI", key)
			continue
		}
		slice := "all"
		switch {
		case parts[2] != "":
			slice = "service=" + parts[2] + " · team=" + parts[3] + " · environment=" + parts[4]
		case parts[3] != "":
			slice = "team=" + parts[3]
		case parts[4] != "":
			slice = "environment=" + parts[4]
		}
		if w := parts[0] + " · " + parts[1] + " · " + slice; text != w {
			t.Errorf("series variable: %s reads %q, want %q", key, text, w)
		}
		vars := map[string]string{"series": key}
		for name, sql := range map[string]string{"band": dashboards.SeriesSQL, "baselines": dashboards.StatusSQL,
			"unit": dashboards.UnitSQL, "judgement": dashboards.JudgementSQL} {
			got := testenv.Rows(t, st, expand(sql, from, to, vars))
			if len(got) == 0 || ((name == "unit" || name == "judgement") && len(got) != 1) {
				t.Errorf("%s panel for %q: %d rows, want some (one for the unit and the judgement)", name, text, len(got))
				continue
			}
			if name == "unit" {
				wantUnit := map[metrics.Kind]string{metrics.KindDuration: "h", metrics.KindRate: "percent", metrics.KindCount: "short"}[k.Kind]
				if got[0] != wantUnit {
					t.Errorf("unit of %q (a %s): %q, want %q", text, k.Kind, got[0], wantUnit)
				}
				units[got[0]] = true
			}
			if name == "judgement" && !strings.Contains(got[0], "intervals judged") &&
				got[0] != "no judged intervals for this series in range; run opsmetrics anomaly detect --from "+
					from.Format(time.DateOnly)+" --to "+to.Format(time.DateOnly) {
				t.Errorf("judgement of %q: %q", text, got[0])
			}
		}
	}
	if len(units) != 3 {
		t.Errorf("units of the listed series: %v, want hours, percent and counts", units)
	}
	// A link naming the alert's series by its parts selects it: first.
	hinted, _ := options(alert)
	if len(hinted) != len(keys) || hinted[0] != alert["series"] {
		t.Errorf("with the alert's link, the series variable lists %d series starting with %q, want the %d starting with %q",
			len(hinted), hinted[0], len(keys), alert["series"])
	}
	// Parts of no series add nothing to choose from.
	bogus := map[string]string{"kpi": alert["kpi"], "step": alert["step"], "service": "nosuchservice", "team": "", "environment": ""}
	if b, _ := options(bogus); strings.Join(b, ",") != strings.Join(keys, ",") {
		t.Errorf("a link naming no series changes the options: %v, want %v", b, keys)
	}
	// The month before the judged one: listed series say how to judge it.
	before := testenv.Rows(t, st, expand(dashboards.JudgementSQL, from.AddDate(0, 0, -30), from.Add(-time.Hour), map[string]string{"series": alert["series"]}))
	if w := "no judged intervals for this series in range; run opsmetrics anomaly detect --from " + from.AddDate(0, 0, -30).Format(time.DateOnly) +
		" --to " + from.Add(-time.Hour).Format(time.DateOnly); len(before) != 1 || before[0] != w {
		t.Errorf("judgement of a range never judged: %q, want %q", before, w)
	}
}

// TestAnomaliesSeriesChoice: the anomalies dashboard has one choice, the
// series variable, single-valued and without values of one's own; every
// panel says something when its query returns nothing; and the band
// panel takes its unit from its unit query.
func TestAnomaliesSeriesChoice(t *testing.T) {
	d, err := dashboards.Anomalies(dashboards.Options{}).Build()
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, v := range d.Templating.List {
		if v.Hide != nil && *v.Hide == dashboard.VariableHideHideVariable {
			continue
		}
		shown = append(shown, v.Name)
		if v.Name != dashboards.SeriesVariable || v.Type != dashboard.VariableTypeQuery ||
			(v.Multi != nil && *v.Multi) || (v.IncludeAll != nil && *v.IncludeAll) || v.AllowCustomValue == nil || *v.AllowCustomValue {
			t.Errorf("variable %s: a choice besides the series, or one that takes several, all or typed values: %+v", v.Name, v)
		}
	}
	if len(shown) != 1 {
		t.Errorf("variables shown: %v, want only %s", shown, dashboards.SeriesVariable)
	}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		if p.Panel.FieldConfig == nil || p.Panel.FieldConfig.Defaults.NoValue == nil || *p.Panel.FieldConfig.Defaults.NoValue == "" {
			t.Errorf("panel %q: nothing said when its query returns no rows", *p.Panel.Title)
		}
		if p.Panel.Type != "timeseries" {
			continue
		}
		refs := map[string]string{}
		for _, q := range p.Panel.Targets {
			ch := q.(dashboards.ClickHouseQuery)
			refs[*ch.RefId] = ch.RawSQL
		}
		unitFromQuery := false
		for _, tr := range p.Panel.Transformations {
			b, _ := json.Marshal(tr.Options)
			var o struct {
				ConfigRefID string `json:"configRefId"`
				Mappings    []struct{ FieldName, HandlerKey string }
			}
			json.Unmarshal(b, &o)
			if tr.Id == "configFromData" && refs[o.ConfigRefID] == dashboards.UnitSQL && len(o.Mappings) == 1 &&
				o.Mappings[0].FieldName == "unit" && o.Mappings[0].HandlerKey == "unit" {
				unitFromQuery = true
			}
		}
		if !unitFromQuery {
			t.Errorf("panel %q: its unit is not taken from the unit query (transformations %+v)", *p.Panel.Title, p.Panel.Transformations)
		}
	}
}

// TestDORAStatsMatchTheCLI: with All selected, the DORA overview's "this
// period" stats are the numbers `opsmetrics kpi` gives for the same range.
func TestDORAStatsMatchTheCLI(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	testenv.StoreGenerated(t, st, generator.Config{Services: 5, Teams: 2, Days: 60, Seed: 3, End: end}, 1<<20)
	from, to := end.AddDate(0, 0, -30), end
	opts := testOptions(t)
	sums, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to, Calendar: opts.Calendar})
	if err != nil {
		t.Fatal(err)
	}
	s := sums[0]
	outside := float64(s.DeploymentsOutsideWindow)
	if outside == 0 || s.DeploymentsInFreeze == 0 {
		t.Fatalf("%d deployments outside the test calendar, %d in its freeze: the comparison would prove nothing", s.DeploymentsOutsideWindow, s.DeploymentsInFreeze)
	}
	want := map[string]*float64{"Change failure rate": s.ChangeFailureRate, "Deployment rework rate": s.ReworkRate,
		"Change lead time (median)": s.LeadTimeMedianSeconds, "Failed-deployment recovery time (median)": s.RecoveryMedianSeconds,
		"Deployment frequency (per day)": &s.DeploymentsPerDay, metrics.Title(metrics.KPIDeploymentsOutsideWindow): &outside}
	before, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from.Add(-to.Sub(from)), To: from})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"service": "__all", "team": "__all", "environment": "__all", "system": "__all", "tier": "__all"}
	// The dashboards read the raw rows; built with the configuration's KPI
	// definitions, the rollup built for them (whole days: the range is).
	check := func(name string, opts dashboards.Options) {
		d, err := dashboards.DORA(opts).Build()
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, p := range d.Panels {
			if p.Panel == nil || p.Panel.Type != "stat" || *p.Panel.Title == "KPI rollup built" {
				continue
			}
			w, ok := want[*p.Panel.Title]
			if !ok {
				t.Errorf("stat %q has no CLI figure to compare with", *p.Panel.Title)
				continue
			}
			sql := p.Panel.Targets[0].(dashboards.ClickHouseQuery).RawSQL
			if reads := strings.Contains(sql, "kpi_daily") || strings.Contains(sql, "kpi_window_daily"); reads != (opts.KPI != nil) {
				t.Errorf("%s, %s: reads the KPI rollup: %v", name, *p.Panel.Title, reads)
			}
			var got *float64
			q := expand(sql, from, to, all)
			if err := st.Conn().QueryRow(ctx, q).Scan(&got); err != nil {
				t.Fatalf("%s, %s: %v", name, *p.Panel.Title, err)
			}
			if (got == nil) != (w == nil) || (got != nil && math.Abs(*got-*w) > 1e-9*math.Max(1, math.Abs(*w))) {
				t.Errorf("%s, %s: dashboard %v, kpi %v", name, *p.Panel.Title, deref(got), deref(w))
			}
			checked++
		}
		if checked != len(want) {
			t.Errorf("%s: compared %d stats, want %d", name, checked, len(want))
		}
		// The ops review's table shows the same figures in human units.
		var cfr, prev *float64
		q := expand("SELECT this_period, previous_period FROM ("+dashboards.ReviewSQL(opts)+") WHERE kpi = 'Change failure rate'", from, to, all)
		if err := st.Conn().QueryRow(ctx, q).Scan(&cfr, &prev); err != nil {
			t.Fatal(err)
		}
		if cfr == nil || math.Abs(*cfr-100**s.ChangeFailureRate) > 1e-9 || prev == nil || math.Abs(*prev-100**before[0].ChangeFailureRate) > 1e-9 {
			t.Errorf("%s: ops review CFR: %v and %v, kpi %v and %v", name, deref(cfr), deref(prev), 100**s.ChangeFailureRate, 100**before[0].ChangeFailureRate)
		}
	}
	check("raw rows", opts)
	// Built as serve builds it, with the calendar.
	r, _, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{Calendar: opts.Calendar})
	if err != nil {
		t.Fatal(err)
	}
	opts.KPI = &metrics.Query{}
	check("rollup", opts)
	// Every query of every dashboard reading the rollup runs on 18.16, and
	// the rollup's age is its build's.
	boards, err := dashboards.All(opts)
	if err != nil {
		t.Fatal(err)
	}
	ages := 0
	for _, d := range boards {
		for name, sql := range queries(t, d) {
			rows, err := st.Conn().Query(ctx, expand(sql, from, to, all))
			if err != nil {
				t.Errorf("%s, %s: %v", *d.Uid, name, err)
				continue
			}
			for rows.Next() {
				if strings.Contains(name, "KPI rollup built") {
					var age float64
					if err := rows.Scan(&age); err != nil || age < 0 || age > time.Since(r.BuiltAt).Seconds()+60 {
						t.Errorf("%s: age %v, %v; built %v", *d.Uid, age, err, r.BuiltAt)
					}
					ages++
				}
			}
			if err := rows.Err(); err != nil {
				t.Errorf("%s, %s: %v", *d.Uid, name, err)
			}
			rows.Close()
		}
	}
	if ages != 4 {
		t.Errorf("%d dashboards say the rollup's age, want 4 (DORA, incidents, patches, ops review)", ages)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// TestPanelLayout checks what a Grafana user sees of every panel: inside
// the 24-column grid without overlapping another, a description of its
// own, a unit where it draws numbers, and no unit in its title.
func TestPanelLayout(t *testing.T) {
	boards, err := dashboards.All(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	unitInTitle := regexp.MustCompile(`\((hours?|h|minutes?|seconds?|s|days?|percent|%|percentage points|pp)\)`)
	for _, d := range boards {
		type box struct {
			title      string
			x, y, w, h uint32
		}
		var boxes []box
		about := map[string]string{}
		for _, p := range d.Panels {
			if p.Panel == nil && p.RowPanel == nil {
				continue
			}
			var title, typ string
			var gp *dashboard.GridPos
			if p.Panel != nil {
				title, typ, gp = *p.Panel.Title, p.Panel.Type, p.Panel.GridPos
			} else {
				typ, gp = "row", p.RowPanel.GridPos
				if p.RowPanel.Title != nil {
					title = *p.RowPanel.Title
				}
			}
			if gp == nil {
				t.Errorf("%s %q: no grid position", *d.Uid, title)
				continue
			}
			b := box{title, gp.X, gp.Y, gp.W, gp.H}
			if b.w == 0 || b.h == 0 || b.x+b.w > 24 {
				t.Errorf("%s %q: x=%d w=%d h=%d, outside Grafana's 24-column grid", *d.Uid, title, b.x, b.w, b.h)
			}
			for _, o := range boxes {
				if b.x < o.x+o.w && o.x < b.x+b.w && b.y < o.y+o.h && o.y < b.y+b.h {
					t.Errorf("%s %q (x=%d y=%d w=%d h=%d) overlaps %q (x=%d y=%d w=%d h=%d)", *d.Uid, title, b.x, b.y, b.w, b.h, o.title, o.x, o.y, o.w, o.h)
				}
			}
			boxes = append(boxes, b)
			if typ == "row" {
				continue
			}
			if unitInTitle.MatchString(title) {
				t.Errorf("%s %q: a unit in the title; it belongs to the panel's unit", *d.Uid, title)
			}
			desc := ""
			if p.Panel.Description != nil {
				desc = *p.Panel.Description
			}
			if desc == "" {
				t.Errorf("%s %q: no description", *d.Uid, title)
			} else if other, ok := about[desc]; ok {
				t.Errorf("%s %q: the same description as %q", *d.Uid, title, other)
			}
			about[desc] = title
			if typ != "table" && (p.Panel.FieldConfig == nil || p.Panel.FieldConfig.Defaults.Unit == nil || *p.Panel.FieldConfig.Defaults.Unit == "") {
				t.Errorf("%s %q: no unit", *d.Uid, title)
			}
			if typ == "timeseries" && strings.Contains(desc, "Colour is") {
				t.Errorf("%s %q: a series described by a stat's colours: %s", *d.Uid, title, desc)
			}
		}
	}
}

func TestGoldenDashboards(t *testing.T) {
	boards, err := dashboards.All(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range boards {
		got, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", *d.Uid+".json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./dashboards -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; review the change and run go test ./dashboards -update", *d.Uid, path)
		}
		// The JSON reads back into the SDK's types, custom query included,
		// and writes out the same.
		var back dashboard.Dashboard
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatalf("%s does not unmarshal: %v", path, err)
		}
		again, err := json.MarshalIndent(back, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(again, '\n'), want) {
			t.Errorf("%s does not round-trip through the SDK types", path)
		}
	}
}

// TestPromQL checks every pipeline health expression with promtool, as
// recording rules.
func TestPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (apt-get install prometheus): %v", err)
	}
	var rules []map[string]string
	for i, p := range dashboards.PipelineExprs {
		expr := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*").Replace(p.Expr)
		rules = append(rules, map[string]string{"record": fmt.Sprintf("opsmetrics:panel_%d", i), "expr": expr})
	}
	b, _ := yaml.Marshal(map[string]any{"groups": []map[string]any{{"name": "panels", "rules": rules}}})
	file := filepath.Join(t.TempDir(), "rules.yml")
	os.WriteFile(file, b, 0o644)
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

func TestWriteTree(t *testing.T) {
	dir := t.TempDir()
	files, err := dashboards.WriteTree(dir, "/var/lib/grafana/dashboards/opsmetrics", dashboards.DataSources{
		Host: "clickhouse", Port: 9000, Database: "opsmetrics", User: "grafana", PasswordEnv: "OPSMETRICS_CLICKHOUSE_PASSWORD",
		PrometheusURL: "http://prometheus:9090"}, dashboards.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boards, _ := dashboards.All(testOptions(t))
	if len(files) != 2+len(boards) {
		t.Errorf("wrote %v, want the two provisioning files and %d dashboards", files, len(boards))
	}
	var ds struct {
		APIVersion  int              `yaml:"apiVersion"`
		Datasources []map[string]any `yaml:"datasources"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "provisioning/datasources/opsmetrics.yaml"))
	if err := yaml.Unmarshal(b, &ds); err != nil || ds.APIVersion != 1 || len(ds.Datasources) != 2 ||
		ds.Datasources[0]["type"] != dashboards.PluginID || ds.Datasources[0]["uid"] != dashboards.ClickHouseUID {
		t.Errorf("datasources file (%v):\n%s", err, b)
	}
	if !bytes.Contains(b, []byte("${OPSMETRICS_CLICKHOUSE_PASSWORD}")) {
		t.Errorf("the password is not read from the environment:\n%s", b)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	b, _ = os.ReadFile(filepath.Join(dir, "provisioning/dashboards/opsmetrics.yaml"))
	if err := yaml.Unmarshal(b, &prov); err != nil || prov.APIVersion != 1 || len(prov.Providers) != 1 ||
		prov.Providers[0].Type != "file" || prov.Providers[0].Options["path"] != "/var/lib/grafana/dashboards/opsmetrics" {
		t.Errorf("dashboards provider file (%v):\n%s", err, b)
	}
	for _, uid := range []string{dashboards.DORAUID, dashboards.AnomaliesUID, dashboards.PipelineUID} {
		if _, err := os.Stat(filepath.Join(dir, "dashboards", uid+".json")); err != nil {
			t.Error(err)
		}
	}
}

// TestRawPanelsTakeDefinitions: with no rollup kept, the panels read the
// raw rows with the configuration's definitions (Options.Definitions), and
// give the CLI's figures for them, which differ from the defaults'.
func TestRawPanelsTakeDefinitions(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	testenv.StoreGenerated(t, st, generator.Config{Services: 5, Teams: 2, Days: 60, Seed: 3, End: end}, 1<<20)
	from, to := end.AddDate(0, 0, -30), end
	defs := metrics.Query{MaxGap: 20 * time.Minute, LeadTimeFromMerge: true,
		PatchDeadlines: map[string]time.Duration{"critical": time.Hour, "high": 2 * time.Hour, "medium": 4 * time.Hour, "low": 8 * time.Hour}}
	summary := func(q metrics.Query) *metrics.Summary {
		q.From, q.To = from, to
		sums, err := metrics.Summaries(ctx, st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		return sums[0]
	}
	got, def := summary(defs), summary(metrics.Query{})
	all := map[string]string{"service": "__all", "team": "__all", "environment": "__all", "system": "__all", "tier": "__all"}
	boards := []func(dashboards.Options) *dashboard.DashboardBuilder{dashboards.DORA, dashboards.Patches}
	want := map[string][2]*float64{
		"Change failure rate":                       {got.ChangeFailureRate, def.ChangeFailureRate},
		"Change lead time (median)":                 {got.LeadTimeMedianSeconds, def.LeadTimeMedianSeconds},
		metrics.Title(metrics.PanelPatchCompliance): {got.PatchCompliance, def.PatchCompliance},
	}
	for title, w := range want {
		if w[0] == nil || w[1] == nil || *w[0] == *w[1] {
			t.Fatalf("%s: %v with the definitions, %v with the defaults: the comparison would prove nothing", title, deref(w[0]), deref(w[1]))
		}
	}
	checked := 0
	for _, build := range boards {
		d, err := build(dashboards.Options{Definitions: &defs}).Build()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Panels {
			if p.Panel == nil || p.Panel.Type != "stat" {
				continue
			}
			w, ok := want[*p.Panel.Title]
			if !ok {
				continue
			}
			sql := p.Panel.Targets[0].(dashboards.ClickHouseQuery).RawSQL
			if strings.Contains(sql, "kpi_daily") {
				t.Errorf("%s reads the rollup", *p.Panel.Title)
			}
			var v *float64
			if err := st.Conn().QueryRow(ctx, expand(sql, from, to, all)).Scan(&v); err != nil {
				t.Fatalf("%s: %v", *p.Panel.Title, err)
			}
			if v == nil || math.Abs(*v-*w[0]) > 1e-9*math.Max(1, math.Abs(*w[0])) {
				t.Errorf("%s: dashboard %v, kpi with the definitions %v (defaults %v)", *p.Panel.Title, deref(v), *w[0], *w[1])
			}
			checked++
		}
	}
	if checked != len(want) {
		t.Errorf("compared %d stats, want %d", checked, len(want))
	}
}
