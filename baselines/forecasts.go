package baselines

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// ForecastQuery selects the series of one KPI to forecast and the
// intervals to forecast them for (`opsmetrics forecast`, the API's
// /kpis/{kpi}/forecast).
type ForecastQuery struct {
	KPI  string
	Step metrics.Step // default day
	// By is the slicing: none for the organisation, team, environment, or
	// service (whose series name their team and environment). A filter on
	// a dimension slices by it too: --team payments forecasts the team.
	By                            []metrics.Dimension
	Services, Teams, Environments []string
	// At is a time in the first interval forecast (default now).
	At      time.Time
	Horizon time.Duration // rounded up to whole steps
	Level   float64       // default DefaultForecastLevel
}

// MaxForecastHorizon bounds a forecast's horizon: 90 days, or 2,160
// hours. A baseline learnt on eight weeks says little further ahead.
const MaxForecastHorizon = 90 * 24 * time.Hour

// ErrNoBaselines is returned by Forecasts when nothing has been learnt yet.
var ErrNoBaselines = errors.New("no baselines yet: run opsmetrics baselines learn")

// ParseHorizon reads a horizon: a number of days ("14d"), weeks ("2w") or
// a Go duration ("36h").
func ParseHorizon(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			var k int
			k, err = strconv.Atoi(n)
			d = time.Duration(k) * unit
		}
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive horizon like 14d, 2w or 36h, got %q", s)
	}
	return d, nil
}

// ForecastParams are a forecast's parameters as text, named as the
// command's flags and the API's parameters; Parse reads them into a
// ForecastQuery.
type ForecastParams struct {
	KPI, Step, By, Services, Teams, Environments, At, Horizon, Level string
}

