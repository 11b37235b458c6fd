package event

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Our own CloudEvents types, in the CDEvents naming style
// (dev.<org>.<subject>.<predicate>.<version>). CDEvents has no patch
// subject, so patches always use these.
const (
	TypeDeploymentReported = "dev.opsmetrics.deployment.reported.0.1.0"
	TypeIncidentUpdated    = "dev.opsmetrics.incident.updated.0.1.0"
	TypeChangeReported     = "dev.opsmetrics.change.reported.0.1.0"
	TypePatchReleased      = "dev.opsmetrics.patch.released.0.1.0"
	TypePatchApplied       = "dev.opsmetrics.patch.applied.0.1.0"
	TypePatchFailed        = "dev.opsmetrics.patch.failed.0.1.0"
	TypePatchRolledBack    = "dev.opsmetrics.patch.rolledback.0.1.0"
)

// cloudEvent is a CloudEvent's attributes and data, from either mode.
// Extension attributes (JSON members, ce_ headers) are accepted; two are
// read, the others not kept: actor and pipeline (ExtensionActor,
// ExtensionPipeline), which a deployment takes when its data names none.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
	Actor           string          `json:"actor,omitempty"`
	Pipeline        string          `json:"pipeline,omitempty"`
}

// The CloudEvents extension attributes opsmetrics reads, as JSON members of
// a structured event or ce_ headers of a binary one: who or what triggered
// a deployment, and the pipeline that ran it (docs/events.md). Their names
// follow the spec's naming rules (lower-case letters and digits, at most
// 20 characters); their values are strings.
const (
	ExtensionActor    = "actor"
	ExtensionPipeline = "pipeline"
)

// StructuredCloudEvent reports whether b is a CloudEvent in the JSON format
// (a JSON object with specversion), and returns its partitionkey extension,
// empty when absent: the Kafka binding (3.1) maps it to the message key.
func StructuredCloudEvent(b []byte) (partitionKey string, ok bool) {
	var ce struct {
		SpecVersion  *string `json:"specversion"`
		PartitionKey string  `json:"partitionkey"`
	}
	if json.Unmarshal(b, &ce) != nil || ce.SpecVersion == nil {
		return "", false
	}
	return ce.PartitionKey, true
}

// name identifies a CloudEvent in a rejection, even one without an id.
func (ce *cloudEvent) name() string {
	return fmt.Sprintf("CloudEvent %s of type %s from %s", orNoID(ce.ID), ident(ce.Type), ident(ce.Source))
}

func decodeStructuredCloudEvent(b []byte) (*Event, error) {
	var ce cloudEvent
	if scanned(b, &ce) && ce.DataBase64 == "" {
		return fromCloudEvent(&ce) // the common case
	}
	ce = cloudEvent{}
	if json.Unmarshal(b, &ce) == nil && ce.DataBase64 == "" {
		return fromCloudEvent(&ce) // one pass, no map
	}
	fields, err := object(b, "CloudEvent")
	if err != nil {
		return nil, err
	}
	ce = cloudEvent{}
	for name, dst := range map[string]*string{"specversion": &ce.SpecVersion, "id": &ce.ID, "source": &ce.Source,
		"type": &ce.Type, "time": &ce.Time, "datacontenttype": &ce.DataContentType, "data_base64": &ce.DataBase64,
		ExtensionActor: &ce.Actor, ExtensionPipeline: &ce.Pipeline} {
		if *dst, err = str(fields, name, "CloudEvent"); err != nil {
			return nil, err
		}
	}
	ce.Data = fields["data"]
	if ce.DataBase64 != "" {
		// JSON format, 3.1.2: data_base64 is binary data, which is JSON only
		// when datacontenttype says so; without one, no assumption is made.
		if ce.Data != nil {
			return nil, reject(ReasonInvalidJSON, "%s has both data and data_base64; the JSON format allows one", ce.name())
		}
		if !isJSONMediaType(ce.DataContentType) {
			what := "no datacontenttype"
			if ce.DataContentType != "" {
				what = "datacontenttype " + ident(ce.DataContentType)
			}
			return nil, reject(ReasonUnsupported, "%s carries binary data (data_base64) with %s; opsmetrics reads JSON data only: send it as data, or declare datacontenttype application/json",
				ce.name(), what)
		}
		data, derr := base64.StdEncoding.DecodeString(ce.DataBase64)
		if derr != nil {
			return nil, reject(ReasonWrongType, "%s: data_base64 is not base64: %v", ce.name(), derr)
		}
		ce.Data = data
	}
	return fromCloudEvent(&ce)
}

// ceHeaders are the headers of a message that the decoder reads.
type ceHeaders struct {
	contentType, specVersion, id, source, typ, time, actor, pipeline string
}

