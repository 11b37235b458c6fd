package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/go-faster/city"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Event identity. An event id means one content for ever: the first content
// accepted for it. Claim enforces this before rows are written, with the
// event_ids table (migration 5), which records per event id the content
// hashes that were claimed and the one that was accepted. It is keyed by
// event id alone, so it does not depend on the month of the event (the
// event tables are partitioned by month) nor on the entity the message
// names.
//
// For each event id of a batch, Claim
//
//  1. inserts a claim of the first content the batch has for the id;
//  2. reads the contents claimed for the id. If this content is the only
//     one, it is accepted and its records written. If a content was
//     accepted (step 3), a record with that content is accepted again (a
//     replay or a duplicate) and any other is a conflict. If several are
//     claimed and none accepted, the rows stored decide: rows are written
//     only once their content is accepted, so a content stored is the one
//     accepted; with none stored, the id is refused;
//  3. where the rows decided for this content, inserts its acceptance, so
//     that the id's next messages need not read the rows back (and so for
//     ids claimed by migration 5, below).
//
// So the common case, a new id, costs one insert and one read of three
// columns; the claims' kind, entity and source are read only for the ids
// that need them.
//
// Two ingesters may race on one id, with different contents arriving on
// two partitions at once. Whichever claim is visible first is seen by the
// other's read, so at most one content is ever the only one claimed, and
// so accepted; if both claims are visible to both reads, neither is
// accepted, both messages are dead-lettered and, as neither is stored, the
// id stays refused (so it does when a crash falls between a claim and its
// rows and other content comes before the replay). A content accepted and
// not yet stored refuses other content just the same. A crash anywhere
// replays the batch, and every step is idempotent. So the event tables
// never hold two contents for one id, and the views give the same answer
// before and after ClickHouse merges rows away. This needs reads to see
// acknowledged inserts: a single server, or a cluster with
// insert_distributed_sync=1 (and, on several replicas, insert_quorum with
// select_sequential_consistency); Claim fails, to be retried, when its own
// claim is not visible.
//
// Acceptances written by releases before this rule (one per id) are still
// read as such.
//
// Rows written before migration 5 are claimed by the migration as "legacy",
// without a content hash; their content is read back from the event table
// when a message with their id arrives.

// Claim states, stored in event_ids.state (the table keeps the highest per
// id and content).
const (
	stateClaimed  uint8 = 0
	stateAccepted uint8 = 1
	stateLegacy   uint8 = 2 // stored before migration 5; the content is in the event table
)

// Conflict is a record refused because its event id already means, or was
// claimed at the same time for, other content.
type Conflict struct {
	Record Record
	// Detail names the id, what differs and where the other content came
	// from.
	Detail string
}

// claim is one content claimed for an event id.
type claim struct {
	id        string
	hash      hash
	state     uint8
	kind      event.Kind
	entity    string // the entity id: the first column of the event table's sorting key
	target    string // patches: the second
	eventTime time.Time
	topic     string
	partition int32
	offset    int64
}

func (c claim) source() string {
	return fmt.Sprintf("%s/%d offset %d", c.topic, c.partition, c.offset)
}

// candidate is a record with its content's hash, and, for a batch's
// first content of an id (Claim's proposed), the id's hash (idHash).
type candidate struct {
	rec    Record
	hash   hash
	idHash uint64
}

// The most stored contents Claim reads back per batch to say what
// differs; further conflicts of the batch get a shorter reason.
const maxDiffLoads = 64

