package store

import (
	"context"
	"strings"
	"sync"

	"github.com/ClickHouse/ch-go/proto"
	chcolumn "github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Pre-sized String columns. clickhouse-go gives each String column of a
// batch an empty buffer, which then grows by appending: for a batch of
// 30,000 events that is some twenty reallocations per column, its bytes and
// its offsets copied four times over, and that garbage was two fifths of
// what the ingester allocated. Its only hook is process-wide (clickhouse-go's
// column.WithColStrProvider, asked for the buffers of every String column it
// makes, for inserts and for query results), and it is told the column's
// name alone. So insert arms the sizes of its String columns, by name, while
// it prepares its batch (the columns are made then, from the header the
// server sends), and the provider hands each armed name its room once.
// Preparing a sized batch is serialised for that: one round trip, before any
// value is sent; the values are sent side by side as before.
//
// A column made at that moment by anything else in the process (a query's
// result, another package's insert) may take a size armed for a column of
// the same name. That costs memory or a regrowth, never correctness: the
// room is only capacity, and the column starts empty either way.
var presized = &strSizes{}

func init() { chcolumn.WithColStrProvider(presized.column) }

// strSize is what a String column of a batch will hold: its values (rows;
// an Array(String)'s elements) and their bytes.
type strSize struct{ rows, bytes int }

type strSizes struct {
	prepare sync.Mutex // held while a batch is prepared with sizes armed
	mu      sync.Mutex // guards armed
	armed   map[string]strSize
}

// column is the provider: the buffers of a String column clickhouse-go
// makes, with the room armed for its name, if any.
func (p *strSizes) column(name string) proto.ColStr {
	p.mu.Lock()
	sz, ok := p.armed[name]
	if ok {
		delete(p.armed, name)
	}
	p.mu.Unlock()
	if !ok {
		return proto.ColStr{}
	}
	return proto.ColStr{Buf: make([]byte, 0, sz.bytes), Pos: make([]proto.Position, 0, sz.rows)}
}

// prepareBatch is conn.PrepareBatch(ctx, query) with the String columns
// named in sizes made with that room.
func (p *strSizes) prepareBatch(ctx context.Context, conn driver.Conn, query string, sizes map[string]strSize) (b driver.Batch, err error) {
	p.with(sizes, func() { b, err = conn.PrepareBatch(ctx, query) })
	return b, err
}

// with runs build, which makes clickhouse-go columns (preparing a batch,
// or an external table), with the String columns named in sizes given that
// room. It consumes sizes.
func (p *strSizes) with(sizes map[string]strSize, build func()) {
	if len(sizes) == 0 {
		build()
		return
	}
	p.prepare.Lock()
	defer p.prepare.Unlock()
	p.mu.Lock()
	p.armed = sizes
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.armed = nil
		p.mu.Unlock()
	}()
	build()
}

// insertColumns are the column names an INSERT INTO t (a, b, c) lists.
func insertColumns(query string) []string {
	open, end := strings.IndexByte(query, '('), strings.LastIndexByte(query, ')')
	if open < 0 || end < open {
		return nil
	}
	names := strings.Split(query[open+1:end], ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	return names
}
