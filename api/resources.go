package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The resources below /api/v1/kpis/{kpi}/ and /api/v1/anomalies. Each
// reads through the package that owns what it serves: metrics' reports and
// explanations, baselines.Current, anomaly.Records.

// number is a float for JSON: null when NaN or infinite, which JSON cannot
// carry.
func number(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// writeJSON answers v as compact JSON: a report by service and day runs
// to tens of megabytes, and indenting it took most of its time.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// kpiOf is the catalogue's KPI named by the path, or a 404 listing the
// names among known that the resource serves.
func kpiOf(w http.ResponseWriter, r *http.Request, what string, known []string) (metrics.KPI, bool) {
	name := r.PathValue("kpi")
	k, ok := metrics.LookupKPI(name)
	if !ok || !slices.Contains(known, name) {
		fail(w, http.StatusNotFound, "%s: no KPI %q: want one of %s", what, excerpt(name, 64), strings.Join(known, ", "))
		return k, false
	}
	return k, true
}

func catalogNames() []string {
	var out []string
	for _, k := range metrics.Catalog {
		out = append(out, k.Name)
	}
	return out
}

// KPIInfo is the catalogue's entry of the KPI a resource is about.
type KPIInfo struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Unit  string `json:"unit"`
	Kind  string `json:"kind"`
	Harm  string `json:"harm"`
}

func info(k metrics.KPI) KPIInfo {
	return KPIInfo{Name: k.Name, Title: k.Title, Unit: k.Unit, Kind: string(k.Kind), Harm: k.Harm}
}

// SeriesDoc is the document of /api/v1/kpis/{kpi}/series.
type SeriesDoc struct {
	KPI      KPIInfo             `json:"kpi"`
	From     time.Time           `json:"from"`
	To       time.Time           `json:"to"`
	Step     metrics.Bucket      `json:"step"`
	TimeZone string              `json:"time_zone"`
	By       []metrics.Dimension `json:"by"`
	Series   []Series            `json:"series"`
}

// Series is one slice's KPI by bucket.
type Series struct {
	Slice  map[metrics.Dimension]string `json:"slice"`
	Points []Point                      `json:"points"`
}

// Point is a KPI's value over one bucket. Partial buckets are cut by the
// range; an absent value is null.
type Point struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Partial bool      `json:"partial"`
	Value   *float64  `json:"value"`
}

