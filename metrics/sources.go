package metrics

import (
	"time"

	"github.com/opsmetrics/opsmetrics/internal/store"
)

// The KPI queries never read a public view: a view folds the whole history
// of its raw table into entity states before any outer WHERE applies, so a
// 90-day summary over two years of events would group eight times the rows
// it needs. These sources filter the raw messages first and fold only what
// a range needs, with the same fold as the views (store.Deployments and
// friends). Each returns a parenthesised FROM item and its arguments, in
// the order they appear in the text.

// Every source folds only the columns its caller names (besides the
// entity key): folding a column costs as much as reading it.

// deploymentsFinished is the deployments whose messages report a finish in
// [lo, hi); a zero hi leaves the range open. A deployment belongs to the
// range its latest message's finish time falls in: callers still filter
// on finished_at, which drops one whose later message moved it out.
func deploymentsFinished(lo, hi time.Time, cols []string, extra string, extraArgs ...any) (string, []any) {
	where, args := "finished_at >= ?", []any{lo.UTC()}
	if !hi.IsZero() {
		where += " AND finished_at < ?"
		args = append(args, hi.UTC())
	}
	if extra != "" {
		where += " AND " + extra
		args = append(args, extraArgs...)
	}
	return "(" + store.Deployments(where, cols...) + ")", args
}

// incidentsStarted is the incidents with a message whose impact start or
// detection falls in [lo, hi), folded over all their messages, so that a
// resolution reported weeks later still counts. Callers filter on the
// folded impact start.
func incidentsStarted(lo, hi time.Time, cols ...string) (string, []any) {
	return "(" + store.Incidents(`incident_id IN (SELECT incident_id FROM incident_events
		WHERE (impact_started_at >= ? AND impact_started_at < ?) OR (detected_at >= ? AND detected_at < ?))`, cols...) + ")",
		[]any{lo.UTC(), hi.UTC(), lo.UTC(), hi.UTC()}
}

// patchesReleased is the patch targets with a message whose release time
// falls in [lo, hi), folded over all their messages.
func patchesReleased(lo, hi time.Time, cols ...string) (string, []any) {
	return "(" + store.Patches(`(patch_id, target) IN (SELECT patch_id, target FROM patch_events
		WHERE released_at >= ? AND released_at < ?)`, cols...) + ")", []any{lo.UTC(), hi.UTC()}
}

// inSet is a membership test against a bound list of ids, as a hashed set:
// has() with a long array would compare every row against every element.
func inSet(col string) string { return col + " IN (SELECT arrayJoin(?))" }
