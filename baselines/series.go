package baselines

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// KPI is a baselined KPI: its entry of the catalogue (metrics.Catalog:
// name, title, unit, kind, the direction that hurts, hourly or not), and
// how an interval's summary gives its point.
type KPI struct {
	metrics.KPI
	point func(s *metrics.Summary) Point
}

// baselined is the catalogue's KPI of that name. Its point in a summary
// follows its kind: a count's value; a rate's trials (metrics.KPI.Trials),
// absent without any; a median duration with the number of durations it is
// the median of as Den, absent without any or at 0.
func baselined(name string) KPI {
	k, ok := metrics.LookupKPI(name)
	if !ok {
		panic("baselines: no KPI " + name + " in the catalogue")
	}
	point := func(s *metrics.Summary) Point {
		v, _ := k.Value(s)
		return Point{Value: v, Present: true}
	}
	switch k.Kind {
	case metrics.KindRate:
		point = func(s *metrics.Summary) Point {
			num, den := k.Trials(s)
			if den == 0 {
				return Point{}
			}
			n, d := float64(num), float64(den)
			return Point{Num: n, Den: d, Value: n / d, Present: true}
		}
	case metrics.KindDuration:
		point = func(s *metrics.Summary) Point {
			if v, ok := k.Value(s); ok && v > 0 {
				return Point{Value: v, Den: float64(s.Samples[k.Name]), Present: true}
			}
			return Point{}
		}
	}
	return KPI{KPI: k, point: point}
}

// KPIs are the baselined KPIs (docs/baselines.md).
var KPIs = []KPI{
	baselined("deployments"), baselined("incidents"), baselined("patches"),
	baselined("change_failure_rate"), baselined("rework_rate"), baselined("patch_compliance"),
	baselined("mttr"), baselined("mttd"), baselined("lead_time"), baselined("patch_latency"),
}

// LookupKPI returns the baselined KPI of that name.
func LookupKPI(name string) (KPI, bool) {
	for _, k := range KPIs {
		if k.Name == name {
			return k, true
		}
	}
	return KPI{}, false
}

// Series identifies one KPI at one step for one slice. An empty dimension
// is "all": the organisation's series has all three empty; a service's
// series names its team and environment too.
type Series struct {
	KPI         string
	Step        metrics.Step
	Service     string
	Team        string
	Environment string
}

// Key is the series' stable identity in storage and alerts.
func (s Series) Key() string {
	return strings.Join([]string{s.KPI, string(s.Step), s.Service, s.Team, s.Environment}, "|")
}

// Slice names the slice for people: "service checkout (team payments,
// production)", "team payments", "environment staging" or "all".
func (s Series) Slice() string {
	switch {
	case s.Service != "":
		return fmt.Sprintf("service %s (team %s, %s)", s.Service, s.Team, s.Environment)
	case s.Team != "":
		return "team " + s.Team
	case s.Environment != "":
		return "environment " + s.Environment
	}
	return "all"
}

// slicings are the groupings a series comes from: the whole organisation,
// each team, each service in each environment (with its team), and each
// environment.
var slicings = [][]metrics.Dimension{
	nil,
	{metrics.Team},
	{metrics.Service, metrics.Team, metrics.Environment},
	{metrics.Environment},
}

// LoadOptions select the series Load reads.
type LoadOptions struct {
	From, To   time.Time // whole steps, UTC
	Step       metrics.Step
	Production []string
	// KPIs limits the KPIs (all when empty).
	KPIs []string
}

