// Package calendar is the change calendar: the recurring windows in which
// deployments are allowed, per environment, team or tier, and the freezes
// in which they are not. Calendar.Classify says of one deployment whether
// it was inside its windows, outside them, inside a freeze, or an
// unplanned fix for an open incident (counted apart, as such fixes are
// expected outside windows), with the window it missed or the freeze it
// hit. Calendar.SQL is the same classification as a ClickHouse
// expression, for the KPI deployments_outside_window.
//
// It is a package of its own, under internal, because both the KPIs
// (package metrics) and the alerts (package anomaly) read it, and because
// it owns its configuration. docs/change-windows.md has the rules.
package calendar

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Class is what the calendar makes of a deployment.
type Class string

// The classes.
const (
	InWindow      Class = "in_window"      // inside one of the windows that decide for it
	OutsideWindow Class = "outside_window" // outside all of them
	InFreeze      Class = "in_freeze"      // inside a freeze of its scope, whatever the windows
	UnplannedFix  Class = "unplanned_fix"  // an unplanned fix for an open incident, outside its windows or in a freeze
	NoWindow      Class = "no_window"      // no window covers its scope (nor a freeze): unconstrained
)

// Deployment is what the calendar needs of one deployment.
type Deployment struct {
	// Time is when the deployment started (when it finished, if its start
	// is unknown).
	Time time.Time
	// Environment, Team and Tier are matched exactly against the scopes'
	// values (environments and tiers lower-cased there).
	Environment, Team, Tier string
	// UnplannedFix marks an unplanned deployment that fixes an incident
	// open at the time.
	UnplannedFix bool
}

// Verdict is the calendar's judgement of one deployment.
type Verdict struct {
	Class Class `json:"class"`
	// Window is the window it was in, if any (a deployment in a freeze
	// may be in one).
	Window string `json:"window,omitempty"`
	// Windows are the windows that decided for its scope: the ones it
	// missed when outside.
	Windows []string `json:"windows,omitempty"`
	// Freeze is the freeze it hit, and its reason.
	Freeze       string `json:"freeze,omitempty"`
	FreezeReason string `json:"freeze_reason,omitempty"`
	// NextAllowed is, for a deployment outside its windows or in a
	// freeze, the first instant from its time at which it would have
	// been allowed; zero when none comes within a few weeks.
	NextAllowed time.Time `json:"next_allowed,omitzero"`
}

// Calendar is a compiled change calendar.
type Calendar struct {
	windows []*window
	freezes []*freeze
}

type window struct {
	name     string
	scope    scope
	days     [8]bool // ISO weekdays, 1 Monday to 7 Sunday
	from, to int     // minutes from midnight; to may be 1440; to < from runs overnight
	loc      *time.Location
}

type freeze struct {
	name, reason string
	scope        scope
	from, to     time.Time
	loc          *time.Location // its zone, to describe it in
}

type scope struct{ envs, teams, tiers []string }

// New compiles a calendar.
func New(c Config) (*Calendar, error) { return compile(c) }

func (s scope) matches(d Deployment) bool {
	return (len(s.envs) == 0 || slices.Contains(s.envs, d.Environment)) &&
		(len(s.teams) == 0 || slices.Contains(s.teams, d.Team)) &&
		(len(s.tiers) == 0 || slices.Contains(s.tiers, d.Tier))
}

// rank is the scope's specificity: the number of dimensions it names
// first, then team over tier over environment.
func (s scope) rank() int {
	r := 0
	for _, d := range []struct {
		vals   []string
		weight int
	}{{s.teams, 4}, {s.tiers, 2}, {s.envs, 1}} {
		if len(d.vals) > 0 {
			r += 8 + d.weight
		}
	}
	return r
}

// isoDay is Monday 1 to Sunday 7, as ClickHouse's toDayOfWeek.
func isoDay(t time.Time) int { return (int(t.Weekday())+6)%7 + 1 }

// contains reports whether t is inside the window, by the wall clock of
// its zone at minute resolution: an overnight window's early hours
// belong to the day before.
func (w *window) contains(t time.Time) bool {
	lt := t.In(w.loc)
	d, m := isoDay(lt), lt.Hour()*60+lt.Minute()
	if w.from < w.to {
		return w.days[d] && m >= w.from && m < w.to
	}
	return (w.days[d] && m >= w.from) || (w.days[(d+5)%7+1] && m < w.to)
}

