package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// A field is one content column of an event table: its name and how an
// event gives its value, through exactly one of the typed getters. The
// fields of a kind are, in order, the columns between the event's identity
// (event_id) and where it came from (the source columns): what the event
// says. Inserting, hashing and comparing events all read these lists, so
// they cannot disagree.
type field struct {
	name string
	str  func(*event.Event) string
	at   func(*event.Event) time.Time // stored through ts: unset is the epoch
	flag func(*event.Event) bool      // stored as UInt8 0 or 1
	list func(*event.Event) []string  // stored as Array(String); nil is []
	// added is set on a string field added to its table after events were
	// first stored (actor, pipeline): content hashes leave it out when it
	// is empty, so that an event stored before it existed keeps its
	// identity (event_ids) and a replay of it is no id_conflict.
	added bool
}

func str(name string, f func(*event.Event) string) field    { return field{name: name, str: f} }
func at(name string, f func(*event.Event) time.Time) field  { return field{name: name, at: f} }
func flag(name string, f func(*event.Event) bool) field     { return field{name: name, flag: f} }
func list(name string, f func(*event.Event) []string) field { return field{name: name, list: f} }
func added(f field) field                                   { f.added = true; return f }

// get is the value e stores in the field: a string, time.Time, uint8 or
// []string.
func (f field) get(e *event.Event) any {
	switch {
	case f.str != nil:
		return f.str(e)
	case f.at != nil:
		return ts(f.at(e))
	case f.flag != nil:
		return boolByte(f.flag(e))
	default:
		return nonNil(f.list(e))
	}
}

var commonFields = []field{
	at("event_time", func(e *event.Event) time.Time { return e.Time }),
	str("encoding", func(e *event.Event) string { return string(e.Encoding) }),
}

var kindFields = map[event.Kind][]field{
	event.KindDeployment: {
		str("deployment_id", func(e *event.Event) string { return e.Deployment.ID }),
		str("service", func(e *event.Event) string { return e.Deployment.Service }),
		str("team", func(e *event.Event) string { return e.Deployment.Team }),
		str("environment", func(e *event.Event) string { return e.Deployment.Environment }),
		at("started_at", func(e *event.Event) time.Time { return e.Deployment.StartedAt }),
		at("finished_at", func(e *event.Event) time.Time { return e.Deployment.FinishedAt }),
		str("status", func(e *event.Event) string { return string(e.Deployment.Status) }),
		str("version", func(e *event.Event) string { return e.Deployment.Version }),
		str("artifact", func(e *event.Event) string { return e.Deployment.Artifact }),
		flag("unplanned", func(e *event.Event) bool { return e.Deployment.Unplanned }),
		str("fixes_incident", func(e *event.Event) string { return e.Deployment.FixesIncident }),
		list("changes", func(e *event.Event) []string { return e.Deployment.Changes }),
		added(str("actor", func(e *event.Event) string { return e.Deployment.Actor })),
		added(str("pipeline", func(e *event.Event) string { return e.Deployment.Pipeline })),
	},
	event.KindIncident: {
		str("incident_id", func(e *event.Event) string { return e.Incident.ID }),
		str("title", func(e *event.Event) string { return e.Incident.Title }),
		str("service", func(e *event.Event) string { return e.Incident.Service }),
		str("team", func(e *event.Event) string { return e.Incident.Team }),
		str("environment", func(e *event.Event) string { return e.Incident.Environment }),
		str("severity", func(e *event.Event) string { return string(e.Incident.Severity) }),
		str("detection_source", func(e *event.Event) string { return string(e.Incident.DetectionSource) }),
		at("impact_started_at", func(e *event.Event) time.Time { return e.Incident.ImpactStartedAt }),
		at("detected_at", func(e *event.Event) time.Time { return e.Incident.DetectedAt }),
		at("acknowledged_at", func(e *event.Event) time.Time { return e.Incident.AcknowledgedAt }),
		at("mitigated_at", func(e *event.Event) time.Time { return e.Incident.MitigatedAt }),
		at("resolved_at", func(e *event.Event) time.Time { return e.Incident.ResolvedAt }),
		str("cause_deployment_id", func(e *event.Event) string { return e.Incident.CauseDeployment }),
		str("cause_commit", func(e *event.Event) string { return e.Incident.CauseCommit }),
	},
	event.KindPatch: {
		str("patch_id", func(e *event.Event) string { return e.Patch.ID }),
		str("target", func(e *event.Event) string { return e.Patch.Target }),
		str("target_type", func(e *event.Event) string { return string(e.Patch.TargetType) }),
		str("severity", func(e *event.Event) string { return string(e.Patch.Severity) }),
		str("service", func(e *event.Event) string { return e.Patch.Service }),
		str("team", func(e *event.Event) string { return e.Patch.Team }),
		str("environment", func(e *event.Event) string { return e.Patch.Environment }),
		at("released_at", func(e *event.Event) time.Time { return e.Patch.ReleasedAt }),
		at("applied_at", func(e *event.Event) time.Time { return e.Patch.AppliedAt }),
		str("outcome", func(e *event.Event) string { return string(e.Patch.Outcome) }),
	},
	event.KindChange: {
		str("change_id", func(e *event.Event) string { return e.Change.ID }),
		str("service", func(e *event.Event) string { return e.Change.Service }),
		str("team", func(e *event.Event) string { return e.Change.Team }),
		str("repository", func(e *event.Event) string { return e.Change.Repository }),
		str("author", func(e *event.Event) string { return e.Change.Author }),
		at("authored_at", func(e *event.Event) time.Time { return e.Change.AuthoredAt }),
		at("merged_at", func(e *event.Event) time.Time { return e.Change.MergedAt }),
	},
}

