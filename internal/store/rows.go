package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// A field is one content column of an event table: its name and the value
// an event stores in it. The fields of a kind are, in order, the columns
// between the event's identity (event_id) and where it came from (the
// source columns): what the event says. Inserting, hashing and comparing
// events all read these lists, so they cannot disagree.
type field struct {
	name string
	get  func(*event.Event) any // string, time.Time, uint8 or []string
}

var commonFields = []field{
	{"event_time", func(e *event.Event) any { return ts(e.Time) }},
	{"encoding", func(e *event.Event) any { return string(e.Encoding) }},
}

var kindFields = map[event.Kind][]field{
	event.KindDeployment: {
		{"deployment_id", func(e *event.Event) any { return e.Deployment.ID }},
		{"service", func(e *event.Event) any { return e.Deployment.Service }},
		{"team", func(e *event.Event) any { return e.Deployment.Team }},
		{"environment", func(e *event.Event) any { return e.Deployment.Environment }},
		{"started_at", func(e *event.Event) any { return ts(e.Deployment.StartedAt) }},
		{"finished_at", func(e *event.Event) any { return ts(e.Deployment.FinishedAt) }},
		{"status", func(e *event.Event) any { return string(e.Deployment.Status) }},
		{"version", func(e *event.Event) any { return e.Deployment.Version }},
		{"artifact", func(e *event.Event) any { return e.Deployment.Artifact }},
		{"unplanned", func(e *event.Event) any { return boolByte(e.Deployment.Unplanned) }},
		{"fixes_incident", func(e *event.Event) any { return e.Deployment.FixesIncident }},
		{"changes", func(e *event.Event) any { return nonNil(e.Deployment.Changes) }},
		{"actor", func(e *event.Event) any { return e.Deployment.Actor }},
		{"pipeline", func(e *event.Event) any { return e.Deployment.Pipeline }},
	},
	event.KindIncident: {
		{"incident_id", func(e *event.Event) any { return e.Incident.ID }},
		{"title", func(e *event.Event) any { return e.Incident.Title }},
		{"service", func(e *event.Event) any { return e.Incident.Service }},
		{"team", func(e *event.Event) any { return e.Incident.Team }},
		{"environment", func(e *event.Event) any { return e.Incident.Environment }},
		{"severity", func(e *event.Event) any { return string(e.Incident.Severity) }},
		{"detection_source", func(e *event.Event) any { return string(e.Incident.DetectionSource) }},
		{"impact_started_at", func(e *event.Event) any { return ts(e.Incident.ImpactStartedAt) }},
		{"detected_at", func(e *event.Event) any { return ts(e.Incident.DetectedAt) }},
		{"acknowledged_at", func(e *event.Event) any { return ts(e.Incident.AcknowledgedAt) }},
		{"mitigated_at", func(e *event.Event) any { return ts(e.Incident.MitigatedAt) }},
		{"resolved_at", func(e *event.Event) any { return ts(e.Incident.ResolvedAt) }},
		{"cause_deployment_id", func(e *event.Event) any { return e.Incident.CauseDeployment }},
		{"cause_commit", func(e *event.Event) any { return e.Incident.CauseCommit }},
	},
	event.KindPatch: {
		{"patch_id", func(e *event.Event) any { return e.Patch.ID }},
		{"target", func(e *event.Event) any { return e.Patch.Target }},
		{"target_type", func(e *event.Event) any { return string(e.Patch.TargetType) }},
		{"severity", func(e *event.Event) any { return string(e.Patch.Severity) }},
		{"service", func(e *event.Event) any { return e.Patch.Service }},
		{"team", func(e *event.Event) any { return e.Patch.Team }},
		{"environment", func(e *event.Event) any { return e.Patch.Environment }},
		{"released_at", func(e *event.Event) any { return ts(e.Patch.ReleasedAt) }},
		{"applied_at", func(e *event.Event) any { return ts(e.Patch.AppliedAt) }},
		{"outcome", func(e *event.Event) any { return string(e.Patch.Outcome) }},
	},
	event.KindChange: {
		{"change_id", func(e *event.Event) any { return e.Change.ID }},
		{"service", func(e *event.Event) any { return e.Change.Service }},
		{"team", func(e *event.Event) any { return e.Change.Team }},
		{"repository", func(e *event.Event) any { return e.Change.Repository }},
		{"author", func(e *event.Event) any { return e.Change.Author }},
		{"authored_at", func(e *event.Event) any { return ts(e.Change.AuthoredAt) }},
		{"merged_at", func(e *event.Event) any { return ts(e.Change.MergedAt) }},
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
func contentFields(k event.Kind) []field { return append(slices.Clip(commonFields), kindFields[k]...) }

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

// hash is an event's content hash: the first 16 bytes of SHA-256 over its
// kind and content values, each length-prefixed. Times count in whole
// seconds, as ClickHouse stores them. A cryptographic hash, because a
// producer who could make two contents collide could make one id mean two
// things.
type hash [16]byte

func contentHash(k event.Kind, vals []any) hash {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	putBytes := func(b []byte) {
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(b)))])
		h.Write(b)
	}
	putBytes([]byte(k))
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			putBytes([]byte(v))
		case time.Time:
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(v.Unix())))
		case uint8:
			h.Write([]byte{v})
		case []string:
			h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(v)))])
			for _, s := range v {
				putBytes([]byte(s))
			}
		default:
			panic(fmt.Sprintf("store: no content hash for %T", v))
		}
	}
	var out hash
	copy(out[:], h.Sum(nil))
	return out
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
