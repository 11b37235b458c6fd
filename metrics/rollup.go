package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// The KPI rollup (kpi_daily, migration 9) is what every summary of whole
// UTC days reads instead of the raw rows: for each UTC day and slice
// (service, team, environment), the counts and the samples the raw-row
// queries compute for it, written by RefreshRollup. Counts add up over
// days; medians and quantiles are taken from the samples of the days
// joined, so every figure is exactly the raw-row figure (the oracle tests
// say so). The few range-dependent parts are kept raw: the start of each
// change counted in a lead time (the lookback is applied when a range is
// read) and every patch target (its deadline is judged at the range end).
//
// A rollup is built whole, under a new generation, from every stored row,
// and committed by its row in kpi_rollups; readers take the latest
// committed generation for their definitions (production environments,
// attribution gap, lead-time start). Summaries reads it while it is of
// the rows stored now, or younger than Query.RollupMaxAge: that age
// bounds how long an ingested event may be missing from a figure.

// DefaultRollupMaxAge is how old a rollup of other rows than the stored
// ones may be and still be read (kpi.rollup_max_age); DefaultRollupInterval
// how often serve rebuilds it (kpi.rollup_interval). A build reads every
// stored row: at 2M events it takes minutes (docs/benchmarks.md).
const (
	DefaultRollupMaxAge   = 30 * time.Minute
	DefaultRollupInterval = 15 * time.Minute
)

// Rollup is a committed KPI rollup.
type Rollup struct {
	Generation uint64
	// Params are the definitions it was built for (Query.rollupParams).
	Params string
	// Fingerprint identifies the stored raw rows it was built from.
	Fingerprint string
	// BuiltAt is when its build began: every row stored before is in it.
	BuiltAt time.Time
	// Took is how long the build took; Rows how many rows it wrote.
	Took time.Duration
	Rows uint64
	// WindowKey names the change calendar and service tiers whose counts
	// it holds (windowKey); empty when it was built without a calendar.
	// LeadSplit is how long before its day a change may have started and
	// its lead time still be kept in kpi_daily.leads (splitLeads).
	WindowKey string
	LeadSplit time.Duration
}

// RollupStatements is how many statements a read of the rollup runs at
// once (fromRollup), each on a connection of its own.
const RollupStatements = 3

// rollupOutputs are the tables a build writes a generation of.
var rollupOutputs = []string{"kpi_daily", "kpi_attributions", "kpi_window_daily", "kpi_window_deployments"}

// rollupTables are the raw tables a rollup is built from.
var rollupTables = []string{"deployment_events", "incident_events", "change_events", "patch_events"}

// rollupFormat is the version of what a build writes: a rollup of an
// older format (before the migration that added what this one writes) is
// never read, and the next build replaces it. 2: migrations 10 and 11;
// 3: migration 16; 4: migration 18.
const rollupFormat = 4

// rollupParams names the definitions a rollup is built for; a query with
// other ones reads the raw rows. The lookback and DORA levels apply when
// a rollup is read, so any value of them can read it; the patch deadlines
// judge what the rollup counts of the patch targets (patchDay).
func (q Query) rollupParams() string {
	prod := append([]string(nil), q.production()...)
	sort.Strings(prod)
	var deadlines []string
	for _, sev := range Severities {
		deadlines = append(deadlines, fmt.Sprint(int64(q.Deadline(sev)/time.Second)))
	}
	return fmt.Sprintf("format=%d;production=%s;max_gap=%d;lead_time_from_merge=%t;patch_deadlines=%s", rollupFormat,
		strings.Join(prod, ","), int64(q.gap()/time.Second), q.LeadTimeFromMerge, strings.Join(deadlines, ","))
}

// fingerprint identifies the stored raw rows: their count and the newest
// part's time, from the tables' metadata (no table is read). Any insert
// changes it; so may a background merge, which costs a rebuild at most.
func fingerprint(ctx context.Context, conn driver.Conn) (string, error) {
	var rows, newest uint64
	err := conn.QueryRow(ctx, `SELECT toUInt64(sum(rows)), toUInt64(max(toUInt32(modification_time)))
		FROM system.parts WHERE active AND database = currentDatabase() AND has(?, table)`, rollupTables).Scan(&rows, &newest)
	if err != nil {
		return "", fmt.Errorf("fingerprint the raw tables: %w", err)
	}
	return fmt.Sprintf("%d/%d", rows, newest), nil
}

// latestRollup is the latest committed rollup for params, if any.
func latestRollup(ctx context.Context, conn driver.Conn, params string) (Rollup, bool, error) {
	var r Rollup
	var took float64
	var n, split uint64
	err := conn.QueryRow(ctx, `SELECT count(), argMax(generation, generation), argMax(fingerprint, generation),
			argMax(built_at, generation), argMax(took_seconds, generation), argMax(rows, generation), argMax(window_key, generation),
			argMax(lead_split, generation)
		FROM kpi_rollups WHERE params = ?`, params).Scan(&n, &r.Generation, &r.Fingerprint, &r.BuiltAt, &took, &r.Rows, &r.WindowKey, &split)
	if err != nil {
		return Rollup{}, false, fmt.Errorf("read the KPI rollups: %w", err)
	}
	r.Params, r.Took, r.LeadSplit = params, time.Duration(took*float64(time.Second)), time.Duration(split)*time.Second
	return r, n > 0, nil
}

// RefreshRollup builds the KPI rollup for the definitions of q from every
// stored row, unless the latest one for them is of the rows stored now
// and, when q has a change calendar, holds its counts (windowKey); built
// says whether it built one. Generations older than the one before
// are dropped.
func RefreshRollup(ctx context.Context, conn driver.Conn, q Query) (r Rollup, built bool, err error) {
	var engine string
	if err := conn.QueryRow(ctx, `SELECT any(engine) FROM system.tables
		WHERE database = currentDatabase() AND name = 'kpi_daily'`).Scan(&engine); err != nil {
		return Rollup{}, false, fmt.Errorf("find the KPI rollup's table: %w", err)
	}
	if engine == "Distributed" {
		return Rollup{}, false, ErrRollupOnCluster
	}
	params := q.rollupParams()
	fp, err := fingerprint(ctx, conn)
	if err != nil {
		return Rollup{}, false, err
	}
	cur, ok, err := latestRollup(ctx, conn, params)
	if err != nil {
		return Rollup{}, false, err
	}
	if ok && cur.Fingerprint == fp && (q.Calendar == nil || cur.WindowKey == q.windowKey()) {
		return cur, false, nil
	}
	r, err = buildRollup(ctx, conn, q, params, fp)
	if err != nil {
		return Rollup{}, false, err
	}
	q.Cache.forget()
	if err := dropOldRollups(ctx, conn, params); err != nil {
		return r, true, err
	}
	return r, true, nil
}

