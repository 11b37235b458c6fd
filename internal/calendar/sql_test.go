package calendar_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// sqlZones are the zones of the random calendars: whole-hour, half-hour
// and quarter-hour offsets, DST shifts of an hour and of half an hour
// (Lord Howe), both hemispheres.
var sqlZones = []string{"UTC", "Europe/Paris", "Europe/London", "America/New_York", "America/St_Johns",
	"Australia/Adelaide", "Australia/Lord_Howe", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham"}

// TestSQLAgreesWithClassify evaluates Calendar.SQL on the real ClickHouse
// for many random deployments, under the test calendar and random ones,
// and compares every row with Classify.
func TestSQLAgreesWithClassify(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Store(t, testenv.Database(t)).Conn()
	if err := conn.Exec(ctx, `CREATE TABLE calendar_deployments (id UInt32, t DateTime('UTC'), environment String,
		team String, tier String, unplanned UInt8) ENGINE = Memory`); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(16, 1))
	ds := randomDeployments(r, 20_000)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO calendar_deployments (id, t, environment, team, tier, unplanned)")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		u := uint8(0)
		if d.UnplannedFix {
			u = 1
		}
		if err := batch.Append(uint32(i), d.Time, d.Environment, d.Team, d.Tier, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	fixed, _ := load(t, "testdata/calendar.yaml")
	cals := []*calendar.Calendar{fixed}
	for range 12 {
		c, err := calendar.New(randomConfig(r))
		if err != nil {
			t.Fatal(err)
		}
		cals = append(cals, c)
	}
	counts := map[calendar.Class]int{}
	for ci, c := range cals {
		rows, err := conn.Query(ctx, "SELECT id, "+c.SQL(sqlColumns)+" FROM calendar_deployments ORDER BY id")
		if err != nil {
			t.Fatalf("calendar %d: %v\n%s", ci, err, c.SQL(sqlColumns))
		}
		n, bad := 0, 0
		for rows.Next() {
			var id uint32
			var class string
			if err := rows.Scan(&id, &class); err != nil {
				t.Fatal(err)
			}
			want := c.Classify(ds[id]).Class
			counts[want]++
			if calendar.Class(class) != want {
				if bad++; bad <= 5 {
					d := ds[id]
					t.Errorf("calendar %d, deployment %d (%s, %s/%s/%s, unplanned %v): SQL %s, Classify %s",
						ci, id, d.Time.Format(time.RFC3339), d.Environment, d.Team, d.Tier, d.UnplannedFix, class, want)
				}
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n != len(ds) || bad > 0 {
			t.Errorf("calendar %d: %d rows read of %d, %d disagree", ci, n, len(ds), bad)
		}
	}
	// Every class is exercised, so agreement is not only on the easy ones.
	for _, cl := range []calendar.Class{calendar.InWindow, calendar.OutsideWindow, calendar.InFreeze, calendar.UnplannedFix, calendar.NoWindow} {
		if counts[cl] < 500 {
			t.Errorf("only %d deployments classified %s: the test does not exercise it", counts[cl], cl)
		}
	}
	t.Logf("classes over %d calendars × %d deployments: %v", len(cals), len(ds), counts)
}

// randomDeployments draws deployments over 2026, a third of them within
// three hours of a DST transition of one of sqlZones, and a third on a
// quarter-hour boundary (where windows open and close), give or take a
// minute.
func randomDeployments(r *rand.Rand, n int) []calendar.Deployment {
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	var transitions []time.Time
	for _, z := range sqlZones {
		loc, _ := time.LoadLocation(z)
		for t := from; t.Before(to); {
			_, end := t.In(loc).ZoneBounds()
			if end.IsZero() || !end.Before(to) {
				break
			}
			transitions = append(transitions, end)
			t = end
		}
	}
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	out := make([]calendar.Deployment, n)
	for i := range out {
		var t time.Time
		switch i % 3 {
		case 0:
			t = from.Add(time.Duration(r.Int64N(int64(to.Sub(from)))))
		case 1:
			t = transitions[r.IntN(len(transitions))].Add(time.Duration(r.Int64N(int64(6*time.Hour))) - 3*time.Hour)
		default:
			t = from.Add(time.Duration(r.Int64N(int64(to.Sub(from))))).Truncate(15 * time.Minute).Add(time.Duration(r.IntN(121)-60) * time.Second)
		}
		out[i] = calendar.Deployment{Time: t.Truncate(time.Second),
			Environment:  pick("production", "production", "batch", "staging", ""),
			Team:         pick("payments", "growth", "search", "apac", ""),
			Tier:         pick("tier-1", "tier-2", "tier-3", ""),
			UnplannedFix: r.IntN(8) == 0}
	}
	return out
}

// randomConfig draws a calendar of up to six windows (a quarter of them
// overnight, some whole days) and up to three freezes, with random scopes
// and zones.
func randomConfig(r *rand.Rand) calendar.Config {
	days := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	scope := func() calendar.Scope {
		var s calendar.Scope
		if r.IntN(2) == 0 {
			s.Environments = []string{[]string{"production", "batch"}[r.IntN(2)]}
		}
		if r.IntN(3) == 0 {
			s.Teams = []string{[]string{"payments", "growth", "search", "apac"}[r.IntN(4)]}
		}
		if r.IntN(3) == 0 {
			s.Tiers = []string{[]string{"tier-1", "tier-2"}[r.IntN(2)], "tier-3"}[:1+r.IntN(2)]
		}
		return s
	}
	hm := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	cfg := calendar.Config{TimeZone: sqlZones[r.IntN(len(sqlZones))]}
	for i := range 1 + r.IntN(6) {
		w := calendar.WindowConfig{Name: fmt.Sprintf("w%d", i), Scope: scope()}
		if r.IntN(2) == 0 {
			w.TimeZone = sqlZones[r.IntN(len(sqlZones))]
		}
		a := r.IntN(7)
		w.Days = []string{days[a] + "-" + days[(a+r.IntN(7))%7]}
		from, to := 15*r.IntN(96), 15*r.IntN(96)
		switch {
		case r.IntN(8) == 0:
			from, to = 0, 0 // a whole day
		case from == to:
			to = (from + 60) % 1440
		case r.IntN(4) != 0 && from > to: // most windows are daytime ones
			from, to = to, from
		}
		w.From, w.To = hm(from), hm(to)
		cfg.Windows = append(cfg.Windows, w)
	}
	for i := range r.IntN(4) {
		start := time.Date(2026, time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), 15*r.IntN(4), 0, 0, time.UTC)
		f := calendar.FreezeConfig{Name: fmt.Sprintf("f%d", i), Scope: scope(),
			From: start.Format("2006-01-02 15:04"), To: start.Add(time.Duration(1+r.IntN(21*24)) * time.Hour).Format("2006-01-02 15:04")}
		if r.IntN(2) == 0 {
			f.From, f.To = start.Format(time.RFC3339), strings.Replace(start.Add(36*time.Hour).Format(time.RFC3339), "Z", "+00:00", 1)
		}
		cfg.Freezes = append(cfg.Freezes, f)
	}
	return cfg
}
