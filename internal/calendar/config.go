package calendar

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is the change calendar, under the configuration's
// change_calendar key.
type Config struct {
	// TimeZone is the zone of windows and freezes that name none (an IANA
	// name such as Europe/Paris; default UTC).
	TimeZone string         `yaml:"time_zone"`
	Windows  []WindowConfig `yaml:"windows"`
	Freezes  []FreezeConfig `yaml:"freezes"`
}

// Scope limits a window or a freeze to some deployments; an empty list
// is any value. Environments are compared lower-cased, as ingestion
// stores them; tiers lower-cased, as the catalog reads them; teams as
// written.
type Scope struct {
	Environments []string `yaml:"environments"`
	Teams        []string `yaml:"teams"`
	Tiers        []string `yaml:"tiers"`
}

// WindowConfig is a recurring window in which deployments of its scope
// are allowed: on Days, from From to To in TimeZone's wall-clock time. A
// window whose To is earlier than its From runs overnight into the next
// day: days name the day it opens.
type WindowConfig struct {
	Name  string `yaml:"name"`
	Scope `yaml:",inline"`
	// Days are mon, tue, …, sun (or full names) and ranges like mon-fri.
	Days []string `yaml:"days"`
	// From and To are HH:MM; To may be 24:00, and 00:00 as To is the end
	// of the day.
	From     string `yaml:"from"`
	To       string `yaml:"to"`
	TimeZone string `yaml:"time_zone"`
}

// FreezeConfig is a period in which no deployment of its scope is
// allowed, whatever the windows say.
type FreezeConfig struct {
	Name   string `yaml:"name"`
	Reason string `yaml:"reason"`
	Scope  `yaml:",inline"`
	// From and To bound the freeze, To excluded: RFC 3339 times with
	// their offset, or 2006-01-02 and 2006-01-02 15:04 in TimeZone.
	From     string `yaml:"from"`
	To       string `yaml:"to"`
	TimeZone string `yaml:"time_zone"`
}

// Validate checks the calendar; errors name the field and the bad value.
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

const field = "change_calendar"

func compile(c Config) (*Calendar, error) {
	def, err := zone(c.TimeZone, "UTC", field+".time_zone")
	if err != nil {
		return nil, err
	}
	cal := &Calendar{}
	names := map[string]string{}
	unique := func(name, f string) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("%s.name: required", f)
		}
		if other, ok := names[name]; ok {
			return fmt.Errorf("%s.name: %q is already the name of %s", f, name, other)
		}
		names[name] = f
		return nil
	}
	for i, wc := range c.Windows {
		f := fmt.Sprintf("%s.windows[%d]", field, i)
		if err := unique(wc.Name, f); err != nil {
			return nil, err
		}
		w := &window{name: wc.Name, scope: newScope(wc.Scope)}
		if w.loc, err = zone(wc.TimeZone, def.String(), f+".time_zone"); err != nil {
			return nil, err
		}
		if len(wc.Days) == 0 {
			return nil, fmt.Errorf("%s.days: required, such as [mon-fri]", f)
		}
		for j, d := range wc.Days {
			if err := w.addDays(d); err != nil {
				return nil, fmt.Errorf("%s.days[%d]: %w", f, j, err)
			}
		}
		if w.from, err = clock(wc.From, false); err != nil {
			return nil, fmt.Errorf("%s.from: %w", f, err)
		}
		if w.to, err = clock(wc.To, true); err != nil {
			return nil, fmt.Errorf("%s.to: %w", f, err)
		}
		if w.from == w.to {
			return nil, fmt.Errorf("%s.to: %s is the window's from; for a whole day write 00:00 to 24:00", f, wc.To)
		}
		cal.windows = append(cal.windows, w)
	}
	for i, fc := range c.Freezes {
		f := fmt.Sprintf("%s.freezes[%d]", field, i)
		if err := unique(fc.Name, f); err != nil {
			return nil, err
		}
		loc, err := zone(fc.TimeZone, def.String(), f+".time_zone")
		if err != nil {
			return nil, err
		}
		fr := &freeze{name: fc.Name, reason: fc.Reason, scope: newScope(fc.Scope), loc: loc}
		if fr.from, err = instant(fc.From, loc); err != nil {
			return nil, fmt.Errorf("%s.from: %w", f, err)
		}
		if fr.to, err = instant(fc.To, loc); err != nil {
			return nil, fmt.Errorf("%s.to: %w", f, err)
		}
		if !fr.to.After(fr.from) {
			return nil, fmt.Errorf("%s.to: %s is not after from %s", f, fc.To, fc.From)
		}
		cal.freezes = append(cal.freezes, fr)
	}
	return cal, nil
}

// zone loads an IANA time zone; Local is refused, since the machine's
// zone is no fact of the calendar and ClickHouse would not know it.
func zone(name, def, f string) (*time.Location, error) {
	if name == "" {
		name = def
	}
	if name == "Local" {
		return nil, fmt.Errorf("%s: want an IANA time zone such as Europe/Paris, got Local", f)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%s: unknown time zone %q", f, name)
	}
	return loc, nil
}

var dayNames = map[string]int{
	"mon": 1, "monday": 1, "tue": 2, "tuesday": 2, "wed": 3, "wednesday": 3, "thu": 4, "thursday": 4,
	"fri": 5, "friday": 5, "sat": 6, "saturday": 6, "sun": 7, "sunday": 7,
}

// addDays adds a day or a range of days (mon-fri; fri-mon wraps).
func (w *window) addDays(s string) error {
	lo, hi, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "-")
	a, ok := dayNames[strings.TrimSpace(lo)]
	b := a
	if isRange {
		var ok2 bool
		b, ok2 = dayNames[strings.TrimSpace(hi)]
		ok = ok && ok2
	}
	if !ok {
		return fmt.Errorf("want mon, tue, wed, thu, fri, sat, sun or a range like mon-fri, got %q", s)
	}
	for d := a; ; d = d%7 + 1 {
		w.days[d] = true
		if d == b {
			return nil
		}
	}
}

// clock reads HH:MM as minutes from midnight; as an end, 24:00 and 00:00
// are the end of the day (1440).
func clock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		want := "a time of day like 09:00"
		if end {
			want += " (or 24:00)"
		}
		return 0, fmt.Errorf("want %s, got %q", want, s)
	}
	v := h*60 + m
	if end && v == 0 {
		v = 24 * 60
	}
	return v, nil
}

// instant reads an RFC 3339 time, or a date or a date and time in loc. A
// wall-clock time that happens twice (when clocks go back) is its first.
func instant(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want a time like 2026-12-19, 2026-12-19 18:00 or 2026-12-19T18:00:00+01:00, got %q", s)
}

func newScope(s Scope) scope {
	norm := func(xs []string, lower bool) []string {
		var out []string
		for _, x := range xs {
			x = strings.TrimSpace(x)
			if lower {
				x = strings.ToLower(x)
			}
			if x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	return scope{envs: norm(s.Environments, true), teams: norm(s.Teams, false), tiers: norm(s.Tiers, true)}
}
