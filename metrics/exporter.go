package metrics

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
)

// Exporter exposes rolling KPI values as Prometheus gauges for each window
// at three scopes (scopes): the organisation, each team, and each service
// in each environment. It recomputes them on Refresh, so a scrape never
// runs SQL. Counts can be summed across labels; ratios and medians are
// computed at each scope, since they cannot be.
type Exporter struct {
	conn    driver.Conn
	base    Query
	windows map[string]time.Duration
	log     *slog.Logger

	maxLabelBytes, maxLabelValues int
	catalog                       func() *catalog.Catalog // nil: base's

	mu        sync.Mutex
	snapshot  []map[string][]exported // by scope, then window label
	refreshed time.Time
	dropped   int
	errors    prometheus.Counter
}

// exported is a summary with the label values it is exported under.
type exported struct {
	s      *Summary
	labels []string // the scope's dimensions
}

// Default label bounds: see LimitLabels.
const (
	DefaultMaxLabelBytes  = 128
	DefaultMaxLabelValues = 1000
)

// DefaultWindows are the rolling windows the exporter computes.
var DefaultWindows = map[string]time.Duration{"7d": 7 * day, "30d": 30 * day, "90d": 90 * day}

// NewExporter returns an exporter over base (its range is ignored) for the
// given windows, DefaultWindows when nil.
func NewExporter(conn driver.Conn, base Query, windows map[string]time.Duration, log *slog.Logger) *Exporter {
	if windows == nil {
		windows = DefaultWindows
	}
	return &Exporter{conn: conn, base: base, windows: windows, log: log,
		maxLabelBytes: DefaultMaxLabelBytes, maxLabelValues: DefaultMaxLabelValues,
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opsmetrics_kpi_refresh_errors_total",
			Help: "KPI refreshes that failed; the previous values stay exported.",
		})}
}

// LimitLabels bounds the label values exported, since service, team and
// environment names come from the events. A value is exported with its
// characters outside printable Unicode escaped (\u202E), and cut to
// maxBytes with a hash of the whole value appended, so that cut values stay
// apart. At most maxValues distinct values of each label are exported: the
// slices with the most deployments and incidents (in the longest window)
// first, the others are left out and counted in
// opsmetrics_kpi_slices_dropped.
func (x *Exporter) LimitLabels(maxBytes, maxValues int) {
	x.maxLabelBytes, x.maxLabelValues = max(maxBytes, 16), max(maxValues, 1)
}

// FollowCatalog makes each refresh read the service catalog that
// current returns then (a catalog.Watcher's Catalog), for the tiers the
// change calendar judges deployments by.
func (x *Exporter) FollowCatalog(current func() *catalog.Catalog) { x.catalog = current }

// Refresh recomputes every window ending now, for every scope.
func (x *Exporter) Refresh(ctx context.Context) error {
	now := time.Now().UTC()
	var longest string
	for label, w := range x.windows {
		if longest == "" || w > x.windows[longest] {
			longest = label
		}
	}
	snap := make([]map[string][]exported, len(scopes))
	dropped := 0
	for i, sc := range scopes {
		sums := map[string][]*Summary{}
		for label, w := range x.windows {
			q := x.base
			if x.catalog != nil {
				q = q.WithCatalog(x.catalog())
			}
			q.From, q.To, q.By = now.Add(-w), now, sc.by
			s, err := Summaries(ctx, x.conn, q)
			if err != nil {
				x.errors.Inc()
				return err
			}
			sums[label] = s
		}
		var n int
		snap[i], n = x.bound(sums, longest, sc.by)
		dropped += n
	}
	x.mu.Lock()
	x.snapshot, x.refreshed, x.dropped = snap, now, dropped
	x.mu.Unlock()
	return nil
}

