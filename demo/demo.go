// Package demo runs the whole pipeline end to end on embedded defaults: a
// private ClickHouse server and an in-process Kafka broker when none are
// configured, 90 days of generated events for 20 services in every accepted
// encoding (plus a few malformed messages), ingestion until idle, and a
// summary of what landed where.
package demo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a demo run.
type Options struct {
	// ClickHouse and Kafka, when the user has them: a private ClickHouse
	// and an embedded broker otherwise.
	ClickHouse string
	Kafka      broker.Config
	// Topics and Ingest configure the topics and the ingester (their
	// defaults when zero); Ingest names the consumer group.
	Topics    broker.Topics
	Ingest    ingest.Config
	Services  int
	Days      int
	Seed      uint64
	End       time.Time
	Dir       string // working directory for the private ClickHouse and the event file
	Keep      bool   // keep the servers running until ctx is done
	Out       io.Writer
	Log       *slog.Logger
	Registry  prometheus.Registerer
	UntilIdle time.Duration
	// Calendar is the change calendar the KPIs and the change-window
	// alerts judge deployments by: the configuration's, or Calendar(End).
	Calendar *calendar.Calendar
}

// Calendar is the demo's change calendar (docs/change-windows.md): each
// team of the generator deploys to production on weekdays 08:00–18:00 in
// its own time zone, except payments, on Tuesdays and Thursdays 09:00–17:00
// in New York, and storefront, from Monday to Thursday in Paris (no Friday
// releases); other teams on weekdays 08:00–18:00 UTC; and production
// freezes for two days a week before end.
func Calendar(end time.Time) (*calendar.Calendar, error) {
	prod := []string{"production"}
	team := func(name, zone string, days ...string) calendar.WindowConfig {
		return calendar.WindowConfig{Name: name + "-hours", Scope: calendar.Scope{Environments: prod, Teams: []string{name}},
			Days: days, From: "08:00", To: "18:00", TimeZone: zone}
	}
	payments := team("payments", "America/New_York", "tue", "thu")
	payments.From, payments.To = "09:00", "17:00"
	day := func(d int) string { return end.AddDate(0, 0, d).Format(time.DateOnly) }
	return calendar.New(calendar.Config{TimeZone: "UTC",
		Windows: []calendar.WindowConfig{payments,
			team("storefront", "Europe/Paris", "mon-thu"),
			team("platform", "UTC", "mon-fri"),
			team("identity", "America/Los_Angeles", "mon-fri"),
			team("fulfillment", "Asia/Kolkata", "mon-fri"),
			{Name: "production-weekdays", Scope: calendar.Scope{Environments: prod}, Days: []string{"mon-fri"}, From: "08:00", To: "18:00"},
		},
		Freezes: []calendar.FreezeConfig{{Name: "demo-freeze", Reason: "a migration the demo invents",
			Scope: calendar.Scope{Environments: prod}, From: day(-9), To: day(-7)}},
	})
}

