package metrics

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Dimension is a column KPIs can be sliced by. Only these names ever reach
// SQL as identifiers; values always go as bound parameters.
type Dimension string

// The dimensions.
const (
	Service     Dimension = "service"
	Team        Dimension = "team"
	Environment Dimension = "environment"
	// System and Tier come from the service catalog (Query.Catalog),
	// mapped from the service at query time (services.go).
	System Dimension = "system"
	Tier   Dimension = "tier"
)

// ParseDimension accepts only the known dimensions.
func ParseDimension(s string) (Dimension, error) {
	switch d := Dimension(strings.TrimSpace(s)); d {
	case Service, Team, Environment, System, Tier:
		return d, nil
	}
	return "", fmt.Errorf("unknown dimension %q: want service, team, environment, system or tier", s)
}

// Query selects what a summary covers.
type Query struct {
	From, To time.Time // [From, To)
	By       []Dimension
	// Services, Teams and Environments, when not empty, keep only those.
	Services, Teams, Environments []string
	// Systems and Tiers, when not empty, keep only the services the
	// catalog puts in them; Catalog is the service catalog that dimensions
	// System and Tier read (services.go).
	Systems, Tiers []string
	Catalog        *catalog.Catalog
	// Production lists the environments that count as production, matched
	// without regard to case. Empty means ["production"].
	Production []string
	MaxGap     time.Duration // attribution gap; 0 means DefaultMaxGap, Unbounded none
	// LeadTimeFromMerge starts change lead time at the merge instead of
	// the commit (authored time).
	LeadTimeFromMerge bool
	// LeadTimeLookback is how long before From a change may have started
	// and still count; 0 means DefaultLeadTimeLookback.
	LeadTimeLookback time.Duration
	// PatchDeadlines is the time allowed to apply a patch, per severity.
	// Missing severities take DefaultPatchDeadlines.
	PatchDeadlines map[string]time.Duration
	// Levels names the DORA report whose clusters classify the metrics:
	// "2023" or "2024" (the default), or a table of LevelTables.
	Levels string
	// LevelTables adds or replaces level tables by name (configuration's
	// kpi.dora_levels).
	LevelTables map[string]LevelTable
	// Calendar is the change calendar deployments_outside_window judges
	// deployments by (nil: none, the KPI is 0); ServiceTiers the tier of
	// each service, from the service catalog, for its tier-scoped windows
	// and freezes.
	Calendar     *calendar.Calendar
	ServiceTiers map[string]string
	// storedTiers reads each service's tier from the stored service
	// catalog instead of ServiceTiers (PanelOptions.StoredTiers).
	storedTiers bool
	// Step, when set, splits the range into UTC hours or days within one
	// set of queries: Summaries then returns a summary per step and slice
	// that has data, with Bucket set. Baselines learn from these series.
	Step Step

	// RollupMaxAge is how old a KPI rollup of other rows than the stored
	// ones may be and still be read instead of the raw rows (docs/kpis.md,
	// Freshness): 0 means DefaultRollupMaxAge, negative never reads one.
	RollupMaxAge time.Duration
	// Cache, when set, keeps the rows of rollup reads for the next
	// identical read (RollupCache); nil reads ClickHouse each time.
	Cache *RollupCache

	// leadStarts has the lead-time query return the start of each change
	// it counts (samples.starts), which the rollup keeps.
	leadStarts bool
	// ranges has a rollup read (with Step day) judge each of these whole
	// UTC-day ranges within [From, To) as its own range (Run's buckets
	// and the ranges they are compared with): the lookback, the patch
	// deadlines and the families of a summary without slices, as
	// Summaries of that range; its summaries' Bucket is the range's start.
	ranges [][2]time.Time
}

// Step is the granularity of a KPI series.
type Step string

// The steps.
const (
	StepHour Step = "hour"
	StepDay  Step = "day"
)

// Duration is the length of one step.
func (s Step) Duration() time.Duration {
	if s == StepHour {
		return time.Hour
	}
	return 24 * time.Hour
}

// Truncate returns the start of the step that holds t, in UTC.
func (s Step) Truncate(t time.Time) time.Time { return t.UTC().Truncate(s.Duration()) }

// ParseStep accepts hour or day.
func ParseStep(s string) (Step, error) {
	switch st := Step(s); st {
	case StepHour, StepDay:
		return st, nil
	}
	return "", fmt.Errorf("unknown step %q: want hour or day", s)
}

func (s Step) sql(col string) string {
	if s == StepHour {
		return "toString(toStartOfHour(" + col + "))"
	}
	return "toString(toStartOfDay(" + col + "))"
}