// Claim decides which records may be stored: it returns those to write (in
// their order) and the conflicts. Records whose content is already
// accepted are returned again; writing them is idempotent. It is safe to
// call again with the same records after an error.
func (s *Store) Claim(ctx context.Context, records []Record) ([]Record, []Conflict, error) {
	if len(records) == 0 {
		return nil, nil, nil
	}
	cands := make([]candidate, len(records))
	owner := make([]int32, len(records))           // the index in proposed of each record's id
	first := make(map[string]int32, len(records))  // an id's index in proposed
	proposed := make([]candidate, 0, len(records)) // the batch's first content of each id
	mixed := make([]bool, 0, len(records))         // whether the batch has other content for the id too
	var buf []byte
	for i, r := range records {
		cands[i] = candidate{rec: r, hash: r.hash}
		if !r.hashed {
			cands[i].hash, buf = eventHash(r.Event, buf)
		}
		j, ok := first[r.Event.ID]
		switch {
		case !ok:
			j = int32(len(proposed))
			first[r.Event.ID] = j
			c := cands[i]
			c.idHash = idHash(r.Event.ID)
			proposed = append(proposed, c)
			mixed = append(mixed, false)
		case cands[i].hash != proposed[j].hash:
			mixed[j] = true
		}
		owner[i] = j
	}
	if err := s.insertClaims(ctx, proposed, stateClaimed); err != nil {
		return nil, nil, fmt.Errorf("claim %d event ids: %w", len(proposed), err)
	}
	alone, err := s.claimedAlone(ctx, proposed)
	if err != nil {
		return nil, nil, fmt.Errorf("read event ids: %w", err)
	}
	// Most ids have no claim but the batch's own, and are accepted. The
	// others (claimed for other content, stored before migration 5, with
	// several contents in this batch, or not visible yet) are decided from
	// their claims read whole, for their kind, entity and source.
	var rest []candidate
	byID := map[string][]int{}
	for i, c := range cands {
		if j := owner[i]; !alone[j] || mixed[j] {
			if len(byID[c.rec.Event.ID]) == 0 {
				rest = append(rest, proposed[j])
			}
			byID[c.rec.Event.ID] = append(byID[c.rec.Event.ID], i)
		}
	}
	var (
		accepted  map[string]hash
		known     map[string][]claim
		conflicts []Conflict
	)
	if len(rest) > 0 {
		if accepted, known, conflicts, err = s.decide(ctx, rest, cands, byID); err != nil {
			return nil, nil, err
		}
	}

	// Every record of an id with an accepted content is written if it has
	// that content, and refused otherwise, saying what differs.
	out := make([]Record, 0, len(records))
	var differing []candidate
	for i, c := range cands {
		if j := owner[i]; alone[j] && !mixed[j] {
			out = append(out, c.rec)
			continue
		}
		a, ok := accepted[c.rec.Event.ID]
		switch {
		case !ok: // refused by decide
		case c.hash == a:
			out = append(out, c.rec)
		default:
			differing = append(differing, c)
		}
	}
	if len(differing) > 0 {
		details, err := s.describeConflicts(ctx, differing, accepted, byID, cands, known)
		if err != nil {
			return nil, nil, err
		}
		for i, c := range differing {
			conflicts = append(conflicts, Conflict{Record: c.rec, Detail: details[i]})
		}
	}
	return out, conflicts, nil
}

// decide decides the ids of proposed, the first content of each in the
// batch, from their claims read whole: it returns the content accepted for
// each id that has one, the claims, and the conflicts of the ids refused.
// byID indexes the batch's records (cands) of these ids.
func (s *Store) decide(ctx context.Context, proposed, cands []candidate, byID map[string][]int) (map[string]hash, map[string][]claim, []Conflict, error) {
	ids := make([]string, len(proposed))
	for i, c := range proposed {
		ids[i] = c.rec.Event.ID
	}
	known, err := s.claims(ctx, ids)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read the claims of %d event ids: %w", len(ids), err)
	}
	if known, err = s.resolveLegacy(ctx, known); err != nil {
		return nil, nil, nil, err
	}
	stored, err := s.resolveStored(ctx, proposed, known)
	if err != nil {
		return nil, nil, nil, err
	}
	var conflicts []Conflict
	accepted := make(map[string]hash, len(proposed))
	var accepting []candidate
	for _, c := range proposed {
		id := c.rec.Event.ID
		if a, legacy, ok := acceptedHash(known[id]); ok {
			accepted[id] = a
			if legacy && a == c.hash {
				accepting = append(accepting, c) // record the hash, so that the row is not read back again
			}
			continue
		}
		if !claimed(known[id], c.hash) {
			return nil, nil, nil, fmt.Errorf("the claim of event id %q is not visible yet; reads must see acknowledged inserts", id)
		}
		if other, ok := claimedOther(known[id], c.hash); ok {
			if a, ok := stored[id]; ok {
				accepted[id] = a
				if a == c.hash {
					accepting = append(accepting, c) // so that its next messages need not read the row back
				}
				continue
			}
			for _, i := range byID[id] {
				conflicts = append(conflicts, Conflict{Record: cands[i].rec, Detail: fmt.Sprintf(
					"event id %q is claimed for different content by the message at %s, and no content of it is stored: "+
						"both were claimed at once (the id stays refused), or the other is being stored",
					id, other.source())})
			}
			continue
		}
		accepted[id] = c.hash // the only content claimed
	}
	if err := s.insertClaims(ctx, accepting, stateAccepted); err != nil {
		return nil, nil, nil, fmt.Errorf("accept %d event ids: %w", len(accepting), err)
	}
	return accepted, known, conflicts, nil
}