// ErrRollupOnCluster says that the KPI rollup is not built on a cluster
// (migrate --cluster): a Distributed insert is not committed in order, so
// a reader could see a generation half written. KPIs read the raw rows.
var ErrRollupOnCluster = errors.New("the KPI rollup is not built on a ClickHouse cluster: set kpi.rollup_interval: 0; KPIs read the raw rows")

// rollupSettings lift the query size limit for the statements of a
// build, which bind the ids of every blamed deployment in the history.
var rollupSettings = clickhouse.Settings{"max_query_size": 64 << 20}

func buildRollup(ctx context.Context, conn driver.Conn, q Query, params, fp string) (Rollup, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(rollupSettings))
	start := time.Now().UTC().Truncate(time.Second)
	r := Rollup{Generation: uint64(time.Now().UnixNano()), Params: params, Fingerprint: fp, BuiltAt: start, LeadSplit: q.lookback()}
	lo, hi, found, err := dataDays(ctx, conn)
	if err != nil {
		return Rollup{}, err
	}
	rows := map[string]*Summary{}
	var patches map[string]*patchTuples
	if found {
		bq := Query{From: lo, To: hi, By: []Dimension{Service, Team, Environment}, Step: StepDay,
			Production: q.Production, MaxGap: q.MaxGap, LeadTimeFromMerge: q.LeadTimeFromMerge,
			LeadTimeLookback: hi.Sub(lo) + 48*time.Hour, leadStarts: true}
		if rows, err = collect(ctx, conn, bq); err != nil {
			return Rollup{}, fmt.Errorf("build the KPI rollup: %w", err)
		}
		if patches, err = collectPatches(ctx, conn, bq); err != nil {
			return Rollup{}, fmt.Errorf("build the KPI rollup: %w", err)
		}
	}
	for k := range patches {
		if rows[k] == nil {
			vals := strings.Split(k, "\x00")
			b, _ := time.ParseInLocation(time.DateTime, vals[3], time.UTC)
			rows[k] = &Summary{Slice: map[Dimension]string{Service: vals[0], Team: vals[1], Environment: vals[2]}, Bucket: &b}
		}
	}
	err = writeRollup(ctx, conn, q, r, rows, patches)
	if err == nil && found {
		err = writeAttributions(ctx, conn, r.Generation, lo, hi, q.gap())
	}
	if err == nil && found && q.Calendar != nil {
		r.WindowKey = q.windowKey()
		err = writeWindows(ctx, conn, q, r.Generation, lo, hi)
	}
	if err != nil {
		// Uncommitted, it is never read; drop what was written of it.
		for _, table := range rollupOutputs {
			_ = conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", table, r.Generation))
		}
		return Rollup{}, err
	}
	r.Rows, r.Took = uint64(len(rows)), time.Since(start)
	err = conn.Exec(ctx, `INSERT INTO kpi_rollups (generation, params, fingerprint, built_at, took_seconds, rows, window_key, lead_split)
		SELECT toUInt64(?), ?, ?, toDateTime(?, 'UTC'), toFloat64(?), toUInt64(?), ?, toUInt64(?)`, r.Generation, params, fp, start.Unix(), r.Took.Seconds(), r.Rows, r.WindowKey,
		int64(r.LeadSplit/time.Second))
	if err != nil {
		return Rollup{}, fmt.Errorf("commit the KPI rollup: %w", err)
	}
	return r, nil
}

// dataDays is the UTC days [lo, hi) that hold every time a KPI files an
// entity under; found is false when nothing is stored.
func dataDays(ctx context.Context, conn driver.Conn) (lo, hi time.Time, found bool, err error) {
	var mins, maxs []time.Time
	err = conn.QueryRow(ctx, `SELECT
		[(SELECT minIf(finished_at, finished_at > toDateTime(0)) FROM deployment_events),
		 (SELECT minIf(impact_started_at, impact_started_at > toDateTime(0)) FROM incident_events),
		 (SELECT minIf(detected_at, detected_at > toDateTime(0)) FROM incident_events),
		 (SELECT minIf(authored_at, authored_at > toDateTime(0)) FROM change_events),
		 (SELECT minIf(merged_at, merged_at > toDateTime(0)) FROM change_events),
		 (SELECT minIf(released_at, released_at > toDateTime(0)) FROM patch_events)],
		[(SELECT max(finished_at) FROM deployment_events),
		 (SELECT max(impact_started_at) FROM incident_events),
		 (SELECT max(detected_at) FROM incident_events),
		 (SELECT max(authored_at) FROM change_events),
		 (SELECT max(merged_at) FROM change_events),
		 (SELECT max(released_at) FROM patch_events)]`).Scan(&mins, &maxs)
	if err != nil {
		return lo, hi, false, fmt.Errorf("find the days of the stored rows: %w", err)
	}
	for _, t := range mins {
		if t.Unix() > 0 && (lo.IsZero() || t.Before(lo)) {
			lo = t
		}
	}
	for _, t := range maxs {
		if t.Unix() > 0 && t.After(hi) {
			hi = t
		}
	}
	if lo.IsZero() {
		return lo, hi, false, nil
	}
	return StepDay.Truncate(lo), StepDay.Truncate(hi).Add(24 * time.Hour), true, nil
}

// patchTuples are the patch targets of one day and slice, each as the
// patch KPIs need it.
type patchTuples struct {
	IDs        []string    `ch:"v_ids"`
	Severities []string    `ch:"v_severities"`
	Released   []time.Time `ch:"v_released"`
	Applied    []time.Time `ch:"v_applied"` // the zero time (1970) when not applied
	Outcomes   []string    `ch:"v_outcomes"`
	Targets    []string    `ch:"v_targets"`
}