// DefaultPatchDeadlines are the patch service levels when none are set.
var DefaultPatchDeadlines = map[string]time.Duration{
	"critical": 7 * 24 * time.Hour,
	"high":     14 * 24 * time.Hour,
	"medium":   30 * 24 * time.Hour,
	"low":      90 * 24 * time.Hour,
}

// Severities in report order; "unknown" is a patch or incident without one
// (its patch deadline is the low one).
var Severities = []string{"critical", "high", "medium", "low", "unknown"}

// Deadline is the patch deadline of the severity sev by q's definitions:
// its PatchDeadlines, else DefaultPatchDeadlines, else the low one.
func (q Query) Deadline(sev string) time.Duration {
	if d, ok := q.PatchDeadlines[sev]; ok {
		return d
	}
	if d, ok := DefaultPatchDeadlines[sev]; ok {
		return d
	}
	return DefaultPatchDeadlines["low"]
}

// Summary is the DORA and incident figures of one slice. A nil pointer is
// an absent value: a rate with no denominator, a duration with no sample.
type Summary struct {
	Slice map[Dimension]string `json:"slice"`
	// Bucket and BucketEnd are the start and exclusive end of the bucket,
	// when the report is bucketed. Partial is set when an edge of the range
	// clipped the bucket (a week of one day): its figures cover that part.
	Bucket    *time.Time `json:"bucket,omitempty"`
	BucketEnd *time.Time `json:"bucket_end,omitempty"`
	Partial   bool       `json:"partial,omitempty"`
	// Previous is the same slice over the previous period of the same
	// length, when the report compares.
	Previous *Summary `json:"previous,omitempty"`

	Deployments                 uint64              `json:"deployments"` // production, any status
	SuccessfulDeploys           uint64              `json:"successful_deployments"`
	DeploymentsPerDay           float64             `json:"deployments_per_day"` // successful, per day of the range
	DeploymentDays              uint64              `json:"deployment_days"`     // days with a successful deployment
	FailedDeployments           uint64              `json:"failed_deployments"`  // failure, rolled back, or caused an incident
	ChangeFailureRate           *float64            `json:"change_failure_rate"` // failed / deployments
	ReworkDeployments           uint64              `json:"rework_deployments"`
	ReworkRate                  *float64            `json:"rework_rate"`              // unplanned / deployments
	Incidents                   uint64              `json:"incidents"`                // production, impact in range
	LeadTimeMedianSeconds       *float64            `json:"lead_time_median_seconds"` // change → first successful production deployment
	LeadTimeP90Seconds          *float64            `json:"lead_time_p90_seconds"`
	ChangesDeployed             uint64              `json:"changes_deployed"`        // first reached production in range
	ChangesNotDeployed          uint64              `json:"changes_not_deployed"`    // started in range, never reached production
	MTTDMedianSeconds           *float64            `json:"mttd_median_seconds"`     // impact start → detected
	MTTAMedianSeconds           *float64            `json:"mtta_median_seconds"`     // detected → acknowledged
	RecoveryMedianSeconds       *float64            `json:"recovery_median_seconds"` // failed deployment → recovered
	RecoveryP90Seconds          *float64            `json:"recovery_p90_seconds"`
	Unrecovered                 uint64              `json:"unrecovered_deployments"` // failed, not recovered yet
	IncidentsBySeverity         map[string]uint64   `json:"incidents_by_severity"`
	MTTRMeanSeconds             *float64            `json:"mttr_mean_seconds"`
	MTTRFromImpactMedianSeconds *float64            `json:"mttr_from_impact_median_seconds"` // impact start → resolved
	PatchesReleased             uint64              `json:"patches_released"`                // patch targets released in range
	PatchAdvisories             uint64              `json:"patch_advisories"`                // distinct patches (advisories) among them
	PatchLatencyMedianSeconds   *float64            `json:"patch_latency_median_seconds"`    // released → applied
	PatchLatencyP90Seconds      *float64            `json:"patch_latency_p90_seconds"`
	PatchesDue                  uint64              `json:"patches_due"`       // deadline passed or outcome known
	PatchesCompliant            uint64              `json:"patches_compliant"` // of those, applied within deadline
	PatchCompliance             *float64            `json:"patch_compliance"`  // compliant ÷ due
	PatchComplianceBySeverity   map[string]*float64 `json:"patch_compliance_by_severity"`
	PatchFailureRate            *float64            `json:"patch_failure_rate"`                 // failed or rolled back ÷ with an outcome
	PatchesOverdue              uint64              `json:"patches_overdue"`                    // not applied, past deadline at the range end
	DeployDurationMedianSeconds *float64            `json:"deployment_duration_median_seconds"` // started → finished
	DeployDurationP90Seconds    *float64            `json:"deployment_duration_p90_seconds"`
	// The change calendar's figures (window.go), with Query.Calendar set:
	// deployments outside their windows or in a freeze (those in a freeze
	// among them), their share of the deployments, and the unplanned fixes
	// for an open incident outside the calendar, counted apart.
	DeploymentsOutsideWindow    uint64   `json:"deployments_outside_window"`
	DeploymentsInFreeze         uint64   `json:"deployments_in_freeze"`
	OutsideWindowShare          *float64 `json:"deployments_outside_window_share"`
	UnplannedFixesOutsideWindow uint64   `json:"unplanned_fixes_outside_window"`
	// Levels is the DORA performance level of each DORA metric with a
	// value, in the report's words (elite, high, medium, low); LevelLabels
	// the same with their best-to-worst place ("low (worst of 4)").
	Levels              map[string]string `json:"dora_levels"`
	LevelLabels         map[string]string `json:"dora_level_labels"`
	MTTRMedianSeconds   *float64          `json:"mttr_median_seconds"` // detected → resolved, resolved ones
	MTTRP90Seconds      *float64          `json:"mttr_p90_seconds"`
	UnresolvedIncidents uint64            `json:"unresolved_incidents"`
	// Samples is how many durations each median is of (mttr, mttd,
	// lead_time, patch_latency): baselines weigh a median by it.
	Samples map[string]int `json:"-"`
	// AsOf is when the KPI rollup this summary was read from was built:
	// events stored after it are not in it yet (docs/kpis.md, Freshness).
	// Nil when the summary was computed from the raw rows.
	AsOf *time.Time `json:"as_of,omitempty"`

	raw samples
}

