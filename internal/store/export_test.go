package store

import "github.com/opsmetrics/opsmetrics/internal/event"

// LegacyClaims is migration 5's claim of the rows stored before it, for
// tests that store rows the old way first.
func LegacyClaims(k event.Kind) string { return legacyClaims(k) }