// Run runs the demo.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	if o.Topics == (broker.Topics{}) {
		o.Topics = broker.DefaultTopics()
	}
	if o.Ingest.BatchSize == 0 {
		group := o.Ingest.Group
		o.Ingest = ingest.DefaultConfig()
		o.Ingest.Group = group
	}
	dsn, brokers := o.ClickHouse, o.Kafka.Brokers
	var kept []string // how to reach each server the demo started, for --keep
	if dsn == "" {
		say("starting a private ClickHouse server (%s) ...", clickhouse.Binary)
		srv, err := clickhouse.Start(ctx, filepath.Join(o.Dir, "clickhouse"))
		if err != nil {
			return err
		}
		defer srv.Stop()
		dsn = srv.DSN("opsmetrics")
		say("  ClickHouse listening on %s (data in %s)", srv.Addr(), srv.Dir)
		kept = append(kept, fmt.Sprintf("ClickHouse     --clickhouse %s   (clickhouse-client --port %d --database opsmetrics)", dsn, srv.TCPPort))
	}
	icfg := o.Ingest
	icfg.SetTopics(o.Topics)
	if err := icfg.SetKafka(o.Kafka); err != nil {
		return err
	}
	if len(brokers) == 0 {
		topics := append(o.Topics.Inputs(), o.Topics.DeadLetter)
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(6, topics...))
		if err != nil {
			return fmt.Errorf("start embedded kafka: %w", err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
		icfg.Brokers = brokers
		say("started an embedded Kafka broker (kfake) on %v with topics %v, 6 partitions each", brokers, topics)
		kept = append(kept, fmt.Sprintf("Kafka (kfake)  --brokers %s   (kcat -b %s -L)", brokers[0], brokers[0]))
	}

	if _, err := store.Migrate(ctx, dsn, o.Log); err != nil {
		return err
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	say("schema migrated to version %d in database %q", store.LatestVersion(), st.Database())

	file := filepath.Join(o.Dir, "events.jsonl")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	gcfg := generator.Config{Services: o.Services, Days: o.Days, Seed: o.Seed, End: o.End, Anomalies: true}
	stats, err := generator.WriteJSONL(f, gcfg, generator.FormatMixed)
	f.Close()
	if err != nil {
		return err
	}
	services, err := writeCatalog(filepath.Join(o.Dir, "catalog"), gcfg, o.Log, say)
	if err != nil {
		return err
	}
	if _, err := metrics.StoreCatalog(ctx, st.Conn(), services.Catalog()); err != nil {
		return err
	}
	say("stored it in ClickHouse for the dashboards' system and tier variables and the anomalies' owners (%s; opsmetrics catalog store, or serve as it reloads)",
		metrics.CurrentServiceCatalog)
	say("generated %d events over %d days for %d services into %s (native, CloudEvents and CDEvents 0.4/0.5):",
		stats.Events, gcfg.Days, gcfg.Services, file)
	say("  %d deployments, %d changes, %d incidents in %d messages, %d patch targets in %d messages",
		stats.Deployments, stats.Changes, stats.Incidents, stats.IncidentMessages, stats.Patches, stats.PatchMessages)
	for _, a := range stats.Anomalies {
		say("  injected anomaly: %s", a)
	}

	pub := publish.New(brokers, publish.TopicsFrom(o.Topics), nil)
	defer pub.Close()
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	pstart := time.Now()
	n, err := pub.File(ctx, in)
	in.Close()
	if err != nil {
		return err
	}
	bad := malformed(o.Topics)
	if err := pub.Send(ctx, bad...); err != nil {
		return err
	}
	say("produced %d events and %d malformed messages to Kafka in %v", n, len(bad), time.Since(pstart).Round(time.Millisecond))

	icfg.UntilIdle = o.UntilIdle
	icfg.Catalog = services.Catalog
	ing, err := ingest.New(icfg, st, o.Log, o.Registry, nil)
	if err != nil {
		return err
	}
	istart := time.Now()
	if err := ing.Run(ctx); err != nil {
		return err
	}
	took := time.Since(istart) - o.UntilIdle
	say("ingested in %v (%.0f events/s, not counting the %v idle wait)", took.Round(time.Millisecond),
		float64(n+len(bad))/took.Seconds(), o.UntilIdle)

	if err := summary(ctx, st, o.Out); err != nil {
		return err
	}
	ms, err := metrics.TeamMismatches(ctx, st.Conn(), services.Catalog(), o.End.AddDate(0, 0, -o.Days-1), o.End.AddDate(0, 0, 1))
	if err != nil {
		return err
	}
	say("\nteams stored that are not their service's owner in the catalog (opsmetrics catalog check; docs/catalog.md): %d", len(ms))
	for _, m := range ms {
		say("  %s: %d %ss sent team %s, the catalog's owner is %s", m.Service, m.Entities, m.Kind, m.Team, m.Owner)
	}
	if o.Calendar == nil {
		if o.Calendar, err = Calendar(o.End); err != nil {
			return err
		}
	}
	// The KPI rollup, as ingest --until-idle builds it after draining the
	// topics: the KPIs below are read from it.
	r, _, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{Calendar: o.Calendar}.WithCatalog(services.Catalog()))
	if err != nil {
		return err
	}
	say("KPI rollup built from what landed: %d days × slices in %v (opsmetrics kpi refresh; docs/kpis.md, Freshness)", r.Rows, r.Took.Round(time.Millisecond))
	q := metrics.Query{From: o.End.AddDate(0, 0, -30), To: o.End, By: []metrics.Dimension{metrics.Team}, Calendar: o.Calendar}.WithCatalog(services.Catalog())
	sums, err := metrics.Summaries(ctx, st.Conn(), q)
	if err != nil {
		return err
	}
	say("\nKPIs per team, production, last 30 days; durations are medians (opsmetrics kpi --by team; docs/kpis.md):")
	if err := (&metrics.Report{From: q.From, To: q.To, By: q.By, LevelTable: metrics.DefaultLevelTable, Summaries: sums}).WriteTable(o.Out); err != nil {
		return err
	}
	tq := q
	tq.By, tq.Catalog = []metrics.Dimension{metrics.Tier}, services.Catalog()
	tsums, err := metrics.Summaries(ctx, st.Conn(), tq)
	if err != nil {
		return err
	}
	say("\nKPIs per tier of the service catalog, production, last 30 days (opsmetrics kpi --by tier; docs/catalog.md):")
	if err := (&metrics.Report{From: tq.From, To: tq.To, By: tq.By, LevelTable: metrics.DefaultLevelTable, Summaries: tsums}).WriteTable(o.Out); err != nil {
		return err
	}
	// The change-window alerts of the last day's deployments, as serve's
	// evaluation at the end of the range finds them.
	wcfg := anomaly.DefaultAlertingConfig().AlertConfig
	wcfg.Calendar, wcfg.Catalog, wcfg.DefaultRunbook = o.Calendar, services, "https://runbooks.example/change-windows"
	windowed, err := anomaly.WindowAlerts(ctx, st.Conn(), wcfg, nil, o.End)
	if err != nil {
		return err
	}
	say("\ndeployments of the last day outside their change windows (opsmetrics anomaly detect; docs/change-windows.md): %d alerts", len(windowed))
	for i, a := range windowed {
		if i == 3 {
			say("  … and %d more", len(windowed)-i)
			break
		}
		say("  [%s %s, owner %s] %s (window %s)", a.Labels["severity"], a.Labels["tier"], a.Labels["owner"], a.Annotations["summary"], a.Labels["window"])
	}
	am, err := alerts(ctx, st, o, services, stats.Anomalies, windowed, say)
	if am != nil {
		defer am.Stop()
		kept = append(kept, fmt.Sprintf("Alertmanager   --alertmanager %s   (curl %s/api/v2/alerts)", am.URL, am.URL))
	}
	if err != nil {
		return err
	}
	if err := forecast(ctx, st.Conn(), stats.Anomalies, o.End, say); err != nil {
		return err
	}
	if err := reviewTargets(ctx, st.Conn(), o.End, say); err != nil {
		return err
	}
	say("\ndemo finished in %v", time.Since(start).Round(time.Millisecond))
	if o.Keep && len(kept) > 0 {
		say("\nservers kept running until Ctrl-C, which stops them all:")
		for _, k := range kept {
			say("  %s", k)
		}
		<-ctx.Done()
	}
	return nil
}

