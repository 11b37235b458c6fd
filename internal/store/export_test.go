package store

import (
	"context"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// LegacyClaims is migration 5's claim of the rows stored before it, for
// tests that store rows the old way first.
func LegacyClaims(k event.Kind) string { return legacyClaims(k) }

// WriteRows stores records as Write did before it appended whole columns:
// one row of values at a time, each value boxed. It is the reference the
// columnar path is compared with.
func (s *Store) WriteRows(ctx context.Context, records []Record) error {
	now := time.Now().UTC()
	for _, k := range event.Kinds {
		b, err := s.conn.PrepareBatch(ctx, insertSQL(k))
		if err != nil {
			return err
		}
		for _, r := range records {
			if r.Event.Kind != k {
				continue
			}
			row := append([]any{r.Event.ID}, content(r.Event)...)
			row = append(row, r.Topic, int32(r.Partition), r.Offset, now)
			if err := b.Append(row...); err != nil {
				b.Abort()
				return err
			}
		}
		if err := b.Send(); err != nil {
			return err
		}
	}
	return nil
}

// IDHash is an event id's hash in event_ids.id_hash.
func IDHash(id string) uint64 { return idHash(id) }
