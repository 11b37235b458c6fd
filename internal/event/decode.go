package event

// The decoders read JSON with the scanner of scan.go, and encoding/json when
// it gives up, rather than with the CloudEvents and CDEvents SDKs:
// BenchmarkDecode shows the SDKs' share of the work alone costing more than
// our whole decode (docs/events.md), they would add several
// modules (and, for CDEvents, a JSON-schema validator) to the hot path, and a
// hand-written decoder lets every rejection name the entity, field and value.
// The tests hold the decoders to the SDKs and the schemas they embed.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

func reject(r Reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Decode turns one message into an event. The error, when not nil, is a
// *DecodeError, or a *Skipped for a valid CDEvent of a type opsmetrics does
// not store (unless RejectUnused is set).
func (d *Decoder) Decode(m Message) (*Event, error) {
	e, err := d.decode(m)
	if err != nil {
		if s, ok := err.(*Skipped); ok && d.RejectUnused {
			return nil, reject(ReasonUnusedType, "%s, and unused types are dead-lettered (ingest.dead_letter_unused)", s.Detail)
		}
		return nil, err
	}
	return e, nil
}

func (d *Decoder) decode(m Message) (*Event, error) {
	maxBytes := d.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	if len(m.Value) > maxBytes {
		return nil, reject(ReasonOversized, "payload is %d bytes, more than the limit of %d", len(m.Value), maxBytes)
	}
	if !utf8.Valid(m.Value) {
		return nil, reject(ReasonNotUTF8, "payload is not valid UTF-8 (first bad byte at offset %d)", firstInvalid(m.Value))
	}
	// The headers the decoder reads: content-type and the CloudEvents
	// attributes (ce_*, any case; the last of a repeated header wins).
	var headers ceHeaders
	for _, h := range m.Headers {
		k := strings.ToLower(h.Key)
		if k == "content-type" || strings.HasPrefix(k, "ce_") {
			if !utf8.Valid(h.Value) {
				return nil, reject(ReasonNotUTF8, "header %s is not valid UTF-8", ident(h.Key))
			}
			if dst := headers.field(k); dst != nil {
				*dst = string(h.Value)
			}
		}
	}

	var (
		e   *Event
		err error
	)
	// The Kafka binding (3): a content-type starting with
	// application/cloudevents means structured mode; otherwise the ce_
	// headers make it binary mode.
	switch ct := headers.contentType; {
	case strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/cloudevents"):
		if !isJSONMediaType(ct) || strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/cloudevents-batch") {
			return nil, reject(ReasonUnsupported, "content-type %s is not an event format opsmetrics reads; want application/cloudevents+json (the Kafka binding has no batch mode)", ident(ct))
		}
		e, err = decodeStructuredCloudEvent(m.Value)
	case headers.specVersion != "" || headers.id != "" || headers.typ != "":
		e, err = decodeBinaryCloudEvent(&headers, m.Value)
	default:
		fe, sh, ok := scanNative(m.Value)
		if !ok {
			fe, sh = fastNative(m.Value)
		}
		switch sh {
		case shapeNative:
			e = fe
		case shapeCDEvent:
			e, err = decodeBareCDEvent(m.Value)
		case shapeCloudEvent:
			e, err = decodeStructuredCloudEvent(m.Value)
		}
		if sh != shapeOther {
			break
		}
		fields, ferr := object(m.Value, "payload")
		if ferr != nil {
			return nil, ferr
		}
		_, isCE := fields["specversion"]
		_, isCD := fields["context"]
		_, hasKind := fields["kind"]
		switch {
		case isCE:
			e, err = decodeStructuredCloudEvent(m.Value)
		case isCD && !hasKind:
			e, err = decodeBareCDEvent(m.Value)
		default:
			e, err = decodeNative(fields, m.Value)
		}
	}
	if err != nil {
		return nil, err
	}
	d.normalize(e)
	now := time.Now()
	if d.Now != nil {
		now = d.Now()
	}
	skew := d.MaxFutureSkew
	if skew == 0 {
		skew = time.Hour
	}
	if err := Validate(e, now.Add(skew)); err != nil {
		return nil, err
	}
	if e.Time.IsZero() {
		e.Time = latest(e)
	}
	return e, nil
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// object parses b as a JSON object into its raw fields.
func object(b []byte, what string) (map[string]json.RawMessage, *DecodeError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, reject(ReasonInvalidJSON, "%s is a JSON %s, want an object", what, te.Value)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, reject(ReasonInvalidJSON, "%s is empty", what)
		}
		return nil, reject(ReasonInvalidJSON, "%s is not valid JSON: %v", what, err)
	}
	if fields == nil {
		return nil, reject(ReasonInvalidJSON, "%s is null, want an object", what)
	}
	return fields, nil
}

