package metrics_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// BenchmarkKPISummary loads a generated stream (10M events by default;
// OPSMETRICS_BENCH_EVENTS sets it) over two years into a private
// ClickHouse, then times the full KPI summary over the last 90 days per
// service and per team and environment, and, in the same run, a plain scan
// that reads the same columns of the same rows. Run it with `make bench-kpi`.
func BenchmarkKPISummary(b *testing.B) {
	n := 10_000_000
	if s := os.Getenv("OPSMETRICS_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ctx := context.Background()
	srv, err := clickhouse.Start(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	dsn := srv.DSN("bench")
	if _, err := store.Migrate(ctx, dsn, testenv.Logger(b)); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// About 9,200 events per service over two years.
	cfg := generator.Config{Services: max(1, n/9200), Teams: 25, Days: 730, Seed: 21, End: end}
	load := time.Now()
	stats := testenv.StoreGenerated(b, st, cfg, 200_000)
	loadTook := time.Since(load)

	q := metrics.Query{From: end.AddDate(0, 0, -90), To: end}
	timeIt := func(f func() error) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			s := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			best = min(best, time.Since(s))
		}
		return best
	}
	// A change calendar (deployments_outside_window): windows per team, in
	// two zones, an overnight one, and a freeze.
	cal, err := calendar.New(calendar.Config{TimeZone: "Europe/Paris",
		Windows: []calendar.WindowConfig{
			{Name: "weekdays", Scope: calendar.Scope{Environments: []string{"production"}}, Days: []string{"mon-fri"}, From: "09:00", To: "17:00"},
			{Name: "tue-thu", Scope: calendar.Scope{Environments: []string{"production"}, Teams: []string{"payments"}},
				Days: []string{"tue", "thu"}, From: "10:00", To: "16:00", TimeZone: "America/New_York"},
			{Name: "nights", Scope: calendar.Scope{Environments: []string{"production"}, Teams: []string{"data"}},
				Days: []string{"mon-fri"}, From: "22:00", To: "02:00"},
		},
		Freezes: []calendar.FreezeConfig{{Name: "freeze", From: "2026-10-01", To: "2026-10-08"}}})
	if err != nil {
		b.Fatal(err)
	}
	var slices int
	// One untimed run by service, with the calendar, each query timed for
	// the breakdown.
	tc := &timingConn{Conn: st.Conn()}
	{
		bq := q
		bq.By, bq.Calendar = []metrics.Dimension{metrics.Service}, cal
		if _, err := metrics.Summaries(ctx, tc, bq); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	byService := timeIt(func() error {
		bq := q
		bq.By = []metrics.Dimension{metrics.Service}
		s, err := metrics.Summaries(ctx, st.Conn(), bq)
		slices = len(s)
		return err
	})
	byTeamEnv := timeIt(func() error {
		bq := q
		bq.By = []metrics.Dimension{metrics.Team, metrics.Environment}
		bq.Production = []string{"production", "staging"}
		_, err := metrics.Summaries(ctx, st.Conn(), bq)
		return err
	})
	// The same by service, judged by the calendar.
	byServiceCal := timeIt(func() error {
		bq := q
		bq.By, bq.Calendar = []metrics.Dimension{metrics.Service}, cal
		_, err := metrics.Summaries(ctx, st.Conn(), bq)
		return err
	})
	b.StopTimer()
	// The reference reads the same columns of the raw rows in the same range.
	scans := []string{
		`SELECT sum(cityHash64(deployment_id, event_id, service, team, environment, status, unplanned, started_at, finished_at, changes)) FROM deployment_events WHERE finished_at >= ? AND finished_at < ?`,
		`SELECT sum(cityHash64(incident_id, event_id, service, team, environment, severity, impact_started_at, detected_at, acknowledged_at, resolved_at, cause_deployment_id)) FROM incident_events WHERE event_time >= ? AND event_time < ?`,
		`SELECT sum(cityHash64(change_id, event_id, service, team, authored_at, merged_at)) FROM change_events WHERE event_time >= ? AND event_time < ?`,
		`SELECT sum(cityHash64(patch_id, target, event_id, severity, environment, released_at, applied_at, outcome)) FROM patch_events WHERE event_time >= ? AND event_time < ?`,
	}
	scan := timeIt(func() error {
		for _, s := range scans {
			var h uint64
			if err := st.Conn().QueryRow(ctx, s, q.From, q.To).Scan(&h); err != nil {
				return err
			}
		}
		return nil
	})
	b.ReportMetric(byService.Seconds(), "s/summary-by-service")
	b.ReportMetric(byService.Seconds()/scan.Seconds(), "ratio")
	fmt.Printf("\n%-58s %12s\n", "measure", "value")
	fmt.Printf("%-58s %12d\n", "events loaded ("+strconv.Itoa(cfg.Services)+" services, 2 years)", stats.Events)
	fmt.Printf("%-58s %12s\n", "loading them took (not counted)", loadTook.Round(time.Millisecond))
	fmt.Printf("%-58s %12s\n", "KPI summary, 90 days, --by service (best of 3)", byService.Round(time.Millisecond))
	fmt.Printf("%-58s %12d\n", "  slices", slices)
	fmt.Printf("%-58s %12s\n", "KPI summary, 90 days, --by team,environment (best of 3)", byTeamEnv.Round(time.Millisecond))
	fmt.Printf("%-58s %12s\n", "  the same with a change calendar (best of 3)", byServiceCal.Round(time.Millisecond))
	fmt.Printf("%-58s %12.2f\n", "  ratio with / without the calendar", byServiceCal.Seconds()/byService.Seconds())
	fmt.Printf("%-58s %12s\n", "plain scan of the same columns and range (best of 3)", scan.Round(time.Millisecond))
	fmt.Printf("%-58s %12.2f\n", "ratio summary by service / plain scan", byService.Seconds()/scan.Seconds())
	fmt.Printf("%-58s %12.2f\n", "ratio summary by team,environment / plain scan", byTeamEnv.Seconds()/scan.Seconds())
	fmt.Printf("\nqueries of one summary by service (one run, first run of each):\n")
	for _, t := range tc.times {
		fmt.Printf("%8s  %s\n", t.d.Round(time.Millisecond), t.q)
	}
}

// timingConn times each query of a summary, from the call to the rows'
// Close, which is when the last row has been read.
type timingConn struct {
	driver.Conn
	times []struct {
		d time.Duration
		q string
	}
}

func (c *timingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	start := time.Now()
	rows, err := c.Conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return &timedRows{Rows: rows, done: func() {
		line := strings.Join(strings.Fields(q), " ")
		if len(line) > 110 {
			line = line[:110]
		}
		c.times = append(c.times, struct {
			d time.Duration
			q string
		}{time.Since(start), line})
	}}, nil
}

type timedRows struct {
	driver.Rows
	done func()
}

func (r *timedRows) Close() error {
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return r.Rows.Close()
}
