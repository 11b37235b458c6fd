package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Params are a KPI request as text, from command-line flags or URL query
// parameters. Parse validates every field and names the bad one.
type Params struct {
	From, To     string // date (midnight in TZ) or RFC 3339; defaults: the 30 days before today
	By           string // comma-separated dimensions
	Services     string // comma-separated
	Teams        string
	Environments string
	Systems      string // comma-separated; they and Tiers need Defaults.Catalog
	Tiers        string
	Production   string // comma-separated production environments
	Bucket       string
	TZ           string
	Compare      string // "true" or "false"; empty is false
	DORAReport   string
	MaxGap       string // a Go duration, or unbounded (or 0); empty is the default
	LeadTimeFrom string // commit or merge
	// LeadTimeLookback is a Go duration; empty is the default.
	LeadTimeLookback string

	// Defaults holds what an empty parameter means: its Production,
	// Levels, LevelTables, MaxGap, LeadTimeLookback and PatchDeadlines
	// (from configuration) apply unless a parameter overrides them; its
	// Calendar and ServiceTiers always apply, and its Catalog is the
	// service catalog that system and tier read.
	Defaults Query
	// Limits bound the request (the API's); zero fields keep the
	// command line's bounds.
	Limits Limits
}

// Limits bound a KPI request. A zero field keeps the default: a range of
// at most three years, day buckets over at most 400 days, filters of any
// size. The *Setting fields name the settings in errors.
type Limits struct {
	MaxRange       time.Duration
	MaxBuckets     int
	MaxFilterBytes int

	RangeSetting, BucketsSetting, FilterSetting string
}

// The times ClickHouse's DateTime holds: [1970-01-01, 2106-02-07 06:28:15].
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(1<<32-1, 0).UTC()
)

// maxDimensions is how many dimensions a request slices by: a query's
// rows hold three, and the step (dims in query.go).
const maxDimensions = 3

// Request is a parsed, valid KPI request.
type Request struct {
	Query    Query
	Bucket   Bucket
	Location *time.Location
	Compare  bool
}

// QuerySets is how many sets of summary queries the request runs: one per
// bucket, twice with a comparison.
func (r *Request) QuerySets() int {
	n := len(Ranges(r.Query.From, r.Query.To, r.Bucket, r.Location))
	if r.Compare {
		n *= 2
	}
	return n
}