// samples are the durations a summary's medians and quantiles are of,
// kept until the summary is finished (Summary.finish), and which of the
// KPI families had rows for it: a family without rows leaves its figures
// absent, not zero.
type samples struct {
	durations, mttr, mttd, mtta, mttrImpact, leads, recoveries dist
	// starts are the starts of the changes of leads, when the query asks
	// for them (Query.leadStarts: the rollup files them).
	starts                        []time.Time
	incidents, leadTimes, patches bool
}

// finish computes the figures of s that follow from its counts and
// samples, over a range or bucket of days days.
func (s *Summary) finish(days float64, levels LevelTable) {
	r := &s.raw
	s.DeployDurationMedianSeconds, s.DeployDurationP90Seconds = r.durations.quantile(0.5), r.durations.quantile(0.9)
	if r.incidents {
		s.MTTRMedianSeconds, s.MTTRP90Seconds = r.mttr.quantile(0.5), r.mttr.quantile(0.9)
		s.MTTDMedianSeconds = r.mttd.quantile(0.5)
		s.sampled("mttr", r.mttr.len())
		s.sampled("mttd", r.mttd.len())
		s.MTTAMedianSeconds = r.mtta.quantile(0.5)
		s.MTTRFromImpactMedianSeconds = r.mttrImpact.quantile(0.5)
		s.MTTRMeanSeconds = r.mttr.mean()
	}
	if r.leadTimes {
		s.ChangesDeployed = uint64(r.leads.len())
		s.sampled("lead_time", r.leads.len())
		s.LeadTimeMedianSeconds, s.LeadTimeP90Seconds = r.leads.quantile(0.5), r.leads.quantile(0.9)
	}
	s.RecoveryMedianSeconds, s.RecoveryP90Seconds = r.recoveries.quantile(0.5), r.recoveries.quantile(0.9)
	s.DeploymentsPerDay = float64(s.SuccessfulDeploys) / days
	if s.Deployments > 0 {
		s.ChangeFailureRate = ptr(float64(s.FailedDeployments) / float64(s.Deployments))
		s.ReworkRate = ptr(float64(s.ReworkDeployments) / float64(s.Deployments))
	}
	s.Levels = levels.Levels(s)
	s.LevelLabels = LevelLabels(s.Levels)
	s.raw = samples{}
}

func (s *Summary) sampled(kpi string, n int) {
	if s.Samples == nil {
		s.Samples = map[string]int{}
	}
	s.Samples[kpi] = n
}

// production is the production environments, lower-cased: ingestion
// stores every environment name lower-cased (and aliased), so that
// PRODUCTION and Production are production.
func (q Query) production() []string {
	if len(q.Production) == 0 {
		return []string{"production"}
	}
	return lower(q.Production)
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSpace(n))
	}
	return out
}

