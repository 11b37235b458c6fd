package metrics

import (
	"context"
	"fmt"
	"slices"
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
	// Buckets of UTC days, and the ranges they are compared with, come
	// from one read of the KPI rollup when it serves them, each judged as
	// its own range.
	ranges := Ranges(q.From, q.To, b, loc)
	var read map[[2]int64][]*Summary
	if loc.String() == "UTC" && q.Step == "" && (b != Whole || compare) {
		all := slices.Clone(ranges)
		if compare {
			for _, rg := range ranges {
				all = append(all, [2]time.Time{rg[0].Add(-rg[1].Sub(rg[0])), rg[0]})
			}
		}
		if read, err = rangesFromRollup(ctx, conn, q, all, table); err != nil {
			return nil, err
		}
	}
	summaries := func(from, to time.Time) ([]*Summary, error) {
		if sums, ok := read[[2]int64{from.Unix(), to.Unix()}]; ok {
			// A range may be a bucket and the previous range of the next:
			// each use gets its own copies, as Summaries would give.
			out := make([]*Summary, len(sums))
			for i, s := range sums {
				c := *s
				out[i] = &c
			}
			return out, nil
		}
		bq := q
		bq.From, bq.To = from, to
		return Summaries(ctx, conn, bq)
	}
	for _, rg := range ranges {
		sums, err := summaries(rg[0], rg[1])
		if err != nil {
			return nil, err
		}
		var prev map[string]*Summary
		if compare {
			ps, err := summaries(rg[0].Add(-rg[1].Sub(rg[0])), rg[0])
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

// rangesFromRollup is the summaries of each of ranges (whole UTC days),
// by the range's bounds in Unix seconds, as Summaries of that range would
// give them, read from the KPI rollup in one query; nil when the rollup
// does not serve them. A range that appears twice is read once. With
// slices, a range without a summary has none; without, it is left out
// (its caller asks Summaries, which gives one even over no rows).
func rangesFromRollup(ctx context.Context, conn driver.Conn, q Query, ranges [][2]time.Time, levels LevelTable) (map[[2]int64][]*Summary, error) {
	if err := q.check(); err != nil || len(ranges) == 0 {
		return nil, err
	}
	// One range per start: two ranges that start together are the same
	// range (Run's buckets and previous ranges), or read apart.
	byStart := map[int64][2]time.Time{}
	var unique [][2]time.Time
	dq := q
	dq.Step, dq.From, dq.To = StepDay, ranges[0][0], ranges[0][1]
	for _, rg := range ranges {
		if have, ok := byStart[rg[0].Unix()]; ok {
			if !have[1].Equal(rg[1]) {
				return nil, nil
			}
			continue
		}
		byStart[rg[0].Unix()] = rg
		unique = append(unique, rg)
		if rg[0].Before(dq.From) {
			dq.From = rg[0]
		}
		if rg[1].After(dq.To) {
			dq.To = rg[1]
		}
		if !StepDay.Truncate(rg[0]).Equal(rg[0]) || !StepDay.Truncate(rg[1]).Equal(rg[1]) {
			return nil, nil
		}
	}
	dq.ranges = unique
	r, ok, err := rollupFor(ctx, conn, dq)
	if err != nil || !ok {
		return nil, err
	}
	sums, err := fromRollup(ctx, conn, dq, r, levels)
	if err != nil {
		return nil, err
	}
	out := map[[2]int64][]*Summary{}
	if len(q.By) > 0 {
		for _, rg := range unique {
			out[[2]int64{rg[0].Unix(), rg[1].Unix()}] = []*Summary{}
		}
	}
	for _, s := range sums {
		if s.Bucket == nil {
			continue
		}
		rg, ok := byStart[s.Bucket.Unix()]
		if !ok {
			continue
		}
		s.Bucket = nil
		k := [2]int64{rg[0].Unix(), rg[1].Unix()}
		out[k] = append(out[k], s)
	}
	return out, nil
}