// series serves one KPI by bucket, per slice: the figures of the
// /api/v1/kpis report with the same bucket, one point for every bucket of
// the range (counts are 0 where a slice had nothing).
func (h *handler) series(w http.ResponseWriter, r *http.Request) {
	k, ok := kpiOf(w, r, "series", catalogNames())
	if !ok {
		return
	}
	req, err := h.parseSeries(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var rep *metrics.Report
	if !h.do(w, r, "KPI query", heavy(req), func(ctx context.Context) (err error) {
		rep, err = metrics.Run(ctx, h.o.Conn, req.Query, req.Bucket, req.Location, false)
		return err
	}) {
		return
	}
	q := req.Query
	doc := SeriesDoc{KPI: info(k), From: q.From, To: q.To, Step: req.Bucket, TimeZone: req.Location.String(), By: q.By,
		Series: seriesOf(rep, k.Value, k.Kind == metrics.KindCount, req.Location)}
	if doc.By == nil {
		doc.By = []metrics.Dimension{}
	}
	writeJSON(w, doc)
}

// parseSeries reads a series request: a KPI request whose bucket is the
// step, day by default.
func (h *handler) parseSeries(r *http.Request) (*metrics.Request, error) {
	p := h.params()
	f := fields(&p, "from", "to", "by", "service", "team", "environment", "system", "tier", "production", "tz", "max_gap",
		"lead_time_from", "lead_time_lookback")
	step := "day"
	f["step"] = &step
	if err := bind(r, f); err != nil {
		return nil, err
	}
	if b, err := metrics.ParseBucket(step); err != nil || b == metrics.Whole {
		return nil, fmt.Errorf("step: unknown step %q: want day, week or month", excerpt(step, 64))
	}
	p.Bucket = step
	req, err := p.Parse(time.Now())
	if err != nil {
		if rest, ok := strings.CutPrefix(err.Error(), "bucket: "); ok {
			return nil, errors.New("step: " + rest)
		}
	}
	return req, err
}

// seriesOf turns a bucketed report into one series per slice with a point
// for every bucket; zero fills the buckets a slice has no summary in.
func seriesOf(rep *metrics.Report, value func(*metrics.Summary) (float64, bool), zero bool, loc *time.Location) []Series {
	buckets := metrics.Ranges(rep.From, rep.To, rep.Bucket, loc)
	// The buckets of a range wider by more than a month are whole where
	// they lie inside [from, to): those of [from, to) that differ are cut.
	whole := map[[2]time.Time]bool{}
	for _, b := range metrics.Ranges(rep.From.AddDate(0, 0, -32), rep.To.AddDate(0, 0, 32), rep.Bucket, loc) {
		whole[b] = true
	}
	index := map[time.Time]int{}
	for i, b := range buckets {
		index[b[0]] = i
	}
	bySlice := map[string]*Series{}
	var keys []string
	for _, s := range rep.Summaries {
		var parts []string
		for _, d := range rep.By {
			parts = append(parts, s.Slice[d])
		}
		key := strings.Join(parts, "\x00")
		ser, ok := bySlice[key]
		if !ok {
			ser = &Series{Slice: s.Slice, Points: make([]Point, len(buckets))}
			for i, b := range buckets {
				ser.Points[i] = Point{Start: b[0], End: b[1], Partial: !whole[b]}
				if zero {
					ser.Points[i].Value = number(0)
				}
			}
			bySlice[key] = ser
			keys = append(keys, key)
		}
		if s.Bucket == nil {
			continue
		}
		i, ok := index[s.Bucket.UTC()]
		if !ok {
			continue
		}
		if v, ok := value(s); ok {
			ser.Points[i].Value = number(v)
		}
	}
	sort.Strings(keys)
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		out = append(out, *bySlice[k])
	}
	return out
}

// BaselinesDoc is the document of /api/v1/kpis/{kpi}/baselines.
type BaselinesDoc struct {
	KPI KPIInfo `json:"kpi"`
	// At is the time whose seasonal slot Now gives.
	At         time.Time  `json:"at"`
	Generation uint64     `json:"generation"` // 0: nothing learnt yet
	TrainedAt  *time.Time `json:"trained_at"`
	Baselines  []Baseline `json:"baselines"`
}

// SeriesID names a baselined series: an empty dimension is "all".
type SeriesID struct {
	KPI         string       `json:"kpi"`
	Step        metrics.Step `json:"step"`
	Service     string       `json:"service"`
	Team        string       `json:"team"`
	Environment string       `json:"environment"`
	// Slice names it for people: "service checkout (team payments,
	// production)", "team payments", "all".
	Slice string `json:"slice"`
}

func seriesID(s baselines.Series) SeriesID {
	return SeriesID{KPI: s.KPI, Step: s.Step, Service: s.Service, Team: s.Team, Environment: s.Environment, Slice: s.Slice()}
}

// Baseline is the current model of one series with its band per seasonal
// slot.
type Baseline struct {
	Series  SeriesID `json:"series"`
	Status  string   `json:"status"` // ready, or learning (never alerts)
	Family  string   `json:"family"`
	Samples int      `json:"samples"`
	Alpha   float64  `json:"alpha"`
	Now     Band     `json:"now"` // the slot of At
	Slots   []Band   `json:"slots"`
}

// Band is the expected value and band of one seasonal slot (day or hour of
// the week in UTC, Monday first; a single slot when not seasonal), in the
// KPI's unit (rates at their typical denominator).
type Band struct {
	Slot     int      `json:"slot"`
	Expected *float64 `json:"expected"`
	Lower    *float64 `json:"lower"`
	Upper    *float64 `json:"upper"`
}

func band(m *baselines.Model, slot int) Band {
	e, lo, hi := m.Band(slot)
	return Band{Slot: slot, Expected: number(e), Lower: number(lo), Upper: number(hi)}
}