// resolveStored decides the ids of proposed that have several contents
// claimed and none accepted: by the rows stored. Rows are written only
// once their content is accepted, and at most one content of an id is
// ever accepted (see Claim), so the content of an id's stored rows is
// the one accepted; an id with none stored stays refused. It returns the
// accepted content of the ids it decided.
func (s *Store) resolveStored(ctx context.Context, proposed []candidate, known map[string][]claim) (map[string]hash, error) {
	var load []claim
	var open []string
	for _, c := range proposed {
		id := c.rec.Event.ID
		cs := known[id]
		if _, _, ok := acceptedHash(cs); ok || !claimed(cs, c.hash) {
			continue
		}
		if _, ok := claimedOther(cs, c.hash); !ok {
			continue
		}
		open = append(open, id)
		seen := map[rowKey]bool{}
		for _, k := range cs {
			if !seen[k.key()] {
				seen[k.key()] = true
				load = append(load, k)
			}
		}
	}
	if len(open) == 0 {
		return nil, nil
	}
	rows, err := s.storedContents(ctx, load)
	if err != nil {
		return nil, err
	}
	out := map[string]hash{}
	var buf []byte
	for _, id := range open {
		var found []hash
		seen := map[rowKey]bool{}
		for _, k := range known[id] {
			if seen[k.key()] {
				continue
			}
			seen[k.key()] = true
			for _, vals := range rows[k.key()] {
				var h hash
				h, buf = contentHash(k.kind, vals, buf)
				if !slices.Contains(found, h) {
					found = append(found, h)
				}
			}
		}
		if len(found) == 1 {
			out[id] = found[0]
		}
	}
	return out, nil
}

// describeConflicts says, for each record whose id means other content,
// where that content was first stored from and what differs from it. The
// content is taken from the batch when a record there has it, else read
// back from the event table (for at most maxDiffLoads records).
func (s *Store) describeConflicts(ctx context.Context, differing []candidate, accepted map[string]hash, byID map[string][]int,
	cands []candidate, known map[string][]claim) ([]string, error) {
	type origin struct {
		from string // where the accepted content was first stored from
		vals []any  // the accepted content, if in the batch
		kind event.Kind
		c    *claim // the claim to read the content back through
	}
	origins := make([]origin, len(differing))
	var load []claim
	for i, c := range differing {
		id := c.rec.Event.ID
		a := accepted[id]
		o := &origins[i]
		for _, k := range known[id] {
			if k.hash == a {
				o.from, o.kind, o.c = "first from "+k.source(), k.kind, &k
				break
			}
		}
		for _, j := range byID[id] {
			if b := cands[j]; b.hash == a {
				o.vals, o.kind = content(b.rec.Event), b.rec.Event.Kind
				break
			}
		}
		if o.vals == nil && o.c != nil && len(load) < maxDiffLoads {
			load = append(load, *o.c)
		}
	}
	stored, err := s.storedContents(ctx, load)
	if err != nil {
		return nil, err
	}
	details := make([]string, len(differing))
	for i, c := range differing {
		o := origins[i]
		diff := "what differs is not shown: too many conflicts in this batch"
		switch {
		case o.vals != nil:
			diff = describeDiff(o.kind, o.vals, c.rec.Event.Kind, content(c.rec.Event))
		case o.c != nil && len(stored[o.c.key()]) > 0:
			diff = describeDiff(o.kind, stored[o.c.key()][0], c.rec.Event.Kind, content(c.rec.Event))
		case o.c != nil && len(load) < maxDiffLoads:
			diff = "its stored row is not readable yet"
		}
		if o.from == "" {
			o.from = "first stored from an unknown message"
		}
		details[i] = fmt.Sprintf("event id %q already means other content (%s): %s", c.rec.Event.ID, o.from, diff)
	}
	return details, nil
}