// Watch is one day of detection in WatchInjected.
type Watch struct {
	Day         time.Time // the day judged
	Evaluations []anomaly.Evaluation
	Fire        []anomaly.Alert
}

// JudgedDays is how many days before the end of the injected anomalies
// WatchInjected judges: the period of the demo's KPI table, which
// `opsmetrics report` and the anomalies dashboard then draw with the band
// of each day.
const JudgedDays = 30

// Watched is what WatchInjected judged.
type Watched struct {
	From, To time.Time              // the days judged, [From, To)
	History  anomaly.BackfillResult // what was judged and recorded
	Current  baselines.Result       // the baselines learnt at To
	Days     []Watch                // the days of the injected anomalies
}

// WatchInjected judges the JudgedDays days up to the end of the injected
// anomalies as point-in-time history (anomaly.Backfill, `opsmetrics
// anomaly detect --from --to`): each day by the baseline learnt from the
// eight weeks before it, as a daily relearn would have had it, recorded in
// judged_intervals and anomalies. It returns what would have fired on each
// day of the anomalies, and learns the current baselines at their end
// (the intervals it flagged left out), as serve would hold them. An
// anomaly that a single day would show only on some days of the week (a
// failure burst of a service that hardly deploys at weekends) is seen on
// the others.
func WatchInjected(ctx context.Context, conn driver.Conn, injected []generator.Anomaly, log *slog.Logger) (Watched, error) {
	steps := []metrics.Step{metrics.StepDay}
	start, to := injected[0].Start, injected[0].End
	w := Watched{From: to.AddDate(0, 0, -JudgedDays), To: to}
	acfg := anomaly.AlertConfig{DefaultRunbook: "https://runbooks.example/opsmetrics", DashboardURL: "http://localhost:3000/d/opsmetrics-anomalies"}
	var days []Watch
	for d := start; d.Before(to); d = d.Add(24 * time.Hour) {
		days = append(days, Watch{Day: d})
	}
	each := func(e anomaly.Evaluation) {
		if i := int(e.Start.Sub(start) / (24 * time.Hour)); !e.Start.Before(start) && i < len(days) {
			days[i].Evaluations = append(days[i].Evaluations, e)
		}
	}
	var err error
	w.History, err = anomaly.Backfill(ctx, conn, anomaly.BackfillOptions{From: w.From, To: to, Learn: baselines.Config{Steps: steps},
		Detect: anomaly.Config{Steps: steps}, Now: to, Each: each}, log)
	if err != nil {
		return w, err
	}
	for i := range days {
		days[i].Fire, _ = anomaly.Alerts(days[i].Evaluations, acfg)
	}
	w.Days = days
	w.Current, err = anomaly.Relearn(ctx, conn, baselines.Config{Steps: steps}, to, log)
	return w, err
}