// field returns where the header named k (lower-case) goes, or nil.
func (h *ceHeaders) field(k string) *string {
	switch k {
	case "content-type":
		return &h.contentType
	case "ce_specversion":
		return &h.specVersion
	case "ce_id":
		return &h.id
	case "ce_source":
		return &h.source
	case "ce_type":
		return &h.typ
	case "ce_time":
		return &h.time
	case "ce_" + ExtensionActor:
		return &h.actor
	case "ce_" + ExtensionPipeline:
		return &h.pipeline
	}
	return nil
}

func decodeBinaryCloudEvent(h *ceHeaders, value []byte) (*Event, error) {
	ce := cloudEvent{
		SpecVersion:     h.specVersion,
		ID:              h.id,
		Source:          h.source,
		Type:            h.typ,
		Time:            h.time,
		DataContentType: h.contentType,
		Data:            value,
		Actor:           h.actor,
		Pipeline:        h.pipeline,
	}
	return fromCloudEvent(&ce)
}

func fromCloudEvent(ce *cloudEvent) (*Event, error) {
	switch {
	case ce.SpecVersion == "":
		return nil, reject(ReasonMissingField, "%s has no specversion", ce.name())
	case ce.SpecVersion != "1.0":
		return nil, reject(ReasonUnsupported, "%s: specversion %s is not supported, want 1.0", ce.name(), ident(ce.SpecVersion))
	case ce.ID == "":
		return nil, reject(ReasonMissingID, "%s has no id", ce.name())
	case ce.Source == "":
		return nil, reject(ReasonMissingID, "%s has no source; id and source together identify it", ce.name())
	case ce.Type == "":
		return nil, reject(ReasonMissingField, "%s has no type", ce.name())
	}
	where := "CloudEvent " + ident(ce.ID)
	var t time.Time
	if ce.Time != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, ce.Time); err != nil {
			return nil, reject(ReasonWrongType, "%s: time %s is not an RFC 3339 timestamp", where, ident(ce.Time))
		}
		t = t.UTC()
	}
	if ct := ce.DataContentType; ct != "" && !isJSONMediaType(ct) {
		return nil, reject(ReasonUnsupported, "%s: datacontenttype %s is not JSON", where, ident(ct))
	}
	var (
		e   *Event
		err error
	)
	switch {
	case strings.HasPrefix(ce.Type, "dev.opsmetrics."):
		e, err = fromOwnType(ce, t, where)
	case strings.HasPrefix(ce.Type, "dev.cdevents.") || strings.HasPrefix(ce.Type, "dev.cdeventsx."):
		e, err = fromWrappedCDEvent(ce, t, where)
	default:
		return nil, reject(ReasonUnknownKind, "%s: type %s is not one opsmetrics accepts (see docs/events.md)", where, ident(ce.Type))
	}
	if err != nil {
		return nil, err
	}
	e.ID = ce.Source + " " + ce.ID
	if d := e.Deployment; d != nil {
		// The data (our own field, CDEvents customData) wins over the
		// extension.
		d.Actor, d.Pipeline = cmp.Or(d.Actor, ce.Actor), cmp.Or(d.Pipeline, ce.Pipeline)
	}
	if e.Time.IsZero() {
		e.Time = t
	}
	return e, nil
}

// fromWrappedCDEvent decodes the CDEvent a CloudEvent carries as its data.
// The CDEvents binding makes the CloudEvent's type the CDEvent's
// context.type; a CDEvent that names another type is refused.
func fromWrappedCDEvent(ce *cloudEvent, t time.Time, where string) (*Event, error) {
	if len(ce.Data) == 0 || string(ce.Data) == "null" {
		return nil, reject(ReasonMissingField, "%s: CDEvent has no data", where)
	}
	cd, derr := unmarshalCDEvent(ce.Data, where+" data")
	if derr != nil {
		return nil, derr
	}
	if cd.Context != nil && cd.Context.Type != "" && cd.Context.Type != ce.Type {
		return nil, reject(ReasonInvalidValue, "%s: CloudEvent type %s and CDEvent context.type %s differ", where, ident(ce.Type), ident(cd.Context.Type))
	}
	return fromCDEvent(cd, ce.Type, ce.ID, t, where)
}

// isJSONMediaType reports whether a media type declares JSON: */json or
// */*+json once its parameters are stripped (CloudEvents JSON format, 3.1).
func isJSONMediaType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	_, sub, ok := strings.Cut(mt, "/")
	return ok && (sub == "json" || strings.HasSuffix(sub, "+json"))
}

// orNoID is id, quoted if it needs to be, or "(no id)".
func orNoID(id string) string {
	if id == "" {
		return "(no id)"
	}
	return ident(id)
}

// quoted returns s as it is when it is a short run of printable characters
// without spaces or quotes, and Go-quoted otherwise, so that a reason never
// carries control characters or ambiguous text from a message.
func quoted(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '\\' || r >= 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}

