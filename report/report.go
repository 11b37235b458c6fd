// Package report writes the ops-review report: one self-contained HTML
// page, with inline CSS and inline SVG charts and nothing fetched from the
// network, that sets the organisation's DORA levels and KPIs (and those of
// its slices) against the previous period, draws the organisation's KPI
// trends against their learnt baseline bands, and lists the anomalies,
// the review of the targets, the deployments that broke the change
// calendar, the incidents and patch compliance of the period. Build gathers the data from
// ClickHouse into a Report; WriteHTML renders a Report without ClickHouse.
package report

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// DailyTrendLimit is the longest range whose trends are drawn per day;
// longer ranges are drawn per week.
const DailyTrendLimit = 45 * 24 * time.Hour

// Options select what a report covers.
type Options struct {
	From, To time.Time // [From, To)
	// Location is the time zone of bucket edges and of the times shown
	// (default UTC).
	Location *time.Location
	// By slices the DORA table; the organisation's row is always there.
	By []metrics.Dimension
	// Query holds the KPI settings: Production, MaxGap, Levels,
	// LevelTables, LeadTimeFromMerge, LeadTimeLookback, PatchDeadlines,
	// and the change calendar with the services' tiers (Calendar,
	// ServiceTiers; no calendar, no figures). Its range, By, Step and
	// filters are ignored: a report covers the whole organisation.
	Query metrics.Query
	// Now is the generation time in the header (default time.Now()).
	Now time.Time
	// Thresholds are the configured targets (alerting.thresholds), which
	// the report reviews over the quarter that ends at To.
	Thresholds []anomaly.ThresholdRule
	// Tiers name the service catalog's tiers (Query.Catalog) as the
	// alerts' tier labels do (alerting.tiers); no levels:
	// anomaly.DefaultTiers.
	Tiers anomaly.Tiers
}

// Report is the data of one report, gathered by Build.
type Report struct {
	From, To   time.Time
	Location   *time.Location
	Generated  time.Time
	Production []string // the environments that count as production
	LevelTable string   // the DORA report whose clusters give the levels
	By         []metrics.Dimension
	// Organisation is the unsliced summary of the range, with the previous
	// period's in Previous; nil when nothing happened.
	Organisation *metrics.Summary
	// Slices are the summaries by By, each with its Previous.
	Slices []*metrics.Summary
	// Bucket is the trend's bucket: metrics.Day or metrics.Week.
	Bucket metrics.Bucket
	// Trend is the organisation per bucket, every bucket of the range.
	Trend []Interval
	// Judged are the organisation's days of the range as anomaly
	// detection judged them: each with the band of the baseline of its
	// time, flagged or not (anomaly.ReadJudged).
	Judged    []anomaly.Judged
	Anomalies []anomaly.Record
	// Owners are the owner and tier labels of each anomaly's alert, by
	// index of Anomalies, from the service catalog (anomaly.Tiers.Owner).
	Owners [][2]string
	// Incidents are the incidents whose impact started in the range, with
	// the deployment that caused each one.
	Incidents []metrics.Attribution
	// Targets is the review of the threshold rules over the quarter that
	// ends at To; nil when none are configured.
	Targets *anomaly.RulesReview
	// Calendar is the change calendar's figures of the period; nil when
	// no calendar is configured (Options.Query.Calendar).
	Calendar *CalendarFigures
}

// CalendarFigures are the production deployments of the period judged by
// the change calendar (docs/change-windows.md), as the KPI
// deployments_outside_window counts them.
type CalendarFigures struct {
	// Slices are the period's summaries by team and environment, whose
	// calendar figures (DeploymentsOutsideWindow, OutsideWindowShare,
	// DeploymentsInFreeze, UnplannedFixesOutsideWindow) the section shows.
	Slices []*metrics.Summary
	// Offenders are the deployments that broke the calendar, the worst
	// first: those in a freeze, then the longest wait until they would
	// have been allowed (none known: first), then the earliest.
	Offenders []Offender
	// Fixes are the unplanned fixes for an open incident deployed outside
	// windows or in a freeze, counted apart, in time order.
	Fixes []Offender
}

// Offender is a deployment outside its windows or in a freeze, with the
// windows it missed or the freeze it hit.
type Offender struct {
	metrics.WindowDeployment
	// Missed names the deciding windows it missed, each with its days
	// and hours in its zone, or the freeze it hit with its bounds and
	// reason.
	Missed string
	// Freeze is set for a deployment in a freeze.
	Freeze bool
	// NextAllowed is when it would have been allowed; zero when none
	// came within eight weeks.
	NextAllowed time.Time
}

// Interval is one bucket of the organisation's trend.
type Interval struct {
	Start, End time.Time
	Summary    *metrics.Summary // nil when nothing happened in it
}