// str reads an optional string field.
func str(fields map[string]json.RawMessage, name, where string) (string, *DecodeError) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", reject(ReasonWrongType, "%s: %s is %s, want a string", where, name, jsonType(raw))
	}
	return s, nil
}

func jsonType(raw json.RawMessage) string {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
		return "empty"
	case t[0] == '"':
		return "a string"
	case t[0] == '{':
		return "an object"
	case t[0] == '[':
		return "an array"
	case t[0] == 't' || t[0] == 'f':
		return "a boolean"
	case t[0] == 'n':
		return "null"
	default:
		return "a number"
	}
}

// timeFields are the JSON names of each kind's timestamps.
var timeFields = map[Kind][]string{
	KindDeployment: {"started_at", "finished_at"},
	KindIncident:   {"impact_started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at"},
	KindPatch:      {"released_at", "applied_at"},
	KindChange:     {"authored_at", "merged_at"},
}

// body decodes the kind-specific fields of a native event or of our
// CloudEvents' data into a new Event of kind k.
func body(k Kind, raw []byte, fields map[string]json.RawMessage, where string) (*Event, *DecodeError) {
	for _, name := range timeFields[k] {
		if _, err := timestamp(fields, name, where); err != nil {
			return nil, err
		}
	}
	e, target := newEvent(k)
	if err := json.Unmarshal(raw, target); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, reject(ReasonWrongType, "%s: %s is a JSON %s, want %s", where, te.Field, te.Value, te.Type)
		}
		return nil, reject(ReasonInvalidJSON, "%s: %v", where, err)
	}
	return e, nil
}

// newEvent returns an empty event of kind k and a pointer to its payload to
// decode into, or nil for an unknown kind.
func newEvent(k Kind) (*Event, any) {
	e := &Event{Kind: k}
	switch k {
	case KindDeployment:
		e.Deployment = &Deployment{}
		return e, e.Deployment
	case KindIncident:
		e.Incident = &Incident{}
		return e, e.Incident
	case KindPatch:
		e.Patch = &Patch{}
		return e, e.Patch
	case KindChange:
		e.Change = &Change{}
		return e, e.Change
	}
	return nil, nil
}

// timestamp reads an optional RFC 3339 field.
func timestamp(fields map[string]json.RawMessage, name, where string) (time.Time, *DecodeError) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, reject(ReasonWrongType, "%s: %s is %s, want an RFC 3339 timestamp string", where, name, jsonType(raw))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, reject(ReasonWrongType, "%s: %s %q is not an RFC 3339 timestamp", where, name, truncate(s))
	}
	return t.UTC(), nil
}

func decodeNative(fields map[string]json.RawMessage, raw []byte) (*Event, error) {
	kind, err := str(fields, "kind", "event")
	if err != nil {
		return nil, err
	}
	id, err := str(fields, "event_id", "event")
	if err != nil {
		return nil, err
	}
	k := Kind(strings.ToLower(kind))
	if _, ok := timeFields[k]; !ok {
		if kind == "" {
			return nil, reject(ReasonUnknownKind, "event has no kind; want one of deployment, incident, patch, change")
		}
		return nil, reject(ReasonUnknownKind, "kind %q is not one of deployment, incident, patch, change", truncate(kind))
	}
	where := string(k)
	if id == "" {
		return nil, reject(ReasonMissingID, "%s event has no event_id", k)
	}
	where = fmt.Sprintf("%s event %s", k, ident(id))
	t, err := timestamp(fields, "time", where)
	if err != nil {
		return nil, err
	}
	e, err := body(k, raw, fields, where)
	if err != nil {
		return nil, err
	}
	e.ID, e.Time, e.Encoding = id, t, EncodingNative
	return e, nil
}

// fastNative decodes a well-formed native event in two passes over the JSON
// and without building a map of its fields, or recognises a bare CDEvent.
// Anything unusual (a type error, a CloudEvent, a missing id) returns
// shapeOther, and the slow path, which names the offending field, takes
// over.
func fastNative(b []byte) (*Event, shape) {
	var env struct {
		Kind        string          `json:"kind"`
		EventID     string          `json:"event_id"`
		Time        *time.Time      `json:"time"`
		SpecVersion json.RawMessage `json:"specversion"`
		Context     json.RawMessage `json:"context"`
	}
	err := json.Unmarshal(b, &env)
	if err == nil && env.SpecVersion == nil && env.Kind == "" && len(env.Context) > 0 && env.Context[0] == '{' {
		return nil, shapeCDEvent // a bare CDEvent: no need for the map of the slow path
	}
	if err != nil || env.SpecVersion != nil || env.EventID == "" {
		return nil, shapeOther
	}
	e, ok := fastBody(Kind(env.Kind), b)
	if !ok {
		return nil, shapeOther
	}
	e.ID, e.Encoding = env.EventID, EncodingNative
	if env.Time != nil {
		e.Time = *env.Time
	}
	return e, shapeNative
}