// tables are the raw event tables by kind.
var tables = map[event.Kind]string{
	event.KindDeployment: "deployment_events",
	event.KindIncident:   "incident_events",
	event.KindPatch:      "patch_events",
	event.KindChange:     "change_events",
}

// contentFields are the fields whose values make up an event's content.
func contentFields(k event.Kind) []field { return kindContent[k] }

var kindContent = func() map[event.Kind][]field {
	m := map[event.Kind][]field{}
	for k, fs := range kindFields {
		m[k] = append(slices.Clip(commonFields), fs...)
	}
	return m
}()

func fieldNames(fs []field) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// insertSQL is the batch INSERT of an event table, with its columns named.
func insertSQL(k event.Kind) string {
	return "INSERT INTO " + tables[k] + " (event_id, " + strings.Join(fieldNames(contentFields(k)), ", ") + ", " + sourceColumns + ")"
}

// content returns the values of e's content fields, as stored.
func content(e *event.Event) []any {
	fs := contentFields(e.Kind)
	vals := make([]any, len(fs))
	for i, f := range fs {
		vals[i] = f.get(e)
	}
	return vals
}

// A col is one column of a batch INSERT, filled value by value from rows of
// type R and handed to clickhouse-go whole (columnar appends cost a fraction
// of appending rows of values).
type col[R any] interface {
	add(R)
	appendTo(driver.BatchColumn) error
	// size is what the column holds, if it is of strings (presize.go).
	size() (strSize, bool)
}

// newCol is a col of the values get returns, with room for n.
func newCol[R, T any](n int, get func(R) T) col[R] {
	return &typedCol[R, T]{get: get, vals: make([]T, 0, n)}
}

type typedCol[R, T any] struct {
	get  func(R) T
	vals []T
}

func (c *typedCol[R, T]) add(r R) { c.vals = append(c.vals, c.get(r)) }

func (c *typedCol[R, T]) appendTo(bc driver.BatchColumn) error { return bc.Append(c.vals) }

func (c *typedCol[R, T]) size() (strSize, bool) {
	vals, ok := any(c.vals).([]string)
	if !ok {
		return strSize{}, false
	}
	sz := strSize{rows: len(vals)}
	for _, v := range vals {
		sz.bytes += len(v)
	}
	return sz, true
}