// gap is the attribution gap of q: MaxGap, or DefaultMaxGap when unset.
func (q Query) gap() time.Duration {
	if q.MaxGap <= 0 {
		return DefaultMaxGap
	}
	return q.MaxGap
}

// where is the common filter on a source with the dimension columns: the
// time column in [From, To), production, and the filters of q.
func (q Query) where(timeCol string) chsql.Expr {
	return chsql.Join(" AND ", append([]chsql.Expr{chsql.SQL(timeCol+" >= ? AND "+timeCol+" < ? AND has(?, environment)",
		at(q.From), at(q.To), q.production())}, q.filters()...)...)
}

// filters are the service, team and environment filters of q.
func (q Query) filters() []chsql.Expr {
	var out []chsql.Expr
	for _, f := range []struct {
		col    string
		values []string
	}{{"service", q.Services}, {"team", q.Teams}, {"environment", lower(q.Environments)}} {
		if len(f.values) > 0 {
			out = append(out, chsql.SQL("has(?, "+f.col+")", f.values))
		}
	}
	return append(out, q.catalogFilters()...)
}

// dims is the number of leading dimension columns of a query's rows.
func (q Query) dims() int {
	if q.Step != "" {
		return len(q.By) + 1
	}
	return len(q.By)
}

// groupBy returns the dimension columns (and the step of timeCol, last),
// as d0 to d3 (the dims of a row), to select, and the GROUP BY of them.
func (q Query) groupBy(timeCol string) (cols, group chsql.Expr) {
	step := ""
	if q.Step != "" {
		step = q.Step.sql(timeCol)
	}
	return q.groupByStep(step)
}

// groupByStep is groupBy with the step's expression given (none if
// empty).
func (q Query) groupByStep(step string) (cols, group chsql.Expr) {
	var names []chsql.Expr
	for _, d := range q.By {
		names = append(names, q.column(d))
	}
	if step != "" {
		names = append(names, chsql.Raw(step))
	}
	if len(names) == 0 {
		return chsql.Expr{}, chsql.Expr{}
	}
	aliased := make([]chsql.Expr, len(names))
	for i, n := range names {
		aliased[i] = chsql.SQL("? AS d"+string(rune('0'+i)), n)
	}
	return chsql.SQL("?, ", chsql.Join(", ", aliased...)), chsql.SQL(" GROUP BY ?", chsql.Join(", ", names...))
}

// Summaries computes the summary of every slice of q.By over [From, To).
func Summaries(ctx context.Context, conn driver.Conn, q Query) ([]*Summary, error) {
	levels, err := q.levelTable()
	if err != nil {
		return nil, err
	}
	if err := q.check(); err != nil {
		return nil, err
	}
	if r, ok, err := rollupFor(ctx, conn, q); err != nil {
		return nil, err
	} else if ok {
		return fromRollup(ctx, conn, q, r, levels)
	}
	slices, err := collect(ctx, conn, q)
	if err != nil {
		return nil, err
	}
	return finished(q, slices, levels), nil
}

// finished finishes the summaries of slices (Summary.finish) and returns
// them in the order of their slices.
func finished(q Query, slices map[string]*Summary, levels LevelTable) []*Summary {
	days := q.To.Sub(q.From).Hours() / 24
	if q.Step != "" {
		days = q.Step.Duration().Hours() / 24
	}
	out := make([]*Summary, 0, len(slices))
	for _, s := range slices {
		s.finish(days, levels)
		out = append(out, s)
	}
	sortBySlice(out, q.By)
	return out
}