func fromOwnType(ce *cloudEvent, t time.Time, where string) (*Event, error) {
	name, rest, ok1 := strings.Cut(strings.TrimPrefix(ce.Type, "dev.opsmetrics."), ".")
	predicate, version, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return nil, reject(ReasonUnknownKind, "%s: type %q is not dev.opsmetrics.<kind>.<predicate>.<version>", where, truncate(ce.Type))
	}
	kind := Kind(name)
	preds, ok := ownPredicates[kind]
	if !ok || !slices.Contains(preds, predicate) {
		return nil, reject(ReasonUnknownKind, "%s: type %q is not one opsmetrics accepts (see docs/events.md)", where, truncate(ce.Type))
	}
	if version != "0.1.0" {
		return nil, reject(ReasonUnsupported, "%s: type %q: version %q is not supported, want 0.1.0", where, truncate(ce.Type), truncate(version))
	}
	if len(ce.Data) == 0 {
		return nil, reject(ReasonMissingField, "%s: has no data", where)
	}
	e, ok := fastBody(kind, ce.Data)
	if !ok {
		fields, err := object(ce.Data, where+" data")
		if err != nil {
			return nil, err
		}
		if e, err = body(kind, ce.Data, fields, where); err != nil {
			return nil, err
		}
	}
	e.Encoding = EncodingCloudEvents
	if kind == KindPatch {
		p := e.Patch
		outcome := patchOutcomes[predicate]
		if p.Outcome == "" {
			p.Outcome = outcome
		}
		switch {
		case predicate == "released" && p.ReleasedAt.IsZero():
			p.ReleasedAt = t
		case outcome != "" && p.AppliedAt.IsZero():
			p.AppliedAt = t
		}
	}
	return e, nil
}

// ownPredicates are the predicates of our types, by kind, and
// patchOutcomes the outcome each patch predicate reports.
var (
	ownPredicates = map[Kind][]string{KindDeployment: {"reported"}, KindIncident: {"updated"}, KindChange: {"reported"},
		KindPatch: {"released", "applied", "failed", "rolledback"}}
	patchOutcomes = map[string]PatchOutcome{"applied": PatchApplied, "failed": PatchFailed, "rolledback": PatchRolledBack}
)

// ownType is the CloudEvents type MarshalCloudEvent uses for e.
func ownType(e *Event) string {
	switch e.Kind {
	case KindDeployment:
		return TypeDeploymentReported
	case KindIncident:
		return TypeIncidentUpdated
	case KindChange:
		return TypeChangeReported
	}
	switch e.Patch.Outcome {
	case PatchApplied:
		return TypePatchApplied
	case PatchFailed:
		return TypePatchFailed
	case PatchRolledBack:
		return TypePatchRolledBack
	}
	return TypePatchReleased
}

// payload is the kind-specific part of e.
func payload(e *Event) any {
	switch e.Kind {
	case KindDeployment:
		return e.Deployment
	case KindIncident:
		return e.Incident
	case KindPatch:
		return e.Patch
	}
	return e.Change
}

// ceID is the CloudEvents id for e: the part of e.ID after the source, or
// the whole ID for native events.
func ceID(e *Event, source string) string {
	if id, ok := strings.CutPrefix(e.ID, source+" "); ok {
		return id
	}
	return e.ID
}

// MarshalCloudEvent encodes e as a structured-mode CloudEvent of our own
// types, with source as its source. Send it with the header
// content-type: application/cloudevents+json.
func MarshalCloudEvent(e *Event, source string) ([]byte, error) {
	data, err := json.Marshal(payload(e))
	if err != nil {
		return nil, err
	}
	ce := cloudEvent{SpecVersion: "1.0", ID: ceID(e, source), Source: source, Type: ownType(e),
		DataContentType: "application/json", Data: data}
	if !e.Time.IsZero() {
		ce.Time = e.Time.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(ce)
}

// CloudEventBinary encodes e as a binary-mode CloudEvent: attributes in
// ce_* headers, data as the value.
func CloudEventBinary(e *Event, source string) ([]Header, []byte, error) {
	data, err := json.Marshal(payload(e))
	if err != nil {
		return nil, nil, err
	}
	hs := []Header{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte(ceID(e, source))},
		{Key: "ce_source", Value: []byte(source)},
		{Key: "ce_type", Value: []byte(ownType(e))},
		{Key: "content-type", Value: []byte("application/json")},
	}
	if !e.Time.IsZero() {
		hs = append(hs, Header{Key: "ce_time", Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))})
	}
	return hs, data, nil
}

// MarshalNative encodes e in the native JSON format.
func MarshalNative(e *Event) ([]byte, error) {
	body, err := json.Marshal(payload(e))
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf(`{"kind":%q,"event_id":%s`, e.Kind, mustJSON(e.ID))
	if !e.Time.IsZero() {
		head += fmt.Sprintf(`,"time":%q`, e.Time.UTC().Format(time.RFC3339Nano))
	}
	if len(body) <= 2 { // {}
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), body[1:]...), nil
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