// Build gathers the report of o from ClickHouse.
func Build(ctx context.Context, conn driver.Conn, o Options) (*Report, error) {
	if !o.From.Before(o.To) {
		return nil, fmt.Errorf("report: from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	q := o.Query
	q.From, q.To, q.By, q.Step = o.From, o.To, nil, ""
	q.Services, q.Teams, q.Environments = nil, nil, nil
	if q.Cache == nil {
		// Its few dozen summaries look up the latest KPI rollup once.
		q.Cache = metrics.NewRollupCache(8 << 20)
	}
	r := &Report{From: o.From, To: o.To, Location: loc, Generated: now, By: o.By, Production: q.Production}
	if len(r.Production) == 0 {
		r.Production = []string{"production"}
	}

	org, err := metrics.Run(ctx, conn, q, metrics.Whole, loc, true)
	if err != nil {
		return nil, fmt.Errorf("organisation KPIs: %w", err)
	}
	r.LevelTable = org.LevelTable
	if len(org.Summaries) > 0 {
		r.Organisation = org.Summaries[0]
	}
	if len(o.By) > 0 {
		sq := q
		sq.By = o.By
		sliced, err := metrics.Run(ctx, conn, sq, metrics.Whole, loc, true)
		if err != nil {
			return nil, fmt.Errorf("KPIs by %v: %w", o.By, err)
		}
		r.Slices = sliced.Summaries
	}

	r.Bucket = metrics.Day
	if o.To.Sub(o.From) > DailyTrendLimit {
		r.Bucket = metrics.Week
	}
	trend, err := metrics.Run(ctx, conn, q, r.Bucket, loc, false)
	if err != nil {
		return nil, fmt.Errorf("KPI trend per %s: %w", r.Bucket, err)
	}
	byStart := map[int64]*metrics.Summary{}
	for _, s := range trend.Summaries {
		if s.Bucket != nil {
			byStart[s.Bucket.Unix()] = s
		}
	}
	for _, rg := range metrics.Ranges(o.From, o.To, r.Bucket, loc) {
		r.Trend = append(r.Trend, Interval{Start: rg[0], End: rg[1], Summary: byStart[rg[0].Unix()]})
	}

	if r.Judged, err = anomaly.ReadJudged(ctx, conn, anomaly.JudgedQuery{Step: metrics.StepDay,
		From: metrics.StepDay.Truncate(o.From), To: o.To, Organisation: true}); err != nil {
		return nil, err
	}
	if r.Anomalies, err = anomaly.Records(ctx, conn, o.From, o.To); err != nil {
		return nil, err
	}
	tiers := o.Tiers
	if len(tiers.Levels) == 0 {
		tiers = anomaly.DefaultTiers
	}
	for _, a := range r.Anomalies {
		owner, tier := tiers.Owner(o.Query.Catalog, a.Series.Service, a.Series.Team)
		r.Owners = append(r.Owners, [2]string{owner, tier})
	}
	if r.Incidents, err = metrics.AttributionsOf(ctx, conn, q); err != nil {
		return nil, err
	}
	if len(o.Thresholds) > 0 {
		if r.Targets, err = anomaly.ReviewRules(ctx, conn, o.Thresholds, q.Production, o.To, anomaly.ReviewOptions{}); err != nil {
			return nil, err
		}
	}
	if q.Calendar != nil {
		if r.Calendar, err = calendarFigures(ctx, conn, q); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// calendarFigures are q's deployments judged by its calendar: by team and
// environment, and one by one.
func calendarFigures(ctx context.Context, conn driver.Conn, q metrics.Query) (*CalendarFigures, error) {
	sq := q
	sq.By = []metrics.Dimension{metrics.Team, metrics.Environment}
	sums, err := metrics.Summaries(ctx, conn, sq)
	if err != nil {
		return nil, fmt.Errorf("change calendar by team and environment: %w", err)
	}
	c := &CalendarFigures{}
	for _, s := range sums {
		if s.Deployments > 0 {
			c.Slices = append(c.Slices, s)
		}
	}
	ds, err := metrics.OutsideWindow(ctx, conn, q)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		v := d.Verdict(q.Calendar)
		names := v.Windows
		if v.Freeze != "" {
			names = []string{v.Freeze}
		}
		var missed []string
		for _, name := range names {
			text, _ := q.Calendar.Describe(name)
			missed = append(missed, name+": "+text)
		}
		o := Offender{WindowDeployment: d, Missed: strings.Join(missed, "; "), Freeze: v.Freeze != "", NextAllowed: v.NextAllowed}
		if d.Class == string(calendar.UnplannedFix) {
			c.Fixes = append(c.Fixes, o)
		} else {
			c.Offenders = append(c.Offenders, o)
		}
	}
	slices.SortStableFunc(c.Offenders, func(a, b Offender) int {
		if a.Freeze != b.Freeze {
			if a.Freeze {
				return -1
			}
			return 1
		}
		wait := func(o Offender) time.Duration {
			if o.NextAllowed.IsZero() {
				return math.MaxInt64
			}
			return o.NextAllowed.Sub(o.Time)
		}
		if c := cmp.Compare(wait(b), wait(a)); c != 0 {
			return c
		}
		return a.Time.Compare(b.Time)
	})
	return c, nil
}

// WriteHTML writes r as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return page.Execute(w, r.view())
}

// view is the report as the page template shows it: every value already
// in words and human units, every chart already laid out.
type view struct {
	Range, TimeZone, Generated, Production, LevelTable, Previous string
	Columns                                                      []string
	Rows                                                         []row
	Trends                                                       []chart
	TrendNote                                                    string
	Anomalies                                                    []anomalyRow
	Coverage                                                     coverage
	Incidents                                                    []incidentRow
	Patches                                                      string
	PatchChart                                                   chart
	Targets                                                      []anomaly.ReviewLine
	TargetsBrief                                                 string
	Calendar                                                     *calendarView
}

// calendarView is the change calendar's section: a sentence on the
// organisation, the table by team and environment, the worst offenders
// (at most MaxOffenders, with how many more), the actors with the most,
// and the unplanned fixes apart.
type calendarView struct {
	Brief, Actors, FixesBrief string
	Slices                    []calendarSlice
	Offenders, Fixes          []offenderRow
	More                      int
}

type calendarSlice struct {
	Team, Environment, Deployments, Outside, Share, InFreeze, Fixes string
}

type offenderRow struct {
	Started, ID, Service, Team, Environment, Actor, Pipeline, Class, Missed, NextAllowed string
}

// MaxOffenders is how many of the deployments that broke the calendar
// the report lists.
const MaxOffenders = 20

type row struct {
	Class, Label string
	Cells        []cell
}

// cell is one KPI of one slice: its value, the previous period's value and
// the change, and its DORA level.
type cell struct{ Value, Was, Level string }

// coverage is which days of the report anomaly detection judged: all,
// some or none of them, and the command that judges the rest.
type coverage struct {
	All, None    bool
	Judged, Days int
	Command      string
}

type anomalyRow struct {
	Interval, KPI, Slice, Observed, Expected, Direction, Severity, Firing string
	Owner, Tier, Factors                                                  string
}

type incidentRow struct {
	ID, Service, Environment, Impact, Resolved, ToResolve, Cause, Method string
}

func (r *Report) loc() *time.Location {
	if r.Location == nil {
		return time.UTC
	}
	return r.Location
}

func (r *Report) view() view {
	loc := r.loc()
	v := view{
		Range:      formatRange(r.From, r.To, loc),
		TimeZone:   loc.String(),
		Generated:  r.Generated.In(loc).Format("2006-01-02 15:04 MST"),
		Production: strings.Join(r.Production, ", "),
		LevelTable: r.LevelTable,
		Previous:   formatRange(r.From.Add(-r.To.Sub(r.From)), r.From, loc),
	}
	if r.Generated.IsZero() {
		v.Generated = "–"
	}
	if v.Production == "" {
		v.Production = "production"
	}
	if v.LevelTable == "" {
		v.LevelTable = metrics.DefaultLevelTable
	}
	for _, c := range columns {
		v.Columns = append(v.Columns, c.name)
	}
	org := r.Organisation
	if org == nil {
		org = &metrics.Summary{}
	}
	v.Rows = append(v.Rows, summaryRow("organisation", "organisation", org))
	for _, s := range r.Slices {
		v.Rows = append(v.Rows, summaryRow("slice", sliceLabel(s, r.By), s))
	}
	v.Trends, v.TrendNote = r.trendCharts()
	for i, a := range r.Anomalies {
		av := anomalyView(a)
		if i < len(r.Owners) {
			av.Owner, av.Tier = r.Owners[i][0], r.Owners[i][1]
		}
		v.Anomalies = append(v.Anomalies, av)
	}
	v.Coverage = r.coverage()
	for _, a := range r.Incidents {
		v.Incidents = append(v.Incidents, incidentView(a, loc))
	}
	v.Patches, v.PatchChart = r.patches()
	if r.Targets != nil {
		v.TargetsBrief = r.Targets.Brief() + "."
		for _, rv := range r.Targets.Reviews {
			v.Targets = append(v.Targets, rv.Line())
		}
	}
	if r.Calendar != nil {
		v.Calendar = r.calendarView(org)
	}
	return v
}

// calendarView words the calendar's figures; org is the organisation's
// summary of the period.
func (r *Report) calendarView(org *metrics.Summary) *calendarView {
	c, loc := r.Calendar, r.loc()
	cv := &calendarView{}
	cv.Brief = fmt.Sprintf("%d of the %d production deployments of the period (%s) broke the change calendar: %d outside their windows, %d in a freeze.",
		org.DeploymentsOutsideWindow, org.Deployments, rate(org.OutsideWindowShare), org.DeploymentsOutsideWindow-org.DeploymentsInFreeze,
		org.DeploymentsInFreeze)
	cv.FixesBrief = fmt.Sprintf("Unplanned fixes for an open incident deployed outside their windows or in a freeze: %d; expected there, they are counted apart, not above.",
		org.UnplannedFixesOutsideWindow)
	for _, s := range c.Slices {
		cv.Slices = append(cv.Slices, calendarSlice{Team: orNone(s.Slice[metrics.Team]), Environment: orNone(s.Slice[metrics.Environment]),
			Deployments: fmt.Sprint(s.Deployments), Outside: fmt.Sprint(s.DeploymentsOutsideWindow), Share: rate(s.OutsideWindowShare),
			InFreeze: fmt.Sprint(s.DeploymentsInFreeze), Fixes: fmt.Sprint(s.UnplannedFixesOutsideWindow)})
	}
	row := func(o Offender) offenderRow {
		class := "outside its windows"
		switch {
		case o.Freeze:
			class = "in a freeze"
		case o.Class == string(calendar.UnplannedFix):
			class = "unplanned fix"
		}
		next := absent
		if !o.NextAllowed.IsZero() {
			next = o.NextAllowed.In(loc).Format("Mon 2006-01-02 15:04")
		}
		return offenderRow{Started: o.Time.In(loc).Format("Mon 2006-01-02 15:04"), ID: o.ID, Service: o.Service, Team: orNone(o.Team),
			Environment: o.Environment, Actor: orNone(o.Actor), Pipeline: orNone(o.Pipeline), Class: class, Missed: o.Missed, NextAllowed: next}
	}
	actors := map[string]int{}
	for i, o := range c.Offenders {
		actors[orNone(o.Actor)]++
		if i < MaxOffenders {
			cv.Offenders = append(cv.Offenders, row(o))
		}
	}
	cv.More = max(len(c.Offenders)-MaxOffenders, 0)
	for _, o := range c.Fixes {
		cv.Fixes = append(cv.Fixes, row(o))
	}
	names := slices.Collect(maps.Keys(actors))
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(actors[b], actors[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	var parts []string
	for i, a := range names {
		if i == 5 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", a, actors[a]))
	}
	if len(parts) > 0 {
		cv.Actors = "By actor, most first: " + strings.Join(parts, ", ") + "."
	}
	return cv
}

// orNone is a dimension value as the report shows it: "(none)" for none.
func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// formatRange writes [from, to) as dates when both are midnights in loc.
func formatRange(from, to time.Time, loc *time.Location) string {
	if from.IsZero() && to.IsZero() {
		return "–"
	}
	f, t := from.In(loc), to.In(loc)
	midnight := func(t time.Time) bool {
		return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
	}
	layout := "2006-01-02 15:04"
	if midnight(f) && midnight(t) {
		layout = time.DateOnly
	}
	return f.Format(layout) + " to " + t.Format(layout)
}

func sliceLabel(s *metrics.Summary, by []metrics.Dimension) string {
	parts := make([]string, 0, len(by))
	for _, d := range by {
		val := s.Slice[d]
		if val == "" {
			val = "(none)"
		}
		parts = append(parts, string(d)+" "+val)
	}
	return strings.Join(parts, ", ")
}

// column is one KPI of the DORA table: how to show it and its change, and
// the DORA metric whose level it carries.
type column struct {
	name, level string
	value       func(*metrics.Summary) string
	change      func(now, was *metrics.Summary) string
}

// columns are titled by the KPI catalogue.
var columns = []column{
	countColumn(metrics.Title("deployments"), metrics.PanelDeployments),
	{metrics.Title("deployment_frequency"), "deployment_frequency", func(s *metrics.Summary) string { return fmt.Sprintf("%.2f", *perDay(s)) },
		func(n, w *metrics.Summary) string { return relativeChange(perDay(n), perDay(w)) }},
	rateColumn(metrics.Title("change_failure_rate"), "change_failure_rate", metrics.PointerOf(metrics.PanelChangeFailureRate)),
	durationColumn(metrics.Title("lead_time"), "lead_time", metrics.PointerOf(metrics.PanelLeadTime)),
	durationColumn(metrics.Title("recovery_time"), "recovery_time", metrics.PointerOf(metrics.PanelRecoveryTime)),
	durationColumn(metrics.Title("mttr"), "", metrics.PointerOf(metrics.PanelMTTR)),
	countColumn(metrics.Title("incidents"), metrics.PanelIncidents),
	rateColumn(metrics.Title("patch_compliance"), "", metrics.PointerOf(metrics.PanelPatchCompliance)),
}

// perDay is the deployment frequency, which every summary has.
var perDay = metrics.PointerOf(metrics.PanelDeploymentFrequency)

// countColumn is the column of a count KPI of the catalogue.
func countColumn(name, kpi string) column {
	value := metrics.ValueOf(kpi)
	f := func(s *metrics.Summary) uint64 { v, _ := value(s); return uint64(v) }
	return column{name: name, value: func(s *metrics.Summary) string { return fmt.Sprint(f(s)) },
		change: func(n, w *metrics.Summary) string { return countChange(f(n), f(w)) }}
}

func rateColumn(name, level string, f func(*metrics.Summary) *float64) column {
	return column{name: name, level: level, value: func(s *metrics.Summary) string { return rate(f(s)) },
		change: func(n, w *metrics.Summary) string { return pointsChange(f(n), f(w)) }}
}

func durationColumn(name, level string, f func(*metrics.Summary) *float64) column {
	return column{name: name, level: level, value: func(s *metrics.Summary) string { return duration(f(s)) },
		change: func(n, w *metrics.Summary) string { return relativeChange(f(n), f(w)) }}
}

func summaryRow(class, label string, s *metrics.Summary) row {
	out := row{Class: class, Label: label}
	for _, c := range columns {
		cl := cell{Value: c.value(s), Level: s.Levels[c.level]}
		if p := s.Previous; p != nil {
			cl.Was = "was " + c.value(p) + ", " + c.change(s, p)
		}
		out.Cells = append(out.Cells, cl)
	}
	return out
}

// absent is how a value that does not exist shows: never as 0.
const absent = "–"

func rate(v *float64) string {
	if v == nil {
		return absent
	}
	return metrics.FormatValue("ratio", *v)
}

func duration(v *float64) string {
	if v == nil {
		return absent
	}
	return metrics.FormatValue("seconds", *v)
}

func countChange(now, was uint64) string {
	d := int64(now) - int64(was)
	if d == 0 {
		return "±0"
	}
	if was == 0 {
		return fmt.Sprintf("%+d", d)
	}
	return fmt.Sprintf("%+d (%+.0f%%)", d, 100*float64(d)/float64(was))
}

// relativeChange is the change in percent of the previous value.
func relativeChange(now, was *float64) string {
	switch {
	case now == nil || was == nil:
		return absent
	case *now == *was:
		return "±0%"
	case *was == 0:
		return "up from 0"
	}
	pct := 100 * (*now - *was) / *was
	if math.Abs(pct) < 0.5 {
		return "±0%"
	}
	return fmt.Sprintf("%+.0f%%", pct)
}

// pointsChange is the change of a rate in percentage points.
func pointsChange(now, was *float64) string {
	if now == nil || was == nil {
		return absent
	}
	d := 100 * (*now - *was)
	if math.Abs(d) < 0.05 {
		return "±0 pp"
	}
	return fmt.Sprintf("%+.1f pp", d)
}

func anomalyView(a anomaly.Record) anomalyRow {
	k, ok := metrics.LookupKPI(a.Series.KPI)
	human := func(v float64) string {
		if !ok {
			return fmt.Sprintf("%g", v)
		}
		return k.Format(v)
	}
	title := metrics.Title(a.Series.KPI)
	interval := a.Start.UTC().Format(time.DateOnly) + " (day)"
	if a.Series.Step == metrics.StepHour {
		interval = a.Start.UTC().Format("2006-01-02 15:04") + " (hour)"
	}
	firing := "no"
	if a.Firing {
		firing = "yes"
	}
	return anomalyRow{Interval: interval, KPI: title, Slice: a.Series.Slice(), Observed: human(a.Observed),
		Expected:  human(a.Expected) + " (band " + human(a.Lower) + " to " + human(a.Upper) + ")",
		Direction: a.Direction, Severity: a.Severity, Firing: firing, Factors: a.Factors}
}

func incidentView(a metrics.Attribution, loc *time.Location) incidentRow {
	out := incidentRow{ID: a.IncidentID, Service: a.Service, Environment: a.Environment,
		Impact: a.ImpactStart.In(loc).Format("2006-01-02 15:04"), Resolved: "open", ToResolve: absent,
		Cause: a.DeploymentID, Method: string(a.Method)}
	if !a.Resolved.IsZero() {
		out.Resolved = a.Resolved.In(loc).Format("2006-01-02 15:04")
		d := max(a.Resolved.Sub(a.ImpactStart).Seconds(), 0)
		out.ToResolve = duration(&d)
	}
	if out.Cause == "" {
		out.Cause = "—"
	}
	return out
}

// trendCharts draws the organisation's KPIs per bucket, with the baseline
// band of each where one is learnt and the buckets are days.
func (r *Report) trendCharts() ([]chart, string) {
	loc := r.loc()
	per, xTitle := "day", "day ("+loc.String()+")"
	if r.Bucket == metrics.Week {
		per, xTitle = "week", "week from Monday ("+loc.String()+")"
	}
	labels := make([]string, len(r.Trend))
	hasData := false
	for i, iv := range r.Trend {
		labels[i] = iv.Start.In(loc).Format("Jan 2")
		hasData = hasData || iv.Summary != nil
	}
	note := "Each point is the organisation's value over one " + per + ". Gaps are " + per +
		"s without a value (no deployments, incidents or patches due), never zeros."
	if n := len(r.Trend); n > 0 {
		full := 23 * time.Hour // a day, short of a daylight saving change
		if r.Bucket == metrics.Week {
			full = 7*24*time.Hour - time.Hour
		}
		first, last := r.Trend[0], r.Trend[n-1]
		firstCut := first.End.Sub(first.Start) < full
		lastCut := n > 1 && last.End.Sub(last.Start) < full
		switch {
		case firstCut && lastCut:
			note += " The first and last " + per + "s are cut by the range and cover less time."
		case firstCut:
			note += " The first " + per + " is cut by the range and covers less time."
		case lastCut:
			note += " The last " + per + " is cut by the range and covers less time."
		}
	}
	if r.Bucket == metrics.Week {
		note += " Baseline bands are learnt per day and are drawn on daily trends only (ranges up to 45 days)."
	}

	type spec struct {
		kpi, title, yTitle, line string
		value                    func(*metrics.Summary) *float64
		scale                    float64 // axis units per KPI unit; 0 picks a duration unit
	}
	specs := []spec{
		{"deployments", "Production deployments", "deployments per " + per, "deployments (any status)", metrics.PointerOf(metrics.PanelDeployments), 1},
		{"change_failure_rate", metrics.Title("change_failure_rate"), "failed deployments, %", "change failure rate",
			metrics.PointerOf(metrics.PanelChangeFailureRate), 100},
		{"mttr", metrics.Title("mttr"), "median time to resolve", "MTTR median, detected to resolved",
			metrics.PointerOf(metrics.PanelMTTR), 0},
		{"lead_time", metrics.Title("lead_time"), "median lead time", "lead time median, commit to production",
			metrics.PointerOf(metrics.PanelLeadTime), 0},
		{"patch_compliance", metrics.Title("patch_compliance"), "due patches applied in time, %", "patch compliance",
			metrics.PointerOf(metrics.PanelPatchCompliance), 100},
	}
	var out []chart
	for _, sp := range specs {
		raw := make([]*float64, len(r.Trend))
		bands := make([]*band, len(r.Trend))
		flagged := make([]bool, len(r.Trend))
		for i, iv := range r.Trend {
			switch {
			case iv.Summary != nil:
				raw[i] = sp.value(iv.Summary)
			case hasData && sp.kpi == "deployments": // a count is 0 where nothing happened
				raw[i] = new(float64)
			}
		}
		noBand := r.bands(sp.kpi, bands, flagged)
		scale, yTitle := sp.scale, sp.yTitle
		if scale == 0 {
			hi := 0.0
			for i := range raw {
				if raw[i] != nil {
					hi = math.Max(hi, *raw[i])
				}
				if bands[i] != nil {
					hi = math.Max(hi, bands[i].Upper)
				}
			}
			var unit string
			unit, scale = durationUnit(hi)
			yTitle += ", " + unit
		}
		c := lineChart{Title: sp.title, XTitle: xTitle, YTitle: yTitle, Labels: labels, LineLabel: sp.line,
			BandLabel: "baseline band of the day (daily)", NoBand: noBand, Values: make([]*float64, len(raw)), Bands: bands,
			Flagged: flagged, FlagLabel: "flagged by anomaly detection"}
		for i, v := range raw {
			if v != nil {
				x := *v * scale
				c.Values[i] = &x
			}
			if b := bands[i]; b != nil {
				bands[i] = &band{b.Lower * scale, b.Expected * scale, b.Upper * scale}
			}
		}
		out = append(out, c.draw())
	}
	return out, note
}

// bands fills in the organisation's band of kpi for each daily bucket as
// detection judged it (the baseline of that day's time, not today's), and
// which buckets it flagged; or says why there is none.
func (r *Report) bands(kpi string, out []*band, flagged []bool) (noBand string) {
	if r.Bucket == metrics.Week {
		return "bands are daily: none on weekly buckets"
	}
	byDay := map[time.Time]anomaly.Judged{}
	learning := false
	for _, j := range r.Judged {
		if j.Series.KPI == kpi {
			byDay[j.Start.UTC()] = j
			learning = learning || j.Status != baselines.Ready
		}
	}
	if len(byDay) == 0 {
		return "no day judged: no band"
	}
	loc := r.loc()
	for i, iv := range r.Trend {
		// Detection judges UTC days; a local day takes its date's.
		d := iv.Start.In(loc)
		j, ok := byDay[time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)]
		if !ok {
			continue
		}
		flagged[i] = j.Anomaly // marked where the chart has a value
		// A clipped day is no day.
		if iv.End.Sub(iv.Start) < 23*time.Hour || j.Status != baselines.Ready {
			continue
		}
		if finite(j.Expected, j.Lower, j.Upper) {
			out[i] = &band{j.Lower, j.Expected, j.Upper}
		}
	}
	if learning {
		return "baseline still learning"
	}
	return "no band for these days"
}

// coverage says which UTC days of the report detection judged (for any
// organisation KPI), and the command that judges the others.
func (r *Report) coverage() coverage {
	judged := map[time.Time]bool{}
	for _, j := range r.Judged {
		judged[j.Start.UTC()] = true
	}
	var c coverage
	var first, last time.Time
	for d := metrics.StepDay.Truncate(r.From); d.Before(r.To); d = d.Add(24 * time.Hour) {
		c.Days++
		if judged[d] {
			c.Judged++
			continue
		}
		if first.IsZero() {
			first = d
		}
		last = d
	}
	c.All, c.None = c.Judged == c.Days, c.Judged == 0
	if !c.All {
		c.Command = "opsmetrics anomaly detect --from " + first.Format(time.DateOnly) + " --to " +
			last.Add(24*time.Hour).Format(time.DateOnly)
	}
	return c
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// durationUnit picks the unit of a duration axis whose largest value is
// hi seconds, and the axis units per second.
func durationUnit(hi float64) (string, float64) {
	switch {
	case hi >= 72*3600:
		return "days", 1.0 / 86400
	case hi >= 2*3600:
		return "hours", 1.0 / 3600
	}
	return "minutes", 1.0 / 60
}

// patches states overall patch compliance and draws it per severity.
func (r *Report) patches() (string, chart) {
	s := r.Organisation
	if s == nil {
		s = &metrics.Summary{}
	}
	c := barChart{Title: "Patch compliance by severity", XTitle: "due patches applied within their deadline, %",
		YTitle: "severity", BarLabel: "% of due patches applied in time", Absent: "– (none due)"}
	for _, sev := range metrics.Severities {
		c.Categories = append(c.Categories, sev)
		var v *float64
		if p := s.PatchComplianceBySeverity[sev]; p != nil {
			x := *p * 100
			v = &x
		}
		c.Values = append(c.Values, v)
	}
	text := fmt.Sprintf("Overall compliance: %s. Of the %d patches released in the period that are due (deadline passed or "+
		"outcome known), %d were applied within their deadline. %d are overdue (not applied, deadline passed) at the end of the period.",
		rate(s.PatchCompliance), s.PatchesDue, s.PatchesCompliant, s.PatchesOverdue)
	if s.PatchesDue == 0 {
		text = fmt.Sprintf("Overall compliance: %s: no patch released in the period is due yet. %d are overdue at the end of the period.",
			absent, s.PatchesOverdue)
	}
	return text, c.draw()
}

// page is the page template, with the chart template (svg.go) it calls.
var page = func() *template.Template {
	t := template.Must(template.New("page").Funcs(template.FuncMap{
		"f":   func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		"add": func(a, b float64) float64 { return a + b },
	}).Parse(pageHTML))
	template.Must(t.New("chart").Parse(chartSVG))
	return t
}()

// pageHTML is the page: inline CSS only, for screen and for A4 paper.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ops review {{.Range}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
	color: #1b1f24; background: #fff; margin: 0 auto; max-width: 1120px; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 0; }
dl.meta dt { color: #57606a; } dl.meta dd { margin: 0; }
p.note { color: #57606a; font-size: 13px; max-width: 60em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid #d8dee4; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.organisation td { font-weight: 600; background: #f6f8fa; }
.v { display: block; }
.was { display: block; font-size: 11px; font-weight: normal; color: #57606a; }
.level { display: inline-block; font-size: 11px; font-weight: 600; padding: 0 6px; border-radius: 8px; background: #eaeef2; }
.level.elite { background: #dafbe1; } .level.high { background: #ddf4ff; } .level.medium { background: #fff8c5; } .level.low { background: #ffebe9; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure.chart { margin: 0; flex: 1 1 520px; max-width: 640px; }
figure.chart svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: #24292f; font-family: inherit; }
svg .chart-title { font-size: 14px; font-weight: 600; }
svg .axis-title { font-size: 11px; fill: #57606a; }
svg .axis { stroke: #57606a; stroke-width: 1; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
svg .series { stroke: #0969da; stroke-width: 2; fill: none; }
svg .dot { fill: #0969da; }
svg .band { fill: #0969da; fill-opacity: 0.15; stroke: none; }
svg .flagged { fill: none; stroke: #cf222e; stroke-width: 2; }
svg .bar { fill: #1a7f37; }
svg .empty { font-size: 14px; fill: #6e7781; }
.firing-yes { font-weight: 600; }
@page { size: A4; margin: 14mm; }
@media print {
	* { background: none !important; color: #000 !important; box-shadow: none !important; }
	body { max-width: none; padding: 0; font-size: 10pt; }
	h2 { page-break-after: avoid; break-after: avoid; margin-top: 18px; }
	table, tr, figure.chart, svg, .patches { page-break-inside: avoid; break-inside: avoid; }
	table { font-size: 8pt; }
	th, td { padding: 2px 4px; border-bottom: 1px solid #999; }
	.level { border: 1px solid #000; }
	.charts { display: block; }
	figure.chart { max-width: 170mm; margin: 0 0 6mm; }
	svg text, svg .axis-title, svg .empty { fill: #000; }
	svg .axis { stroke: #000; }
	svg .grid { stroke: #bbb; }
	svg .series { stroke: #000; }
	svg .dot { fill: #000; }
	svg .band { fill: #000; fill-opacity: 0.12; }
	svg .flagged { stroke: #000; stroke-dasharray: 2 1; }
	svg .bar { fill: #666; }
}
</style>
</head>
<body>
<header>
<h1>Ops review</h1>
<dl class="meta">
<dt>Period</dt><dd>{{.Range}}, end excluded</dd>
<dt>Time zone</dt><dd>{{.TimeZone}}</dd>
<dt>Production environments</dt><dd>{{.Production}}</dd>
<dt>Generated</dt><dd>{{.Generated}}</dd>
</dl>
</header>

<section id="dora">
<h2>DORA levels and change from the previous period</h2>
<p class="note">Production figures over the period. Under each value: the previous period of the same length ({{.Previous}})
and the change, in percentage points (pp) for rates and in percent for durations and frequencies.
Levels are the clusters of the DORA {{.LevelTable}} report. “–” is a value that does not exist
(no deployment, no resolved incident, no patch due), never a zero.</p>
<table class="dora">
<thead><tr><th>Slice</th>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr class="{{.Class}}"><td>{{.Label}}</td>
{{- range .Cells}}<td class="num"><span class="v">{{.Value}}</span>{{with .Was}}<span class="was">{{.}}</span>{{end}}{{with .Level}}<span class="level {{.}}">{{.}}</span>{{end}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
</section>

<section id="trends">
<h2>KPI trends against their baselines</h2>
<p class="note">{{.TrendNote}}</p>
<div class="charts">
{{range .Trends}}{{template "chart" .}}
{{end}}</div>
</section>

<section id="anomalies">
<h2>Anomalies of the period</h2>
{{- if .Anomalies}}
<p class="note">Intervals that anomaly detection judged outside their learnt baseline band (intervals in UTC).
Owner and tier: the labels its alert carries, from the service catalog. Firing: the series alerted (the anomaly persisted and its direction hurts); below a firing
anomaly, the values that explain it (docs/alerting.md, "Contributing factors").</p>
<table class="anomalies">
<thead><tr><th>Interval (UTC)</th><th>KPI</th><th>Slice</th><th>Owner</th><th>Tier</th><th>Observed</th><th>Expected (band)</th><th>Direction</th><th>Severity</th><th>Firing</th></tr></thead>
<tbody>
{{- range .Anomalies}}
<tr class="anomaly"><td>{{.Interval}}</td><td>{{.KPI}}</td><td>{{.Slice}}</td><td>{{.Owner}}</td><td>{{.Tier}}</td><td class="num">{{.Observed}}</td><td>{{.Expected}}</td><td>{{.Direction}}</td><td>{{.Severity}}</td><td class="firing-{{.Firing}}">{{.Firing}}</td></tr>
{{- if .Factors}}
<tr class="factors"><td></td><td colspan="9">Contributing factors: {{.Factors}}</td></tr>
{{- end}}
{{- end}}
</tbody>
</table>
{{- else}}
<p>No anomaly was recorded in {{if .Coverage.All}}this period{{else if .Coverage.None}}this period, which was never judged{{else}}the judged part of this period{{end}}.</p>
{{- end}}
<p class="coverage">{{with .Coverage}}{{if .All}}Anomaly detection judged all {{.Days}} days of the period.{{else}}Anomaly detection judged {{.Judged}} of {{.Days}} days of the period; run <code>{{.Command}}</code> for the rest.{{end}}{{end}}</p>
</section>

<section id="targets">
<h2>Are our targets still right?</h2>
{{- if .Targets}}
<p class="note">Every threshold rule on what each of its slices achieved over the last quarter: its KPI over consecutive windows of
the rule's length. Stale: met by every window, the worst by a wide margin, so that it can no longer fire when it matters. Never met:
missed by every window, so that it fires all the time. Shifted: the values since the rule was set (or the second half) left the band of
those before. Suggested: the end of the 95% band of a model learnt on the values (since the change, when shifted). docs/targets.md.</p>
<p>{{.TargetsBrief}}</p>
<table class="targets">
<thead><tr><th>Rule</th><th>KPI</th><th>Slice</th><th>Target</th><th>Met</th><th>Median</th><th>Worst</th><th>Findings</th><th>Suggested</th></tr></thead>
<tbody>
{{- range .Targets}}
<tr class="target"><td>{{.Rule}}</td><td>{{.KPI}}</td><td>{{.Slice}}</td><td>{{.Target}}</td><td class="num">{{.Met}}</td><td class="num">{{.Median}}</td><td class="num">{{.Worst}}</td><td>{{.Findings}}</td><td>{{.Suggested}}</td></tr>
{{- end}}
</tbody>
</table>
<ul class="findings">
{{- range .Targets}}{{if ne .Suggested "-"}}
<li>{{.Summary}}</li>{{end}}
{{- end}}
</ul>
{{- else}}
<p>No target is configured: threshold rules (alerting.thresholds, docs/alerting.md) are the targets this section reviews.</p>
{{- end}}
</section>

<section id="calendar">
<h2>Change calendar</h2>
{{- with .Calendar}}
<p class="note">Production deployments judged by the change calendar at their start, counted in the period their finish falls in
(docs/change-windows.md): outside the windows that decide for their environment, team or tier, or in a freeze. Unplanned fixes for
an incident open at the time are expected outside windows and counted apart. Times in the report's time zone.</p>
<p>{{.Brief}} {{.FixesBrief}}</p>
<table class="calendar">
<thead><tr><th>Team</th><th>Environment</th><th>Deployments</th><th>Outside window</th><th>Share</th><th>In freeze</th><th>Unplanned fixes (apart)</th></tr></thead>
<tbody>
{{- range .Slices}}
<tr class="calendar-slice"><td>{{.Team}}</td><td>{{.Environment}}</td><td class="num">{{.Deployments}}</td><td class="num">{{.Outside}}</td><td class="num">{{.Share}}</td><td class="num">{{.InFreeze}}</td><td class="num">{{.Fixes}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .Offenders}}
<h3>Worst offenders</h3>
<p class="note">Deployments in a freeze first, then those that would have waited longest for their window.{{with .Actors}} {{.}}{{end}}</p>
<table class="offenders">
<thead><tr><th>Started</th><th>Deployment</th><th>Service</th><th>Team</th><th>Environment</th><th>Actor</th><th>Pipeline</th><th>Broke</th><th>Window missed, or freeze hit</th><th>Allowed from</th></tr></thead>
<tbody>
{{- range .Offenders}}
<tr class="offender"><td>{{.Started}}</td><td>{{.ID}}</td><td>{{.Service}}</td><td>{{.Team}}</td><td>{{.Environment}}</td><td>{{.Actor}}</td><td>{{.Pipeline}}</td><td>{{.Class}}</td><td>{{.Missed}}</td><td>{{.NextAllowed}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .More}}
<p>And {{.More}} more.</p>
{{- end}}
{{- end}}
{{- if .Fixes}}
<h3>Unplanned fixes outside windows (counted apart)</h3>
<table class="fixes">
<thead><tr><th>Started</th><th>Deployment</th><th>Service</th><th>Team</th><th>Environment</th><th>Actor</th><th>Pipeline</th><th>Broke</th><th>Window missed, or freeze hit</th><th>Allowed from</th></tr></thead>
<tbody>
{{- range .Fixes}}
<tr class="fix"><td>{{.Started}}</td><td>{{.ID}}</td><td>{{.Service}}</td><td>{{.Team}}</td><td>{{.Environment}}</td><td>{{.Actor}}</td><td>{{.Pipeline}}</td><td>{{.Class}}</td><td>{{.Missed}}</td><td>{{.NextAllowed}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- else}}
<p>No change calendar is configured: the windows and freezes of <code>change_calendar</code> (docs/change-windows.md) are what this section judges deployments by.</p>
{{- end}}
</section>

<section id="incidents">
<h2>Incidents and their causes</h2>
{{- if .Incidents}}
<p class="note">Incidents whose impact started in the period, in every environment. Caused by: the deployment the incident
names (explicit), else the latest successful deployment of its service and environment shortly before its impact (inferred).
Time to resolve counts from the impact start.</p>
<table class="incidents">
<thead><tr><th>Incident</th><th>Service</th><th>Environment</th><th>Impact start</th><th>Resolved</th><th>Time to resolve</th><th>Caused by</th><th>Method</th></tr></thead>
<tbody>
{{- range .Incidents}}
<tr class="incident"><td>{{.ID}}</td><td>{{.Service}}</td><td>{{.Environment}}</td><td>{{.Impact}}</td><td>{{.Resolved}}</td><td class="num">{{.ToResolve}}</td><td>{{.Cause}}</td><td>{{.Method}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No incident started in this period.</p>
{{- end}}
</section>

<section id="patches" class="patches">
<h2>Patch compliance</h2>
<p>{{.Patches}}</p>
<div class="charts">
{{template "chart" .PatchChart}}
</div>
</section>
</body>
</html>
`