// collectPatches is the patch targets of q's range, by its slices.
func collectPatches(ctx context.Context, conn driver.Conn, q Query) (map[string]*patchTuples, error) {
	cols, group := q.groupBy("assumeNotNull(released_at)")
	src := patchesReleased(at(q.From), at(q.To), dimsAnd("severity", "released_at", "applied_at", "outcome")...)
	pq := chsql.SQL(`SELECT ?groupArray(patch_id) AS v_ids, groupArray(if(severity = '', 'unknown', severity)) AS v_severities,
		groupArray(assumeNotNull(released_at)) AS v_released, groupArray(ifNull(applied_at, toDateTime(0, 'UTC'))) AS v_applied,
		groupArray(outcome) AS v_outcomes, groupArray(target) AS v_targets
		FROM ? WHERE isNotNull(released_at) AND ??`, cols, src, q.where("assumeNotNull(released_at)"), group)
	out := map[string]*patchTuples{}
	n := q.dims()
	err := query(ctx, conn, pq, func(r *struct {
		dims
		patchTuples
	}) {
		t := r.patchTuples
		out[strings.Join(r.values(n), "\x00")] = &t
	})
	return out, err
}

// rollupColumns are kpi_daily's columns, in the order writeRollup appends.
var rollupColumns = []string{"generation", "day", "service", "team", "environment",
	"deployments", "successful", "failed", "rework", "durations",
	"incidents", "unresolved", "mttr", "mttd", "mtta", "mttr_impact", "severities", "severity_counts",
	"leads", "lead_starts", "not_deployed", "recoveries", "unrecovered",
	"patch_ids", "patch_severities", "patch_released", "patch_applied", "patch_outcomes",
	"patch_failed", "patch_with_outcome", "patch_due_closed", "patch_good", "patch_open_due", "patch_open_sev",
	"patch_unapplied_due", "patch_latency", "patch_targets",
	"leads_far", "lead_far_starts", "patch_count", "patch_advisories"}

// patchDay is what the rollup keeps of a day's patch targets for the
// patch KPIs (migration 10), judged by the deadlines of its definitions:
// all that does not depend on the range end is counted, and the deadlines
// of the targets it decides (open ones for due, unapplied ones for
// overdue) are kept, for patchTallySQL to compare with the range end.
type patchDay struct {
	failed, withOutcome uint64
	// dueClosed and good count, per severity (Severities), the targets
	// with an outcome (always due) and those applied by their deadline.
	dueClosed, good []uint64
	openDue         []int64 // the deadline of each open target, Unix seconds
	openSev         []uint8 // its severity, an index of Severities
	unappliedDue    []int64 // the deadline of each target not applied
	latency         []float64
}

// patchDay counts the targets t as tally does, but for the range end.
func (q Query) patchDay(t *patchTuples) patchDay {
	p := patchDay{dueClosed: []uint64{}, good: []uint64{}, openDue: []int64{}, openSev: []uint8{}, unappliedDue: []int64{}, latency: []float64{}}
	if len(t.IDs) == 0 {
		return p
	}
	p.dueClosed, p.good = make([]uint64, len(Severities)), make([]uint64, len(Severities))
	for i := range t.IDs {
		sev, released, applied, outcome := t.Severities[i], t.Released[i], t.Applied[i], t.Outcomes[i]
		dueAt := released.Add(q.Deadline(sev).Truncate(time.Second))
		isApplied := outcome == "applied" && applied.Unix() > 0
		if isApplied {
			p.latency = append(p.latency, applied.Sub(released).Seconds())
		}
		if k := slices.Index(Severities, sev); k >= 0 {
			switch {
			case outcome != "open":
				p.dueClosed[k]++
				if isApplied && !applied.After(dueAt) {
					p.good[k]++
				}
			default:
				p.openDue, p.openSev = append(p.openDue, dueAt.Unix()), append(p.openSev, uint8(k))
			}
		}
		if outcome == "failed" || outcome == "rolled_back" {
			p.failed++
		}
		if outcome != "open" {
			p.withOutcome++
		}
		if outcome != "applied" {
			p.unappliedDue = append(p.unappliedDue, dueAt.Unix())
		}
	}
	return p
}

func writeRollup(ctx context.Context, conn driver.Conn, q Query, ru Rollup, rows map[string]*Summary, patches map[string]*patchTuples) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO kpi_daily ("+strings.Join(rollupColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("write the KPI rollup: %w", err)
	}
	defer batch.Abort()
	for k, s := range rows {
		var sevs []string
		var counts []uint64
		for sev, n := range s.IncidentsBySeverity {
			sevs, counts = append(sevs, sev), append(counts, n)
		}
		p := patches[k]
		if p == nil {
			p = &patchTuples{}
		}
		pd := q.patchDay(p)
		r := s.raw
		leads, starts, far, farStarts := splitLeads(*s.Bucket, ru.LeadSplit, r.leads.xs, r.starts)
		err := batch.Append(ru.Generation, *s.Bucket, s.Slice[Service], s.Slice[Team], s.Slice[Environment],
			s.Deployments, s.SuccessfulDeploys, s.FailedDeployments, s.ReworkDeployments, nonNil(r.durations.xs),
			s.Incidents, s.UnresolvedIncidents, nonNil(r.mttr.xs), nonNil(r.mttd.xs), nonNil(r.mtta.xs), nonNil(r.mttrImpact.xs), nonNil(sevs), nonNil(counts),
			leads, starts, s.ChangesNotDeployed, nonNil(r.recoveries.xs), s.Unrecovered,
			nonNil(p.IDs), nonNil(p.Severities), nonNil(p.Released), nonNil(p.Applied), nonNil(p.Outcomes),
			pd.failed, pd.withOutcome, pd.dueClosed, pd.good, pd.openDue, pd.openSev, pd.unappliedDue, pd.latency, nonNil(p.Targets),
			far, farStarts, uint64(len(p.IDs)), distinct(p.IDs))
		if err != nil {
			return fmt.Errorf("write the KPI rollup: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("write the KPI rollup: %w", err)
	}
	return nil
}

// splitLeads splits the lead times of a day's row (day, its start) by the
// starts of their changes: near are those that started at most split
// before the day and before its end, which every read of the day with a
// lookback of split or more counts (a range holding the day starts at or
// before it and ends at or after its end); far are the others, whose
// starts each read judges (fromRollup).
func splitLeads(day time.Time, split time.Duration, leads []float64, starts []time.Time) (near []float64, nearStarts []time.Time, far []float64, farStarts []time.Time) {
	near, nearStarts, far, farStarts = []float64{}, []time.Time{}, []float64{}, []time.Time{}
	from, to := day.Add(-split), day.Add(24*time.Hour)
	for i, l := range leads {
		if st := starts[i]; !st.Before(from) && st.Before(to) {
			near, nearStarts = append(near, l), append(nearStarts, st)
		} else {
			far, farStarts = append(far, l), append(farStarts, st)
		}
	}
	return near, nearStarts, far, farStarts
}

// distinct is xs without repeats, sorted.
func distinct(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return nonNil(slices.Compact(out))
}

// writeAttributions writes generation gen of kpi_attributions: every
// incident whose impact started in [lo, hi), attributed with gap.
func writeAttributions(ctx context.Context, conn driver.Conn, gen uint64, lo, hi time.Time, gap time.Duration) error {
	text, args, err := chsql.Bind(chsql.SQL(`INSERT INTO kpi_attributions (generation, impact, incident_id, service, environment, resolved, deployment_id, method)
		SELECT toUInt64(?), impact, incident_id, service, environment, resolved, deployment_id, method FROM (?)`,
		gen, attributionQuery(at(lo), at(hi), gap)))
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, text, args...); err != nil {
		return fmt.Errorf("write the KPI rollup's attributions: %w", err)
	}
	return nil
}

