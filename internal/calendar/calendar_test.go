package calendar_test

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func load(t testing.TB, path string) (*calendar.Calendar, calendar.Config) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg calendar.Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	c, err := calendar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClassify(t *testing.T) {
	c, _ := load(t, "testdata/calendar.yaml")
	prod := func(team, tier string) calendar.Deployment {
		return calendar.Deployment{Environment: "production", Team: team, Tier: tier}
	}
	batch := calendar.Deployment{Environment: "batch", Team: "data"}
	for _, tc := range []struct {
		name    string
		d       calendar.Deployment
		time    string
		class   calendar.Class
		window  string   // the window it was in
		windows []string // the windows that decided
		freeze  string
		next    string // NextAllowed, RFC 3339
	}{
		{name: "weekday in hours", d: prod("growth", ""), time: "2026-11-16T10:00:00+01:00",
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "last second of the window", d: prod("growth", ""), time: "2026-11-20T16:59:59+01:00",
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "friday end of day", d: prod("growth", ""), time: "2026-11-20T17:00:00+01:00",
			class: calendar.OutsideWindow, windows: []string{"production-weekdays"}, next: "2026-11-23T09:00:00+01:00"},
		{name: "saturday", d: prod("growth", ""), time: "2026-11-21T11:00:00+01:00",
			class: calendar.OutsideWindow, windows: []string{"production-weekdays"}, next: "2026-11-23T09:00:00+01:00"},
		{name: "the team's window decides on monday", d: prod("payments", ""), time: "2026-11-16T10:00:00+01:00",
			class: calendar.OutsideWindow, windows: []string{"payments-tue-thu"}, next: "2026-11-17T10:00:00+01:00"},
		{name: "the team's window", d: prod("payments", ""), time: "2026-11-17T11:00:00+01:00",
			class: calendar.InWindow, window: "payments-tue-thu", windows: []string{"payments-tue-thu"}},
		{name: "team beats tier", d: prod("payments", "tier-1"), time: "2026-11-17T15:00:00+01:00",
			class: calendar.InWindow, window: "payments-tue-thu", windows: []string{"payments-tue-thu"}},
		{name: "tier window decides", d: prod("growth", "tier-1"), time: "2026-11-17T13:00:00+01:00",
			class: calendar.OutsideWindow, windows: []string{"tier-1-mornings"}, next: "2026-11-18T09:00:00+01:00"},
		{name: "no window for staging", d: calendar.Deployment{Environment: "staging", Team: "growth"}, time: "2026-11-21T03:00:00+01:00",
			class: calendar.NoWindow},
		{name: "overnight: the evening", d: batch, time: "2026-11-18T23:30:00-05:00",
			class: calendar.InWindow, window: "batch-nights", windows: []string{"batch-nights"}},
		{name: "overnight: the early hours belong to the day before", d: batch, time: "2026-11-19T01:30:00-05:00",
			class: calendar.InWindow, window: "batch-nights", windows: []string{"batch-nights"}},
		{name: "overnight: saturday's early hours are friday's", d: batch, time: "2026-11-21T01:59:00-05:00",
			class: calendar.InWindow, window: "batch-nights", windows: []string{"batch-nights"}},
		{name: "overnight: closes at 02:00", d: batch, time: "2026-11-21T02:00:00-05:00",
			class: calendar.OutsideWindow, windows: []string{"batch-nights"}, next: "2026-11-23T22:00:00-05:00"},
		{name: "overnight: sunday night is not open", d: batch, time: "2026-11-23T01:30:00-05:00",
			class: calendar.OutsideWindow, windows: []string{"batch-nights"}, next: "2026-11-23T22:00:00-05:00"},
		{name: "before the freeze", d: prod("growth", ""), time: "2026-12-18T16:00:00+01:00",
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "a freeze overrides the window", d: prod("growth", ""), time: "2026-12-21T10:00:00+01:00",
			class: calendar.InFreeze, window: "production-weekdays", windows: []string{"production-weekdays"}, freeze: "year-end",
			next: "2027-01-04T09:00:00+01:00"},
		{name: "a freeze outside the window", d: prod("growth", ""), time: "2026-12-26T10:00:00+01:00",
			class: calendar.InFreeze, windows: []string{"production-weekdays"}, freeze: "year-end", next: "2027-01-04T09:00:00+01:00"},
		{name: "a freeze ends at its to", d: prod("growth", ""), time: "2027-01-04T10:00:00+01:00",
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "a freeze of a team, without windows", d: calendar.Deployment{Environment: "staging", Team: "search"}, time: "2026-11-10T20:00:00+01:00",
			class: calendar.InFreeze, freeze: "search-migration", next: "2026-11-11T06:00:00+01:00"},
		{name: "the team's freeze is not another team's", d: calendar.Deployment{Environment: "staging", Team: "growth"}, time: "2026-11-10T20:00:00+01:00",
			class: calendar.NoWindow},
		{name: "an unplanned fix in a freeze", d: calendar.Deployment{Environment: "production", Team: "growth", UnplannedFix: true},
			time: "2026-12-24T03:00:00+01:00", class: calendar.UnplannedFix, windows: []string{"production-weekdays"}, freeze: "year-end",
			next: "2027-01-04T09:00:00+01:00"},
		{name: "an unplanned fix outside", d: calendar.Deployment{Environment: "production", Team: "growth", UnplannedFix: true},
			time: "2026-11-21T03:00:00+01:00", class: calendar.UnplannedFix, windows: []string{"production-weekdays"}, next: "2026-11-23T09:00:00+01:00"},
		{name: "an unplanned fix in a window is in the window", d: calendar.Deployment{Environment: "production", Team: "growth", UnplannedFix: true},
			time: "2026-11-16T10:00:00+01:00", class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "a team window in a half-hour zone", d: prod("apac", ""), time: "2026-11-15T08:30:00+10:30",
			class: calendar.InWindow, window: "apac-days", windows: []string{"apac-days"}},
		{name: "a team window beats the environment's", d: prod("apac", ""), time: "2026-11-20T10:00:00+01:00", // Sat 19:30 in Adelaide
			class: calendar.OutsideWindow, windows: []string{"apac-days"}, next: "2026-11-22T08:30:00+10:30"},
		// Daylight saving time: the window follows the wall clock.
		{name: "09:30 CET before spring forward", d: prod("growth", ""), time: "2026-03-27T08:30:00Z",
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "08:30 CET is early", d: prod("growth", ""), time: "2026-03-27T07:30:00Z",
			class: calendar.OutsideWindow, windows: []string{"production-weekdays"}, next: "2026-03-27T08:00:00Z"},
		{name: "the same UTC hour is 09:30 CEST after", d: prod("growth", ""), time: "2026-03-30T07:30:00Z",
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "17:30 CEST is late", d: prod("growth", ""), time: "2026-03-30T15:30:00Z",
			class: calendar.OutsideWindow, windows: []string{"production-weekdays"}, next: "2026-03-31T07:00:00Z"},
		{name: "the week clocks go back", d: prod("growth", ""), time: "2026-10-26T08:00:00Z", // 09:00 CET
			class: calendar.InWindow, window: "production-weekdays", windows: []string{"production-weekdays"}},
		{name: "overnight across spring forward in New York", d: batch, time: "2026-03-09T05:30:00Z", // Mon 01:30 EDT: Sunday's night, closed
			class: calendar.OutsideWindow, windows: []string{"batch-nights"}, next: "2026-03-10T02:00:00Z"}, // Mon 22:00 EDT
		{name: "overnight in EDT", d: batch, time: "2026-03-10T05:30:00Z", // Tue 01:30 EDT
			class: calendar.InWindow, window: "batch-nights", windows: []string{"batch-nights"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			d.Time = at(t, tc.time)
			v := c.Classify(d)
			var next time.Time
			if tc.next != "" {
				next = at(t, tc.next)
			}
			if v.Class != tc.class || v.Window != tc.window || !slices.Equal(v.Windows, tc.windows) || v.Freeze != tc.freeze || !v.NextAllowed.Equal(next) {
				t.Errorf("Classify(%+v) =\n %+v\nwant class %s window %q windows %v freeze %q next %v", d, v, tc.class, tc.window, tc.windows, tc.freeze, next)
			}
		})
	}
}