// Load reads every series of the step over [From, To) with one set of KPI
// queries per slicing, as consecutive points: counts with zeros where
// nothing happened, rates and durations not present where they have no
// value. Hourly series (of the deployment and incident counts only) are
// those of the slices with a production deployment or incident in the
// range, and only those two counts are read.
func Load(ctx context.Context, conn driver.Conn, o LoadOptions) (map[Series][]Point, error) {
	step := o.Step.Duration()
	n := int(o.To.Sub(o.From) / step)
	if n <= 0 {
		return nil, fmt.Errorf("load series: empty range %s to %s", o.From, o.To)
	}
	var kpis []KPI
	for _, k := range KPIs {
		if (o.Step == metrics.StepDay || k.Hourly) && (len(o.KPIs) == 0 || contains(o.KPIs, k.Name)) {
			kpis = append(kpis, k)
		}
	}
	// The hourly series, of the two counts alone, read only them
	// (metrics.Counts), once, by the finest slicing, which adds up to the
	// others: a slice has them when it had a production deployment or
	// incident in the range.
	var counts []*metrics.Summary
	countsOnly := o.Step == metrics.StepHour
	for _, k := range kpis {
		countsOnly = countsOnly && (k.Name == metrics.PanelDeployments || k.Name == metrics.PanelIncidents)
	}
	if countsOnly {
		var err error
		finest := []metrics.Dimension{metrics.Service, metrics.Team, metrics.Environment}
		if counts, err = metrics.Counts(ctx, conn, metrics.Query{From: o.From, To: o.To, By: finest, Step: o.Step, Production: o.Production}); err != nil {
			return nil, fmt.Errorf("load %s series by %v: %w", o.Step, finest, err)
		}
	}
	out := map[Series][]Point{}
	for _, by := range slicings {
		var sums []*metrics.Summary
		var err error
		if countsOnly {
			sums = addCounts(counts, by)
		} else if sums, err = metrics.Summaries(ctx, conn, metrics.Query{From: o.From, To: o.To, By: by, Step: o.Step, Production: o.Production}); err != nil {
			return nil, fmt.Errorf("load %s series by %v: %w", o.Step, by, err)
		}
		for _, s := range sums {
			if s.Bucket == nil || emptyDimension(s, by) {
				continue
			}
			i := int(s.Bucket.Sub(o.From) / step)
			if i < 0 || i >= n {
				continue
			}
			for _, k := range kpis {
				key := Series{KPI: k.Name, Step: o.Step, Service: s.Slice[metrics.Service], Team: s.Slice[metrics.Team],
					Environment: s.Slice[metrics.Environment]}
				if len(by) == 1 && by[0] == metrics.Environment {
					key.Team = ""
				}
				pts, ok := out[key]
				if !ok {
					pts = make([]Point, n)
					for j := range pts {
						pts[j] = Point{Start: o.From.Add(time.Duration(j) * step), Present: k.Kind == Count}
					}
					out[key] = pts
				}
				p := k.point(s)
				p.Start = pts[i].Start
				if k.Kind == Count || p.Present {
					pts[i] = p
				}
			}
		}
	}
	return out, nil
}

// addCounts adds the deployment and incident counts of ss, summaries by
// service, team and environment (metrics.Counts), up to the slices of by
// (and the same buckets).
func addCounts(ss []*metrics.Summary, by []metrics.Dimension) []*metrics.Summary {
	type key struct {
		slice  string
		bucket time.Time
	}
	sums := map[key]*metrics.Summary{}
	var out []*metrics.Summary
	for _, s := range ss {
		k := key{}
		vals := make([]string, len(by))
		for i, d := range by {
			vals[i] = s.Slice[d]
		}
		k.slice = strings.Join(vals, "\x00")
		if s.Bucket != nil {
			k.bucket = *s.Bucket
		}
		sum, ok := sums[k]
		if !ok {
			sum = &metrics.Summary{Slice: map[metrics.Dimension]string{}, Bucket: s.Bucket}
			for i, d := range by {
				sum.Slice[d] = vals[i]
			}
			sums[k] = sum
			out = append(out, sum)
		}
		sum.Deployments += s.Deployments
		sum.Incidents += s.Incidents
	}
	return out
}

// SortedSeries returns the keys of m in a stable order.
func SortedSeries[V any](m map[Series]V) []Series {
	keys := make([]Series, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key() < keys[j].Key() })
	return keys
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// emptyDimension reports a slice with an empty value for a dimension it is
// grouped by: changes never deployed have no environment, and such a row
// holds only them. It is no series of its own.
func emptyDimension(s *metrics.Summary, by []metrics.Dimension) bool {
	for _, d := range by {
		if s.Slice[d] == "" {
			return true
		}
	}
	return false
}

// StoreSeries writes the points of every series to kpi_series, where
// dashboards draw them against their bands. Writing an interval again
// replaces it (after ClickHouse merges; readers use FINAL).
func StoreSeries(ctx context.Context, conn driver.Conn, series map[Series][]Point, now time.Time) error {
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO kpi_series (series, kpi, kind, step, service, team, environment,
		interval_start, value, num, den, present, computed_at)`)
	if err != nil {
		return fmt.Errorf("prepare kpi_series insert: %w", err)
	}
	defer batch.Abort()
	n := 0
	for s, pts := range series {
		k, _ := LookupKPI(s.KPI)
		for _, p := range pts {
			present := uint8(0)
			if p.Present {
				present = 1
			}
			if err := batch.Append(s.Key(), s.KPI, string(k.Kind), string(s.Step), s.Service, s.Team, s.Environment,
				p.Start, p.Value, p.Num, p.Den, present, now.UTC()); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("write %d series points: %w", n, err)
	}
	return nil
}
