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
	var out [][2]time.Time
	for start := bucketStart(from, b, loc); start.Before(to); {
		next := nextBucket(start, b)
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

// bucketStart is the start, in loc, of the bucket b that holds t.
func bucketStart(t time.Time, b Bucket, loc *time.Location) time.Time {
	t = t.In(loc)
	start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	switch b {
	case Week:
		start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7))
	case Month:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	}
	return start
}

func nextBucket(start time.Time, b Bucket) time.Time {
	switch b {
	case Week:
		return start.AddDate(0, 0, 7)
	case Month:
		return start.AddDate(0, 1, 0)
	}
	return start.AddDate(0, 0, 1)
}

// Partial reports whether the range [lo, hi), one of Ranges, covers only
// part of its bucket: a range's edge clipped it (a week of one day).
func Partial(lo, hi time.Time, b Bucket, loc *time.Location) bool {
	if b == Whole {
		return false
	}
	if loc == nil {
		loc = time.UTC
	}
	start := bucketStart(lo, b, loc)
	return !start.Equal(lo) || !nextBucket(start, b).Equal(hi)
}

// Run computes the report of q: one summary per slice and bucket, each with
// the summary of the previous period of the same length when compare is set.
func Run(ctx context.Context, conn driver.Conn, q Query, b Bucket, loc *time.Location, compare bool) (*Report, error) {
	table, err := q.levelTable()
	if err != nil {
		return nil, err
	}
	if loc == nil {
		loc = time.UTC
	}
	r := &Report{From: q.From.In(loc), To: q.To.In(loc), By: q.By, Bucket: b, TimeZone: loc.String(), LevelTable: table.Name}
	// Daily buckets of UTC days come from one read of the KPI rollup,
	// when it serves them, each day judged as its own range.
	var days map[int64][]*Summary
	if b == Day && !compare && loc.String() == "UTC" && q.Step == "" {
		if days, err = daysFromRollup(ctx, conn, q, table); err != nil {
			return nil, err
		}
	}
	for _, rg := range Ranges(q.From, q.To, b, loc) {
		bq := q
		bq.From, bq.To = rg[0], rg[1]
		sums, ok := days[rg[0].Unix()]
		if !ok {
			var err error
			if sums, err = Summaries(ctx, conn, bq); err != nil {
				return nil, err
			}
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
				// Bucket times in the report's time zone, as From and To.
				start, end := rg[0].In(loc), rg[1].In(loc)
				s.Bucket, s.BucketEnd, s.Partial = &start, &end, Partial(rg[0], rg[1], b, loc)
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

// daysFromRollup is the summaries of each UTC day of q, by the day's
// start, as Summaries of that day would give them, read from the KPI
// rollup in one query; nil when the rollup does not serve q. A day with
// no summary is left out (its caller asks Summaries for it: without
// slices, Summaries gives one even over no rows).
func daysFromRollup(ctx context.Context, conn driver.Conn, q Query, levels LevelTable) (map[int64][]*Summary, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	dq := q
	dq.Step, dq.perDay = StepDay, true
	r, ok, err := rollupFor(ctx, conn, dq)
	if err != nil || !ok {
		return nil, err
	}
	sums, err := fromRollup(ctx, conn, dq, r, levels)
	if err != nil {
		return nil, err
	}
	out := map[int64][]*Summary{}
	for _, s := range sums {
		if s.Bucket == nil {
			continue
		}
		k := s.Bucket.Unix()
		s.Bucket = nil
		out[k] = append(out[k], s)
	}
	return out, nil
}
