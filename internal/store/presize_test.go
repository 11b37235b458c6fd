package store

import (
	"slices"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// TestPresizedColumns checks that the String columns made while sizes are
// armed get that room, each armed name once, and that nothing stays armed.
func TestPresizedColumns(t *testing.T) {
	p := &strSizes{}
	type got struct{ bufCap, posCap int }
	made := map[string][]got{}
	build := func(names ...string) func() {
		return func() {
			for _, n := range names {
				c := p.column(n)
				made[n] = append(made[n], got{cap(c.Buf), cap(c.Pos)})
			}
		}
	}
	p.with(map[string]strSize{"event_id": {rows: 3, bytes: 100}, "changes": {rows: 7, bytes: 40}},
		build("event_id", "changes", "event_id", "service"))
	build("event_id", "changes")()

	cases := []struct {
		name string
		want []got
	}{
		{"event_id", []got{{100, 3}, {0, 0}, {0, 0}}}, // armed once; a second column of the name, and one made after, get none
		{"changes", []got{{40, 7}, {0, 0}}},
		{"service", []got{{0, 0}}}, // not armed
	}
	for _, c := range cases {
		if !slices.Equal(made[c.name], c.want) {
			t.Errorf("%s: columns made with (buffer, positions) room %v, want %v", c.name, made[c.name], c.want)
		}
	}
	if p.armed != nil {
		t.Errorf("sizes still armed after with returned: %v", p.armed)
	}
}

// TestInsertColumnsMatch checks that the columns an event table's INSERT
// lists are the columns Write fills, one for one, so that each String
// column is sized by its own values.
func TestInsertColumnsMatch(t *testing.T) {
	for _, k := range event.Kinds {
		names := insertColumns(insertSQL(k))
		cols := eventColumns(k, 0, time.Now())
		if len(names) != len(cols) || names[0] != "event_id" || names[len(names)-1] != "ingested_at" {
			t.Errorf("%s: INSERT lists %d columns %v, Write fills %d", k, len(names), names, len(cols))
		}
	}
}