// check refuses an empty range and unknown dimensions.
func (q Query) check() error {
	if !q.From.Before(q.To) {
		return fmt.Errorf("empty range: from %s is not before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	for _, d := range q.By {
		if _, err := ParseDimension(string(d)); err != nil {
			return err
		}
	}
	return nil
}

// collect runs the summary queries of q from the raw rows: the counts and
// samples of every slice, keyed by its dimension values (and bucket),
// not finished yet.
func collect(ctx context.Context, conn driver.Conn, q Query) (map[string]*Summary, error) {
	gap := q.gap()
	// Incidents up to one gap after the range can still blame a deployment in it.
	attrs, err := Attributions(ctx, conn, q.From.Add(-gap), q.To.Add(gap), gap)
	if err != nil {
		return nil, err
	}
	// The empty id keeps the array typed Array(String) when nothing is
	// blamed; no deployment has an empty id.
	blamed := []string{""}
	for _, a := range attrs {
		if a.DeploymentID != "" {
			blamed = append(blamed, a.DeploymentID)
		}
	}

	slices, get := keyedSummaries(q)
	cols, group := q.groupBy("finished_at")
	n := q.dims()
	dq := chsql.SQL(`SELECT ?count() AS v_deployments, countIf(status = 'success') AS v_successful,
		uniqExactIf(toDate(finished_at), status = 'success') AS v_days,
		countIf(status != 'success' OR ?) AS v_failed, countIf(unplanned = 1) AS v_rework,
		groupArrayIf(toFloat64(dateDiff('second', assumeNotNull(started_at), finished_at)), isNotNull(started_at)) AS v_durations
		FROM ??`, cols, inSet("deployment_id", blamed), q.deploymentRows("status", "unplanned", "started_at", "finished_at"), group)
	if err := query(ctx, conn, dq, func(r *deploymentRow) {
		s := get(r.values(n))
		s.Deployments, s.SuccessfulDeploys, s.DeploymentDays = r.Deployments, r.Successful, r.Days
		s.FailedDeployments, s.ReworkDeployments = r.Failed, r.Rework
		s.raw.durations = dist{xs: r.Durations}
	}); err != nil {
		return nil, fmt.Errorf("deployment KPIs: %w", err)
	}

	cols, group = q.groupBy(incidentImpact)
	iq := chsql.SQL(`SELECT ?count() AS v_incidents, countIf(isNull(resolved_at)) AS v_unresolved,
		groupArrayIf(toFloat64(dateDiff('second', assumeNotNull(detected_at), assumeNotNull(resolved_at))),
			isNotNull(resolved_at) AND isNotNull(detected_at)) AS v_mttr,
		groupArrayIf(toFloat64(dateDiff('second', assumeNotNull(impact_started_at), assumeNotNull(detected_at))),
			isNotNull(impact_started_at) AND isNotNull(detected_at)) AS v_mttd,
		groupArrayIf(toFloat64(dateDiff('second', assumeNotNull(detected_at), assumeNotNull(acknowledged_at))),
			isNotNull(acknowledged_at) AND isNotNull(detected_at)) AS v_mtta,
		groupArrayIf(toFloat64(dateDiff('second', assumeNotNull(ifNull(impact_started_at, detected_at)), assumeNotNull(resolved_at))),
			isNotNull(resolved_at)) AS v_mttr_impact,
		groupArray(if(severity = '', 'unknown', severity)) AS v_severities
		FROM ??`, cols, q.incidentRows("severity", "impact_started_at", "detected_at", "acknowledged_at", "resolved_at"), group)
	if err := query(ctx, conn, iq, func(r *incidentRow) {
		s := get(r.values(n))
		s.Incidents, s.UnresolvedIncidents = r.Incidents, r.Unresolved
		s.raw.incidents = true
		s.raw.mttr, s.raw.mttd, s.raw.mtta, s.raw.mttrImpact = dist{xs: r.MTTR}, dist{xs: r.MTTD}, dist{xs: r.MTTA}, dist{xs: r.MTTRFromImpact}
		s.IncidentsBySeverity = map[string]uint64{}
		for _, sev := range r.Severities {
			s.IncidentsBySeverity[sev]++
		}
	}); err != nil {
		return nil, fmt.Errorf("incident KPIs: %w", err)
	}

	if err := leadTimes(ctx, conn, q, get); err != nil {
		return nil, err
	}

	if err := recovery(ctx, conn, q, attrs, blamed, get); err != nil {
		return nil, err
	}
	if err := patches(ctx, conn, q, get); err != nil {
		return nil, err
	}
	if err := outsideWindow(ctx, conn, q, get); err != nil {
		return nil, err
	}

	return slices, nil
}

func sliceKey(s *Summary, by []Dimension) []string {
	k := make([]string, len(by))
	for i, d := range by {
		k[i] = s.Slice[d]
	}
	return k
}

// deploymentRows is the FROM and WHERE of the summary's deployment
// query (and Counts'): the deployments finished in q's range, folded
// (deploymentsFinished) with cols beside the dimensions, in its
// production environments and filters.
func (q Query) deploymentRows(cols ...string) chsql.Expr {
	return chsql.SQL("? WHERE ?", deploymentsFinished(at(q.From), at(q.To), dimsAnd(cols...), chsql.Expr{}), q.where("finished_at"))
}

// incidentImpact is when an incident's impact started: its impact start,
// else its detection. Incidents count in the range, step and slice of it.
const incidentImpact = "assumeNotNull(ifNull(impact_started_at, detected_at))"

// incidentRows is the FROM and WHERE of the summary's incident query (and
// Counts'): the incidents whose impact started in q's range, folded
// (incidentsStarted) with cols beside the dimensions, in its production
// environments and filters.
func (q Query) incidentRows(cols ...string) chsql.Expr {
	return chsql.SQL("? WHERE isNotNull(ifNull(impact_started_at, detected_at)) AND ?",
		incidentsStarted(at(q.From), at(q.To), dimsAnd(cols...)...), q.where(incidentImpact))
}

// keyedSummaries is the summaries of q's slices (and buckets) by their
// dimension values joined, and get, which returns the one of the values
// vals (a row's dims: q.By's, then the bucket's), made on first use.
func keyedSummaries(q Query) (map[string]*Summary, func(vals []string) *Summary) {
	keyed := map[string]*Summary{}
	return keyed, func(vals []string) *Summary {
		key := strings.Join(vals, "\x00")
		s, ok := keyed[key]
		if !ok {
			s = &Summary{Slice: map[Dimension]string{}}
			for i, d := range q.By {
				s.Slice[d] = vals[i]
			}
			if q.Step != "" {
				if b, err := time.ParseInLocation(time.DateTime, vals[len(q.By)], time.UTC); err == nil {
					s.Bucket = &b
				}
			}
			keyed[key] = s
		}
		return s
	}
}

// sortBySlice orders ss by their slices' values (formatted as one key),
// keeping the order of equal ones. Each key is formatted once: a report
// by service and day sorts tens of thousands.
func sortBySlice(ss []*Summary, by []Dimension) {
	type keyed struct {
		key string
		s   *Summary
	}
	ks := make([]keyed, len(ss))
	for i, s := range ss {
		ks[i] = keyed{fmt.Sprint(sliceKey(s, by)), s}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range ks {
		ss[i] = ks[i].s
	}
}

func ptr(f float64) *float64 { return &f }

// dimsAnd is the dimension columns and cols: what a fold must keep for a
// sliced, filtered query.
func dimsAnd(cols ...string) []string {
	return append([]string{string(Service), string(Team), string(Environment)}, cols...)
}

func mean(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return ptr(sum / float64(len(xs)))
}

// recovery computes failed-deployment recovery time per slice. A deployment
// blamed for an incident recovers when that incident (the earliest blamed
// one) is resolved, counted from its impact start; any other failed
// deployment recovers at the next successful deployment of the same service
// and environment, counted from its finish.
func recovery(ctx context.Context, conn driver.Conn, q Query, attrs []Attribution, blamed []string, get func([]string) *Summary) error {
	samples := map[*Summary][]float64{}
	n := q.dims()
	err := recoveries(ctx, conn, q, attrs, blamed, func(r *recoveryRow, from, to time.Time, _ string) {
		s := get(r.values(n))
		if to.IsZero() {
			s.Unrecovered++
			return
		}
		samples[s] = append(samples[s], max(to.Sub(from).Seconds(), 0))
	})
	if err != nil {
		return fmt.Errorf("recovery time: %w", err)
	}
	for s, xs := range samples {
		s.raw.recoveries = dist{xs: xs}
	}
	return nil
}

// recoveries calls each with every failed production deployment of q's
// range, sliced by q.By, and its recovery: from the earliest impact start
// to the resolution of the incidents blamed on it, or else from its finish
// to the next successful deployment of its service and environment; by says
// which. A deployment not recovered yet has a zero to.
func recoveries(ctx context.Context, conn driver.Conn, q Query, attrs []Attribution, blamed []string,
	each func(r *recoveryRow, from, to time.Time, by string)) error {
	first := map[string]Attribution{}
	for _, a := range attrs {
		if a.DeploymentID == "" {
			continue
		}
		if f, ok := first[a.DeploymentID]; !ok || a.ImpactStart.Before(f.ImpactStart) {
			first[a.DeploymentID] = a
		}
	}
	cols, _ := q.groupBy("finished_at")
	failed := deploymentsFinished(at(q.From), at(q.To), dimsAnd("status", "finished_at"), chsql.Expr{})
	succ := deploymentsFinished(at(q.From), chsql.Time{}, []string{"service", "environment", "status", "finished_at"}, chsql.Expr{})
	// The next success is the first finish in the sorted successes of the
	// same service and environment after the failed one.
	rq := chsql.SQL(`SELECT ?deployment_id AS v_id, finished_at AS v_finished, arrayFirst(x -> x > finished_at, succ) AS v_next
		FROM (
			SELECT deployment_id, service, team, environment, finished_at
			FROM ? WHERE ? AND (status != 'success' OR ?)
		)
		ANY LEFT JOIN (
			SELECT service, environment, arraySort(groupArray(finished_at)) AS succ
			FROM ? WHERE status = 'success'
			GROUP BY service, environment
		) USING (service, environment)`, cols, failed, q.where("finished_at"), inSet("deployment_id", blamed), succ)
	return query(ctx, conn, rq, func(r *recoveryRow) {
		switch a, ok := first[r.ID]; {
		case ok && a.Resolved.IsZero():
			each(r, a.ImpactStart, a.Resolved, "incident "+a.IncidentID+", not resolved yet")
		case ok:
			each(r, a.ImpactStart, a.Resolved, "incident "+a.IncidentID+" resolved")
		case r.Next.Unix() > 0:
			each(r, r.Finished, r.Next, "next successful deployment")
		default:
			each(r, time.Time{}, time.Time{}, "")
		}
	})
}

// dist is a sample of durations: its values, or, as the rollup reads
// them, its size, sum and the order statistics of its median and 90th
// percentile (dist.quantile), which ClickHouse picks from the sorted
// values (rollupDist).
type dist struct {
	xs []float64
	// stats, when set: n, the values at the ranks around the median,
	// around the 90th percentile, and the sum.
	stats []float64
}

func (d dist) len() int {
	if d.stats != nil {
		return int(d.stats[0])
	}
	return len(d.xs)
}

// quantile is the p-quantile of d (0.5 or 0.9 from stats), as quantile.
func (d dist) quantile(p float64) *float64 {
	if d.stats == nil {
		return quantile(d.xs, p)
	}
	n := d.len()
	if n == 0 {
		return nil
	}
	a, b := d.stats[1], d.stats[2]
	if p != 0.5 {
		a, b = d.stats[3], d.stats[4]
	}
	pos := p * float64(n-1)
	lo := int(pos)
	if lo+1 >= n {
		return ptr(a)
	}
	return ptr(a + (pos-float64(lo))*(b-a))
}

func (d dist) mean() *float64 {
	if d.stats == nil {
		return mean(d.xs)
	}
	if d.len() == 0 {
		return nil
	}
	return ptr(d.stats[5] / d.stats[0])
}

// quantile returns the p-quantile of xs by linear interpolation between the
// closest ranks (numpy's default), or nil for no sample.
func quantile(xs []float64, p float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := p * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return ptr(s[len(s)-1])
	}
	return ptr(s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo]))
}