// resolveLegacy replaces the legacy claims by the content hashes of the
// rows they stand for, read back from the event tables, as accepted claims.
func (s *Store) resolveLegacy(ctx context.Context, known map[string][]claim) (map[string][]claim, error) {
	var legacy []claim
	for _, cs := range known {
		for _, c := range cs {
			if c.state == stateLegacy {
				legacy = append(legacy, c)
			}
		}
	}
	if len(legacy) == 0 {
		return known, nil
	}
	stored, err := s.storedContents(ctx, legacy)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]claim, len(known))
	var buf []byte
	for id, cs := range known {
		for _, c := range cs {
			if c.state != stateLegacy {
				out[id] = append(out[id], c)
				continue
			}
			for _, vals := range stored[c.key()] {
				rc := c
				rc.hash, buf = contentHash(c.kind, vals, buf)
				out[id] = append(out[id], rc)
			}
		}
	}
	return out, nil
}

// acceptedHash returns the content accepted for an id, and whether it was
// stored before migration 5. Legacy rows stored with several contents
// accept none, and refuse every new message (claimedOther finds them).
func acceptedHash(cs []claim) (a hash, legacy, ok bool) {
	n := 0
	for _, c := range cs {
		if (c.state == stateAccepted || c.state == stateLegacy) && (n == 0 || c.hash != a) {
			a, legacy = c.hash, c.state == stateLegacy
			n++
		}
	}
	return a, legacy, n == 1
}

// claimed reports whether an id's claims hold content h.
func claimed(cs []claim, h hash) bool {
	for _, c := range cs {
		if c.hash == h {
			return true
		}
	}
	return false
}

// claimedOther returns a claim of an id for content other than h.
func claimedOther(cs []claim, h hash) (claim, bool) {
	for _, c := range cs {
		if c.hash != h {
			return c, true
		}
	}
	return claim{}, false
}

// claimedAlone reads the contents claimed for the ids of proposed and
// reports, by index, whether an id's only claim is its content in
// proposed, claimed and no more: the common case, which needs nothing
// else. It matches the ids by their 64-bit hashes (idHash, the column
// id_hash of migration 17) and reads three narrow columns: a batch's ids
// fall in nearly every granule of event_ids, so the read scans the table
// whichever column it matches, and 8 bytes a row scan faster than the ids
// (at 5M claims and 31,000 ids, 0.11 s against 0.26 s). A hash shared by
// another id can only add a claim that is not the id's own, which sends
// the id to the exact read (decide), as do ids of the batch that share a
// hash; so the answer is the one the ids themselves give.
func (s *Store) claimedAlone(ctx context.Context, proposed []candidate) ([]bool, error) {
	byHash := make(map[uint64]int32, len(proposed))
	other := make([]bool, len(proposed))
	for j, c := range proposed {
		h := c.idHash
		if k, ok := byHash[h]; ok {
			other[j], other[k] = true, true
			continue
		}
		byHash[h] = int32(j)
	}
	tbl, err := ext.NewTable("batch_ids", ext.Column("h", "UInt64"))
	if err != nil {
		return nil, err
	}
	for h := range byHash {
		if err := tbl.Append(h); err != nil {
			return nil, err
		}
	}
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), `SELECT id_hash, content_hash, max(state)
	FROM event_ids
	WHERE id_hash IN batch_ids
	GROUP BY id_hash, content_hash`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	own := make([]bool, len(proposed))
	var (
		h     uint64
		ch    string
		state uint8
	)
	for rows.Next() {
		if err := rows.Scan(&h, &ch, &state); err != nil {
			return nil, err
		}
		j, ok := byHash[h]
		if !ok {
			continue
		}
		if c := proposed[j]; state == stateClaimed && string(c.hash[:]) == ch {
			own[j] = true
		} else {
			other[j] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for j := range own {
		own[j] = own[j] && !other[j]
	}
	return own, nil
}

// idHash is an event id's hash in event_ids.id_hash: ClickHouse's
// cityHash64 of the id, which the column's default computes for claims
// written before migration 17.
func idHash(id string) uint64 {
	return city.CH64(unsafe.Slice(unsafe.StringData(id), len(id)))
}

// idTable is ids as the external table batch_ids.
func idTable(ids []string) (*ext.Table, error) {
	sz := strSize{rows: len(ids)}
	for _, id := range ids {
		sz.bytes += len(id)
	}
	var (
		tbl *ext.Table
		err error
	)
	presized.with(map[string]strSize{"id": sz}, func() { tbl, err = ext.NewTable("batch_ids", ext.Column("id", "String")) })
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := tbl.Append(id); err != nil {
			return nil, err
		}
	}
	return tbl, nil
}