// bound applies the label limits to the summaries of each window, sliced
// by dims: which values of each label may be exported, decided on the
// window rank. A slice with no environment (changes that reached none) or,
// sliced by team, no team is no series: it would be a label with an empty
// value; a service without a team is exported with team noTeam.
func (x *Exporter) bound(sums map[string][]*Summary, rank string, dims []Dimension) (map[string][]exported, int) {
	for w, ss := range sums {
		var kept []*Summary
		for _, s := range ss {
			if _, ok := s.Slice[Environment]; ok && s.Slice[Environment] == "" {
				continue
			}
			if len(dims) == 1 && dims[0] == Team && s.Slice[Team] == "" {
				continue
			}
			kept = append(kept, s)
		}
		sums[w] = kept
	}
	ranked := append([]*Summary(nil), sums[rank]...)
	sort.SliceStable(ranked, func(i, j int) bool {
		a, b := ranked[i].Deployments+ranked[i].Incidents, ranked[j].Deployments+ranked[j].Incidents
		if a != b {
			return a > b
		}
		return strings.Join(sliceKey(ranked[i], dims), "\x00") < strings.Join(sliceKey(ranked[j], dims), "\x00")
	})
	allowed := make([]map[string]bool, len(dims))
	for i := range dims {
		allowed[i] = map[string]bool{}
	}
	admit := func(s *Summary) bool {
		for i, d := range dims {
			v := s.Slice[d]
			if !allowed[i][v] && len(allowed[i]) >= x.maxLabelValues {
				return false
			}
		}
		for i, d := range dims {
			allowed[i][s.Slice[d]] = true
		}
		return true
	}
	for _, s := range ranked {
		admit(s)
	}
	out := map[string][]exported{}
	dropped := 0
	for window, ss := range sums {
		seen := map[string]bool{}
		for _, s := range ss {
			lv := make([]string, len(dims))
			ok := true
			for i, d := range dims {
				ok = ok && allowed[i][s.Slice[d]]
				v := s.Slice[d]
				if v == "" && d == Team {
					v = noTeam
				}
				lv[i] = LabelValue(v, x.maxLabelBytes)
			}
			if k := strings.Join(lv, "\x00"); ok && !seen[k] {
				seen[k] = true
				out[window] = append(out[window], exported{s, lv})
				continue
			}
			dropped++
		}
	}
	return out, dropped
}

