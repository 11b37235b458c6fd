package metrics

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// Time arithmetic never wraps: ClickHouse's DateTime is an unsigned count
// of seconds, and DateTime ± n wraps around silently (2026 − 60 years is
// 2101). Bound and inlined times are clamped and times shifted in SQL are
// computed in Int64 and clamped (package chsql); durations are compared as
// Int64 seconds from dateDiff, never added to a DateTime.

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

// seconds is d in whole seconds, for binding; Unbounded stays the largest
// Int64.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// ShiftSQL is, for dashboards, the DateTime SQL expression expr (with
// Grafana macros) moved by the integer SQL expression offset of seconds,
// computed in Int64 and clamped (chsql.Shift).
func ShiftSQL(expr, offset string) string {
	s, _ := chsql.Inline(chsql.Shift(chsql.Macro(expr), chsql.Macro(offset)))
	return s
}
