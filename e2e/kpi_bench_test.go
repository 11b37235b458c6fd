package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/dashboards"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/opsmetrics/opsmetrics/report"
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
	byTeamEnv := func(q metrics.Query) metrics.Query {
		q.By = []metrics.Dimension{metrics.Team, metrics.Environment}
		q.Production = []string{"production", "staging"}
		return q
	}
	byService := func(q metrics.Query) metrics.Query {
		q.By = []metrics.Dimension{metrics.Service}
		return q
	}
	raw := func(q metrics.Query) metrics.Query {
		q.RollupMaxAge = -1
		return q
	}
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
	summary := func(q metrics.Query) func() error {
		return func() error {
			_, err := metrics.Summaries(ctx, st.Conn(), q)
			return err
		}
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
	// The rollups, one for each set of definitions the queries use.
	var builds []metrics.Rollup
	for _, bq := range []metrics.Query{q, byTeamEnv(q)} {
		r, _, err := metrics.RefreshRollup(ctx, st.Conn(), bq)
		if err != nil {
			b.Fatal(err)
		}
		builds = append(builds, r)
	}
	// One untimed run by service from the raw rows with each query timed,
	// for the breakdown.
	tc := &timingConn{Conn: st.Conn()}
	if _, err := metrics.Summaries(ctx, tc, raw(byService(q))); err != nil {
		b.Fatal(err)
	}
	logged := chgo.Context(ctx, chgo.WithSettings(chgo.Settings{"log_queries": 1}))
	readStart := time.Now()
	b.StartTimer()
	rollupByService := timeIt(func() error { _, err := metrics.Summaries(logged, st.Conn(), byService(q)); return err })
	rollupByTeamEnv := timeIt(func() error { _, err := metrics.Summaries(logged, st.Conn(), byTeamEnv(q)); return err })
	b.StopTimer()
	rawByService := timeIt(summary(raw(byService(q))))
	rawByTeamEnv := timeIt(summary(raw(byTeamEnv(q))))
	withCal := byService(q)
	withCal.Calendar = cal
	rollupCal := timeIt(summary(withCal))
	calRaw, err := metrics.Summaries(ctx, st.Conn(), withCal)
	if err != nil {
		b.Fatal(err)
	}
	// The same once the rollup holds the calendar's counts: a build given
	// the calendar (serve's, with the configured one).
	cq := q
	cq.Calendar = cal
	r, _, err := metrics.RefreshRollup(ctx, st.Conn(), cq)
	if err != nil {
		b.Fatal(err)
	}
	builds = append(builds, r)
	rollupCalCounts := timeIt(summary(withCal))
	calCounts, err := metrics.Summaries(ctx, st.Conn(), withCal)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range [][]*metrics.Summary{calRaw, calCounts} {
		for _, s := range l {
			s.AsOf = nil
		}
	}
	if a, c := fmt.Sprint(jsonOf(calRaw)), fmt.Sprint(jsonOf(calCounts)); a != c {
		b.Errorf("the summary with a calendar differs once its counts come from the rollup")
	}
	// A report's daily points: 30 days, one summary per day.
	daily := q
	daily.From, daily.Step = end.AddDate(0, 0, -30), metrics.StepDay
	rollupDaily := timeIt(func() error { _, err := metrics.Summaries(logged, st.Conn(), daily); return err })
	rawDaily := timeIt(summary(raw(daily)))
	// 52 weeks by team, each compared with the week before (the API's
	// heaviest request of the reliability mix): one rollup read for every
	// bucket and previous range, against one Summaries call for each, as
	// Run made them before.
	weeks := metrics.Query{From: end.AddDate(0, 0, -7*52), To: end, By: []metrics.Dimension{metrics.Team}}
	weeksOneRead := timeIt(func() error { _, err := metrics.Run(ctx, st.Conn(), weeks, metrics.Week, time.UTC, true); return err })
	weeksPerRange := timeIt(func() error {
		for _, rg := range metrics.Ranges(weeks.From, weeks.To, metrics.Week, time.UTC) {
			for _, r := range [][2]time.Time{rg, {rg[0].Add(-rg[1].Sub(rg[0])), rg[0]}} {
				wq := weeks
				wq.From, wq.To = r[0], r[1]
				if _, err := metrics.Summaries(ctx, st.Conn(), wq); err != nil {
					return err
				}
			}
		}
		return nil
	})
	sums, err := metrics.Summaries(ctx, st.Conn(), byService(q))
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range sums {
		if s.AsOf == nil {
			b.Fatal("the summary by service was not read from the rollup")
		}
	}
	var peak uint64
	if err := st.Conn().Exec(ctx, "SYSTEM FLUSH LOGS"); err == nil {
		_ = st.Conn().QueryRow(ctx, `SELECT toUInt64(max(memory_usage)) FROM system.query_log
			WHERE type = 2 AND event_time >= toDateTime(?) AND query LIKE '%kpi_daily%'`, readStart.Add(-time.Second).Unix()).Scan(&peak)
	}
	// The reliability suite's request mix (e2e: apiOverload), moved to the
	// end of this stream, from 16 clients for 20 s: without the cache, and
	// with it (kpi.rollup_cache_bytes, serve's default).
	service := sums[len(sums)/2].Slice[metrics.Service]
	uncached := apiReads(b, srv.DSN("bench"), end, service, nil, 16, 20*time.Second)
	cache := metrics.NewRollupCache(metrics.DefaultRollupCacheBytes)
	cached := apiReads(b, srv.DSN("bench"), end, service, cache, 16, 20*time.Second)
	cacheStats := cache.Stats()
	// The ops-review report of the 30 days before the end, by team, as
	// `opsmetrics report` builds it (one process: no cache).
	reportTook := timeIt(func() error {
		r, err := report.Build(ctx, st.Conn(), report.Options{From: end.AddDate(0, 0, -30), To: end, Location: time.UTC,
			By: []metrics.Dimension{metrics.Team}, Query: metrics.Query{From: end.AddDate(0, 0, -30), To: end,
				By: []metrics.Dimension{metrics.Team}}, Now: end})
		if err != nil {
			return err
		}
		return r.WriteHTML(io.Discard)
	})

	// The hourly baselines' training points (8 weeks to the end): the four
	// hourly summaries Load read before (one run), against Load reading
	// the two counts once (best of 3).
	hourFrom := end.Add(-baselines.DefaultTraining)
	hourlyBefore := time.Now()
	for _, by := range [][]metrics.Dimension{nil, {metrics.Team}, {metrics.Service, metrics.Team, metrics.Environment}, {metrics.Environment}} {
		if _, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: hourFrom, To: end, By: by, Step: metrics.StepHour}); err != nil {
			b.Fatal(err)
		}
	}
	hourlySummaries := time.Since(hourlyBefore)
	var hourlySeries int
	hourlyLoad := timeIt(func() error {
		series, err := baselines.Load(ctx, st.Conn(), baselines.LoadOptions{From: hourFrom, To: end, Step: metrics.StepHour})
		hourlySeries = len(series)
		return err
	})

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
	// Every dashboard's queries, reading the raw rows (before) and the
	// rollup of the default definitions (after), over a range as Grafana's
	// "last 90 days" is: cut at a second, not at midnight.
	panelFrom, panelTo := q.From.Add(9*time.Hour+17*time.Minute+3*time.Second), q.To.Add(-6*time.Hour-43*time.Minute)
	type panelRun struct {
		name  string
		times []queryTime
		peak  uint64
	}
	var panelRuns []panelRun
	for _, run := range []struct {
		name string
		o    dashboards.Options
	}{{"raw rows (before)", dashboards.Options{Calendar: cal}}, {"KPI rollup (after)", dashboards.Options{Calendar: cal, KPI: &metrics.Query{}}}} {
		start := time.Now()
		times := panelTimes(b, st.Conn(), panelFrom, panelTo, run.o)
		panelRuns = append(panelRuns, panelRun{run.name, times, panelPeak(st.Conn(), start)})
	}
	b.ReportMetric(rollupByService.Seconds(), "s/summary-by-service")
	b.ReportMetric(rollupByService.Seconds()/scan.Seconds(), "ratio")
	line := func(name string, v any) { fmt.Printf("%-62s %12v\n", name, v) }
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	fmt.Printf("\n%-62s %12s\n", "measure", "value")
	line("events loaded ("+strconv.Itoa(cfg.Services)+" services, 2 years)", stats.Events)
	line("loading them took (not counted)", ms(loadTook))
	for i, r := range builds {
		line(fmt.Sprintf("KPI rollup %d built (%s): took", i+1, r.Params), ms(r.Took))
		line("  its rows (days × slices)", r.Rows)
	}
	line("plain scan of the same columns and range (best of 3)", ms(scan))
	line("90-day summary --by service, raw rows (before; best of 3)", ms(rawByService))
	line("90-day summary --by service, rollup (after; best of 3)", ms(rollupByService))
	line("90-day summary --by team,environment, raw rows (before)", ms(rawByTeamEnv))
	line("90-day summary --by team,environment, rollup (after)", ms(rollupByTeamEnv))
	line("  the same with a change calendar (its figures from the raw rows)", ms(rollupCal))
	line("  the same with a change calendar (its counts from the rollup)", ms(rollupCalCounts))
	line("30 daily summaries (a report's points), raw rows (before)", ms(rawDaily))
	line("30 daily summaries (a report's points), rollup (after)", ms(rollupDaily))
	line("52 weeks by team, each compared: a rollup read per range (before)", ms(weeksPerRange))
	line("52 weeks by team, each compared: one rollup read (after)", ms(weeksOneRead))
	line("peak ClickHouse memory of a rollup read (query_log)", fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20)))
	for _, r := range []struct {
		name string
		f    apiFigures
	}{{"no cache", uncached}, {"cache", cached}} {
		line(fmt.Sprintf("API, 16 clients, reliability mix, %s: requests (errors)", r.name), fmt.Sprintf("%d (%d)", r.f.requests, r.f.errors))
		line(fmt.Sprintf("API, 16 clients, reliability mix, %s: p50", r.name), ms(r.f.p50))
		line(fmt.Sprintf("API, 16 clients, reliability mix, %s: p99", r.name), ms(r.f.p99))
		line(fmt.Sprintf("API, 16 clients, reliability mix, %s: heavy p99", r.name), ms(r.f.heavyP99))
	}
	line("  the cache: hits / shared / misses", fmt.Sprintf("%d / %d / %d", cacheStats.Hits, cacheStats.Shared, cacheStats.Misses))
	line("  the cache: bytes held (entries)", fmt.Sprintf("%.1f MiB (%d)", float64(cacheStats.Bytes)/(1<<20), cacheStats.Entries))
	line("opsmetrics report, 30 days by team (best of 3)", ms(reportTook))
	line("hourly baselines' 8 weeks: 4 hourly summaries (before; 1 run)", ms(hourlySummaries))
	line(fmt.Sprintf("hourly baselines' 8 weeks: Load, %d series (after)", hourlySeries), ms(hourlyLoad))
	if cached.errors > 0 {
		b.Errorf("%d API requests failed with the cache: the goal is none", cached.errors)
	}
	fmt.Printf("%-62s %12.2f\n", "ratio summary by service / plain scan, before", rawByService.Seconds()/scan.Seconds())
	fmt.Printf("%-62s %12.2f\n", "ratio summary by service / plain scan, after", rollupByService.Seconds()/scan.Seconds())
	fmt.Printf("%-62s %12.2f\n", "ratio summary by team,environment / plain scan, before", rawByTeamEnv.Seconds()/scan.Seconds())
	fmt.Printf("%-62s %12.2f\n", "ratio summary by team,environment / plain scan, after", rollupByTeamEnv.Seconds()/scan.Seconds())
	for _, run := range panelRuns {
		panels := run.times
		if len(panels) == 0 {
			continue
		}
		fmt.Printf("%-62s %12v\n", fmt.Sprintf("panel queries, 90 days cut at seconds (%d), %s: p50", len(panels), run.name), ms(panels[len(panels)/2].d))
		fmt.Printf("%-62s %12v\n", "  max", ms(panels[len(panels)-1].d))
		fmt.Printf("%-62s %12v\n", "  peak ClickHouse memory of a panel query (query_log)", fmt.Sprintf("%.1f MiB", float64(run.peak)/(1<<20)))
		fmt.Printf("the slowest panel queries, %s:\n", run.name)
		for i := len(panels) - 1; i >= max(0, len(panels)-8); i-- {
			fmt.Printf("%8s  %s\n", ms(panels[i].d), panels[i].q)
		}
	}
	fmt.Printf("\nqueries of one summary by service from the raw rows (one run, first run of each):\n")
	for _, t := range tc.times {
		fmt.Printf("%8s  %s\n", t.d.Round(time.Millisecond), t.q)
	}
}

