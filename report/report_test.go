package report_test

import (
	"bytes"
	"context"
	"fmt"
	stdhtml "html"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/opsmetrics/opsmetrics/report"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// charts is how many charts a report draws: five KPI trends and patch
// compliance by severity.
const charts = 6

var headings = []string{
	"<h1>Ops review</h1>",
	"<h2>DORA levels and change from the previous period</h2>",
	"<h2>KPI trends against their baselines</h2>",
	"<h2>Anomalies of the period</h2>",
	"<h2>Are our targets still right?</h2>",
	"<h2>Change calendar</h2>",
	"<h2>Incidents and their causes</h2>",
	"<h2>Patch compliance</h2>",
}

const evil = "<script>alert(1)</script>"

// TestBuild: eighty generated days with injected anomalies, the last 18
// of the report's 28 days judged by a point-in-time backfill, and one
// deployment of a service with a hostile name. The report of the last
// four weeks holds what ClickHouse holds, draws every chart completely
// with the bands of the judged days only and their flagged points, says
// which part was judged, and is self-contained and escaped.
func TestBuild(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	var recs []store.Record
	stats, err := generator.Generate(generator.Config{Services: 6, Teams: 3, Days: 80, Seed: 7, End: end, Anomalies: true},
		func(e *event.Event) error {
			recs = append(recs, store.Record{Event: e, Topic: "t", Offset: int64(len(recs))})
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	at := end.Add(-36 * time.Hour)
	recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindDeployment,
		ID: "evil-1", Time: at, Deployment: &event.Deployment{ID: "evil-1", Service: evil, Team: "red", Environment: "production",
			StartedAt: at.Add(-5 * time.Minute), FinishedAt: at, Status: event.DeploymentSuccess}}})
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	var stop generator.Anomaly
	for _, a := range stats.Anomalies {
		if a.Kind == generator.AnomalyDeploymentStop {
			stop = a
		}
	}
	if stop.Service == "" {
		t.Fatalf("no deployment stop among %v", stats.Anomalies)
	}
	log := testenv.Logger(t)
	steps := []metrics.Step{metrics.StepDay}
	from := end.AddDate(0, 0, -28)
	judgedFrom := from.AddDate(0, 0, 10)
	if !stop.Start.After(judgedFrom) {
		t.Fatalf("the deployment stop starts %s, before the judged part", stop.Start)
	}
	if _, err := anomaly.Backfill(ctx, st.Conn(), anomaly.BackfillOptions{From: judgedFrom, To: end, Learn: baselines.Config{Steps: steps},
		Detect: anomaly.Config{Steps: steps}, Now: end.Add(time.Hour)}, log); err != nil {
		t.Fatal(err)
	}

	always := 0.99
	rules := []anomaly.ThresholdRule{{Name: "org-cfr", KPI: "change_failure_rate", Above: &always},
		{Name: evil, KPI: "incidents", Above: &always, By: []metrics.Dimension{metrics.Team}}}
	cat, err := catalog.Parse("c.yaml", []byte("- {name: "+stop.Service+", owner: group:default/stop-squad, tier: \"1\"}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := report.Build(ctx, st.Conn(), report.Options{From: from, To: end, Location: time.UTC,
		By: []metrics.Dimension{metrics.Service}, Now: end.Add(2 * time.Hour), Thresholds: rules, Query: metrics.Query{Catalog: cat}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()

	for _, h := range headings {
		if !strings.Contains(html, h) {
			t.Errorf("no heading %s", h)
		}
	}
	svgs := svgsOf(html)
	if len(svgs) != charts {
		t.Fatalf("%d charts, want %d", len(svgs), charts)
	}
	for _, svg := range svgs {
		checkChart(t, svg)
	}
	// Bands on the 18 judged days only, one run of them: 2 points a day.
	deploys := chartTitled(t, svgs, "Production deployments")
	bands := regexp.MustCompile(`<polygon class="band" points="([^"]*)"`).FindAllStringSubmatch(deploys, -1)
	if len(bands) != 1 || len(strings.Fields(bands[0][1])) != 2*18 || !strings.Contains(deploys, "baseline band of the day (daily)") {
		t.Errorf("the deployments chart should band the 18 judged days in one polygon:\n%s", deploys)
	}
	// Every flagged day of a charted KPI is marked on its chart.
	want := testenv.Count(t, st, `SELECT count() FROM judged_intervals FINAL WHERE step = 'day' AND service = '' AND team = ''
		AND environment = '' AND anomaly = 1 AND kpi IN ('deployments', 'change_failure_rate', 'mttr', 'lead_time', 'patch_compliance')
		AND interval_start >= ? AND interval_start < ?`, from, end)
	if got := flaggedPoints(strings.Join(svgs, "")); uint64(got) != want {
		t.Errorf("%d flagged points drawn, want the %d days judged anomalous", got, want)
	}
	coverage := fmt.Sprintf("judged 18 of 28 days of the period; run <code>opsmetrics anomaly detect --from %s --to %s</code> for the rest.",
		from.Format(time.DateOnly), judgedFrom.Format(time.DateOnly))
	if !strings.Contains(section(t, html, "anomalies"), coverage) {
		t.Errorf("the anomalies section does not say %q:\n%s", coverage, section(t, html, "anomalies"))
	}

	// The DORA table's organisation row counts what metrics counts.
	sums, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: end})
	if err != nil || len(sums) != 1 {
		t.Fatalf("summaries: %v, %d", err, len(sums))
	}
	org := regexp.MustCompile(`<tr class="organisation"><td>organisation</td><td class="num"><span class="v">(\d+)</span>`).FindStringSubmatch(html)
	if org == nil || org[1] != strconv.FormatUint(sums[0].Deployments, 10) {
		t.Errorf("organisation deployments %v, want %d", org, sums[0].Deployments)
	}
	if !strings.Contains(section(t, html, "dora"), `<span class="level `) {
		t.Error("the DORA table shows no level")
	}

	// The anomalies list the stopped service's missing deployments.
	var stopped bool
	for _, row := range rowsOf(section(t, html, "anomalies"), "anomaly") {
		stopped = stopped || strings.Contains(row, stop.Service) && strings.Contains(row, "<td>Deployments</td>") &&
			strings.Contains(row, "<td>down</td>") && strings.Contains(row, "<td>stop-squad</td><td>tier-1</td>")
	}
	if !stopped {
		t.Errorf("no deployments-down anomaly of %s, owned by stop-squad in tier-1, in:\n%s", stop.Service, section(t, html, "anomalies"))
	}

	// Below a firing anomaly, its contributing factors.
	explained := testenv.Rows(t, st, "SELECT factors FROM anomalies FINAL WHERE factors != '' AND interval_start >= ? AND interval_start < ?", from, end)
	if len(explained) == 0 {
		t.Error("no anomaly of the period names its contributing factors")
	}
	factorRows := rowsOf(section(t, html, "anomalies"), "factors")
	for _, f := range explained {
		if !slices.ContainsFunc(factorRows, func(r string) bool { return strings.Contains(r, "Contributing factors: "+stdhtml.EscapeString(f)) }) {
			t.Errorf("the report does not show the factors %q", f)
		}
	}

	// One incident row per attribution.
	attrs, err := metrics.Attributions(ctx, st.Conn(), from, end, 0)
	if err != nil || len(attrs) == 0 {
		t.Fatalf("attributions: %v, %d", err, len(attrs))
	}
	incidents := section(t, html, "incidents")
	if rows := rowsOf(incidents, "incident"); len(rows) != len(attrs) {
		t.Errorf("%d incident rows, want %d", len(rows), len(attrs))
	}
	for _, a := range attrs {
		if !strings.Contains(incidents, "<td>"+a.IncidentID+"</td>") {
			t.Errorf("incident %s missing", a.IncidentID)
		}
	}

	// The targets section holds the review of the rules over the quarter.
	rr, err := anomaly.ReviewRules(ctx, st.Conn(), rules, nil, end, anomaly.ReviewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	targets := section(t, html, "targets")
	if rows := rowsOf(targets, "target"); len(rows) != len(rr.Reviews) || len(rr.Reviews) != 5 ||
		!strings.Contains(targets, rr.Brief()+".") || !strings.Contains(rows[0], "<td>org-cfr</td>") ||
		!strings.Contains(rows[0], "<td>stale</td>") {
		t.Errorf("the targets section should list the %d reviews (the organisation's and 4 teams'), the first stale, under %q:\n%s",
			len(rr.Reviews), rr.Brief(), targets)
	}

	selfContained(t, html)
	escaped := "&lt;script&gt;alert(1)&lt;/script&gt;"
	var evilRow string
	for _, row := range rowsOf(section(t, html, "dora"), "slice") {
		if strings.Contains(row, escaped) {
			evilRow = row
		}
	}
	// It has no incidents: its MTTR is absent, not zero.
	if !strings.Contains(evilRow, `<span class="v">–</span>`) {
		t.Errorf("the hostile service's row is missing, or shows no absent value: %q", evilRow)
	}
	if strings.Contains(targets, evil) || !strings.Contains(targets, "<td>"+escaped+"</td>") {
		t.Error("the hostile rule name is not escaped in the targets section")
	}
}

// TestWriteHTML renders reports without ClickHouse: empty, a single
// bucket, and a trend with gaps.
func TestWriteHTML(t *testing.T) {
	day0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	trend := func(sums ...*metrics.Summary) []report.Interval {
		var out []report.Interval
		for i, s := range sums {
			out = append(out, report.Interval{Start: day0.AddDate(0, 0, i), End: day0.AddDate(0, 0, i+1), Summary: s})
		}
		return out
	}
	cases := []struct {
		name string
		r    report.Report
		// points and lines wanted per chart title; empty charts say so.
		points, lines map[string]int
		empty         []string
	}{
		{
			name:  "empty",
			r:     report.Report{},
			empty: []string{"Production deployments", "Change failure rate", "MTTR (median)", "Change lead time (median)", "Patch compliance", "Patch compliance by severity"},
		},
		{
			name: "single bucket",
			r: report.Report{From: day0, To: day0.AddDate(0, 0, 1), Bucket: metrics.Day,
				Trend: trend(&metrics.Summary{Deployments: 3, ChangeFailureRate: f(1.0 / 3)})},
			points: map[string]int{"Production deployments": 1, "Change failure rate": 1},
			lines:  map[string]int{"Production deployments": 0, "Change failure rate": 0},
			empty:  []string{"MTTR (median)", "Change lead time (median)", "Patch compliance", "Patch compliance by severity"},
		},
		{
			name: "gaps",
			r: report.Report{From: day0, To: day0.AddDate(0, 0, 5), Bucket: metrics.Day, Trend: trend(
				&metrics.Summary{Deployments: 4, ChangeFailureRate: f(0.25), MTTRMedianSeconds: f(5400)},
				&metrics.Summary{Deployments: 2, ChangeFailureRate: f(0.5)},
				&metrics.Summary{Incidents: 1, MTTRMedianSeconds: f(7200)},
				nil,
				&metrics.Summary{Deployments: 1, ChangeFailureRate: f(0)}),
				Organisation: &metrics.Summary{Deployments: 7, PatchComplianceBySeverity: map[string]*float64{"critical": f(0.5)}},
			},
			// Deployments count 0 on the quiet days; the rate is absent
			// on days without deployments and splits its line.
			points: map[string]int{"Production deployments": 5, "Change failure rate": 3, "MTTR (median)": 2},
			lines:  map[string]int{"Production deployments": 1, "Change failure rate": 1, "MTTR (median)": 0},
			empty:  []string{"Change lead time (median)", "Patch compliance"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.r.WriteHTML(&b); err != nil {
				t.Fatal(err)
			}
			html := b.String()
			if !strings.HasPrefix(html, "<!DOCTYPE html>") {
				t.Errorf("starts %q", html[:min(len(html), 40)])
			}
			for _, h := range headings {
				if !strings.Contains(html, h) {
					t.Errorf("no heading %s", h)
				}
			}
			svgs := svgsOf(html)
			if len(svgs) != charts {
				t.Fatalf("%d charts, want %d", len(svgs), charts)
			}
			for _, svg := range svgs {
				checkChart(t, svg)
			}
			for _, title := range c.empty {
				if svg := chartTitled(t, svgs, title); !strings.Contains(svg, "no data in this period") {
					t.Errorf("chart %q does not say it has no data", title)
				}
			}
			for title, want := range c.points {
				svg := chartTitled(t, svgs, title)
				if got := len(dataDot.FindAllString(svg, -1)); got != want {
					t.Errorf("chart %q: %d points, want %d", title, got, want)
				}
				if got := strings.Count(svg, "<polyline"); got != c.lines[title] {
					t.Errorf("chart %q: %d lines, want %d", title, got, c.lines[title])
				}
				if strings.Contains(svg, "no data in this period") {
					t.Errorf("chart %q says it has no data", title)
				}
			}
			if !strings.Contains(html, "no day judged: no band") {
				t.Error("no day judged, but the legends do not say so")
			}
			selfContained(t, html)
		})
	}
}

// flaggedPoints counts the flagged marks on the plots (the legend's sit
// at y 38, above every plot).
func flaggedPoints(svg string) int {
	n := 0
	for _, m := range regexp.MustCompile(`<circle class="flagged" cx="[^"]*" cy="([^"]*)"`).FindAllStringSubmatch(svg, -1) {
		if m[1] != "38" {
			n++
		}
	}
	return n
}

// TestWriteHTMLJudged: the bands are those of the judged days, the
// flagged days are marked, and the anomalies section says which part of
// the period was judged, and "no anomaly" only of what was.
func TestWriteHTMLJudged(t *testing.T) {
	day0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	org := func(kpi string, d int, anomalous bool) anomaly.Judged {
		return anomaly.Judged{Series: baselines.Series{KPI: kpi, Step: metrics.StepDay}, Start: day0.AddDate(0, 0, d),
			Status: baselines.Ready, Judged: true, Anomaly: anomalous, Expected: 6, Lower: 2, Upper: 11}
	}
	var trend []report.Interval
	for i := range 4 {
		trend = append(trend, report.Interval{Start: day0.AddDate(0, 0, i), End: day0.AddDate(0, 0, i+1), Summary: &metrics.Summary{Deployments: uint64(5 + i)}})
	}
	cases := []struct {
		name      string
		judged    []anomaly.Judged
		anomalies []anomaly.Record
		bandPts   int // points of the deployments chart's bands
		flagged   int
		want      []string
	}{
		{name: "none judged", bandPts: 0, want: []string{"No anomaly was recorded in this period, which was never judged.",
			"judged 0 of 4 days of the period; run <code>opsmetrics anomaly detect --from 2026-10-01 --to 2026-10-05</code> for the rest."}},
		{name: "two judged", judged: []anomaly.Judged{org("deployments", 1, false), org("deployments", 2, true), org("mttr", 2, false)},
			anomalies: []anomaly.Record{{Series: baselines.Series{KPI: "deployments", Step: metrics.StepDay}, Start: day0.AddDate(0, 0, 2),
				Observed: 7, Expected: 6, Lower: 2, Upper: 11, Direction: "up", Severity: "warning"}},
			bandPts: 4, flagged: 1,
			want: []string{"judged 2 of 4 days of the period; run <code>opsmetrics anomaly detect --from 2026-10-01 --to 2026-10-05</code> for the rest."}},
		{name: "all judged", judged: []anomaly.Judged{org("deployments", 0, false), org("deployments", 1, false), org("deployments", 2, false),
			org("deployments", 3, false)}, bandPts: 8,
			want: []string{"No anomaly was recorded in this period.", "Anomaly detection judged all 4 days of the period."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := report.Report{From: day0, To: day0.AddDate(0, 0, 4), Bucket: metrics.Day, Trend: trend, Judged: c.judged, Anomalies: c.anomalies}
			var b bytes.Buffer
			if err := r.WriteHTML(&b); err != nil {
				t.Fatal(err)
			}
			html := b.String()
			deploys := chartTitled(t, svgsOf(html), "Production deployments")
			pts := 0
			for _, m := range regexp.MustCompile(`<polygon class="band" points="([^"]*)"`).FindAllStringSubmatch(deploys, -1) {
				pts += len(strings.Fields(m[1]))
			}
			if pts != c.bandPts {
				t.Errorf("deployments chart: %d band points, want %d", pts, c.bandPts)
			}
			if got := flaggedPoints(deploys); got != c.flagged {
				t.Errorf("deployments chart: %d flagged points, want %d", got, c.flagged)
			}
			for _, w := range c.want {
				if !strings.Contains(section(t, html, "anomalies"), w) {
					t.Errorf("the anomalies section does not say %q:\n%s", w, section(t, html, "anomalies"))
				}
			}
		})
	}
}

// TestWriteHTMLEscapes: names from the data never become markup, and
// absent values show as "–".
func TestWriteHTMLEscapes(t *testing.T) {
	r := report.Report{By: []metrics.Dimension{metrics.Service},
		Slices: []*metrics.Summary{{Slice: map[metrics.Dimension]string{metrics.Service: evil}, Deployments: 2,
			Previous: &metrics.Summary{}}},
		Anomalies: []anomaly.Record{{Series: baselines.Series{KPI: "deployments", Step: metrics.StepDay, Service: evil, Team: `"t"`,
			Environment: "production"}, Observed: 0, Expected: 7, Lower: 2, Upper: 13, Direction: "down", Severity: "critical", Firing: true}},
		Incidents: []metrics.Attribution{{IncidentID: "INC-<b>1</b>", Service: evil, Environment: "production", Method: metrics.MethodUnattributed}},
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	selfContained(t, html)
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "INC-&lt;b&gt;1&lt;/b&gt;", "<td>open</td>", "<td>—</td>",
		"was 0, &#43;2", `<span class="v">–</span>`} {
		if !strings.Contains(html, want) {
			t.Errorf("no %q in the page", want)
		}
	}
	if strings.Contains(html, "<b>1</b>") {
		t.Error("an incident id became markup")
	}
}

// selfContained fails on anything that would reach the network or run.
func selfContained(t *testing.T, html string) {
	t.Helper()
	lower := strings.ToLower(html)
	for _, bad := range []string{"http://", "https://", "<script", "<link", "@import", "url("} {
		if strings.Contains(lower, bad) {
			i := strings.Index(lower, bad)
			t.Errorf("the page contains %q: …%s…", bad, html[max(0, i-80):min(len(html), i+80)])
		}
	}
	if !strings.Contains(html, "@media print") || !strings.Contains(html, "page-break-inside: avoid") {
		t.Error("no print styles")
	}
}

var (
	axisTitle = regexp.MustCompile(`<text class="axis-title"[^>]*>([^<]+)</text>`)
	unit      = regexp.MustCompile(`per day|per week|%|minutes|hours|days`)
	dataDot   = regexp.MustCompile(`<circle class="dot" cx="[^"]+" cy="[0-9]+\.[0-9]" r="2.5"/>`) // legend dots have cy="38"
	svgTitle  = regexp.MustCompile(`<title>([^<]+)</title>`)
)

// checkChart: a title, both axes with tick labels and titled, the value
// axis naming its unit, and a legend.
func checkChart(t *testing.T, svg string) {
	t.Helper()
	title := svgTitle.FindStringSubmatch(svg)
	if title == nil || !strings.Contains(svg, `class="chart-title"`) {
		t.Errorf("chart without a title:\n%s", svg)
		return
	}
	axes := axisTitle.FindAllStringSubmatch(svg, -1)
	if len(axes) != 2 || strings.Count(svg, `class="axis"`) < 2 {
		t.Errorf("chart %q: axis titles %v", title[1], axes)
		return
	}
	if !unit.MatchString(axes[0][1]) && !unit.MatchString(axes[1][1]) {
		t.Errorf("chart %q: no unit in the axis titles %q and %q", title[1], axes[0][1], axes[1][1])
	}
	if strings.Count(svg, `class="tick"`) < 2 {
		t.Errorf("chart %q: no tick labels", title[1])
	}
	if !strings.Contains(svg, `<g class="legend">`) || !strings.Contains(svg, `class="legend-text"`) {
		t.Errorf("chart %q: no legend", title[1])
	}
}

func svgsOf(html string) []string {
	var out []string
	for _, part := range strings.Split(html, "<svg")[1:] {
		end := strings.Index(part, "</svg>")
		if end < 0 {
			end = len(part)
		}
		out = append(out, "<svg"+part[:end])
	}
	return out
}

func chartTitled(t *testing.T, svgs []string, title string) string {
	t.Helper()
	for _, svg := range svgs {
		if m := svgTitle.FindStringSubmatch(svg); m != nil && m[1] == title {
			return svg
		}
	}
	t.Fatalf("no chart titled %q", title)
	return ""
}

// section returns the page's <section id="id">.
func section(t *testing.T, html, id string) string {
	t.Helper()
	start := strings.Index(html, `<section id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no section %q", id)
	}
	end := strings.Index(html[start:], "</section>")
	return html[start : start+end]
}

// rowsOf returns the table rows of a class.
func rowsOf(html, class string) []string {
	var out []string
	for _, part := range strings.Split(html, `<tr class="`+class+`">`)[1:] {
		out = append(out, part[:strings.Index(part, "</tr>")])
	}
	return out
}
