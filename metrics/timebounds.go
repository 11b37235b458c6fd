package metrics

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Time arithmetic never wraps. ClickHouse's DateTime is an unsigned count of
// seconds, and DateTime ± n wraps around silently (2026 − 60 years is 2101);
// ClickHouse 18.16's date tables also end in 2105. So:
//
//   - a time bound a query binds is clamped to [minDateTime, maxDateTime]
//     (bind): "since before 1970" is since 1970;
//   - durations are compared as Int64 seconds from dateDiff, never added to
//     a DateTime;
//   - a DateTime shifted in SQL goes through shiftSQL, which computes in
//     Int64 and clamps.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Unbounded is the attribution gap with no bound: an incident can be blamed
// on any earlier deployment of its service and environment (configuration
// and flags spell it "unbounded", or 0).
const Unbounded = time.Duration(math.MaxInt64)

// MaxBoundedGap is the longest gap other than Unbounded: a century, far
// beyond any history ClickHouse's DateTime can hold.
const MaxBoundedGap = 100 * 365 * 24 * time.Hour

// ParseGap reads an attribution gap: a positive Go duration up to
// MaxBoundedGap, or "unbounded" (or "0") for Unbounded.
func ParseGap(s string) (time.Duration, error) {
	switch strings.TrimSpace(strings.ToLower(s)) {
	case "unbounded", "0", "0s":
		return Unbounded, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("want a duration like 24h, or unbounded, got %q", s)
	case d < 0:
		return 0, fmt.Errorf("want a positive duration like 24h, or unbounded, got %q", s)
	case d > MaxBoundedGap:
		return 0, fmt.Errorf("%s is longer than %dh (a century); for no bound say unbounded", s, int64(MaxBoundedGap/time.Hour))
	}
	return d, nil
}

// clampTime clamps t to what a DateTime holds.
func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minDateTime):
		return minDateTime
	case t.After(maxDateTime):
		return maxDateTime
	}
	return t.UTC()
}

// bind returns args with every time clamped to what a DateTime holds, for
// a query about to run.
func bind(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			a = clampTime(t)
		}
		out[i] = a
	}
	return out
}

// seconds is d in whole seconds, for binding; Unbounded stays the largest
// Int64.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// shiftSQL is the DateTime expression expr moved by offset seconds (an SQL
// expression of an integer), computed in Int64 and clamped to what a
// DateTime holds, so it never wraps.
func shiftSQL(expr, offset string) string {
	return fmt.Sprintf("toDateTime(greatest(least(toInt64(%s) + (%s), %d), 0), 'UTC')", expr, offset, maxDateTime.Unix())
}

// ShiftSQL is shiftSQL for dashboards: expr moved by offset seconds.
func ShiftSQL(expr, offset string) string { return shiftSQL(expr, offset) }