// opening is the first instant on the local date of day at which the
// wall clock reads the window's from or later (from may fall in the hour
// skipped when clocks go forward).
func (w *window) opening(y int, mo time.Month, d int) time.Time {
	s := time.Date(y, mo, d, w.from/60, w.from%60, 0, 0, w.loc)
	if m := s.Hour()*60 + s.Minute(); m != w.from {
		start, end := s.ZoneBounds()
		if m > w.from {
			s = start // time.Date moved past the gap: the gap's end is the opening
		} else if !end.IsZero() {
			s = end
		}
	}
	return s
}

// decisive returns the windows that decide for the deployment's scope:
// those matching it with the most specific scope.
func (c *Calendar) decisive(d Deployment) []*window {
	best := -1
	var out []*window
	for _, w := range c.windows {
		if !w.scope.matches(d) {
			continue
		}
		switch r := w.scope.rank(); {
		case r > best:
			best, out = r, []*window{w}
		case r == best:
			out = append(out, w)
		}
	}
	return out
}

func (c *Calendar) freezeAt(t time.Time, d Deployment) *freeze {
	var hit *freeze
	for _, f := range c.freezes {
		if f.scope.matches(d) && !t.Before(f.from) && t.Before(f.to) && (hit == nil || f.from.Before(hit.from)) {
			hit = f
		}
	}
	return hit
}

// Classify judges one deployment. A freeze of its scope decides first:
// in_freeze (unplanned_fix for an unplanned fix). Otherwise the windows
// of its most specific matching scope decide: in_window when it is in any
// of them, else outside_window (unplanned_fix for an unplanned fix); with
// no window for its scope it is no_window.
func (c *Calendar) Classify(d Deployment) Verdict {
	var v Verdict
	group := c.decisive(d)
	for _, w := range group {
		v.Windows = append(v.Windows, w.name)
		if v.Window == "" && w.contains(d.Time) {
			v.Window = w.name
		}
	}
	f := c.freezeAt(d.Time, d)
	switch {
	case f != nil:
		v.Class, v.Freeze, v.FreezeReason = InFreeze, f.name, f.reason
	case len(group) == 0:
		v.Class = NoWindow
	case v.Window != "":
		v.Class = InWindow
	default:
		v.Class = OutsideWindow
	}
	if v.Class == InFreeze || v.Class == OutsideWindow {
		v.NextAllowed = c.nextAllowed(d, group)
		if d.UnplannedFix {
			v.Class = UnplannedFix
		}
	}
	return v
}

// nextAllowed is the first instant from d.Time at which a deployment of
// its scope is in one of group (or there is no window) and in no freeze,
// looking up to eight weeks ahead.
func (c *Calendar) nextAllowed(d Deployment, group []*window) time.Time {
	t, limit := d.Time, d.Time.Add(8*7*24*time.Hour)
	for t.Before(limit) {
		if f := c.freezeAt(t, d); f != nil {
			t = f.to
			continue
		}
		if len(group) == 0 {
			return t
		}
		for _, w := range group {
			if w.contains(t) {
				return t
			}
		}
		next := time.Time{}
		for _, w := range group {
			lt := t.In(w.loc)
			for off := -1; off <= 8; off++ {
				day := time.Date(lt.Year(), lt.Month(), lt.Day()+off, 12, 0, 0, 0, w.loc)
				if !w.days[isoDay(day)] {
					continue
				}
				if s := w.opening(day.Year(), day.Month(), day.Day()); s.After(t) {
					if next.IsZero() || s.Before(next) {
						next = s
					}
					break
				}
			}
		}
		if next.IsZero() {
			return time.Time{}
		}
		t = next
	}
	return time.Time{}
}

// Columns are the SQL expressions SQL classifies: Time a DateTime (not
// Nullable: ifNull(started_at, finished_at)), Environment, Team and Tier
// strings (Tier may be empty: no tier), UnplannedFix a UInt8 (unplanned = 1
// AND notEmpty(fixes_incident) for a fix of a known incident).
type Columns struct {
	Time, Environment, Team, Tier, UnplannedFix string
}

