package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	_ "time/tzdata" // time zones work on machines without tzdata
)

// Bucket is the time bucket KPIs are computed per.
type Bucket string

// Buckets. The empty bucket is the whole range.
const (
	Whole Bucket = ""
	Day   Bucket = "day"
	Week  Bucket = "week" // ISO weeks, from Monday
	Month Bucket = "month"
)

// ParseBucket accepts "", day, week and month.
func ParseBucket(s string) (Bucket, error) {
	switch b := Bucket(strings.TrimSpace(s)); b {
	case Whole, Day, Week, Month:
		return b, nil
	}
	return "", fmt.Errorf("unknown bucket %q: want day, week or month", s)
}

// Ranges splits [from, to) at the bucket boundaries of loc. The first and
// last ranges are clipped to [from, to).
func Ranges(from, to time.Time, b Bucket, loc *time.Location) [][2]time.Time {
	if b == Whole {
		return [][2]time.Time{{from, to}}
	}
	if loc == nil {
		loc = time.UTC
	}
	t := from.In(loc)
	start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	switch b {
	case Week:
		start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7))
	case Month:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	}
	var out [][2]time.Time
	for start.Before(to) {
		var next time.Time
		switch b {
		case Day:
			next = start.AddDate(0, 0, 1)
		case Week:
			next = start.AddDate(0, 0, 7)
		case Month:
			next = start.AddDate(0, 1, 0)
		}
		lo, hi := start, next
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		out = append(out, [2]time.Time{lo.UTC(), hi.UTC()})
		start = next
	}
	return out
}

// Run computes the report of q: one summary per slice and bucket, each with
// the summary of the previous period of the same length when compare is set.
func Run(ctx context.Context, conn driver.Conn, q Query, b Bucket, loc *time.Location, compare bool) (*Report, error) {
	table, err := q.levelTable()
	if err != nil {
		return nil, err
	}
	r := &Report{From: q.From, To: q.To, By: q.By, Bucket: b, LevelTable: table.Name}
	if loc != nil {
		r.TimeZone = loc.String()
	}
	for _, rg := range Ranges(q.From, q.To, b, loc) {
		bq := q
		bq.From, bq.To = rg[0], rg[1]
		sums, err := Summaries(ctx, conn, bq)
		if err != nil {
			return nil, err
		}
		var prev map[string]*Summary
		if compare {
			pq := bq
			pq.From, pq.To = bq.From.Add(-bq.To.Sub(bq.From)), bq.From
			ps, err := Summaries(ctx, conn, pq)
			if err != nil {
				return nil, err
			}
			prev = map[string]*Summary{}
			for _, p := range ps {
				prev[strings.Join(sliceKey(p, q.By), "\x00")] = p
			}
		}
		for _, s := range sums {
			if b != Whole {
				start := rg[0]
				s.Bucket = &start
			}
			if compare {
				s.Previous = prev[strings.Join(sliceKey(s, q.By), "\x00")]
				if s.Previous == nil { // nothing in that slice before: zero counts, absent rates
					s.Previous = &Summary{Slice: s.Slice, Levels: map[string]string{}, LevelLabels: map[string]string{}}
				}
			}
			r.Summaries = append(r.Summaries, s)
		}
	}
	return r, nil
}