// nonNil is xs, or an empty slice for nil: the driver appends no nil to
// an Array column.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// dropOldRollups drops the generations for params older than the two
// latest: a reader that took the one before may still be reading it.
func dropOldRollups(ctx context.Context, conn driver.Conn, params string) error {
	var gens []uint64
	if err := conn.QueryRow(ctx, `SELECT arrayReverseSort(groupArray(generation)) FROM kpi_rollups WHERE params = ?`, params).Scan(&gens); err != nil {
		return fmt.Errorf("list the KPI rollups: %w", err)
	}
	for _, g := range gens[min(2, len(gens)):] {
		for _, table := range rollupOutputs {
			if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", table, g)); err != nil {
				return fmt.Errorf("drop KPI rollup %d: %w", g, err)
			}
		}
	}
	return nil
}

// rollupFor is the rollup Summaries reads for q, if it can: q covers whole
// UTC days (or a daily step of them) that ended before the day the rollup
// was built in, a rollup for q's definitions exists, and it is of the
// stored rows or younger than q's RollupMaxAge.
func rollupFor(ctx context.Context, conn driver.Conn, q Query) (Rollup, bool, error) {
	if q.RollupMaxAge < 0 || (q.Step != "" && q.Step != StepDay) ||
		!StepDay.Truncate(q.From).Equal(q.From) || !StepDay.Truncate(q.To).Equal(q.To) {
		return Rollup{}, false, nil
	}
	r, ok, err := q.Cache.latestRollup(ctx, conn, q.rollupParams())
	if err != nil || !ok {
		return Rollup{}, false, err
	}
	// The day the rollup was built in was still open: a range that reaches
	// into it reads the raw rows, so that detection sees the open day as
	// it is, not as it was at the build.
	if q.To.After(StepDay.Truncate(r.BuiltAt)) {
		return Rollup{}, false, nil
	}
	maxAge := q.RollupMaxAge
	if maxAge == 0 {
		maxAge = DefaultRollupMaxAge
	}
	if time.Since(r.BuiltAt) <= maxAge {
		return r, true, nil
	}
	fp, err := q.Cache.fingerprintOf(ctx, conn)
	if err != nil {
		return Rollup{}, false, err
	}
	return r, fp == r.Fingerprint, nil
}

// rollupRow is a row of the rollup read: the day rows of one slice (and
// bucket) joined. Each sample comes as rollupDist's statistics, in
// columns of scalars: clickhouse-go scans an array element by element
// through reflection, which cost more than the read's transfer.
type rollupRow struct {
	dims
	Deployments uint64    `ch:"v_deployments"`
	Successful  uint64    `ch:"v_successful"`
	Days        uint64    `ch:"v_days"`
	Failed      uint64    `ch:"v_failed"`
	Rework      uint64    `ch:"v_rework"`
	Durations   distStats `ch:"v_durations"`

	Incidents      uint64    `ch:"v_incidents"`
	Unresolved     uint64    `ch:"v_unresolved"`
	MTTR           distStats `ch:"v_mttr"`
	MTTD           distStats `ch:"v_mttd"`
	MTTA           distStats `ch:"v_mtta"`
	MTTRFromImpact distStats `ch:"v_mttr_impact"`
	// Incidents by severity, joined from rows of one severity each
	// (Severity, SeverityCount).
	Severities     []string `ch:"-"`
	SeverityCounts []uint64 `ch:"-"`
	Severity       string   `ch:"v_severity"`
	SeverityCount  uint64   `ch:"v_severity_count"`

	Leads       distStats `ch:"v_leads"`
	NotDeployed uint64    `ch:"v_not_deployed"`
	Recoveries  distStats `ch:"v_recoveries"`
	Unrecovered uint64    `ch:"v_unrecovered"`

	Patches       uint64    `ch:"v_patches"`
	Advisories    uint64    `ch:"v_advisories"`
	PatchDue      [5]uint64 `ch:"v_patch_due"` // per severity (Severities)
	PatchDueOpen  [5]uint64 `ch:"v_patch_due_open"`
	PatchGood     [5]uint64 `ch:"v_patch_good"`
	PatchFailed   uint64    `ch:"v_patch_failed"`
	PatchOutcomes uint64    `ch:"v_patch_outcomes"`
	PatchOverdue  uint64    `ch:"v_patch_overdue"`
	PatchLatency  distStats `ch:"v_patch_latency"`

	// The change calendar's counts, of a read of kpi_window_daily
	// (windowsFromRollup), which the cache keeps as rows of this type.
	WindowDeployments uint64 `ch:"w_deployments"`
	Outside           uint64 `ch:"w_outside"`
	InFreeze          uint64 `ch:"w_in_freeze"`
	Fixes             uint64 `ch:"w_fixes"`
}

// distStats are what dist.quantile and dist.mean need of a sample
// (dist.stats): its size, the values at the ranks around the median and
// around the 90th percentile, and its sum.
type distStats [6]float64