// Parse reads p, as of now; each error starts with the parameter's name.
// The horizon defaults to 14 days.
func (p ForecastParams) Parse(now time.Time) (ForecastQuery, error) {
	q := ForecastQuery{KPI: p.KPI, Step: metrics.Step(p.Step), At: now, Horizon: 14 * 24 * time.Hour,
		Services: list(p.Services), Teams: list(p.Teams), Environments: list(p.Environments)}
	for _, b := range list(p.By) {
		d, err := metrics.ParseDimension(b)
		if err != nil {
			return q, fmt.Errorf("by: %w", err)
		}
		q.By = append(q.By, d)
	}
	if p.At != "" {
		t, err := metrics.ParseTime(p.At, time.UTC)
		if err != nil {
			return q, fmt.Errorf("at: %w", err)
		}
		q.At = t
	}
	if p.Horizon != "" {
		h, err := ParseHorizon(p.Horizon)
		if err != nil {
			return q, fmt.Errorf("horizon: %w", err)
		}
		q.Horizon = h
	}
	if p.Level != "" {
		l, err := strconv.ParseFloat(p.Level, 64)
		if err != nil || l <= 0 || l >= 1 {
			return q, fmt.Errorf("level: want a probability in (0, 1) like 0.9, got %q", p.Level)
		}
		q.Level = l
	}
	return q, q.Validate()
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (q ForecastQuery) withDefaults() ForecastQuery {
	if q.Step == "" {
		q.Step = metrics.StepDay
	}
	if q.At.IsZero() {
		q.At = time.Now()
	}
	if q.Level <= 0 || q.Level >= 1 {
		q.Level = DefaultForecastLevel
	}
	return q
}

// Validate checks a query; each error names its field, as the command's
// flags and the API's parameters are named.
func (q ForecastQuery) Validate() error {
	q = q.withDefaults()
	if q.KPI == "" {
		return fmt.Errorf("kpi: required: one of %s", strings.Join(KPINames(), ", "))
	}
	if _, ok := LookupKPI(q.KPI); !ok {
		return fmt.Errorf("kpi: unknown KPI %q: the baselined ones are %s", q.KPI, strings.Join(KPINames(), ", "))
	}
	if q.Step != metrics.StepDay && q.Step != metrics.StepHour {
		return fmt.Errorf("step: want day or hour, got %q", q.Step)
	}
	if q.Horizon <= 0 {
		return fmt.Errorf("horizon: must be positive, got %v", q.Horizon)
	}
	if q.Horizon > MaxForecastHorizon {
		return fmt.Errorf("horizon: at most 90 days, got %.1f days", q.Horizon.Hours()/24)
	}
	if _, ok := q.slicing(); !ok {
		return fmt.Errorf("by: baselines are learnt for the organisation, each team, each environment and each service (with its team and environment), not by team and environment")
	}
	return nil
}

// slicing is the dimension whose series the query forecasts: the finest
// of By and the filtered dimensions, or "" for the organisation; false
// for team and environment, which no series is sliced by.
func (q ForecastQuery) slicing() (metrics.Dimension, bool) {
	dims := slices.Clone(q.By)
	for _, f := range []struct {
		d metrics.Dimension
		v []string
	}{{metrics.Service, q.Services}, {metrics.Team, q.Teams}, {metrics.Environment, q.Environments}} {
		if len(f.v) > 0 {
			dims = append(dims, f.d)
		}
	}
	switch {
	case slices.Contains(dims, metrics.Service):
		return metrics.Service, true
	case slices.Contains(dims, metrics.Team) && slices.Contains(dims, metrics.Environment):
		return "", false
	case slices.Contains(dims, metrics.Team):
		return metrics.Team, true
	case slices.Contains(dims, metrics.Environment):
		return metrics.Environment, true
	}
	return "", true
}

func (q ForecastQuery) selects(s Series) bool {
	if s.KPI != q.KPI || s.Step != q.Step {
		return false
	}
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(q.Services, s.Service) || !in(q.Teams, s.Team) || !in(q.Environments, s.Environment) {
		return false
	}
	switch d, _ := q.slicing(); d {
	case metrics.Service:
		return s.Service != ""
	case metrics.Team:
		return s.Service == "" && s.Team != ""
	case metrics.Environment:
		return s.Service == "" && s.Team == "" && s.Environment != ""
	}
	return s.Service == "" && s.Team == "" && s.Environment == ""
}

// KPINames are the names of the baselined KPIs.
func KPINames() []string {
	out := make([]string, len(KPIs))
	for i, k := range KPIs {
		out[i] = k.Name
	}
	return out
}

// ForecastReport is the stable JSON document of `opsmetrics forecast
// --format json` and of the API's /kpis/{kpi}/forecast.
type ForecastReport struct {
	KPI        string              `json:"kpi"`
	Title      string              `json:"title"`
	Unit       string              `json:"unit"`
	Step       metrics.Step        `json:"step"`
	From       time.Time           `json:"from"`
	To         time.Time           `json:"to"`
	TimeZone   string              `json:"time_zone"` // seasonal slots are UTC days and hours
	Level      float64             `json:"level"`
	By         []metrics.Dimension `json:"by"` // the slicing: empty for the organisation
	Generation uint64              `json:"generation"`
	TrainedAt  time.Time           `json:"trained_at"`
	Series     []SeriesForecast    `json:"series"`
}

// SeriesForecast is the forecast of one series.
type SeriesForecast struct {
	Service     string `json:"service"`
	Team        string `json:"team"`
	Environment string `json:"environment"`
	Slice       string `json:"slice"`
	Forecast
}

// Forecasts forecasts the series of cur (Current of q.Step) that q
// selects, from the interval that holds q.At over q.Horizon. It returns
// ErrNoBaselines, wrapped, when cur is empty; a query that selects no series gives a report without
// any.
func Forecasts(cur []Stored, q ForecastQuery) (*ForecastReport, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	q = q.withDefaults()
	if len(cur) == 0 {
		return nil, fmt.Errorf("per %s: %w", q.Step, ErrNoBaselines)
	}
	k, _ := LookupKPI(q.KPI)
	step := q.Step.Duration()
	from := q.Step.Truncate(q.At)
	n := (q.Horizon + step - 1) / step
	r := &ForecastReport{KPI: k.Name, Title: k.Title, Unit: k.Unit, Step: q.Step, From: from, To: from.Add(n * step),
		TimeZone: "UTC", Level: q.Level, Generation: cur[0].Generation, TrainedAt: cur[0].TrainedAt.UTC(), Series: []SeriesForecast{}}
	if d, _ := q.slicing(); d != "" {
		r.By = []metrics.Dimension{d}
	}
	for _, c := range cur {
		if !q.selects(c.Series) {
			continue
		}
		s := c.Series
		r.Series = append(r.Series, SeriesForecast{Service: s.Service, Team: s.Team, Environment: s.Environment, Slice: s.Slice(),
			Forecast: c.Model.Forecast(from, n*step, ForecastOptions{Level: q.Level})})
	}
	return r, nil
}

// WriteJSON writes r as indented JSON.
func (r *ForecastReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as an aligned table under a line that gives the
// range and its time zone, as `opsmetrics kpi` does: one row per series
// and interval, and for counts a row of the total over the horizon. A
// series still learning is marked: its forecast is a guess.
func (r *ForecastReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "forecast of %s (%s) per %s, %s to %s (end exclusive), time zone %s\n", r.KPI, r.Title, r.Step,
		r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04"), r.TimeZone)
	fmt.Fprintf(w, "band: %.0f%% (nominal); baselines generation %d, trained %s\n\n", 100*r.Level, r.Generation,
		r.TrainedAt.Format(time.RFC3339))
	if len(r.Series) == 0 {
		_, err := fmt.Fprintln(w, "no series of this KPI match: see opsmetrics baselines show")
		return err
	}
	k, _ := LookupKPI(r.KPI)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "slice\tinterval\texpected\tband\tcoverage")
	layout := "2006-01-02 Mon"
	if r.Step == metrics.StepHour {
		layout = "2006-01-02 Mon 15:04"
	}
	for _, s := range r.Series {
		slice := s.Slice
		if s.Status != Ready {
			slice += " (learning)"
		}
		for _, iv := range s.Intervals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s–%s\t%.0f%%\n", slice, iv.Start.UTC().Format(layout), k.Format(iv.Expected),
				k.Format(iv.Lower), k.Format(iv.Upper), 100*iv.Coverage)
		}
		if t := s.Total; t != nil {
			fmt.Fprintf(tw, "%s\ttotal of %d %ss\t%s\t%s–%s\t%.0f%%\n", slice, len(s.Intervals), r.Step, k.Format(t.Expected),
				k.Format(t.Lower), k.Format(t.Upper), 100*t.Coverage)
		}
	}
	return tw.Flush()
}

// WriteCSV writes r as CSV, one row per series and interval (counts'
// totals with the interval "total"): values in the KPI's base unit (a
// ratio, seconds, a count), times RFC 3339 in UTC.
func (r *ForecastReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"kpi", "step", "service", "team", "environment", "status", "interval", "expected", "lower", "upper",
		"coverage", "level"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, s := range r.Series {
		row := func(at string, iv ForecastInterval) {
			cw.Write([]string{r.KPI, string(r.Step), s.Service, s.Team, s.Environment, string(s.Status), at,
				f(iv.Expected), f(iv.Lower), f(iv.Upper), f(iv.Coverage), f(r.Level)})
		}
		for _, iv := range s.Intervals {
			row(iv.Start.UTC().Format(time.RFC3339), iv)
		}
		if s.Total != nil {
			row("total", *s.Total)
		}
	}
	cw.Flush()
	return cw.Error()
}