// alerts watches the injected anomalies and sends what fired, and the
// change-window alerts windowed, to a private Alertmanager, then lists
// what Alertmanager holds. It returns that Alertmanager, running, for the
// caller to stop.
func alerts(ctx context.Context, st *store.Store, o Options, services *catalog.Watcher, injected []generator.Anomaly, windowed []anomaly.Alert,
	say func(string, ...any)) (*alertmanager.Server, error) {
	if len(injected) == 0 {
		return nil, nil
	}
	w, err := WatchInjected(ctx, st.Conn(), injected, o.Log)
	if err != nil {
		return nil, err
	}
	// Labelled from the service catalog, as serve labels them.
	acfg := anomaly.DefaultAlertingConfig().AlertConfig
	acfg.Catalog, acfg.DefaultRunbook, acfg.DashboardURL = services, "https://runbooks.example/opsmetrics", "http://localhost:3000/d/opsmetrics-anomalies"
	for i := range w.Days {
		w.Days[i].Fire, _ = anomaly.Alerts(w.Days[i].Evaluations, acfg)
	}
	say("\nanomaly detection of every day from %s to %s as it would have run then (opsmetrics anomaly detect --from %s --to %s; docs/baselines.md):",
		w.From.Format("Mon 2006-01-02"), w.To.AddDate(0, 0, -1).Format("Mon 2006-01-02"), w.From.Format(time.DateOnly), w.To.Format(time.DateOnly))
	say("  each day judged by the baseline learnt from the 8 weeks before it: %d series-days, %d by a ready baseline, %d anomalous",
		w.History.Intervals, w.History.Judged, w.History.Anomalies)
	say("  recorded in judged_intervals and anomalies: opsmetrics report and the anomalies dashboard draw each day's band")
	// One alert per series: the latest day's.
	latest := map[string]anomaly.Alert{}
	var order []string
	for _, day := range w.Days {
		for _, a := range day.Fire {
			l := a.Labels
			k := strings.Join([]string{l["alertname"], l["kpi"], l["step"], l["service"], l["team"], l["environment"]}, "|")
			if _, ok := latest[k]; !ok {
				order = append(order, k)
			}
			latest[k] = a
		}
	}
	say("alerts of the days of the injected anomalies, %s to %s: %d series judged a day, %d series alerted",
		w.Days[0].Day.Format("Mon 2006-01-02"), w.Days[len(w.Days)-1].Day.Format("Mon 2006-01-02"), len(w.Days[0].Evaluations), len(order))
	say("baselines learnt at %s for what comes next (opsmetrics baselines learn): %d daily series, %d ready, %d still learning",
		w.To.Format(time.DateOnly), w.Current.Series, w.Current.Ready, w.Current.Series-w.Current.Ready)

	am, err := alertmanager.Start(ctx, filepath.Join(o.Dir, "alertmanager"))
	if err != nil {
		say("  (not sent: %v)", err)
		return nil, nil
	}
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL}, nil, o.Log)
	if err != nil {
		return am, err
	}
	for _, k := range order {
		n.Fire(latest[k])
	}
	for _, a := range windowed {
		n.Fire(a)
	}
	if err := n.Flush(ctx); err != nil {
		return am, err
	}
	held, err := am.Alerts(ctx)
	if err != nil {
		return am, err
	}
	// The change-window alerts were listed above.
	all := len(held)
	held = slices.DeleteFunc(held, func(a alertmanager.Alert) bool { return a.Labels["alertname"] == anomaly.WindowAlert })
	say("sent to a private Alertmanager (%s, %s); it holds %d alerts, %d of them of deployments outside their windows; the anomalies, labelled with the catalog's owner and tier, services by tier (alerting.tiers: tier-1 first), then the organisation's:",
		alertmanager.Binary, am.URL, all, all-len(held))
	// Services first, by tier; then the organisation's series (no
	// service, no team); the teams' repeat their services'.
	group := func(l map[string]string) int {
		switch {
		case l["service"] != "":
			return 0
		case l["team"] == "":
			return 1
		}
		return 2
	}
	sort.SliceStable(held, func(i, j int) bool {
		a, b := held[i].Labels, held[j].Labels
		if ga, gb := group(a), group(b); ga != gb {
			return ga < gb
		}
		if c := acfg.Tiers.Compare(anomaly.Ranked{Tier: a["tier"], Severity: a["severity"]}, anomaly.Ranked{Tier: b["tier"], Severity: b["severity"]}); c != 0 {
			return c < 0
		}
		return a["service"]+a["environment"]+a["kpi"] < b["service"]+b["environment"]+b["kpi"]
	})
	shown := 0
	for _, a := range held {
		if g := group(a.Labels); g == 2 || (g == 0 && shown == 6) || (g == 1 && shown == 8) {
			continue
		}
		shown++
		say("  [%s %s, owner %s] %s", a.Labels["severity"], a.Labels["tier"], a.Labels["owner"], a.Annotations["summary"])
		if f := a.Annotations["factors"]; f != "" {
			say("      contributing factors: %s", f)
		}
	}
	if more := len(held) - shown; more > 0 {
		say("  … and %d more (the teams' series show their services' anomalies)", more)
	}
	return am, nil
}