// rollupDist is the distStats of the sample s, an array column in any
// order, as the columns alias_0 to alias_5. Only these cross the wire,
// however large the sample.
//
// Sorted, the values at the ranks dist.quantile needs, i = floor(p × (n −
// 1)) and i + 1, are picked from the sorted sample. Selected, they are
// quantileExact(p), the value at rank floor(p × size) (from 0, by
// nth_element, in 18.16 as in current releases), of the sample with
// sentinels added: one −inf (rank i) or one +inf (rank i + 1) for the
// median, nine −inf (rank i) or eight −inf and one +inf (rank i + 1) for
// the 90th percentile, since floor(0.5 × (n + 1)) − 1 = floor(0.5 × (n −
// 1)) and floor(0.9 × (n + 9)) − 9 = floor(0.9 × (n − 1)). Selecting
// costs less than 18.16's sort for samples of hundreds or more per slice,
// and more for a few (docs/benchmarks.md, 2026-12-04 (morning)).
func rollupDist(s, alias string, selected bool) string {
	n := "length(" + s + ")"
	var lo50, hi50, lo90, hi90 string
	if selected {
		neg := func(k int) string { return strings.Repeat("-inf, ", k) }
		at := func(p, pad string) string {
			return "arrayReduce('quantileExact(" + p + ")', arrayConcat(" + s + ", [" + strings.TrimSuffix(pad, ", ") + "]))"
		}
		lo50, lo90 = "if("+n+" = 0, 0., "+at("0.5", neg(1))+")", "if("+n+" = 0, 0., "+at("0.9", neg(9))+")"
		hi50, hi90 = "if("+n+" <= 1, "+lo50+", "+at("0.5", "inf")+")", "if("+n+" <= 1, "+lo90+", "+at("0.9", neg(8)+"inf")+")"
	} else {
		sorted := "arraySort(" + s + ")"
		at := func(p string) (string, string) {
			i := "toInt64(floor(" + p + " * (" + n + " - 1))) + 1"
			return "if(" + n + " = 0, 0., " + sorted + "[" + i + "])", "if(" + n + " = 0, 0., " + sorted + "[least(" + i + " + 1, toInt64(" + n + "))])"
		}
		lo50, hi50 = at("0.5")
		lo90, hi90 = at("0.9")
	}
	cols := []string{"toFloat64(" + n + ")", lo50, hi50, lo90, hi90, "arraySum(" + s + ")"}
	for i := range cols {
		cols[i] += " AS " + alias + "_" + strconv.Itoa(i)
	}
	return strings.Join(cols, ", ")
}