// LabelValue is v as a Prometheus label value of at most maxBytes bytes:
// invalid UTF-8 and runes that are not printable (controls, format
// characters such as U+202E, line separators) are written as \u escapes,
// and a longer value is cut, with "…" and an 8-digit hash of the whole
// value appended.
func LabelValue(v string, maxBytes int) string {
	clean := true
	for _, r := range v {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean && len(v) <= maxBytes {
		return v
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(v); i += w {
		var r rune
		r, w = utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			fmt.Fprintf(&b, "\\x%02x", v[i])
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
		if b.Len() > maxBytes {
			break
		}
	}
	s := b.String()
	if len(s) <= maxBytes {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(v))
	suffix := fmt.Sprintf("…%08x", h.Sum32())
	cut := max(maxBytes-len(suffix), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

// Run refreshes every interval until ctx is done. Failures are logged and
// counted; the last good values stay exported.
func (x *Exporter) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := x.Refresh(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("KPI refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// kpiGauge is one KPI's gauge: its name after the prefix, its help and
// its value in a summary (false: absent, no sample).
type kpiGauge struct {
	name, help string
	value      func(*Summary) (float64, bool)
}

// kpiGauges are the KPIs of the catalogue (their value, metrics.KPI.Value)
// and the failed deployments, under their Prometheus names.
var kpiGauges = []kpiGauge{
	{"deployments", "Production deployments in the window, any status.", ValueOf(PanelDeployments)},
	{"deployments_per_day", "Successful production deployments per day over the window.", ValueOf(PanelDeploymentFrequency)},
	{"failed_deployments", "Failed production deployments, by status or attributed incident.",
		func(s *Summary) (float64, bool) { return float64(s.FailedDeployments), true }},
	{"change_failure_ratio", "Failed deployments divided by deployments.", ValueOf(PanelChangeFailureRate)},
	{"rework_ratio", "Unplanned deployments divided by deployments.", ValueOf(PanelReworkRate)},
	{"lead_time_median_seconds", "Median change lead time.", ValueOf(PanelLeadTime)},
	{"recovery_time_median_seconds", "Median failed-deployment recovery time.", ValueOf(PanelRecoveryTime)},
	{"incidents", "Production incidents whose impact started in the window.", ValueOf(PanelIncidents)},
	{"mttd_median_seconds", "Median time from impact start to detection.", ValueOf(PanelMTTD)},
	{"mtta_median_seconds", "Median time from detection to acknowledgement.", ValueOf(PanelMTTA)},
	{"mttr_median_seconds", "Median time from detection to resolution.", ValueOf(PanelMTTR)},
	{"patch_compliance_ratio", "Patches applied within their deadline divided by patches due.", ValueOf(PanelPatchCompliance)},
	{"patches_overdue", "Patches not applied and past their deadline.", ValueOf(PanelPatchesOverdue)},
	// The calendar's gauges are absent where it judged no deployment (no
	// calendar, or no deployment in the slice).
	{"deployments_outside_window", "Production deployments started outside their change windows or in a freeze.",
		func(s *Summary) (float64, bool) {
			return float64(s.DeploymentsOutsideWindow), s.OutsideWindowShare != nil
		}},
	{"deployments_outside_window_ratio", "Deployments outside their change windows or in a freeze divided by deployments.",
		func(s *Summary) (float64, bool) { return optional(s.OutsideWindowShare) }},
	{"unplanned_fixes_outside_window", "Unplanned fixes for an open incident deployed outside the change windows or in a freeze.",
		func(s *Summary) (float64, bool) {
			return float64(s.UnplannedFixesOutsideWindow), s.OutsideWindowShare != nil
		}},
}

// A scope is one level the gauges are computed at: the whole organisation
// (opsmetrics_kpi_org_*), each team (opsmetrics_kpi_team_*) and each
// service in each environment (opsmetrics_kpi_*, with its team). Medians
// and ratios do not add up across labels, so each scope is computed, not
// summed.
type scope struct {
	by    []Dimension
	descs []*prometheus.Desc // by kpiGauges
}

func newScope(prefix, what string, by ...Dimension) scope {
	labels := []string{"window"}
	for _, d := range by {
		labels = append(labels, string(d))
	}
	sc := scope{by: by}
	for _, g := range kpiGauges {
		sc.descs = append(sc.descs, prometheus.NewDesc(prefix+g.name, g.help+" "+what, labels, nil))
	}
	return sc
}

// noTeam is the team label of a service without one: label values are
// never empty.
const noTeam = "(none)"

var scopes = []scope{
	newScope("opsmetrics_kpi_org_", "Whole organisation.", nil...),
	newScope("opsmetrics_kpi_team_", "Per team.", Team),
	newScope("opsmetrics_kpi_", "Per service and environment.", Service, Team, Environment),
}

var (
	refreshDesc = prometheus.NewDesc("opsmetrics_kpi_last_refresh_timestamp_seconds", "When the KPI gauges were last computed.", nil, nil)
	droppedDesc = prometheus.NewDesc("opsmetrics_kpi_slices_dropped",
		"Slices (window, service, team, environment) left out of the KPI gauges at the last refresh by kpi.max_label_values.", nil, nil)
)

// Describe implements prometheus.Collector.
func (x *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, sc := range scopes {
		for _, d := range sc.descs {
			ch <- d
		}
	}
	ch <- refreshDesc
	ch <- droppedDesc
	x.errors.Describe(ch)
}

// Collect implements prometheus.Collector from the last refresh.
func (x *Exporter) Collect(ch chan<- prometheus.Metric) {
	x.mu.Lock()
	snap, at, dropped := x.snapshot, x.refreshed, x.dropped
	x.mu.Unlock()
	x.errors.Collect(ch)
	if at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(refreshDesc, prometheus.GaugeValue, float64(at.Unix()))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.GaugeValue, float64(dropped))
	for i, sc := range scopes {
		for window, sums := range snap[i] {
			for _, e := range sums {
				lv := append([]string{window}, e.labels...)
				for j, g := range kpiGauges {
					if v, ok := g.value(e.s); ok {
						ch <- prometheus.MustNewConstMetric(sc.descs[j], prometheus.GaugeValue, v, lv...)
					}
				}
			}
		}
	}
}