// forecast forecasts the organisation's incidents over the days of the
// injected anomalies from the baselines learnt before them, and counts
// what happened.
func forecast(ctx context.Context, conn driver.Conn, injected []generator.Anomaly, end time.Time, say func(string, ...any)) error {
	if len(injected) == 0 {
		return nil
	}
	from := injected[0].Start
	cur, err := baselines.Current(ctx, conn, metrics.StepDay)
	if err != nil {
		return err
	}
	f, err := baselines.Forecasts(cur, baselines.ForecastQuery{KPI: "incidents", At: from, Horizon: end.Sub(from)})
	if err != nil {
		return err
	}
	sums, err := metrics.Summaries(ctx, conn, metrics.Query{From: from, To: end})
	if err != nil {
		return err
	}
	if len(f.Series) == 0 || f.Series[0].Total == nil || len(sums) != 1 {
		return nil
	}
	t := f.Series[0].Total
	say("\nforecast from the same baselines (opsmetrics forecast --kpi incidents --horizon %dd; docs/forecasts.md):", len(f.Series[0].Intervals))
	say("  incidents %s to %s: expected %.0f, %.0f%% band %.0f–%.0f; counted %d, with the injected anomalies",
		from.Format(time.DateOnly), end.Format(time.DateOnly), t.Expected, 100*f.Level, t.Lower, t.Upper, sums[0].Incidents)
	return nil
}