// fromRollup is Summaries of q read from rollup r. The samples are
// joined and sorted in ClickHouse, which returns only what the figures
// need of them (rollupDist).
func fromRollup(ctx context.Context, conn driver.Conn, q Query, r Rollup, levels LevelTable) ([]*Summary, error) {
	// A day's bucket as the raw rows' step reads it (Step.sql); ranges
	// read each as its own are keyed by their start. Their bounds are
	// grouped by too: 18.16 drops a subquery's column that only a lambda
	// reads.
	cols, group := q.groupByStep("")
	switch {
	case q.ranges != nil:
		cols, group = q.groupByStep("r_start")
		group = chsql.SQL("?, r_from, r_to", group)
	case q.Step == StepDay:
		cols, group = q.groupByStep("concat(toString(day), ' 00:00:00')")
	}
	var outer []string
	for i := 0; i < q.dims(); i++ {
		outer = append(outer, fmt.Sprintf("d%d, ", i))
	}
	lookback := q.lookback()
	// A change counts if it started no earlier than the lookback before
	// the range, and before its end (leadTimeSource). Ranges read each as
	// its own (Query.ranges) judge that, and patch deadlines, by the range
	// of the row.
	// The lead times kept as near (splitLeads) count without their starts
	// when the lookback is at least the build's split.
	filter := func(leads, starts string) chsql.Expr {
		if q.ranges != nil {
			return chsql.SQL("groupArrayArray(arrayFilter((l, st) -> toInt64(st) >= r_from - ? AND toInt64(st) < r_to, "+leads+", "+starts+"))",
				int64(lookback/time.Second))
		}
		return chsql.SQL("arrayFilter((l, st) -> st >= ? AND st < ?, groupArrayArray("+leads+"), groupArrayArray("+starts+"))", at(q.From.Add(-lookback)), at(q.To))
	}
	near := filter("leads", "lead_starts")
	if lookback >= r.LeadSplit {
		near = chsql.SQL("groupArrayArray(leads)")
	}
	leads := chsql.SQL("arrayConcat(?, ?) AS s_leads", near, filter("leads_far", "lead_far_starts"))
	end := chsql.SQL("?", q.To.Unix())
	if q.ranges != nil {
		end = chsql.Raw("r_to")
	}
	// The read is three statements over the same rows, grouped alike, run
	// at once: one would run on one core, as 18.16 reads the few granules
	// of a range in one stream. The lead times (the largest sample: one per
	// change) and durations are one; incidents by severity, one row per
	// slice and severity, another (arrays of strings are the slowest to
	// scan); the rest the third. Their rows are joined by slice
	// (mergeRollupParts).
	//
	// The large samples are selected rather than sorted (rollupDist) when
	// a slice joins many rows of the rollup: a slice of one service and a
	// day holds a few samples, one of one service over a quarter a few
	// hundred, where both cost about the same.
	large := !slices.Contains(q.By, Service) && q.Step != StepDay
	source := chsql.SQL("?? ?", q.rollupSource("kpi_daily", r, ""), andAll(q.filters()), group)
	leadsPart := chsql.SQL(`SELECT `+strings.Join(outer, "")+rollupDist("s_leads", "v_leads", large)+`, v_not_deployed,
		`+rollupDist("s_durations", "v_durations", large)+`
		FROM (
			SELECT ??, sum(not_deployed) AS v_not_deployed, groupArrayArray(durations) AS s_durations
			FROM ?
		)`, cols, leads, source)
	restPart := chsql.SQL(`SELECT `+strings.Join(outer, "")+`v_deployments, v_successful, v_days, v_failed, v_rework,
		v_incidents, v_unresolved, `+rollupDist("s_mttr", "v_mttr", false)+`, `+rollupDist("s_mttd", "v_mttd", false)+`,
		`+rollupDist("s_mtta", "v_mtta", false)+`, `+rollupDist("s_mttr_impact", "v_mttr_impact", false)+`,
		`+rollupDist("s_recoveries", "v_recoveries", false)+`, v_unrecovered,
		v_patches, v_advisories, `+elements("v_patch_due", 5)+`, `+elements("v_patch_due_open", 5)+`, `+elements("v_patch_good", 5)+`,
		v_patch_failed, v_patch_outcomes, v_patch_overdue,
		`+rollupDist("s_patch_latency", "v_patch_latency", large)+`
		FROM (
			SELECT ?sum(deployments) AS v_deployments, sum(successful) AS v_successful,
				uniqExactIf(day, successful > 0) AS v_days, sum(failed) AS v_failed, sum(rework) AS v_rework,
				sum(incidents) AS v_incidents, sum(unresolved) AS v_unresolved,
				groupArrayArray(mttr) AS s_mttr, groupArrayArray(mttd) AS s_mttd,
				groupArrayArray(mtta) AS s_mtta, groupArrayArray(mttr_impact) AS s_mttr_impact,
				groupArrayArray(recoveries) AS s_recoveries, sum(unrecovered) AS v_unrecovered,
				?
			FROM ?
		)`, cols, q.patchTallySQL(end), source)
	n := q.dims()
	asOf := r.BuiltAt
	// Without slices or steps, the raw rows give one summary, with every
	// family present, even over no rows.
	whole := len(q.By) == 0 && (q.Step == "" || q.ranges != nil)
	out := []*Summary{}
	sevGroup := chsql.SQL("?, sev", group)
	if group.IsZero() {
		sevGroup = chsql.SQL(" GROUP BY sev")
	}
	sevPart := chsql.SQL("SELECT ?sev AS v_severity, sum(cnt) AS v_severity_count FROM ?? ?", cols,
		q.rollupSource("kpi_daily", r, "ARRAY JOIN severities AS sev, severity_counts AS cnt"), andAll(q.filters()), sevGroup)
	parts := [RollupStatements]chsql.Expr{leadsPart, restPart, sevPart}
	rows, err := readRollupParts(ctx, conn, q.Cache, parts[:], func(parts [][]rollupRow) []rollupRow {
		return mergeRollupParts(parts[0], parts[1], parts[2])
	})
	if err != nil {
		return nil, fmt.Errorf("read the KPI rollup: %w", err)
	}

	for i := range rows {
		row := &rows[i]
		vals := row.values(n)
		s := &Summary{Slice: map[Dimension]string{}, AsOf: &asOf}
		for i, d := range q.By {
			s.Slice[d] = vals[i]
		}
		if q.Step != "" {
			if b, err := time.ParseInLocation(time.DateTime, vals[len(q.By)], time.UTC); err == nil {
				s.Bucket = &b
			}
		}
		s.Deployments, s.SuccessfulDeploys, s.DeploymentDays = row.Deployments, row.Successful, row.Days
		s.FailedDeployments, s.ReworkDeployments = row.Failed, row.Rework
		s.raw.durations = row.Durations.dist()
		if row.Incidents > 0 || whole {
			s.Incidents, s.UnresolvedIncidents = row.Incidents, row.Unresolved
			s.raw.incidents = true
			s.raw.mttr, s.raw.mttd, s.raw.mtta = row.MTTR.dist(), row.MTTD.dist(), row.MTTA.dist()
			s.raw.mttrImpact = row.MTTRFromImpact.dist()
			s.IncidentsBySeverity = map[string]uint64{}
			for i, sev := range row.Severities {
				s.IncidentsBySeverity[sev] += row.SeverityCounts[i]
			}
		}
		if leads := (row.Leads.dist()); leads.len() > 0 || row.NotDeployed > 0 || whole {
			s.raw.leadTimes, s.raw.leads, s.ChangesNotDeployed = true, leads, row.NotDeployed
		}
		s.raw.recoveries, s.Unrecovered = row.Recoveries.dist(), row.Unrecovered
		p := patchTally{released: row.Patches, advisories: row.Advisories, failed: row.PatchFailed,
			withOutcome: row.PatchOutcomes, overdue: row.PatchOverdue, latency: row.PatchLatency.dist()}
		p.due = row.PatchDue
		for i, n := range row.PatchDueOpen {
			p.due[i] += n
		}
		p.good = row.PatchGood
		p.figures(s, whole)
		if s.empty() {
			continue // only changes outside the lookback: the raw rows give no slice
		}
		days := daysOf(q)
		if q.ranges != nil && s.Bucket != nil {
			for _, rg := range q.ranges { // a range's rates are per day of its own length
				if rg[0].Equal(*s.Bucket) {
					days = rg[1].Sub(rg[0]).Hours() / 24
				}
			}
		}
		s.finish(days, levels)
		out = append(out, s)
	}
	// The change calendar's figures come from the rollup when it was built
	// for q's calendar and tiers, else from the raw rows (outsideWindow),
	// into the slices they belong to.
	if q.Calendar != nil {
		keyed := map[string]*Summary{}
		for _, s := range out {
			keyed[strings.Join(sliceValues(s, q), "\x00")] = s
		}
		get := func(vals []string) *Summary {
			s, ok := keyed[strings.Join(vals, "\x00")]
			if !ok { // cannot happen: its deployments are in the rollup
				s = &Summary{Slice: map[Dimension]string{}, AsOf: &asOf}
				for i, d := range q.By {
					s.Slice[d] = vals[i]
				}
				keyed[strings.Join(vals, "\x00")] = s
				out = append(out, s)
			}
			return s
		}
		var err error
		switch {
		case r.WindowKey == q.windowKey():
			err = windowsFromRollup(ctx, conn, q, r, cols, group, get)
		case q.ranges != nil:
			// The raw rows, range by range, each keyed by its start.
			for _, rg := range q.ranges {
				rq := q
				rq.From, rq.To, rq.ranges, rq.Step = rg[0], rg[1], nil, ""
				start := rg[0].UTC().Format(time.DateTime)
				if err = outsideWindow(ctx, conn, rq, func(vals []string) *Summary { return get(append(vals, start)) }); err != nil {
					break
				}
			}
		default:
			err = outsideWindow(ctx, conn, q, get)
		}
		if err != nil {
			return nil, err
		}
	}
	sortBySlice(out, q.By)
	return out, nil
}