// claims reads the claims of ids, by id. The ids go to ClickHouse as an
// external table, so that a batch of any size fits in one query.
func (s *Store) claims(ctx context.Context, ids []string) (map[string][]claim, error) {
	tbl, err := idTable(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), `SELECT
		event_id, content_hash, max(state), any(kind), any(entity_id), any(target), min(event_time),
		argMin(source_topic, claimed_at), argMin(source_partition, claimed_at), argMin(source_offset, claimed_at)
	FROM event_ids
	WHERE event_id IN batch_ids
	GROUP BY event_id, content_hash
	ORDER BY event_id, min(claimed_at), content_hash`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]claim{}
	for rows.Next() {
		var (
			h, kind string
			c       claim
		)
		if err := rows.Scan(&c.id, &h, &c.state, &kind, &c.entity, &c.target, &c.eventTime, &c.topic, &c.partition, &c.offset); err != nil {
			return nil, err
		}
		copy(c.hash[:], h)
		c.kind = event.Kind(kind)
		out[c.id] = append(out[c.id], c)
	}
	return out, rows.Err()
}

func (s *Store) insertClaims(ctx context.Context, cs []candidate, state uint8) error {
	if len(cs) == 0 {
		return nil
	}
	n, now := len(cs), time.Now().UTC()
	cols := []col[*candidate]{
		newCol(n, func(c *candidate) string { return c.rec.Event.ID }),
		newCol(n, func(c *candidate) string { return string(c.hash[:]) }),
		newCol(n, func(*candidate) uint8 { return state }),
		newCol(n, func(c *candidate) string { return string(c.rec.Event.Kind) }),
		newCol(n, func(c *candidate) string { entity, _ := entityColumns(c.rec.Event); return entity }),
		newCol(n, func(c *candidate) string { _, target := entityColumns(c.rec.Event); return target }),
		newCol(n, func(c *candidate) time.Time { return ts(c.rec.Event.Time) }),
		newCol(n, func(c *candidate) string { return c.rec.Topic }),
		newCol(n, func(c *candidate) int32 { return int32(c.rec.Partition) }),
		newCol(n, func(c *candidate) int64 { return c.rec.Offset }),
		newCol(n, func(*candidate) time.Time { return now }),
		newCol(n, func(c *candidate) uint64 { return c.idHash }),
	}
	for i := range cs {
		for _, c := range cols {
			c.add(&cs[i])
		}
	}
	return insert(ctx, s, "INSERT INTO event_ids (event_id, content_hash, state, kind, entity_id, target, event_time, "+
		"source_topic, source_partition, source_offset, claimed_at, id_hash)", cols)
}

// entityColumns are the sorting-key columns before event_id of e's table.
func entityColumns(e *event.Event) (entity, target string) {
	switch e.Kind {
	case event.KindDeployment:
		return e.Deployment.ID, ""
	case event.KindIncident:
		return e.Incident.ID, ""
	case event.KindPatch:
		return e.Patch.ID, e.Patch.Target
	default:
		return e.Change.ID, ""
	}
}

// rowKey finds an event's rows: its table's sorting key.
type rowKey struct {
	kind                  event.Kind
	entity, target, event string
}

func (c claim) key() rowKey { return rowKey{c.kind, c.entity, c.target, c.id} }

