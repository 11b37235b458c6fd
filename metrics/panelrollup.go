package metrics

import (
	"fmt"
	"strings"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// Panels may read the KPI rollup rather than the raw rows
// (PanelOptions.Rollup), in SQL alone since Grafana runs them. Such a
// panel counts whole UTC days: its range [From, To) is widened to the
// midnights at or before From and at or after To, and every day of it is
// read from the latest rollup built for the panel's definitions (the day
// it was built in as it was at the build). Its figures are those of the
// raw rows over the same days as of that build, exactly (counts add up;
// medians interpolate over the days' samples joined, as Summaries does):
// TestPanelRollupOracle holds them to the raw-row statements. They are as
// fresh as the rollup: serve rebuilds it every kpi.rollup_interval when
// rows changed, and PanelRollupAgeSQL says when it was built.
//
// Raw-row parts for the days after the build were tried and dropped: in
// ClickHouse 18.16 every fold and attribution of them costs a scan of its
// table even over an empty range, so the panels were slower than the
// raw-row ones (docs/benchmarks.md).

// floorDay and ceilDay are the UTC midnights at or before and at or
// after the time t, SQL expressions.
func floorDay(t string) string {
	return "toDateTime(intDiv(toUInt32(" + t + "), 86400) * 86400, 'UTC')"
}
func ceilDay(t string) string {
	return "toDateTime(intDiv(toUInt32(" + t + ") + 86399, 86400) * 86400, 'UTC')"
}

// WholeDaysSQL is the range of whole UTC days a panel reading the rollup
// counts for [from, to), SQL expressions.
func WholeDaysSQL(from, to string) (string, string) { return floorDay(from), ceilDay(to) }

// rollupPanels are the KPIs a panel can read from the rollup; the others
// read the raw rows, fast without it (docs/benchmarks.md). Incidents
// grouped by severity read it for their count only.
var rollupPanels = map[string]bool{
	PanelDeploymentFrequency: true, PanelChangeFailureRate: true, PanelReworkRate: true, PanelDeployments: true,
	PanelLeadTime: true, PanelRecoveryTime: true, PanelIncidents: true, PanelMTTR: true, PanelMTTD: true, PanelMTTA: true,
	PanelPatchLatency: true, PanelPatchCompliance: true, PanelPatchesOverdue: true, KPIDeploymentsOutsideWindow: true,
}

// readsRollup says whether the panel of kpi with o reads the rollup.
func (o PanelOptions) readsRollup(kpi string) bool {
	return o.Rollup && rollupPanels[kpi] && (o.GroupBy != "severity" || kpi == PanelIncidents || strings.HasPrefix(kpi, "patch"))
}

// query is the definitions o's panels compute with.
func (o PanelOptions) query() Query {
	return Query{Production: o.Production, MaxGap: o.MaxGap, LeadTimeLookback: o.LeadTimeLookback, LeadTimeFromMerge: o.LeadTimeFromMerge,
		PatchDeadlines: o.PatchDeadlines, Calendar: o.Calendar, ServiceTiers: o.ServiceTiers, storedTiers: o.StoredTiers}
}

// rollupGeneration is the latest rollup built for q's definitions, 0
// when none is (its days then hold no row).
func rollupGeneration(q Query) (string, error) {
	params, err := chsql.Literal(q.rollupParams())
	if err != nil {
		return "", err
	}
	return "(SELECT max(generation) FROM kpi_rollups WHERE params = " + params + ")", nil
}

// rollupOf is what a panel reading the rollup for q's definitions names:
// its latest generation (rollupGeneration) and the production
// environments, SQL expressions.
func rollupOf(q Query) (gen, prod string, err error) {
	if gen, err = rollupGeneration(q); err != nil {
		return "", "", err
	}
	prod, err = chsql.Literal(q.production())
	return gen, prod, err
}

// windowGeneration is the latest rollup built for q's definitions that
// holds the change calendar's counts of q (windowKey), 0 when none does:
// of q's calendar and tiers, or of its calendar and any tiers for panels
// that read the tiers from the stored catalog (PanelOptions.StoredTiers),
// which serve's build took them from.
func (o PanelOptions) windowGeneration(q Query) (string, error) {
	params, err := chsql.Literal(q.rollupParams())
	if err != nil {
		return "", err
	}
	key, err := chsql.Literal(q.windowKey())
	if err != nil {
		return "", err
	}
	cond := "window_key = " + key
	if o.StoredTiers {
		prefix := q.windowCalendarKey()
		lit, err := chsql.Literal(prefix)
		if err != nil {
			return "", err
		}
		cond = fmt.Sprintf("substring(window_key, 1, %d) = %s", len(prefix), lit)
	}
	return "(SELECT max(generation) FROM kpi_rollups WHERE params = " + params + " AND " + cond + ")", nil
}

// PanelRollupAgeSQL is the statement of when the rollup the panels of o
// read was built (built_at, DateTime), and its age in seconds (age); no
// row when none is.
func PanelRollupAgeSQL(o PanelOptions) (string, error) {
	params, err := chsql.Literal(o.query().rollupParams())
	if err != nil {
		return "", err
	}
	return "SELECT built_at, toFloat64(toUInt32(now()) - toUInt32(built_at)) AS age FROM kpi_rollups WHERE params = " + params +
		" ORDER BY generation DESC LIMIT 1", nil
}

// panelRollupSQL is panelSQL of a KPI of rollupPanels, from the rollup's
// days of o's range (whole days: PanelSQL widened it).
func panelRollupSQL(kpi string, o PanelOptions) (string, error) {
	q := o.query()
	gen, prod, err := rollupOf(q)
	if err != nil {
		return "", err
	}
	days := "kpi_daily WHERE generation = " + gen + " AND day >= toDate(" + o.From + ") AND day < toDate(" + o.To + ")" +
		" AND has(" + prod + ", environment) AND " + o.filters()
	// A raw-row panel has a row (a bucket, a group) for each entity of
	// the KPI's kind, whether or not it has the duration the median is
	// of: nan stands for a day's entities, which the median skips.
	const sample = "NOT isNaN(x)"
	switch kpi {
	case PanelDeploymentFrequency, PanelChangeFailureRate, PanelReworkRate, PanelDeployments:
		expr := map[string]string{
			PanelDeploymentFrequency: "sum(successful) / " + o.days(),
			PanelChangeFailureRate:   "sum(failed) / nullIf(sum(deployments), 0)",
			PanelReworkRate:          "sum(rework) / nullIf(sum(deployments), 0)",
			PanelDeployments:         "sum(deployments)",
		}[kpi]
		return o.wrap("t", "toNullable(toFloat64("+expr+")) AS value",
			"(SELECT toDateTime(day, 'UTC') AS t, * FROM "+days+" AND deployments > 0)"), nil
	case PanelLeadTime:
		// The changes that started no earlier than the lookback before
		// the range, and before its end (leadTimeSource).
		since, err := chsql.Inline(chsql.SQL("?", o.panelRange(q).from.Add(-q.lookback())))
		if err != nil {
			return "", err
		}
		return o.median("t", "x", "1", `(SELECT toDateTime(day, 'UTC') AS t, service,
			arrayJoin(arrayFilter((l, st) -> st >= `+since+` AND st < `+o.To+`, arrayConcat(leads, leads_far), arrayConcat(lead_starts, lead_far_starts))) AS x FROM `+days+`)`), nil
	case PanelRecoveryTime:
		return o.median("t", "x", sample, `(SELECT toDateTime(day, 'UTC') AS t, service,
			arrayJoin(arrayConcat([nan], recoveries)) AS x FROM `+days+` AND failed > 0)`), nil
	case PanelIncidents:
		if o.GroupBy == "severity" {
			return o.wrap("t", "toNullable(toFloat64(sum(n))) AS value", `(SELECT t, severities[i] AS sev, severity_counts[i] AS n FROM (
				SELECT toDateTime(day, 'UTC') AS t, severities, severity_counts, arrayJoin(arrayEnumerate(severities)) AS i FROM `+days+`))`), nil
		}
		return o.wrap("t", "toNullable(toFloat64(sum(incidents))) AS value",
			"(SELECT toDateTime(day, 'UTC') AS t, * FROM "+days+" AND incidents > 0)"), nil
	case PanelMTTR, PanelMTTD, PanelMTTA:
		col := map[string]string{PanelMTTR: "mttr", PanelMTTD: "mttd", PanelMTTA: "mtta"}[kpi]
		return o.median("t", "x", sample, `(SELECT toDateTime(day, 'UTC') AS t, service,
			arrayJoin(arrayConcat([nan], `+col+`)) AS x FROM `+days+` AND incidents > 0)`), nil
	case KPIDeploymentsOutsideWindow:
		if q.Calendar == nil { // 0 for every bucket or group with production deployments
			return o.wrap("t", "toNullable(toFloat64(0 * count())) AS value", "(SELECT toDateTime(day, 'UTC') AS t, * FROM "+days+" AND deployments > 0)"), nil
		}
		wgen, err := o.windowGeneration(q)
		if err != nil {
			return "", err
		}
		// No build of the calendar: no value, rather than 0.
		return o.wrap("t", "if("+wgen+" = 0, NULL, toNullable(toFloat64(sum(outside)))) AS value", "(SELECT toDateTime(day, 'UTC') AS t, * FROM kpi_window_daily WHERE generation = "+wgen+
			" AND day >= toDate("+o.From+") AND day < toDate("+o.To+") AND has("+prod+", environment) AND "+o.filters()+")"), nil
	case PanelPatchLatency, PanelPatchCompliance, PanelPatchesOverdue:
		src, err := o.rollupTargets(q, gen)
		if err != nil {
			return "", err
		}
		return o.patchPanel(kpi, src, prod), nil
	}
	return "", fmt.Errorf("no rollup panel for KPI %q", kpi)
}

// rollupTargets is the patch targets the rollup generation gen keeps of
// the days of o's range, one by one, with the columns of patchSourceAt,
// judged as it judges the raw rows.
func (o PanelOptions) rollupTargets(q Query, gen string) (string, error) {
	targets := chsql.Raw(`(SELECT service, team, environment, patch_id, target, sev, released_at,
			if(applied > toDateTime(0), toNullable(applied), NULL) AS applied_at, outcome
		FROM kpi_daily ARRAY JOIN patch_ids AS patch_id, patch_targets AS target, patch_severities AS sev, patch_released AS released_at,
			patch_applied AS applied, patch_outcomes AS outcome
		WHERE generation = ` + gen + ` AND day >= toDate(` + o.From + `) AND day < toDate(` + o.To + `))`)
	return chsql.Inline(q.judgePatches(targets, chsql.TimeOf(chsql.Macro(o.judgeAt()))))
}

// rollupPanelTables are the panel tables that read the rollup with
// PanelOptions.Rollup, over whole UTC days; the others read the raw rows.
var rollupPanelTables = map[string]bool{TableAttributions: true, TablePatchLatencies: true, TableOverduePatches: true, TableOutsideWindow: true}

// PanelPeriodsSQL is a statement of one row: the value of each KPI of kpis
// over each range of periods ([from, to), SQL expressions), as PanelSQL
// with o.Rollup gives it (over whole UTC days, patch deadlines judged at
// the range's end), read from the rollup in one pass rather than one
// statement each. Column <kpi>_<i> (Nullable(Float64)) is kpi over
// periods[i]. o's Bucket and GroupBy must be empty. An ops review
// compares three ranges of eight KPIs: one pass took a fraction of 24
// statements, each of which pays for the slice filters and the
// generation's lookup (docs/benchmarks.md).
func PanelPeriodsSQL(kpis []string, periods [][2]string, o PanelOptions) (string, error) {
	if o.Bucket != "" || o.GroupBy != "" || len(periods) == 0 {
		return "", fmt.Errorf("a statement of periods has periods and is neither bucketed nor grouped")
	}
	q := o.query()
	gen, prod, err := rollupOf(q)
	if err != nil {
		return "", err
	}
	median := func(arr, in string) string {
		n := "sumIf(length(" + arr + "), " + in + ")"
		hi := "quantileExactArrayIf(0.5)(" + arr + ", " + in + ")"
		lo := "-quantileExactArrayIf(0.5)(arrayMap(v -> -v, " + arr + "), " + in + ")"
		pos := "((" + n + " - 1) / 2)"
		return "if(" + n + " = 0, NULL, toNullable(" + lo + " + (" + pos + " - floor(" + pos + ")) * (" + hi + " - " + lo + ")))"
	}
	var cols, lows, highs []string
	for i, p := range periods {
		po := o
		po.From, po.To = p[0], p[1] // each range judged at its own end
		po = po.wholeDays()
		lows, highs = append(lows, "toDate("+po.From+")"), append(highs, "toDate("+po.To+")")
		in := "(day >= toDate(" + po.From + ") AND day < toDate(" + po.To + "))"
		for _, kpi := range kpis {
			var expr string
			switch kpi {
			case PanelDeploymentFrequency:
				expr = "toNullable(toFloat64(sumIf(successful, " + in + ") / " + po.days() + "))"
			case PanelChangeFailureRate:
				expr = "toNullable(toFloat64(sumIf(failed, " + in + ") / nullIf(sumIf(deployments, " + in + "), 0)))"
			case PanelReworkRate:
				expr = "toNullable(toFloat64(sumIf(rework, " + in + ") / nullIf(sumIf(deployments, " + in + "), 0)))"
			case PanelDeployments:
				expr = "toNullable(toFloat64(sumIf(deployments, " + in + ")))"
			case PanelIncidents:
				expr = "toNullable(toFloat64(sumIf(incidents, " + in + ")))"
			case PanelLeadTime:
				since, err := chsql.Inline(chsql.SQL("?", po.panelRange(q).from.Add(-q.lookback())))
				if err != nil {
					return "", err
				}
				expr = median("arrayFilter((l, st) -> st >= "+since+" AND st < "+po.To+", arrayConcat(leads, leads_far), arrayConcat(lead_starts, lead_far_starts))", in)
			case PanelRecoveryTime:
				expr = median("recoveries", in)
			case PanelMTTR, PanelMTTD, PanelMTTA:
				expr = median(map[string]string{PanelMTTR: "mttr", PanelMTTD: "mttd", PanelMTTA: "mtta"}[kpi], in)
			case PanelPatchLatency:
				expr = median("patch_latency", in)
			case PanelPatchCompliance:
				// Due: with an outcome, or open past the deadline; compliant:
				// applied by it (patchDay).
				expr = "toNullable(toFloat64(sumIf(arraySum(patch_good), " + in + ") / nullIf(sumIf(arraySum(patch_due_closed), " + in +
					") + sumIf(arrayCount(d -> d < toInt64(toUInt32(" + po.JudgeAt + ")), patch_open_due), " + in + "), 0)))"
			case PanelPatchesOverdue:
				expr = "toNullable(toFloat64(sumIf(arrayCount(d -> d < toInt64(toUInt32(" + po.JudgeAt + ")), patch_unapplied_due), " + in + ")))"
			default:
				return "", fmt.Errorf("no rollup panel of periods for KPI %q", kpi)
			}
			cols = append(cols, fmt.Sprintf("%s AS %s_%d", expr, kpi, i))
		}
	}
	// least and greatest of two: 18.16 has no more.
	lo, hi := lows[0], highs[0]
	for i := 1; i < len(periods); i++ {
		lo, hi = "least("+lo+", "+lows[i]+")", "greatest("+hi+", "+highs[i]+")"
	}
	return "SELECT " + strings.Join(cols, ",\n\t") + "\nFROM kpi_daily WHERE generation = " + gen +
		" AND day >= " + lo + " AND day < " + hi +
		" AND has(" + prod + ", environment) AND " + o.filters(), nil
}