// mergeRollupParts joins the rows of the rollup read's statements
// (fromRollup) by slice and bucket: each of rest with the lead times,
// changes not deployed and durations of its row in leads, and with its
// rows in severities. The statements group the same rows alike, so each
// slice of rest is in leads.
func mergeRollupParts(leads, rest, severities []rollupRow) []rollupRow {
	out := make([]rollupRow, len(rest))
	at := make(map[dims]int, len(rest))
	for i := range rest {
		out[i] = rest[i]
		at[rest[i].dims] = i
	}
	for i := range leads {
		j, ok := at[leads[i].dims]
		if !ok { // cannot happen: the statements group the same rows
			j = len(out)
			out, at[leads[i].dims] = append(out, rollupRow{dims: leads[i].dims}), j
		}
		out[j].Leads, out[j].NotDeployed, out[j].Durations = leads[i].Leads, leads[i].NotDeployed, leads[i].Durations
	}
	for _, sv := range severities {
		if j, ok := at[sv.dims]; ok {
			out[j].Severities = append(out[j].Severities, sv.Severity)
			out[j].SeverityCounts = append(out[j].SeverityCounts, sv.SeverityCount)
		}
	}
	return out
}

// readRollup runs rq, a read of the rollup's tables, through cache (nil:
// none), whose key is the statement inlined: it names the generation.
func readRollup(ctx context.Context, conn driver.Conn, cache *RollupCache, rq chsql.Expr) ([]rollupRow, error) {
	return readRollupParts(ctx, conn, cache, []chsql.Expr{rq}, func(parts [][]rollupRow) []rollupRow { return parts[0] })
}