// Parse validates p.
func (p Params) Parse(now time.Time) (*Request, error) {
	r := &Request{}
	tz := p.TZ
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("tz: unknown time zone %q", tz)
	}
	r.Location = loc
	if r.Bucket, err = ParseBucket(p.Bucket); err != nil {
		return nil, fmt.Errorf("bucket: %w", err)
	}
	r.Query = Query{Production: p.Defaults.Production, Levels: p.Defaults.Levels, LevelTables: p.Defaults.LevelTables,
		MaxGap: p.Defaults.MaxGap, LeadTimeLookback: p.Defaults.LeadTimeLookback, PatchDeadlines: p.Defaults.PatchDeadlines,
		Calendar: p.Defaults.Calendar, ServiceTiers: p.Defaults.ServiceTiers, Catalog: p.Defaults.Catalog,
		RollupMaxAge: p.Defaults.RollupMaxAge, Cache: p.Defaults.Cache}
	q := &r.Query
	n := now.In(loc)
	q.To = time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
	if p.To != "" {
		if q.To, err = ParseTime(p.To, loc); err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
	}
	q.From = q.To.AddDate(0, 0, -30)
	if p.From != "" {
		if q.From, err = ParseTime(p.From, loc); err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
	}
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"from", q.From}, {"to", q.To}} {
		if b.t.Before(minTime) || b.t.After(maxTime) {
			return nil, fmt.Errorf("%s: %s is outside the times ClickHouse stores, %s to %s", b.name, b.t.Format(time.RFC3339),
				minTime.Format(time.DateOnly), maxTime.Format(time.DateOnly))
		}
	}
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("from: %s is not before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if l := p.Limits; l.MaxRange > 0 && q.To.Sub(q.From) > l.MaxRange {
		return nil, fmt.Errorf("to: the range is %s long, longer than %s (%s)", days(q.To.Sub(q.From)), days(l.MaxRange), l.RangeSetting)
	}
	if q.To.Sub(q.From) > 3*366*day {
		return nil, fmt.Errorf("to: the range is longer than three years")
	}
	for _, d := range split(p.By) {
		dim, err := ParseDimension(d)
		if err != nil {
			return nil, fmt.Errorf("by: %w", err)
		}
		if slices.Contains(q.By, dim) {
			return nil, fmt.Errorf("by: %s given twice", dim)
		}
		q.By = append(q.By, dim)
	}
	if len(q.By) > maxDimensions {
		return nil, fmt.Errorf("by: at most %d dimensions, got %d", maxDimensions, len(q.By))
	}
	if n := len(p.Services) + len(p.Teams) + len(p.Environments) + len(p.Systems) + len(p.Tiers) + len(p.Production); p.Limits.MaxFilterBytes > 0 && n > p.Limits.MaxFilterBytes {
		return nil, fmt.Errorf("service, team, environment, system, tier, production: the filters are %d bytes together, more than %d (%s)",
			n, p.Limits.MaxFilterBytes, p.Limits.FilterSetting)
	}
	q.Services, q.Teams, q.Environments = split(p.Services), split(p.Teams), split(p.Environments)
	q.Systems, q.Tiers = split(p.Systems), split(p.Tiers)
	if err := q.checkCatalog(); err != nil {
		return nil, err
	}
	if prod := split(p.Production); len(prod) > 0 {
		q.Production = prod
	}
	if p.DORAReport != "" {
		q.Levels = p.DORAReport
	}
	if _, err := q.levelTable(); err != nil {
		return nil, fmt.Errorf("dora_report: %w", err)
	}
	if p.MaxGap != "" {
		if q.MaxGap, err = ParseGap(p.MaxGap); err != nil {
			return nil, fmt.Errorf("max_gap: %w", err)
		}
	}
	if p.LeadTimeLookback != "" {
		if q.LeadTimeLookback, err = time.ParseDuration(p.LeadTimeLookback); err != nil || q.LeadTimeLookback <= 0 {
			return nil, fmt.Errorf("lead_time_lookback: want a positive duration like 2160h, got %q", p.LeadTimeLookback)
		}
	}
	switch p.LeadTimeFrom {
	case "", "commit":
	case "merge":
		q.LeadTimeFromMerge = true
	default:
		return nil, fmt.Errorf("lead_time_from: want commit or merge, got %q", p.LeadTimeFrom)
	}
	if p.Compare != "" {
		if r.Compare, err = strconv.ParseBool(p.Compare); err != nil {
			return nil, fmt.Errorf("compare: want true or false, got %q", p.Compare)
		}
	}
	if r.Compare && q.From.Add(-q.To.Sub(q.From)).Before(minTime) {
		return nil, fmt.Errorf("compare: the previous period would start before %s", minTime.Format(time.DateOnly))
	}
	if n := len(Ranges(q.From, q.To, r.Bucket, loc)); r.Bucket != Whole && p.Limits.MaxBuckets > 0 && n > p.Limits.MaxBuckets {
		return nil, fmt.Errorf("bucket: %d %s buckets, more than %d (%s); narrow the range or use a longer bucket",
			n, r.Bucket, p.Limits.MaxBuckets, p.Limits.BucketsSetting)
	}
	if r.Bucket == Day && q.To.Sub(q.From) > 400*day {
		return nil, fmt.Errorf("bucket: day buckets over more than 400 days; use week or month")
	}
	return r, nil
}

// days writes a duration in days, or as Go does when shorter than two.
func days(d time.Duration) string {
	if d < 2*day {
		return d.String()
	}
	return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64) + " days"
}

// ParseTime accepts an RFC 3339 time or a date, taken as midnight in loc.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a date (2006-01-02) or an RFC 3339 time, got %q", s)
	}
	return t, nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