// baselines serves the current baselines of a KPI's series.
func (h *handler) baselines(w http.ResponseWriter, r *http.Request) {
	k, ok := kpiOf(w, r, "baselines", baselines.KPINames())
	if !ok {
		return
	}
	req, err := h.parseBaselines(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var cur []baselines.Stored
	if !h.do(w, r, "baselines query", false, func(ctx context.Context) (err error) {
		cur, err = baselines.Current(ctx, h.o.Conn, req.step)
		return err
	}) {
		return
	}
	doc := BaselinesDoc{KPI: info(k), At: req.at, Baselines: []Baseline{}}
	for _, c := range cur {
		if c.Series.KPI != k.Name || !req.has(c.Series) {
			continue
		}
		doc.Generation, doc.TrainedAt = c.Generation, &c.TrainedAt
		m := c.Model
		b := Baseline{Series: seriesID(c.Series), Status: string(m.Status), Family: m.Family, Samples: m.Samples, Alpha: m.Alpha,
			Now: band(m, m.Slot(req.at))}
		for slot := range m.Slots {
			b.Slots = append(b.Slots, band(m, slot))
		}
		doc.Baselines = append(doc.Baselines, b)
	}
	writeJSON(w, doc)
}

// forecast serves the forecast of a KPI's series from the current
// baselines: the document of `opsmetrics forecast --format json`.
func (h *handler) forecast(w http.ResponseWriter, r *http.Request) {
	k, ok := kpiOf(w, r, "forecast", baselines.KPINames())
	if !ok {
		return
	}
	p := baselines.ForecastParams{KPI: k.Name}
	if err := bind(r, map[string]*string{"step": &p.Step, "by": &p.By, "service": &p.Services, "team": &p.Teams,
		"environment": &p.Environments, "at": &p.At, "horizon": &p.Horizon, "level": &p.Level}); err != nil {
		badRequest(w, err)
		return
	}
	q, err := p.Parse(time.Now())
	if err != nil {
		badRequest(w, err)
		return
	}
	var cur []baselines.Stored
	if !h.do(w, r, "baselines query", false, func(ctx context.Context) (err error) {
		cur, err = baselines.Current(ctx, h.o.Conn, q.Step)
		return err
	}) {
		return
	}
	doc, err := baselines.Forecasts(cur, q)
	if err != nil {
		fail(w, http.StatusNotFound, "forecast: %v", err)
		return
	}
	writeJSON(w, doc)
}

type baselinesRequest struct {
	step metrics.Step // empty: both
	at   time.Time
	selection
}

func (h *handler) parseBaselines(r *http.Request) (*baselinesRequest, error) {
	p := h.params()
	f := fields(&p, "service", "team", "environment")
	var step, at string
	f["step"], f["at"] = &step, &at
	if err := bind(r, f); err != nil {
		return nil, err
	}
	req := &baselinesRequest{at: time.Now().UTC()}
	var err error
	if step != "" {
		if req.step, err = metrics.ParseStep(step); err != nil {
			return nil, fmt.Errorf("step: %w", err)
		}
	}
	if at != "" {
		t, err := metrics.ParseTime(at, time.UTC)
		if err != nil {
			return nil, fmt.Errorf("at: %w", err)
		}
		req.at = t.UTC()
	}
	q, err := p.Parse(time.Now()) // the filters, bounded
	if err != nil {
		return nil, err
	}
	req.selection = selectionOf(q.Query)
	return req, nil
}

// selection keeps the series whose service, team and environment are
// among a query's filters; an empty filter keeps any.
type selection struct{ services, teams, envs []string }

func selectionOf(q metrics.Query) selection { return selection{q.Services, q.Teams, q.Environments} }

func (s selection) has(x baselines.Series) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(s.services, x.Service) && in(s.teams, x.Team) && in(s.envs, x.Environment)
}