// patchSource is the patch targets released in range with their severity
// (sev, "unknown" when none), deadline (due_at), whether they are due at the
// range end (due: deadline passed, or an outcome) and compliant (applied by
// the deadline).
func patchSource(q queryRange) chsql.Expr { return patchSourceAt(q, q.to) }

// patchSourceAt is patchSource with the deadlines judged at judge rather
// than at the range's end.
func patchSourceAt(q queryRange, judge chsql.Time) chsql.Expr {
	src := patchesReleased(q.from, q.to, dimsAnd("severity", "released_at", "applied_at", "outcome")...)
	return q.judgePatches(chsql.SQL("(SELECT *, if(severity = '', 'unknown', severity) AS sev FROM ? WHERE isNotNull(released_at))", src), judge)
}

// judgePatches adds to the patch targets of src (with sev, released_at,
// applied_at and outcome) the columns the patch KPIs read, by q's
// deadlines judged at judge: due_at, due and compliant.
func (q Query) judgePatches(src chsql.Expr, judge chsql.Time) chsql.Expr {
	var cases []chsql.Expr
	for _, sev := range Severities[:4] {
		cases = append(cases, chsql.SQL("sev = ?, ?", sev, int64(q.Deadline(sev)/time.Second)))
	}
	deadline := chsql.SQL("multiIf(?, ?)", chsql.Join(", ", cases...), int64(q.Deadline("unknown")/time.Second))
	return chsql.SQL(`(
			SELECT *, ? AS due_at,
				(due_at < ? OR outcome != 'open') AS due,
				(outcome = 'applied' AND isNotNull(applied_at) AND assumeNotNull(applied_at) <= due_at) AS compliant
			FROM ?
		)`, chsql.Shift(chsql.Raw("assumeNotNull(released_at)"), deadline), judge, src)
}