// listCol is an Array(String) column. It is appended row by row, which
// clickhouse-go does without reflection, unlike a whole [][]string.
type listCol[R any] struct{ typedCol[R, []string] }

func (c *listCol[R]) size() (strSize, bool) {
	var sz strSize
	for _, v := range c.vals {
		sz.rows += len(v)
		for _, s := range v {
			sz.bytes += len(s)
		}
	}
	return sz, true
}

func (c *listCol[R]) appendTo(bc driver.BatchColumn) error {
	for _, v := range c.vals {
		if err := bc.AppendRow(v); err != nil {
			return err
		}
	}
	return nil
}

// column is the field's col for records, with room for n.
func (f field) column(n int) col[*Record] {
	switch {
	case f.str != nil:
		return newCol(n, func(r *Record) string { return f.str(r.Event) })
	case f.at != nil:
		return newCol(n, func(r *Record) time.Time { return ts(f.at(r.Event)) })
	case f.flag != nil:
		return newCol(n, func(r *Record) uint8 { return boolByte(f.flag(r.Event)) })
	default:
		return &listCol[*Record]{typedCol[*Record, []string]{get: func(r *Record) []string { return nonNil(f.list(r.Event)) },
			vals: make([][]string, 0, n)}}
	}
}

// eventColumns are the columns of insertSQL(k), in its order, for n
// records ingested at now.
func eventColumns(k event.Kind, n int, now time.Time) []col[*Record] {
	cols := []col[*Record]{newCol(n, func(r *Record) string { return r.Event.ID })}
	for _, f := range contentFields(k) {
		cols = append(cols, f.column(n))
	}
	return append(cols,
		newCol(n, func(r *Record) string { return r.Topic }),
		newCol(n, func(r *Record) int32 { return int32(r.Partition) }),
		newCol(n, func(r *Record) int64 { return r.Offset }),
		newCol(n, func(*Record) time.Time { return now }))
}

// hash is an event's content hash: the first 16 bytes of SHA-256 over its
// kind and content values, each length-prefixed. Times count in whole
// seconds, as ClickHouse stores them. A cryptographic hash, because a
// producer who could make two contents collide could make one id mean two
// things.
type hash [16]byte

// contentHash is the hash of content vals of kind k, as content returns
// them or they are read back. buf is scratch space, returned for reuse.
func contentHash(k event.Kind, vals []any, buf []byte) (hash, []byte) {
	buf = appendString(buf[:0], string(k))
	fs := contentFields(k)
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			if v == "" && fs[i].added {
				continue
			}
			buf = appendString(buf, v)
		case time.Time:
			buf = binary.BigEndian.AppendUint64(buf, uint64(v.Unix()))
		case uint8:
			buf = append(buf, v)
		case []string:
			buf = appendStrings(buf, v)
		default:
			panic(fmt.Sprintf("store: no content hash for %T", v))
		}
	}
	return sum(buf), buf
}

// eventHash is contentHash(e.Kind, content(e)), computed from the fields
// without boxing their values.
func eventHash(e *event.Event, buf []byte) (hash, []byte) {
	buf = appendString(buf[:0], string(e.Kind))
	for _, f := range contentFields(e.Kind) {
		switch {
		case f.str != nil:
			if v := f.str(e); v != "" || !f.added {
				buf = appendString(buf, v)
			}
		case f.at != nil:
			buf = binary.BigEndian.AppendUint64(buf, uint64(ts(f.at(e)).Unix()))
		case f.flag != nil:
			buf = append(buf, boolByte(f.flag(e)))
		default:
			buf = appendStrings(buf, f.list(e))
		}
	}
	return sum(buf), buf
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func sum(b []byte) hash {
	full := sha256.Sum256(b)
	return hash(full[:16])
}

// sameValue reports whether two stored values are equal; times in whole
// seconds.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Unix() == b.Unix()
	case []string:
		b, ok := b.([]string)
		return ok && slices.Equal(a, b)
	default:
		return a == b
	}
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