// limit parses a limit parameter: 1 to api.max_rows, default min(1000,
// api.max_rows).
func (h *handler) limit(s string) (int, error) {
	if s == "" {
		return min(1000, h.limits.MaxRows), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > h.limits.MaxRows {
		return 0, fmt.Errorf("limit: want a number of rows from 1 to %d (api.max_rows), got %q", h.limits.MaxRows, excerpt(s, 64))
	}
	return n, nil
}

// AnomaliesDoc is the document of /api/v1/anomalies.
type AnomaliesDoc struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Total     int       `json:"total"`     // anomalies that match, before the limit
	Truncated bool      `json:"truncated"` // more matched than the limit
	Anomalies []Anomaly `json:"anomalies"`
}

// Anomaly is one anomalous interval recorded by detection.
type Anomaly struct {
	Series    SeriesID  `json:"series"`
	Start     time.Time `json:"start"`
	Observed  *float64  `json:"observed"`
	Expected  *float64  `json:"expected"`
	Lower     *float64  `json:"lower"`
	Upper     *float64  `json:"upper"`
	Direction string    `json:"direction"`
	Tail      *float64  `json:"tail"`
	Severity  string    `json:"severity"`
	Firing    bool      `json:"firing"`
	// Owner and Tier are the owner and tier labels its alert carries,
	// from the service catalog of the moment (docs/alerting.md, "Owners
	// and tiers from the catalog").
	Owner string `json:"owner"`
	Tier  string `json:"tier"`
	// Factors names the values that explain a firing anomaly, in words
	// (docs/alerting.md, "Contributing factors"); empty when none.
	Factors string `json:"factors"`
	// FactorList is the same factors one by one, in the order they were
	// found; empty when none stands out.
	FactorList []Factor `json:"factor_list"`
}

// Factor is one contributing factor of an anomaly: a value of a dimension
// below the series, with its part in the anomaly.
type Factor struct {
	Dimension string `json:"dimension"`
	Value     string `json:"value"`
	// Observed is the value's harmful events: its deployments or
	// incidents (counts), its failed or unplanned deployments, its
	// patches applied late (rates), its durations beyond the baseline's
	// median (durations).
	Observed float64 `json:"observed"`
	// Total is all the value's events of the kind counted: its
	// deployments, patches due, incidents, changes or patches (rates and
	// durations); for a count, its count.
	Total float64 `json:"total"`
	// Expected is its events at the baseline, Excess Observed − Expected
	// in the anomaly's direction (for a count down, the shortfall).
	Expected float64 `json:"expected"`
	Excess   float64 `json:"excess"`
	// Share is its part of its dimension's excess, from 0 to 1.
	Share float64 `json:"share"`
	// Of is the events Observed is counted among: the interval's for the
	// first factor, those the factors before left for the others.
	Of float64 `json:"of"`
}

// factorList is the API's form of an anomaly's factors.
func factorList(fs []anomaly.Factor) []Factor {
	out := []Factor{}
	for _, f := range fs {
		total := f.Trials
		if total == 0 {
			total = f.Observed
		}
		out = append(out, Factor{Dimension: f.Dimension, Value: f.Value, Observed: f.Observed, Total: total, Expected: f.Expected,
			Excess: f.Excess, Share: f.Share, Of: f.Of})
	}
	return out
}