// patches computes the patch KPIs of the patch targets released in range
// (Query.tally, from the targets collectPatches reads; the rollup read
// counts the same in ClickHouse, patchTallySQL).
func patches(ctx context.Context, conn driver.Conn, q Query, get func([]string) *Summary) error {
	targets, err := collectPatches(ctx, conn, q)
	if err != nil {
		return err
	}
	whole := len(q.By) == 0 && q.Step == ""
	for key, t := range targets {
		q.tally(t).figures(get(strings.Split(key, "\x00")), whole)
	}
	return nil
}

// leadTimeSource is every change that started in [From − lookback, To)
// with its first successful production deployment since then (first_deploy
// is zero when none): service, team, environment (of that deployment),
// start and first_deploy. Callers pick the changes whose first deployment
// is in the range, or that started in it and are not deployed.
func leadTimeSource(q queryRange) chsql.Expr {
	lookback := q.lookback()
	since := q.from.Add(-lookback)
	// A commit authored after its merge (clock skew, an amended or rebased
	// commit) starts at the merge.
	start := "ifNull(least(authored_at, merged_at), ifNull(authored_at, merged_at))"
	if q.LeadTimeFromMerge {
		start = "merged_at"
	}
	// Every message of a change that has one in the lookback is folded, so
	// that its start does not depend on where the range begins.
	changes := chsql.SQL("("+store.Changes("change_id IN (SELECT change_id FROM change_events WHERE authored_at >= ? OR merged_at >= ?)",
		"service", "team", "authored_at", "merged_at")+")", since, since)
	deploys := deploymentsFinished(since, chsql.Time{}, []string{"environment", "status", "finished_at", "changes"},
		chsql.SQL("has(?, environment)", q.production()))
	return chsql.SQL(`(
			SELECT change_id, service, team, environment, start, first_deploy
			FROM (
				SELECT change_id, service, team, assumeNotNull(`+start+`) AS start
				FROM ? WHERE isNotNull(`+start+`) AND `+start+` >= ? AND `+start+` < ?
			)
			ANY LEFT JOIN (
				SELECT change_id, min(finished_at) AS first_deploy,
					argMin(environment, tuple(finished_at, deployment_id)) AS environment
				FROM (
					SELECT deployment_id, environment, finished_at, arrayJoin(changes) AS change_id
					FROM ? WHERE status = 'success' AND has(?, environment)
				)
				GROUP BY change_id
			) USING (change_id)
		)`, changes, since, q.to, deploys, q.production())
}

