package store

import "strings"

// The entity folds below are the bodies of the public views (migration 2):
// each folds the raw messages about one entity into its latest state. The
// KPI queries use them directly, with a filter on the raw rows and only the
// columns they read, so that ClickHouse reads and groups only the messages
// of the entities in a range instead of the whole history, which is what a
// view does before any outer WHERE applies.

type column struct{ name, expr string }

type fold struct {
	table string
	key   []string // GROUP BY
	raw   string   // expressions added to the raw rows
	cols  []column
	// extra columns are folded only when a caller names them, so that the
	// views keep their columns: those added after the views were created
	// (actor and pipeline, migration 7).
	extra []column
}

// sql is the fold of the raw rows matching where (all rows if empty),
// with the key columns and the named columns (all if none).
func (f fold) sql(where string, names []string) string {
	from := f.table
	if where != "" {
		from += " WHERE " + where
	}
	sel := append([]string(nil), f.key...)
	for _, c := range f.cols {
		if len(names) == 0 || contains(names, c.name) {
			sel = append(sel, c.expr+" AS "+c.name)
		}
	}
	for _, c := range f.extra {
		if contains(names, c.name) {
			sel = append(sel, c.expr+" AS "+c.name)
		}
	}
	return "SELECT\n\t" + strings.Join(sel, ",\n\t") + "\nFROM (SELECT *, " + f.raw + " FROM " + from + ")\nGROUP BY " + strings.Join(f.key, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

var deployments = fold{
	table: "deployment_events",
	key:   []string{"deployment_id"},
	raw:   "tuple(event_time, event_id) AS v",
	cols: []column{
		{"service", `argMax(service, v)`},
		{"team", `argMax(team, v)`},
		{"environment", `argMax(environment, v)`},
		{"started_at", `nullIf(argMax(started_at, v), toDateTime(0, 'UTC'))`},
		{"finished_at", `argMax(finished_at, v)`},
		{"status", `argMax(status, v)`},
		{"version", `argMax(version, v)`},
		{"artifact", `argMax(artifact, v)`},
		{"unplanned", `argMax(unplanned, v)`},
		{"fixes_incident", `argMax(fixes_incident, v)`},
		{"changes", `argMax(changes, v)`},
		{"encoding", `argMax(encoding, v)`},
		{"updated_at", `max(event_time)`},
	},
	extra: []column{{"actor", `argMax(actor, v)`}, {"pipeline", `argMax(pipeline, v)`}},
}

// Incident columns refer to the raw detected_at as detected: inside the
// fold, detected_at is the folded column's alias.
var incidents = fold{
	table: "incident_events",
	key:   []string{"incident_id"},
	raw:   "tuple(event_time, event_id) AS v, detected_at AS detected",
	cols: []column{
		{"title", `argMaxIf(title, v, title != '')`},
		{"service", `argMaxIf(service, v, service != '')`},
		{"team", `argMaxIf(team, v, team != '')`},
		{"environment", `argMaxIf(environment, v, environment != '')`},
		{"severity", `argMaxIf(severity, v, severity != '')`},
		{"detection_source", `argMinIf(detection_source, tuple(detected, event_id), detection_source != '' AND detected > toDateTime(0, 'UTC'))`},
		{"impact_started_at", `nullIf(minIf(impact_started_at, impact_started_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"detected_at", `nullIf(minIf(detected_at, detected_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"acknowledged_at", `nullIf(minIf(acknowledged_at, acknowledged_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"mitigated_at", `nullIf(minIf(mitigated_at, mitigated_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"resolved_at", `nullIf(max(resolved_at), toDateTime(0, 'UTC'))`},
		{"cause_deployment_id", `argMaxIf(cause_deployment_id, v, cause_deployment_id != '')`},
		{"cause_commit", `argMaxIf(cause_commit, v, cause_commit != '')`},
		{"messages", `uniqExact(event_id)`},
		{"updated_at", `max(event_time)`},
	},
}

var patches = fold{
	table: "patch_events",
	key:   []string{"patch_id", "target"},
	raw:   "tuple(event_time, event_id) AS v, outcome AS o",
	cols: []column{
		{"target_type", `argMaxIf(target_type, v, target_type != '')`},
		{"severity", `argMaxIf(severity, v, severity != '')`},
		{"service", `argMaxIf(service, v, service != '')`},
		{"team", `argMaxIf(team, v, team != '')`},
		{"environment", `argMaxIf(environment, v, environment != '')`},
		{"released_at", `nullIf(minIf(released_at, released_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"applied_at", `nullIf(argMaxIf(applied_at, v, applied_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"outcome", `if(countIf(o != '') = 0, 'open', argMaxIf(o, v, o != ''))`},
		{"updated_at", `max(event_time)`},
	},
}

var changes = fold{
	table: "change_events",
	key:   []string{"change_id"},
	raw:   "tuple(event_time, event_id) AS v",
	cols: []column{
		{"service", `argMaxIf(service, v, service != '')`},
		{"team", `argMaxIf(team, v, team != '')`},
		{"repository", `argMaxIf(repository, v, repository != '')`},
		{"author", `argMaxIf(author, v, author != '')`},
		{"authored_at", `nullIf(minIf(authored_at, authored_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"merged_at", `nullIf(minIf(merged_at, merged_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC'))`},
		{"updated_at", `max(event_time)`},
	},
}

// Deployments is one row per deployment: its latest message wins. where,
// if not empty, filters the raw deployment_events rows first; cols, if
// any, limits the columns to deployment_id and those (actor and pipeline,
// which the view lacks, only when named).
func Deployments(where string, cols ...string) string { return deployments.sql(where, cols) }

// Incidents is one row per incident: every lifecycle step keeps its
// earliest time, the attributes their latest non-empty value. where and
// cols work as for Deployments. The full fold (no cols) adds the state.
func Incidents(where string, cols ...string) string {
	if len(cols) > 0 {
		return incidents.sql(where, cols)
	}
	return `SELECT
	incident_id,
	title, service, team, environment, severity, detection_source,
	impact_started_at, detected_at, acknowledged_at, mitigated_at, resolved_at,
	multiIf(isNotNull(resolved_at), 'resolved', isNotNull(mitigated_at), 'mitigated',
		isNotNull(acknowledged_at), 'acknowledged', 'open') AS state,
	cause_deployment_id, cause_commit, messages, updated_at
FROM (
` + incidents.sql(where, nil) + `
)`
}

// Patches is one row per patch and target. where and cols work as for
// Deployments.
func Patches(where string, cols ...string) string { return patches.sql(where, cols) }

// Changes is one row per change (commit). where and cols work as for
// Deployments.
func Changes(where string, cols ...string) string { return changes.sql(where, cols) }