// demoTargets are targets a team might have set long ago: a deployment a
// week, recovery by the next business day, a change failure rate.
func demoTargets() []anomaly.ThresholdRule {
	v := func(x float64) *float64 { return &x }
	return []anomaly.ThresholdRule{
		{Name: "weekly-deploys", KPI: "deployments_per_day", Below: v(1.0 / 7)},
		{Name: "next-business-day-mttr", KPI: "mttr_median", Above: v(24 * 3600)},
		{Name: "cfr-15", KPI: "change_failure_rate", Above: v(0.15)},
	}
}

// reviewTargets reviews demoTargets over the quarter before end.
func reviewTargets(ctx context.Context, conn driver.Conn, end time.Time, say func(string, ...any)) error {
	rules := demoTargets()
	rr, err := anomaly.ReviewRules(ctx, conn, rules, nil, end, anomaly.ReviewOptions{})
	if err != nil {
		return err
	}
	say("\ntargets review of %d example threshold rules (opsmetrics targets review; docs/targets.md):", len(rules))
	say("  %s", rr.Brief())
	for _, r := range rr.Reviews {
		if len(r.Findings) > 0 {
			say("  - %s", r.Summary)
		}
	}
	return nil
}

// malformed returns a few messages that must be dead-lettered, one per
// common mistake, so that the summary shows the dead-letter path working.
func malformed(t broker.Topics) []kafka.Message {
	return []kafka.Message{
		{Topic: t.Incidents, Value: []byte(`{"kind":"incident","event_id":"demo-bad-1","incident_id":"INC-DEMO","detected_at":"2026-03-01T11:00:00Z","resolved_at":"2026-03-01T10:00:00Z"}`)},
		{Topic: t.Deployments, Value: []byte(`{"kind":"deployment","event_id":"demo-bad-2","deployment_id":"d-demo",`)},
		{Topic: t.Deployments, Value: []byte(`{"kind":"deployment","event_id":"demo-bad-3","deployment_id":"d-demo","service":"checkout","environment":"production","status":"exploded","finished_at":"2026-03-01T10:00:00Z"}`)},
		{Topic: t.Patches, Value: []byte(`{"kind":"patch","patch_id":"CVE-2026-0001","target":"host-1","released_at":"2026-03-01T10:00:00Z"}`)},
		{Topic: t.Changes, Value: []byte("{\"kind\":\"change\",\"event_id\":\"demo-bad-5\",\"change_id\":\"abc\",\"service\":\"caf\xe9\",\"merged_at\":\"2026-03-01T10:00:00Z\"}")},
	}
}