// anomalies serves the anomalous intervals that start in a range (default:
// the 30 days up to now), oldest first.
func (h *handler) anomalies(w http.ResponseWriter, r *http.Request) {
	req, err := h.parseAnomalies(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var recs []anomaly.Record
	if !h.do(w, r, "anomalies query", false, func(ctx context.Context) (err error) {
		recs, err = anomaly.Records(ctx, h.o.Conn, req.from, req.to)
		return err
	}) {
		return
	}
	doc := AnomaliesDoc{From: req.from, To: req.to, Anomalies: []Anomaly{}}
	var cat *catalog.Catalog
	if h.o.Catalog != nil {
		cat = h.o.Catalog()
	}
	tiers := h.o.Tiers
	if len(tiers.Levels) == 0 {
		tiers = anomaly.DefaultTiers
	}
	for _, a := range recs {
		if !req.has(a.Series) || (len(req.kpis) > 0 && !slices.Contains(req.kpis, a.Series.KPI)) || (req.step != "" && a.Series.Step != req.step) {
			continue
		}
		if doc.Total++; len(doc.Anomalies) == req.limit {
			doc.Truncated = true
			continue
		}
		owner, tier := tiers.Owner(cat, a.Series.Service, a.Series.Team)
		doc.Anomalies = append(doc.Anomalies, Anomaly{Series: seriesID(a.Series), Start: a.Start, Observed: number(a.Observed),
			Expected: number(a.Expected), Lower: number(a.Lower), Upper: number(a.Upper), Direction: a.Direction, Tail: number(a.Tail),
			Severity: a.Severity, Firing: a.Firing, Owner: owner, Tier: tier, Factors: a.Factors, FactorList: factorList(a.FactorList)})
	}
	writeJSON(w, doc)
}

type anomaliesRequest struct {
	from, to time.Time
	kpis     []string
	step     metrics.Step // empty: both
	limit    int
	selection
}

func (h *handler) parseAnomalies(r *http.Request) (*anomaliesRequest, error) {
	p := h.params()
	f := fields(&p, "from", "to", "tz", "service", "team", "environment")
	var kpis, step, limit string
	f["kpi"], f["step"], f["limit"] = &kpis, &step, &limit
	if err := bind(r, f); err != nil {
		return nil, err
	}
	now := time.Now()
	if p.To == "" {
		p.To = now.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	q, err := p.Parse(now)
	if err != nil {
		return nil, err
	}
	req := &anomaliesRequest{from: q.Query.From, to: q.Query.To, selection: selectionOf(q.Query)}
	for _, n := range strings.Split(kpis, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if _, ok := baselines.LookupKPI(n); !ok {
			return nil, fmt.Errorf("kpi: no baselined KPI %q: want one of %s", excerpt(n, 64), strings.Join(baselines.KPINames(), ", "))
		}
		req.kpis = append(req.kpis, n)
	}
	if step != "" {
		if req.step, err = metrics.ParseStep(step); err != nil {
			return nil, fmt.Errorf("step: %w", err)
		}
	}
	req.limit, err = h.limit(limit)
	return req, err
}

// ExplanationDoc is the document of /api/v1/kpis/{kpi}/explain.
type ExplanationDoc struct {
	KPI       KPIInfo    `json:"kpi"`
	Formula   string     `json:"formula"`
	From      time.Time  `json:"from"`
	To        time.Time  `json:"to"`
	Columns   []string   `json:"columns"`
	Rows      [][]string `json:"rows"`
	Total     int        `json:"total"`     // rows behind the figure, before the limit
	Truncated bool       `json:"truncated"` // more rows than the limit
}

// explain serves the rows a KPI is computed from (metrics.Explain), at
// most limit of them.
func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	k, ok := kpiOf(w, r, "explain", metrics.ExplainableKPIs)
	if !ok {
		return
	}
	p := h.params()
	f := fields(&p, "from", "to", "service", "team", "environment", "system", "tier", "production", "tz", "max_gap", "lead_time_from",
		"lead_time_lookback")
	var limit string
	f["limit"] = &limit
	req, err := parse(r, &p, f)
	n := 0
	if err == nil {
		n, err = h.limit(limit)
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	var e *metrics.Explanation
	// Explanations read rows, not aggregates: they wait behind figures.
	if !h.do(w, r, "explain query", true, func(ctx context.Context) (err error) {
		e, err = metrics.ExplainIn(ctx, h.o.Conn, k.Name, req.Query, req.Location)
		return err
	}) {
		return
	}
	doc := ExplanationDoc{KPI: info(k), Formula: e.Formula, From: req.Query.From, To: req.Query.To, Columns: e.Columns,
		Rows: e.Rows, Total: len(e.Rows)}
	if len(doc.Rows) > n {
		doc.Rows, doc.Truncated = doc.Rows[:n], true
	}
	if doc.Rows == nil {
		doc.Rows = [][]string{}
	}
	writeJSON(w, doc)
}