// Windows that open or close in the hour clocks skip or repeat.
func TestClassifyDSTEdges(t *testing.T) {
	c, err := calendar.New(calendar.Config{TimeZone: "Europe/Paris", Windows: []calendar.WindowConfig{
		{Name: "across-the-gap", Days: []string{"sun"}, From: "01:30", To: "03:30"},
		{Name: "opens-in-the-gap", Days: []string{"sun"}, From: "02:30", To: "04:00", Scope: calendar.Scope{Teams: []string{"gap"}}},
		{Name: "in-the-repeated-hour", Days: []string{"sun"}, From: "02:00", To: "02:30", Scope: calendar.Scope{Teams: []string{"repeat"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, team, time string
		class            calendar.Class
		next             string
	}{
		// 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
		{"01:45 CET", "", "2026-03-29T00:45:00Z", calendar.InWindow, ""},
		{"03:15 CEST", "", "2026-03-29T01:15:00Z", calendar.InWindow, ""},
		{"03:35 CEST", "", "2026-03-29T01:35:00Z", calendar.OutsideWindow, "2026-04-05T01:30:00+02:00"},
		// A window opening at 02:30, which that night never shows, opens
		// when the clock jumps to 03:00.
		{"before a window that opens in the gap", "gap", "2026-03-29T00:45:00Z", calendar.OutsideWindow, "2026-03-29T01:00:00Z"},
		{"03:00 CEST is past 02:30", "gap", "2026-03-29T01:00:00Z", calendar.InWindow, ""},
		// 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00–02:30 happens twice.
		{"02:15 CEST", "repeat", "2026-10-25T00:15:00Z", calendar.InWindow, ""},
		{"02:45 CEST waits for the hour to repeat", "repeat", "2026-10-25T00:45:00Z", calendar.OutsideWindow, "2026-10-25T01:00:00Z"},
		{"02:15 CET", "repeat", "2026-10-25T01:15:00Z", calendar.InWindow, ""},
		{"02:30 CET", "repeat", "2026-10-25T01:30:00Z", calendar.OutsideWindow, "2026-11-01T02:00:00+01:00"},
	} {
		v := c.Classify(calendar.Deployment{Time: at(t, tc.time), Team: tc.team})
		var next time.Time
		if tc.next != "" {
			next = at(t, tc.next)
		}
		if v.Class != tc.class || !v.NextAllowed.Equal(next) {
			t.Errorf("%s: got %s next %v, want %s next %v", tc.name, v.Class, v.NextAllowed, tc.class, next)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown zone", "time_zone: Mars/Olympus", `change_calendar.time_zone: unknown time zone "Mars/Olympus"`},
		{"local zone", "windows: [{name: w, days: [mon], from: '09:00', to: '17:00', time_zone: Local}]",
			"change_calendar.windows[0].time_zone: want an IANA time zone such as Europe/Paris, got Local"},
		{"no name", "windows: [{days: [mon], from: '09:00', to: '17:00'}]", "change_calendar.windows[0].name: required"},
		{"same name", "windows: [{name: w, days: [mon], from: '09:00', to: '17:00'}]\nfreezes: [{name: w, from: 2026-01-01, to: 2026-01-02}]",
			`change_calendar.freezes[0].name: "w" is already the name of change_calendar.windows[0]`},
		{"no days", "windows: [{name: w, from: '09:00', to: '17:00'}]", "change_calendar.windows[0].days: required"},
		{"bad day", "windows: [{name: w, days: [mon, fri-], from: '09:00', to: '17:00'}]",
			`change_calendar.windows[0].days[1]: want mon, tue, wed, thu, fri, sat, sun or a range like mon-fri, got "fri-"`},
		{"bad from", "windows: [{name: w, days: [mon], from: '9h', to: '17:00'}]", `change_calendar.windows[0].from: want a time of day like 09:00, got "9h"`},
		{"24:00 as from", "windows: [{name: w, days: [mon], from: '24:00', to: '17:00'}]", `change_calendar.windows[0].from: want a time of day like 09:00, got "24:00"`},
		{"bad to", "windows: [{name: w, days: [mon], from: '09:00', to: '17:60'}]", `change_calendar.windows[0].to: want a time of day like 09:00 (or 24:00), got "17:60"`},
		{"empty window", "windows: [{name: w, days: [mon], from: '09:00', to: '09:00'}]", "change_calendar.windows[0].to: 09:00 is the window's from"},
		{"bad freeze time", "freezes: [{name: f, from: 'next week', to: 2026-01-02}]", `change_calendar.freezes[0].from: want a time like 2026-12-19`},
		{"freeze backwards", "freezes: [{name: f, from: 2026-01-02, to: 2026-01-01}]", "change_calendar.freezes[0].to: 2026-01-01 is not after from 2026-01-02"},
	} {
		var cfg calendar.Config
		if err := yaml.Unmarshal([]byte(tc.yaml), &cfg); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Freeze bounds are read in the freeze's zone (the calendar's by
// default), or with the offset they give.
func TestFreezeBounds(t *testing.T) {
	c, err := calendar.New(calendar.Config{TimeZone: "America/New_York", Freezes: []calendar.FreezeConfig{
		{Name: "local", From: "2026-07-03", To: "2026-07-06 06:00"},
		{Name: "offset", From: "2026-08-01T00:00:00Z", To: "2026-08-02T00:00:00+02:00", Scope: calendar.Scope{Teams: []string{"x"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		time, team string
		class      calendar.Class
	}{
		{"2026-07-03T03:59:59Z", "", calendar.NoWindow}, // 23:59:59 EDT on the 2nd
		{"2026-07-03T04:00:00Z", "", calendar.InFreeze},
		{"2026-07-06T09:59:59Z", "", calendar.InFreeze},
		{"2026-07-06T10:00:00Z", "", calendar.NoWindow},
		{"2026-08-01T21:59:59Z", "x", calendar.InFreeze},
		{"2026-08-01T22:00:00Z", "x", calendar.NoWindow},
	} {
		if v := c.Classify(calendar.Deployment{Time: at(t, tc.time), Team: tc.team}); v.Class != tc.class {
			t.Errorf("%s: got %s, want %s", tc.time, v.Class, tc.class)
		}
	}
}

// TestDescribe: a window and a freeze are described in their own zones,
// as the change-window alerts quote them.
func TestDescribe(t *testing.T) {
	c, _ := load(t, "testdata/calendar.yaml")
	for _, tc := range []struct{ name, want, zone string }{
		{"payments-tue-thu", "tue, thu 10:00–16:00 (Europe/Paris)", "Europe/Paris"},
		{"batch-nights", "mon, tue, wed, thu, fri 22:00–02:00 (America/New_York)", "America/New_York"},
		{"year-end", "frozen 2026-12-19 00:00 to 2027-01-04 00:00 (Europe/Paris): year-end trading peak", "Europe/Paris"},
		{"nothing", "", "UTC"},
	} {
		if got, loc := c.Describe(tc.name); got != tc.want || loc.String() != tc.zone {
			t.Errorf("%s: %q in %s, want %q in %s", tc.name, got, loc, tc.want, tc.zone)
		}
	}
}

// TestSQLGolden keeps the SQL of the test calendar under review:
// regenerate with go test ./internal/calendar -run SQLGolden -update.
func TestSQLGolden(t *testing.T) {
	c, _ := load(t, "testdata/calendar.yaml")
	got := c.SQL(sqlColumns) + "\n"
	const path = "testdata/calendar.sql"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("SQL differs from %s (run with -update and review the diff):\n%s", path, got)
	}
	empty, _ := calendar.New(calendar.Config{})
	if s := empty.SQL(sqlColumns); s != "'no_window'" {
		t.Errorf("empty calendar: %s", s)
	}
}

var sqlColumns = calendar.Columns{Time: "t", Environment: "environment", Team: "team", Tier: "tier", UnplannedFix: "unplanned"}