func summary(ctx context.Context, st *store.Store, out io.Writer) error {
	fmt.Fprintln(out, "\nwhat landed in ClickHouse (public views, one row per entity):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "view\trows\tnative\tcloudevents\tcdevents\t")
	raws := map[string]string{"deployments": "deployment_events", "incidents": "incident_events",
		"patches": "patch_events", "changes": "change_events"}
	for _, v := range []string{"deployments", "incidents", "patches", "changes"} {
		var total uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM "+v).Scan(&total); err != nil {
			return fmt.Errorf("count %s: %w", v, err)
		}
		enc := map[string]uint64{}
		rows, err := st.Conn().Query(ctx, "SELECT encoding, uniqExact(event_id) FROM "+raws[v]+" GROUP BY encoding")
		if err != nil {
			return err
		}
		for rows.Next() {
			var e string
			var c uint64
			if err := rows.Scan(&e, &c); err != nil {
				rows.Close()
				return err
			}
			enc[e] = c
		}
		rows.Close()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", v, total, enc["native"], enc["cloudevents"], enc["cdevents"])
	}
	tw.Flush()
	fmt.Fprintln(out, "  (the encoding columns count stored messages; an incident is several messages)")

	fmt.Fprintln(out, "\ndead letters (also on the dead-letter topic, with the reason in a header):")
	rows, err := st.Conn().Query(ctx, "SELECT topic, partition, offset, reason FROM dead_letters ORDER BY topic, partition, offset")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var topic, reason string
		var partition int32
		var offset int64
		if err := rows.Scan(&topic, &partition, &offset, &reason); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s/%d@%d: %s\n", topic, partition, offset, reason)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nproduction deployments in the last 28 days, busiest services:")
	rows2, err := st.Conn().Query(ctx, `SELECT service, count() AS n, countIf(status != 'success') AS failed
		FROM deployments WHERE environment = 'production' AND finished_at >= (SELECT max(finished_at) FROM deployments) - 28*86400
		GROUP BY service ORDER BY n DESC, service LIMIT 5`)
	if err != nil {
		return err
	}
	defer rows2.Close()
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  service\tdeployments\tfailed")
	for rows2.Next() {
		var s string
		var n, failed uint64
		if err := rows2.Scan(&s, &n, &failed); err != nil {
			return err
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", s, n, failed)
	}
	tw.Flush()
	return rows2.Err()
}

// writeCatalog writes a service catalog for the generator's services into
// dir (a plain YAML of the catalog's fields, docs/catalog.md) and watches
// it: each service owned by its team (but the last, which the catalog
// moved to team sre while its events still name the old team), in system
// commerce or core by its team, and tiered by how often it deploys, the
// busiest quarter tier-1, the next tier-2, the others tier-3.
func writeCatalog(dir string, cfg generator.Config, log *slog.Logger, say func(string, ...any)) (*catalog.Watcher, error) {
	svcs, err := generator.Services(cfg)
	if err != nil {
		return nil, err
	}
	byRate := slices.Clone(svcs)
	slices.SortStableFunc(byRate, func(a, b generator.Service) int { return cmp.Compare(b.PerDay, a.PerDay) })
	tier := map[string]string{}
	count := map[string]int{}
	for i, s := range byRate {
		t := "tier-3"
		switch {
		case i < (len(byRate)+3)/4:
			t = "tier-1"
		case i < (len(byRate)+1)/2:
			t = "tier-2"
		}
		tier[s.Name] = t
		count[t]++
	}
	commerce := map[string]bool{"storefront": true, "payments": true, "fulfillment": true, "growth": true, "marketplace": true}
	var b strings.Builder
	b.WriteString("# The demo's service catalog (opsmetrics demo; docs/catalog.md).\n")
	for i, s := range svcs {
		system, owner := "core", s.Team
		if commerce[s.Team] {
			system = "commerce"
		}
		if i == len(svcs)-1 && len(svcs) > 1 {
			owner = "sre" // moved to another team in the catalog; its CI still sends the old one
		}
		fmt.Fprintf(&b, "- {name: %s, owner: %s, system: %s, tier: %s}\n", s.Name, owner, system, tier[s.Name])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "services.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	w, err := catalog.NewWatcher(catalog.Config{Path: dir}, log)
	if err != nil {
		return nil, err
	}
	say("service catalog of the %d services written to %s: %d tier-1, %d tier-2, %d tier-3, owned by their teams (catalog.path; docs/catalog.md)",
		len(svcs), file, count["tier-1"], count["tier-2"], count["tier-3"])
	return w, nil
}