// readRollupParts runs the statements parts at once, each on a connection
// of its own, and returns their rows joined by merge, through cache (nil:
// none) as one entry, keyed by the statements inlined.
func readRollupParts(ctx context.Context, conn driver.Conn, cache *RollupCache, parts []chsql.Expr, merge func([][]rollupRow) []rollupRow) ([]rollupRow, error) {
	var key string
	if cache != nil {
		var texts []string
		for _, rq := range parts {
			text, err := chsql.Inline(rq)
			if err != nil {
				return nil, err
			}
			texts = append(texts, text)
		}
		key = strings.Join(texts, "\x00")
	}
	return cache.rows(ctx, key, func() ([]rollupRow, error) {
		rows := make([][]rollupRow, len(parts))
		errs := make([]error, len(parts))
		var wg sync.WaitGroup
		for i, rq := range parts {
			wg.Go(func() { rows[i], errs[i] = scanRollup(ctx, conn, rq) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return merge(rows), nil
	})
}

// scanRollup runs rq and returns its rows. Each column goes to the field
// of rollupRow its name tags, and name_k to element k of an array field
// tagged name (distStats, counts per severity).
func scanRollup(ctx context.Context, conn driver.Conn, rq chsql.Expr) ([]rollupRow, error) {
	text, args, err := chsql.Bind(rq)
	if err != nil {
		return nil, err
	}
	rs, err := conn.Query(ctx, text, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	type target struct {
		field []int // the index path of the field in rollupRow
		elem  int   // the element of an array field; -1 for others
	}
	rowType := reflect.TypeFor[rollupRow]()
	fields := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(rowType) {
		if tag := f.Tag.Get("ch"); tag != "" && tag != "-" {
			fields[tag] = f
		}
	}
	var targets []target
	for _, c := range rs.Columns() {
		tg := target{elem: -1}
		if f, ok := fields[c]; ok && f.Type.Kind() != reflect.Array {
			tg.field = f.Index
		} else if i := strings.LastIndexByte(c, '_'); i > 0 {
			k, err := strconv.Atoi(c[i+1:])
			if f, ok := fields[c[:i]]; ok && err == nil && f.Type.Kind() == reflect.Array && k < f.Type.Len() {
				tg.field, tg.elem = f.Index, k
			}
		}
		if tg.field == nil {
			return nil, fmt.Errorf("the rollup read's column %s has no field", c)
		}
		targets = append(targets, tg)
	}
	var out []rollupRow
	dests := make([]any, len(targets))
	for rs.Next() {
		out = append(out, rollupRow{})
		row := reflect.ValueOf(&out[len(out)-1]).Elem()
		for i, tg := range targets {
			f := row.FieldByIndex(tg.field)
			if tg.elem >= 0 {
				f = f.Index(tg.elem)
			}
			dests[i] = f.Addr().Interface()
		}
		if err := rs.Scan(dests...); err != nil {
			return nil, err
		}
	}
	return out, rs.Err()
}

// rollupSource is the FROM item and the start of the WHERE of a read of
// table (kpi_daily, kpi_window_daily) of generation r over q's days, with
// arrayJoin (an ARRAY JOIN clause, or "") after the FROM item. For
// ranges read each as its own (Query.ranges), a day's row stands once for
// each range that holds it, with the range's index (r_index), start as
// the bucket's text (r_start) and bounds in Unix seconds (r_from, r_to).
func (q Query) rollupSource(table string, r Rollup, arrayJoin string) chsql.Expr {
	if arrayJoin != "" {
		arrayJoin = " " + arrayJoin
	}
	if q.ranges == nil {
		return chsql.SQL(table+arrayJoin+" WHERE generation = ? AND day >= toDate(?) AND day < toDate(?)", r.Generation, at(q.From), at(q.To))
	}
	var from, to []string
	for _, rg := range q.ranges {
		from, to = append(from, strconv.FormatInt(rg[0].Unix(), 10)), append(to, strconv.FormatInt(rg[1].Unix(), 10))
	}
	starts, ends := "["+strings.Join(from, ", ")+"]", "["+strings.Join(to, ", ")+"]"
	return chsql.SQL(`(
			SELECT *, arrayJoin(arrayFilter(i -> toInt64(day) * 86400 >= `+starts+`[i] AND toInt64(day) * 86400 < `+ends+`[i], arrayEnumerate(`+starts+`))) AS r_index,
				`+starts+`[r_index] AS r_from, `+ends+`[r_index] AS r_to, toString(toDateTime(r_from, 'UTC')) AS r_start
			FROM `+table+` WHERE generation = ? AND day >= toDate(?) AND day < toDate(?)
		)`+arrayJoin+` WHERE 1`, r.Generation, at(q.From), at(q.To))
}

// andAll is " AND e" for each of es.
func andAll(es []chsql.Expr) chsql.Expr {
	if len(es) == 0 {
		return chsql.Expr{}
	}
	return chsql.SQL(" AND ?", chsql.Join(" AND ", es...))
}

// daysOf is the length in days of q's range, or of its step.
func daysOf(q Query) float64 {
	if q.Step != "" {
		return q.Step.Duration().Hours() / 24
	}
	return q.To.Sub(q.From).Hours() / 24
}

// empty reports whether s has no figure at all.
func (s *Summary) empty() bool {
	return s.Deployments == 0 && !s.raw.incidents && !s.raw.leadTimes && !s.raw.patches
}

// patchTally is what the patch KPIs of a slice are computed from: the
// targets released in range, counted against their deadlines at the range
// end. tally makes it from the targets; the rollup read (patchTallySQL)
// counts the same in ClickHouse.
type patchTally struct {
	released, advisories uint64
	// due and good count, per severity (Severities), the targets due at
	// the range end and those of them applied by their deadline.
	due, good           [5]uint64
	failed, withOutcome uint64
	overdue             uint64
	latency             dist
}

// tally counts the targets t as the patch query does from the raw rows
// (patchSource): a target is due when its deadline is before the range end
// or it has an outcome, and complies when it was applied by its deadline.
// It is patchDay, which the rollup keeps, judged at q.To as the rollup
// read judges it in ClickHouse (patchTallySQL).
func (q Query) tally(t *patchTuples) patchTally {
	d := q.patchDay(t)
	p := patchTally{released: uint64(len(t.IDs)), failed: d.failed, withOutcome: d.withOutcome, latency: dist{xs: d.latency}}
	copy(p.due[:], d.dueClosed)
	copy(p.good[:], d.good)
	end := q.To.Unix()
	for i, due := range d.openDue {
		if due < end {
			p.due[d.openSev[i]]++
		}
	}
	for _, due := range d.unappliedDue {
		if due < end {
			p.overdue++
		}
	}
	ids := map[string]bool{}
	for _, id := range t.IDs {
		ids[id] = true
	}
	p.advisories = uint64(len(ids))
	return p
}

// patchTallySQL are the columns of the rollup read's inner query that
// count a patchTally from kpi_daily's patch columns (patchDay), for the
// range end, end (an expression of Unix seconds).
func (q Query) patchTallySQL(end chsql.Expr) chsql.Expr {
	var open []chsql.Expr
	for k := range Severities {
		open = append(open, chsql.SQL("sum(arrayCount((d, s) -> s = ? AND d < ?, patch_open_due, patch_open_sev))", k, end))
	}
	return chsql.SQL(`sum(patch_count) AS v_patches, uniqExactArray(patch_advisories) AS v_advisories,
		sumForEach(patch_due_closed) AS v_patch_due, [?] AS v_patch_due_open, sumForEach(patch_good) AS v_patch_good,
		sum(patch_failed) AS v_patch_failed, sum(patch_with_outcome) AS v_patch_outcomes,
		sum(arrayCount(d -> d < ?, patch_unapplied_due)) AS v_patch_overdue,
		groupArrayArray(patch_latency) AS s_patch_latency`, chsql.Join(", ", open...), end)
}

// figures sets the patch KPIs of s from p. Without targets it sets
// nothing, unless always.
func (p patchTally) figures(s *Summary, always bool) {
	if p.released == 0 && !always {
		return
	}
	s.raw.patches = true
	s.PatchesReleased, s.PatchAdvisories = p.released, p.advisories
	s.sampled("patch_latency", p.latency.len())
	s.PatchLatencyMedianSeconds, s.PatchLatencyP90Seconds = p.latency.quantile(0.5), p.latency.quantile(0.9)
	s.PatchComplianceBySeverity = map[string]*float64{}
	var due, good uint64
	for i, sev := range Severities {
		if p.due[i] > 0 {
			s.PatchComplianceBySeverity[sev] = ptr(float64(p.good[i]) / float64(p.due[i]))
		}
		due, good = due+p.due[i], good+p.good[i]
	}
	if due > 0 {
		s.PatchesDue, s.PatchesCompliant = due, good
		s.PatchCompliance = ptr(float64(good) / float64(due))
	}
	if p.withOutcome > 0 {
		s.PatchFailureRate = ptr(float64(p.failed) / float64(p.withOutcome))
	}
	s.PatchesOverdue = p.overdue
}

// RollupRefresher rebuilds the KPI rollup for the definitions of Query
// every Interval, when rows were stored since the last build (or the
// change calendar's tiers changed), and at once when it starts.
type RollupRefresher struct {
	Conn     driver.Conn
	Query    Query
	Interval time.Duration
	Log      *slog.Logger
	// Catalog, when set, is the service catalog of the moment, whose
	// tiers the change calendar's counts are built with (Query.WithCatalog).
	Catalog func() *catalog.Catalog
}

// Run refreshes until ctx ends. A failed build is logged and tried again
// at the next tick: readers fall back to the raw rows meanwhile.
func (f RollupRefresher) Run(ctx context.Context) error {
	t := time.NewTicker(f.Interval)
	defer t.Stop()
	for {
		q := f.Query
		if f.Catalog != nil {
			q = q.WithCatalog(f.Catalog())
		}
		r, built, err := RefreshRollup(ctx, f.Conn, q)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrRollupOnCluster):
			f.Log.Warn(err.Error())
			return nil
		case err != nil:
			f.Log.Error("kpi rollup refresh failed; KPIs read the raw rows until a build succeeds", "err", err)
		case built:
			f.Log.Info("kpi rollup built", "generation", r.Generation, "rows", r.Rows, "took", r.Took.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sliceValues are the dimension values of s (and its bucket, as the
// queries' rows give it), in the order of q.By.
func sliceValues(s *Summary, q Query) []string {
	vals := sliceKey(s, q.By)
	if q.Step != "" && s.Bucket != nil {
		vals = append(vals, s.Bucket.UTC().Format(time.DateTime))
	}
	return vals
}

// elements are the first n elements of the array column name, as the
// columns name_0 to name_(n-1) (scanRollup).
func elements(name string, n int) string {
	var cols []string
	for i := range n {
		cols = append(cols, name+"["+strconv.Itoa(i+1)+"] AS "+name+"_"+strconv.Itoa(i))
	}
	return strings.Join(cols, ", ")
}

// dist is the sample these statistics are of.
func (s distStats) dist() dist { return dist{stats: s[:]} }