// panelTimes runs every ClickHouse query of every built dashboard (panels,
// annotations, variables) over [from, to) with All selected, as the
// grafana-clickhouse-datasource plugin expands its macros, and returns
// each one's time (the best of two; of one over 5 s), fastest first. The anomalies
// dashboard's series is the first its variable lists.
func panelTimes(b *testing.B, conn driver.Conn, from, to time.Time, o dashboards.Options) []queryTime {
	boards, err := dashboards.All(o)
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{"service": "__all", "team": "__all", "environment": "__all", "system": "__all", "tier": "__all",
		"kpi": "", "step": "", "series": ""}
	var series string
	_ = conn.QueryRow(context.Background(), "SELECT any(series) FROM kpi_series").Scan(&series)
	vars["series"] = series
	expand := func(sql string) string {
		f, t := fmt.Sprint(from.Unix()), fmt.Sprint(to.Unix())
		sql = regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`).ReplaceAllString(sql, "$1 >= toDateTime("+f+") AND $1 <= toDateTime("+t+")")
		sql = strings.NewReplacer("$__fromTime", "toDateTime("+f+")", "$__toTime", "toDateTime("+t+")").Replace(sql)
		for k, v := range vars {
			sql = strings.ReplaceAll(sql, "${"+k+":singlequote}", "'"+v+"'")
			sql = strings.ReplaceAll(sql, "${"+k+"}", v)
		}
		return sql
	}
	ctx := chgo.Context(context.Background(), chgo.WithSettings(chgo.Settings{"log_queries": 1}))
	var out []queryTime
	for _, d := range boards {
		var qs []string
		names := map[string]string{}
		add := func(name string, sql string) {
			qs = append(qs, sql)
			names[sql] = *d.Uid + ": " + name
		}
		for _, p := range d.Panels {
			if p.Panel == nil {
				continue
			}
			for _, t := range p.Panel.Targets {
				if ch, ok := t.(dashboards.ClickHouseQuery); ok {
					add(*p.Panel.Title, ch.RawSQL)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Datasource != nil && v.Datasource.Type != nil && *v.Datasource.Type == dashboards.PluginID && v.Query != nil && v.Query.String != nil {
				add("variable "+v.Name, *v.Query.String)
			}
		}
		for _, sql := range qs {
			q := expand(sql)
			best := time.Duration(1<<63 - 1)
			for range 2 {
				start := time.Now()
				rows, err := conn.Query(ctx, q)
				if err != nil {
					b.Errorf("%s: %v", names[sql], err)
					break
				}
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
				if err != nil {
					b.Errorf("%s: %v", names[sql], err)
					break
				}
				if best = min(best, time.Since(start)); best > 5*time.Second {
					break // a second run of a slow one tells no more
				}
			}
			if best < time.Duration(1<<63-1) { // not failed
				out = append(out, queryTime{q: names[sql], d: best})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].d < out[j].d })
	return out
}

// queryTime is a named query's time.
type queryTime struct {
	q string
	d time.Duration
}

// panelPeak is the peak memory of the queries that ended since start
// (panelTimes'), from system.query_log.
func panelPeak(conn driver.Conn, start time.Time) uint64 {
	var peak uint64
	if err := conn.Exec(context.Background(), "SYSTEM FLUSH LOGS"); err == nil {
		_ = conn.QueryRow(context.Background(), `SELECT toUInt64(max(memory_usage)) FROM system.query_log
			WHERE type = 2 AND event_time >= toDateTime(?)`, start.Add(-time.Second).Unix()).Scan(&peak)
	}
	return peak
}

// jsonOf is v as JSON, for comparing results.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// apiFigures are the latencies of apiReads.
type apiFigures struct {
	requests, errors   int
	p50, p99, heavyP99 time.Duration
}

// apiReads has n clients send the reliability suite's mix of simple and
// heavy KPI requests (e2e: apiOverload) to the API, over the month (simple)
// or months (heavy) before end, for d, with the API's default limits, and
// returns their latencies and how many failed (the goal is none).
func apiReads(b *testing.B, dsn string, end time.Time, service string, cache *metrics.RollupCache, n int, d time.Duration) apiFigures {
	st, err := store.Connect(dsn, api.DefaultLimits.Connections())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Defaults: metrics.Query{Production: []string{"production"}, Cache: cache},
		Log: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	day := func(months int) string { return end.AddDate(0, months, 0).Format(time.DateOnly) }
	simple := []string{
		"from=" + day(-1) + "&to=" + day(0),
		"from=" + day(-1) + "&to=" + day(0) + "&by=team",
		"from=" + day(-1) + "&to=" + day(0) + "&service=" + url.QueryEscape(service),
	}
	heavy := []string{
		"from=" + day(-1) + "&to=" + day(0) + "&by=service&compare=true",
		"from=" + day(-6) + "&to=" + day(0) + "&by=team&bucket=week",
		"from=" + day(-12) + "&to=" + day(0) + "&bucket=month&compare=true",
		"from=" + day(-2) + "&to=" + day(0) + "&by=service&bucket=day",
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var mu sync.Mutex
	var all, heavies []time.Duration
	var f apiFigures
	var firstErr string
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for c := range n {
		wg.Go(func() {
			for i := c; time.Now().Before(stop); i++ {
				isHeavy := i%2 == 0
				q := simple[i%len(simple)]
				if isHeavy {
					q = heavy[i%len(heavy)]
				}
				s := time.Now()
				resp, err := client.Get(srv.URL + "/api/v1/kpis?" + q)
				msg := ""
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						msg = fmt.Sprintf("%s: %d %s", q, resp.StatusCode, strings.TrimSpace(string(body)))
					}
				} else {
					msg = err.Error()
				}
				took := time.Since(s)
				mu.Lock()
				f.requests++
				if msg != "" {
					f.errors++
					if firstErr == "" {
						firstErr = msg
					}
				}
				all = append(all, took)
				if isHeavy {
					heavies = append(heavies, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if f.errors > 0 {
		b.Logf("%d of %d API requests failed; the first: %s", f.errors, f.requests, firstErr)
	}
	pct := func(ls []time.Duration, p float64) time.Duration {
		slices.Sort(ls)
		return ls[min(len(ls)-1, int(p*float64(len(ls))))]
	}
	f.p50, f.p99, f.heavyP99 = pct(all, 0.5), pct(all, 0.99), pct(heavies, 0.99)
	return f
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