// shape is what fastNative found.
type shape int

const (
	shapeOther   shape = iota // anything else: the slow path explains
	shapeNative               // a well-formed native event, decoded
	shapeCDEvent              // a bare CDEvent
	// shapeCloudEvent is a structured CloudEvent without its content-type
	// header (only scanNative tells it).
	shapeCloudEvent
)

// fastBody decodes the kind-specific fields of b in one pass, or returns
// false for the slow path to explain what is wrong.
func fastBody(k Kind, b []byte) (*Event, bool) {
	e, target := newEvent(k)
	if e == nil {
		return nil, false
	}
	if scanned(b, target.(jsonFields)) {
		return e, true
	}
	e, target = newEvent(k)
	if json.Unmarshal(b, target) != nil {
		return nil, false
	}
	return e, true
}

// UnknownEnvironment is the environment of a deployment that names none.
// It is never a production environment (configuration refuses to list it).
const UnknownEnvironment = "unknown"

// Environment returns the canonical form of an environment name: trimmed,
// lower-cased, then mapped through aliases (whose keys and values are
// canonical names themselves).
func Environment(name string, aliases map[string]string) string {
	env := strings.ToLower(strings.TrimSpace(name))
	if to, ok := aliases[env]; ok {
		return to
	}
	return env
}

// normalize lower-cases enumerations, maps common aliases onto ours and
// environment names onto their canonical form.
func (dec *Decoder) normalize(e *Event) {
	sev := func(s Severity) Severity {
		switch v := strings.ToLower(strings.TrimSpace(string(s))); v {
		case "sev1", "sev-1", "p1", "sev0", "p0", "blocker":
			return SeverityCritical
		case "sev2", "sev-2", "p2", "major":
			return SeverityHigh
		case "sev3", "sev-3", "p3", "moderate", "minor":
			return SeverityMedium
		case "sev4", "sev-4", "p4", "sev5", "p5":
			return SeverityLow
		default:
			return Severity(v)
		}
	}
	utc := func(ts ...*time.Time) {
		for _, t := range ts {
			if !t.IsZero() {
				*t = t.UTC()
			}
		}
	}
	utc(&e.Time)
	aliases := dec.EnvironmentAliases
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		utc(&d.StartedAt, &d.FinishedAt)
		switch v := strings.ToLower(strings.TrimSpace(string(d.Status))); v {
		case "failed", "error":
			d.Status = DeploymentFailure
		case "rolledback", "rollback", "rolled-back":
			d.Status = DeploymentRolledBack
		case "succeeded", "successful":
			d.Status = DeploymentSuccess
		default:
			d.Status = DeploymentStatus(v)
		}
		if d.Environment = Environment(d.Environment, aliases); d.Environment == "" {
			d.Environment = UnknownEnvironment
		}
		if d.FixesIncident != "" {
			d.Unplanned = true // a deployment that fixes an incident is rework by definition
		}
	case KindIncident:
		i := e.Incident
		utc(&i.ImpactStartedAt, &i.DetectedAt, &i.AcknowledgedAt, &i.MitigatedAt, &i.ResolvedAt)
		i.Severity = sev(i.Severity)
		i.DetectionSource = DetectionSource(strings.ToLower(string(i.DetectionSource)))
		i.Environment = Environment(i.Environment, aliases)
	case KindPatch:
		p := e.Patch
		utc(&p.ReleasedAt, &p.AppliedAt)
		p.Severity = sev(p.Severity)
		p.TargetType = TargetType(strings.ToLower(string(p.TargetType)))
		p.Environment = Environment(p.Environment, aliases)
		switch v := strings.ToLower(strings.TrimSpace(string(p.Outcome))); v {
		case "rolledback", "rollback", "rolled-back":
			p.Outcome = PatchRolledBack
		case "failure":
			p.Outcome = PatchFailed
		case "success", "succeeded":
			p.Outcome = PatchApplied
		default:
			p.Outcome = PatchOutcome(v)
		}
	case KindChange:
		utc(&e.Change.AuthoredAt, &e.Change.MergedAt)
	}
}

// latest returns the latest timestamp an event carries.
func latest(e *Event) time.Time {
	var ts []time.Time
	switch e.Kind {
	case KindDeployment:
		ts = []time.Time{e.Deployment.StartedAt, e.Deployment.FinishedAt}
	case KindIncident:
		i := e.Incident
		ts = []time.Time{i.ImpactStartedAt, i.DetectedAt, i.AcknowledgedAt, i.MitigatedAt, i.ResolvedAt}
	case KindPatch:
		ts = []time.Time{e.Patch.ReleasedAt, e.Patch.AppliedAt}
	case KindChange:
		ts = []time.Time{e.Change.AuthoredAt, e.Change.MergedAt}
	}
	var t time.Time
	for _, x := range ts {
		if x.After(t) {
			t = x
		}
	}
	return t
}