// leadSeconds is the lead time of a row of leadTimeSource. A change whose
// first production deployment finished before its start (deployed from a
// branch before its merge, or a skewed clock) was already running in
// production when it started: its lead time is zero, never negative.
const leadSeconds = "toFloat64(greatest(dateDiff('second', start, first_deploy), 0))"

// DefaultLeadTimeLookback is how long before a range a change may have
// started and still have its lead time counted in the range.
const DefaultLeadTimeLookback = 90 * 24 * time.Hour

// lookback is q's lead-time lookback.
func (q Query) lookback() time.Duration {
	if q.LeadTimeLookback <= 0 {
		return DefaultLeadTimeLookback
	}
	return q.LeadTimeLookback
}

// leadTimes computes change lead time per slice. A change counts in the
// range its first successful production deployment finished in; one that
// started in the range and has no such deployment yet counts as not
// deployed. Changes that started more than the lookback before the range
// are not looked at, which bounds the scan to the range plus the lookback.
func leadTimes(ctx context.Context, conn driver.Conn, q Query, get func([]string) *Summary) error {
	cols, group := q.groupBy("if(first_deploy = toDateTime(0), start, first_deploy)")
	where := chsql.Join(" AND ", append([]chsql.Expr{chsql.SQL(
		"((first_deploy >= ? AND first_deploy < ?) OR (first_deploy = toDateTime(0) AND start >= ? AND start < ?))",
		at(q.From), at(q.To), at(q.From), at(q.To))}, q.filters()...)...)
	starts := chsql.Expr{}
	if q.leadStarts {
		starts = chsql.Raw("groupArrayIf(start, first_deploy != toDateTime(0)) AS v_starts, ")
	}
	lq := chsql.SQL(`SELECT ??groupArrayIf(`+leadSeconds+`, first_deploy != toDateTime(0)) AS v_leads,
		countIf(first_deploy = toDateTime(0)) AS v_not_deployed
		FROM ?
		WHERE ??`, cols, starts, leadTimeSource(q.rangeOf()), where, group)
	n := q.dims()
	err := query(ctx, conn, lq, func(r *leadTimeRow) {
		s := get(r.values(n))
		s.ChangesNotDeployed = r.NotDeployed
		s.raw.leadTimes, s.raw.leads, s.raw.starts = true, dist{xs: r.Leads}, r.Starts
	})
	if err != nil {
		return fmt.Errorf("lead time: %w", err)
	}
	return nil
}