// storedContents reads back from the event tables the distinct contents
// stored for each claim's event id, through the tables' sorting keys.
func (s *Store) storedContents(ctx context.Context, cs []claim) (map[rowKey][][]any, error) {
	byKind := map[event.Kind][]rowKey{}
	for _, c := range cs {
		byKind[c.kind] = append(byKind[c.kind], c.key())
	}
	out := map[rowKey][][]any{}
	for k, keys := range byKind {
		table, ok := tables[k]
		if !ok {
			continue
		}
		tbl, err := ext.NewTable("batch_keys", ext.Column("entity", "String"), ext.Column("target", "String"), ext.Column("id", "String"))
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			if err := tbl.Append(key.entity, key.target, key.event); err != nil {
				return nil, err
			}
		}
		fs := contentFields(k)
		keyCols, keySel := kindFields[k][0].name, "entity"
		if k == event.KindPatch {
			keyCols, keySel = keyCols+", target", "entity, target"
		}
		q := "SELECT event_id, " + strings.Join(fieldNames(fs), ", ") + " FROM " + table +
			" WHERE (" + keyCols + ", event_id) IN (SELECT " + keySel + ", id FROM batch_keys) LIMIT 16 BY " + keyCols + ", event_id"
		if err := s.readContents(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), k, q, out); err != nil {
			return nil, fmt.Errorf("read back stored %s events: %w", k, err)
		}
	}
	return out, nil
}

func (s *Store) readContents(ctx context.Context, k event.Kind, q string, out map[rowKey][][]any) error {
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	fs := contentFields(k)
	seen := map[rowKey]map[hash]bool{}
	var buf []byte
	for rows.Next() {
		var id string
		dst := []any{&id}
		for _, f := range fs {
			dst = append(dst, newOfType(f))
		}
		if err := rows.Scan(dst...); err != nil {
			return err
		}
		vals := make([]any, len(fs))
		for i := range fs {
			vals[i] = deref(dst[i+1])
		}
		key := rowKey{kind: k, entity: vals[len(commonFields)].(string), event: id}
		if k == event.KindPatch {
			key.target = vals[len(commonFields)+1].(string)
		}
		var h hash
		h, buf = contentHash(k, vals, buf)
		if seen[key] == nil {
			seen[key] = map[hash]bool{}
		}
		if !seen[key][h] {
			seen[key][h] = true
			out[key] = append(out[key], vals)
		}
	}
	return rows.Err()
}

func newOfType(f field) any {
	switch f.get(&event.Event{Deployment: &event.Deployment{}, Incident: &event.Incident{}, Patch: &event.Patch{}, Change: &event.Change{}}).(type) {
	case time.Time:
		return new(time.Time)
	case uint8:
		return new(uint8)
	case []string:
		return new([]string)
	default:
		return new(string)
	}
}

func deref(p any) any {
	switch p := p.(type) {
	case *time.Time:
		return p.UTC()
	case *uint8:
		return *p
	case *[]string:
		return nonNil(*p)
	default:
		return *p.(*string)
	}
}

// describeDiff says how content b differs from a: the kind, or the first
// fields that differ with both values, each cut short.
func describeDiff(ka event.Kind, a []any, kb event.Kind, b []any) string {
	if ka != kb {
		return fmt.Sprintf("it is a %s event there, a %s event here", ka, kb)
	}
	fs := contentFields(ka)
	var diffs []string
	n := 0
	for i, f := range fs {
		if sameValue(a[i], b[i]) {
			continue
		}
		n++
		if len(diffs) < 3 {
			diffs = append(diffs, fmt.Sprintf("%s %s there, %s here", f.name, showValue(a[i]), showValue(b[i])))
		}
	}
	if n > len(diffs) {
		diffs = append(diffs, strconv.Itoa(n-len(diffs))+" more fields")
	}
	return "it differs in " + strings.Join(diffs, "; ")
}

// showValue quotes a stored value, cut to 40 bytes.
func showValue(v any) string {
	var s string
	switch v := v.(type) {
	case time.Time:
		if !v.After(epoch) {
			return "unset"
		}
		return v.Format(time.RFC3339)
	case []string:
		s = strings.Join(v, ",")
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
