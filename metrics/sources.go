package metrics

import (
	"time"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// The KPI queries never read a public view: a view folds the whole history
// of its raw table into entity states before any outer WHERE applies, so a
// 90-day summary over two years of events would group eight times the rows
// it needs. These sources filter the raw messages first and fold only what
// a range needs, with the same fold as the views (store.Deployments and
// friends). Each returns a parenthesised FROM item (package chsql: its
// times and values bound or inlined as it renders).

// Every source folds only the columns its caller names (besides the
// entity key): folding a column costs as much as reading it.

// deploymentsFinished is the deployments with a message that reports a
// finish in [lo, hi) (and matches extra, over the raw rows), folded over
// all their messages; a zero hi leaves the range open. A deployment
// belongs to the range its latest message's finish time falls in: callers
// filter on the folded finished_at, which drops one that a later message
// moved out of the range, wherever that message's finish lies. Folding
// every message, not only those in the range, makes a deployment's state
// the same whatever range is asked, so figures of days add up to the
// figure of their range (the KPI rollup relies on it).
func deploymentsFinished(lo, hi chsql.Time, cols []string, extra chsql.Expr) chsql.Expr {
	where := chsql.SQL("finished_at >= ?", lo)
	if !hi.IsZero() {
		where = chsql.SQL("? AND finished_at < ?", where, hi)
	}
	if !extra.IsZero() {
		where = chsql.SQL("? AND ?", where, extra)
	}
	return chsql.SQL("("+store.Deployments("deployment_id IN (SELECT deployment_id FROM deployment_events WHERE ?)", cols...)+")", where)
}

// incidentsStarted is the incidents with a message whose impact start or
// detection falls in [lo, hi), folded over all their messages, so that a
// resolution reported weeks later still counts. Callers filter on the
// folded impact start.
func incidentsStarted(lo, hi chsql.Time, cols ...string) chsql.Expr {
	return chsql.SQL("("+store.Incidents(`incident_id IN (SELECT incident_id FROM incident_events
		WHERE (impact_started_at >= ? AND impact_started_at < ?) OR (detected_at >= ? AND detected_at < ?))`, cols...)+")",
		lo, hi, lo, hi)
}

// patchesReleased is the patch targets with a message whose release time
// falls in [lo, hi), folded over all their messages.
func patchesReleased(lo, hi chsql.Time, cols ...string) chsql.Expr {
	return chsql.SQL("("+store.Patches(`(patch_id, target) IN (SELECT patch_id, target FROM patch_events
		WHERE released_at >= ? AND released_at < ?)`, cols...)+")", lo, hi)
}

// inSet is a membership test against a bound list of ids, as a hashed set:
// has() with a long array would compare every row against every element.
func inSet(col string, ids []string) chsql.Expr {
	return chsql.SQL(col+" IN (SELECT arrayJoin(?))", ids)
}

// at is the time t of a query.
func at(t time.Time) chsql.Time { return chsql.At(t) }