// SQL is Classify as a ClickHouse expression of type String, evaluating
// to the class's name, for ClickHouse 18.16 and later: the wall clock of
// each window's zone from toDayOfWeek, toHour and toMinute with the zone
// as argument, freezes as Unix-second bounds. The calendar's names and
// values are quoted literals.
func (c *Calendar) SQL(col Columns) string {
	if col.Tier == "" {
		col.Tier = "''"
	}
	unplanned := "(" + col.UnplannedFix + ") != 0"
	var branches []string
	var freezes []string
	for _, f := range c.freezes {
		freezes = append(freezes, fmt.Sprintf("(toUInt32(%s) >= %d AND toUInt32(%s) < %d AND %s)",
			col.Time, ceilUnix(f.from), col.Time, ceilUnix(f.to), f.scope.sql(col)))
	}
	if len(freezes) > 0 {
		branches = append(branches, strings.Join(freezes, " OR "),
			fmt.Sprintf("if(%s, '%s', '%s')", unplanned, UnplannedFix, InFreeze))
	}
	// Groups of windows of equal specificity, the most specific first.
	byRank := map[int][]*window{}
	for _, w := range c.windows {
		byRank[w.scope.rank()] = append(byRank[w.scope.rank()], w)
	}
	ranks := make([]int, 0, len(byRank))
	for r := range byRank {
		ranks = append(ranks, r)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ranks)))
	for _, r := range ranks {
		var matches, inside []string
		for _, w := range byRank[r] {
			s := w.scope.sql(col)
			matches = append(matches, s)
			inside = append(inside, "("+s+" AND "+w.sql(col.Time)+")")
		}
		branches = append(branches, strings.Join(matches, " OR "),
			fmt.Sprintf("if(%s, '%s', if(%s, '%s', '%s'))", strings.Join(inside, " OR "), InWindow, unplanned, UnplannedFix, OutsideWindow))
	}
	if len(branches) == 0 {
		return "'" + string(NoWindow) + "'"
	}
	return "multiIf(" + strings.Join(append(branches, "'"+string(NoWindow)+"'"), ",\n\t") + ")"
}

// ceilUnix is the first whole second at or after t: a DateTime of whole
// seconds is before t exactly when it is before that second, so bounds
// with fractions of a second compare as Classify compares them.
func ceilUnix(t time.Time) int64 {
	if t.Truncate(time.Second).Equal(t) {
		return t.Unix()
	}
	return t.Unix() + 1
}

func (s scope) sql(col Columns) string {
	var conds []string
	for _, d := range []struct {
		vals []string
		expr string
	}{{s.envs, col.Environment}, {s.teams, col.Team}, {s.tiers, col.Tier}} {
		if len(d.vals) > 0 {
			conds = append(conds, fmt.Sprintf("has(%s, %s)", stringArray(d.vals), d.expr))
		}
	}
	if len(conds) == 0 {
		return "1"
	}
	return strings.Join(conds, " AND ")
}

func (w *window) sql(t string) string {
	z := quote(w.loc.String())
	day := fmt.Sprintf("toDayOfWeek(%s, %s)", t, z)
	m := fmt.Sprintf("(toHour(%s, %s) * 60 + toMinute(%s, %s))", t, z, t, z)
	var days, after []int
	for d := 1; d <= 7; d++ {
		if w.days[d] {
			days = append(days, d)
			after = append(after, d%7+1)
		}
	}
	if w.from < w.to {
		return fmt.Sprintf("(has(%s, %s) AND %s >= %d AND %s < %d)", intArray(days), day, m, w.from, m, w.to)
	}
	return fmt.Sprintf("((has(%s, %s) AND %s >= %d) OR (has(%s, %s) AND %s < %d))",
		intArray(days), day, m, w.from, intArray(after), day, m, w.to)
}

func intArray(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func stringArray(xs []string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = quote(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// quote is a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Describe says what the window or freeze of that name allows or forbids,
// in its own time zone, and returns that zone: "tue, thu 10:00–16:00
// (Europe/Paris)", "frozen 2026-12-19 00:00 to 2027-01-04 00:00
// (Europe/Paris): year-end trading peak". An unknown name gives "" and UTC.
func (c *Calendar) Describe(name string) (string, *time.Location) {
	for _, w := range c.windows {
		if w.name == name {
			var days []string
			for d := 1; d <= 7; d++ {
				if w.days[d] {
					days = append(days, dayAbbrev[d])
				}
			}
			hm := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
			return fmt.Sprintf("%s %s–%s (%s)", strings.Join(days, ", "), hm(w.from), hm(w.to), w.loc), w.loc
		}
	}
	for _, f := range c.freezes {
		if f.name == name {
			loc := f.loc
			s := fmt.Sprintf("frozen %s to %s (%s)", f.from.In(loc).Format("2006-01-02 15:04"), f.to.In(loc).Format("2006-01-02 15:04"), loc)
			if f.reason != "" {
				s += ": " + f.reason
			}
			return s, loc
		}
	}
	return "", time.UTC
}

var dayAbbrev = [8]string{1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat", 7: "sun"}
