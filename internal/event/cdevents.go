package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CDEvents (https://cdevents.dev) are read as bare documents
// ({"context":…,"subject":…}, the form of the spec's own examples) and as the
// data of a CloudEvent, in either Kafka binding mode. What an event means is
// decided by its type and the type's version, not by the spec version alone,
// so that a later spec release that keeps the type versions we know is read
// as well; docs/events.md lists the accepted types and the field mapping.

// cdAccepted maps the CDEvents types (subject.predicate) opsmetrics stores
// to the kind of event they become.
var cdAccepted = map[string]Kind{
	"service.deployed":   KindDeployment,
	"service.upgraded":   KindDeployment,
	"service.rolledback": KindDeployment,
	"incident.detected":  KindIncident,
	"incident.reported":  KindIncident,
	"incident.resolved":  KindIncident,
	"change.merged":      KindChange,
}

// cdTypeVersions is the version every accepted type has in each spec
// release opsmetrics knows: the release's major.minor and the type version.
// Spec 0.4 published all of them at 0.2.0, spec 0.5 at 0.3.0, and the 0.6
// draft keeps 0.3.0.
var cdTypeVersions = []struct{ spec, typ string }{{"0.4", "0.2.0"}, {"0.5", "0.3.0"}}

// cdSkipped are the CDEvents types of the spec releases up to the 0.6 draft
// that opsmetrics has no use for. They are valid events: the ingester skips
// and counts them (or dead-letters them, if configured). A type of the
// dev.cdevents namespace that is not in either list counts as "other", a
// custom (dev.cdeventsx) type as "custom", so the metric label stays bounded.
var cdSkipped = map[string]bool{
	"approval.closed": true, "approval.created": true, "approval.updated": true,
	"artifact.deleted": true, "artifact.downloaded": true, "artifact.packaged": true, "artifact.published": true, "artifact.signed": true,
	"branch.created": true, "branch.deleted": true,
	"build.finished": true, "build.queued": true, "build.started": true,
	"change.abandoned": true, "change.created": true, "change.reviewed": true, "change.updated": true,
	"environment.created": true, "environment.deleted": true, "environment.modified": true,
	"pipelinerun.finished": true, "pipelinerun.queued": true, "pipelinerun.started": true,
	"repository.created": true, "repository.deleted": true, "repository.modified": true,
	"service.published": true, "service.removed": true,
	"taskrun.finished": true, "taskrun.started": true,
	"testcaserun.finished": true, "testcaserun.queued": true, "testcaserun.skipped": true, "testcaserun.started": true,
	"testoutput.published":  true,
	"testsuiterun.finished": true, "testsuiterun.queued": true, "testsuiterun.started": true,
	"ticket.closed": true, "ticket.created": true, "ticket.updated": true,
}

// IsSkipLabel reports whether s is a label Skipped.Type can take.
func IsSkipLabel(s string) bool { return cdSkipped[s] || s == "other" || s == "custom" }

// AcceptedCDEventsTypes lists the CDEvents types (subject.predicate) that
// become events, sorted.
func AcceptedCDEventsTypes() []string {
	out := make([]string, 0, len(cdAccepted))
	for t := range cdAccepted {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Skipped is the error Decode returns for a valid CDEvent of a type that
// opsmetrics does not store. The ingester commits it without a dead letter
// and counts it by Type.
type Skipped struct {
	// Type is the CDEvents subject.predicate (pipelinerun.finished), or
	// "other" for an unknown dev.cdevents type, or "custom" for a
	// dev.cdeventsx one: a bounded set, fit for a metric label.
	Type   string
	Detail string
}

func (s *Skipped) Error() string { return "skipped: " + s.Detail }

// parseSemver returns the major and minor version of v, or false when v is
// not exactly a semantic version (semver.org, section 11), which CDEvents
// spec and type versions follow. TestSemverGrammar holds it to the
// grammar's regular expression, which it replaces for speed.
func parseSemver(v string) (major, minor int, ok bool) {
	core, rest := v, ""
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		core, rest = v[:i], v[i:]
	}
	x, core, _ := strings.Cut(core, ".")
	y, z, _ := strings.Cut(core, ".")
	if !numericID(x) || !numericID(y) || !numericID(z) {
		return 0, 0, false
	}
	if pre, ok := strings.CutPrefix(rest, "-"); ok {
		pre, build, hasBuild := strings.Cut(pre, "+")
		if !dotted(pre, preReleaseID) || hasBuild && !dotted(build, buildID) {
			return 0, 0, false
		}
	} else if build, ok := strings.CutPrefix(rest, "+"); ok {
		if !dotted(build, buildID) {
			return 0, 0, false
		}
	}
	major, err1 := strconv.Atoi(x)
	minor, err2 := strconv.Atoi(y)
	return major, minor, err1 == nil && err2 == nil
}

// numericID is 0 or digits without a leading zero.
func numericID(s string) bool {
	if s == "" || s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// preReleaseID is a numeric identifier, or an alphanumeric one (with a
// letter or hyphen).
func preReleaseID(s string) bool {
	return numericID(s) || buildID(s) && strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// buildID is one or more ASCII letters, digits and hyphens.
func buildID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// dotted reports whether s is identifiers separated by dots, each valid.
func dotted(s string, valid func(string) bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if !valid(id) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// cdTypeName reports whether s can be the subject or predicate of a type:
// a lower-case ASCII letter, then at most 39 ASCII letters and digits.
func cdTypeName(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// cdContext is the context of a CDEvent of any spec release: 0.4 names the
// spec version "version", 0.5 and later "specversion".
type cdContext struct {
	SpecVersion string `json:"specversion,omitempty"`
	Version     string `json:"version,omitempty"`
	ID          string `json:"id"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	Timestamp   string `json:"timestamp"`
}

type cdEvent struct {
	Context    *cdContext      `json:"context"`
	Subject    *cdSubject      `json:"subject"`
	CustomData json.RawMessage `json:"customData,omitempty"`
	// CustomDataContentType defaults to application/json.
	CustomDataContentType string `json:"customDataContentType,omitempty"`
}

type cdSubject struct {
	ID     string `json:"id"`
	Source string `json:"source,omitempty"`
	// Type is required in spec 0.4 and absent from 0.5 on.
	Type    string          `json:"type,omitempty"`
	Content cdSubjectFields `json:"content"`
}

type cdRef struct {
	ID     string `json:"id"`
	Source string `json:"source,omitempty"`
}

type cdSubjectFields struct {
	Environment *cdRef `json:"environment,omitempty"`
	Service     *cdRef `json:"service,omitempty"`
	Repository  *cdRef `json:"repository,omitempty"`
	ArtifactID  string `json:"artifactId,omitempty"`
	Description string `json:"description,omitempty"`
	TicketURI   string `json:"ticketURI,omitempty"`
}

// decodeBareCDEvent decodes a CDEvent document that is not wrapped in a
// CloudEvent. Its identity is context.source and context.id, as in a
// CloudEvent, so the same CDEvent sent bare or wrapped is one event.
func decodeBareCDEvent(b []byte) (*Event, error) {
	cd, derr := unmarshalCDEvent(b, "CDEvent")
	if derr != nil {
		return nil, derr
	}
	c := cd.Context
	if c == nil {
		return nil, reject(ReasonMissingField, "CDEvent has no context")
	}
	where := "CDEvent " + orNoID(c.ID)
	switch {
	case c.ID == "":
		return nil, reject(ReasonMissingID, "CDEvent (no id) of type %s from %s has no context.id", ident(c.Type), ident(c.Source))
	case c.Source == "":
		return nil, reject(ReasonMissingID, "%s of type %s has no context.source; source and id together identify it", where, ident(c.Type))
	case c.Type == "":
		return nil, reject(ReasonMissingField, "%s from %s has no context.type", where, ident(c.Source))
	}
	e, err := fromCDEvent(cd, c.Type, c.ID, time.Time{}, where)
	if err != nil {
		return nil, err
	}
	e.ID = c.Source + " " + c.ID
	return e, nil
}

// unmarshalCDEvent parses b as a CDEvent, naming the field of a type error.
func unmarshalCDEvent(b []byte, where string) (*cdEvent, *DecodeError) {
	var cd cdEvent
	if scanned(b, &cd) {
		return &cd, nil
	}
	cd = cdEvent{}
	if err := json.Unmarshal(b, &cd); err != nil {
		if _, oerr := object(b, where); oerr != nil {
			return nil, oerr
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, reject(ReasonWrongType, "%s: %s is a JSON %s, want %s", where, te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return nil, reject(ReasonInvalidJSON, "%s: %v", where, err)
	}
	return &cd, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	}
	return "a " + goKind
}

// fromCDEvent maps a parsed CDEvent of type typ onto an event. id is the
// event's id (the CloudEvent's, or context.id), t the CloudEvent time if
// any.
func fromCDEvent(cd *cdEvent, typ, id string, t time.Time, where string) (*Event, error) {
	if cd.Context == nil {
		return nil, reject(ReasonMissingField, "%s: CDEvent has no context", where)
	}
	spec, err := cdSpecVersion(cd.Context, where)
	if err != nil {
		return nil, err
	}
	name, version, custom, err := splitCDType(typ, where)
	if err != nil {
		return nil, err
	}
	kind, accepted := cdAccepted[name]
	if !accepted {
		label := name
		switch {
		case custom:
			label = "custom"
		case !cdSkipped[name]:
			label = "other"
		}
		return nil, &Skipped{Type: label, Detail: fmt.Sprintf("%s: CDEvents type %s is not one opsmetrics stores", where, ident(typ))}
	}
	if err := checkTypeVersion(spec, name, version, typ, where); err != nil {
		return nil, err
	}
	if cd.Subject == nil {
		return nil, reject(ReasonMissingSubject, "%s: CDEvent has no subject", where)
	}
	s := cd.Subject
	if s.ID == "" {
		return nil, reject(ReasonMissingSubject, "%s: CDEvent subject has no id", where)
	}
	ts := t
	if cd.Context.Timestamp != "" {
		parsed, err := time.Parse(time.RFC3339Nano, cd.Context.Timestamp)
		if err != nil {
			return nil, reject(ReasonWrongType, "%s: context.timestamp %s is not an RFC 3339 timestamp", where, ident(cd.Context.Timestamp))
		}
		ts = parsed.UTC()
	}
	if ts.IsZero() {
		return nil, reject(ReasonMissingField, "%s: CDEvent has neither context.timestamp nor a CloudEvents time", where)
	}
	if t.IsZero() {
		t = ts
	}
	envID := ""
	if s.Content.Environment != nil {
		envID = s.Content.Environment.ID
	}
	_, predicate, _ := strings.Cut(name, ".")

	e := &Event{Kind: kind, Encoding: EncodingCDEvents, Time: t}
	var target any
	switch kind {
	case KindDeployment:
		if s.Content.ArtifactID == "" {
			return nil, reject(ReasonMissingField, "%s: %s requires subject.content.artifactId", where, name)
		}
		status := DeploymentSuccess
		if predicate == "rolledback" {
			status = DeploymentRolledBack
		}
		// A deployment without an environment is stored under
		// UnknownEnvironment, as for the other encodings (normalize).
		e.Deployment = &Deployment{ID: id, Service: s.ID, Environment: envID, Status: status,
			Version: s.Content.ArtifactID, Artifact: s.Content.ArtifactID, StartedAt: ts, FinishedAt: ts}
		target = e.Deployment
	case KindIncident:
		if predicate == "reported" && s.Content.TicketURI == "" {
			return nil, reject(ReasonMissingField, "%s: incident.reported requires subject.content.ticketURI", where)
		}
		i := &Incident{ID: s.ID, Environment: envID, Title: s.Content.Description}
		if s.Content.Service != nil {
			i.Service = s.Content.Service.ID
		}
		switch predicate {
		case "detected":
			i.DetectedAt, i.DetectionSource = ts, DetectedByMonitoring
		case "reported":
			i.DetectedAt, i.DetectionSource = ts, DetectedByCustomer
		case "resolved":
			i.ResolvedAt = ts
		}
		e.Incident = i
		target = i
	case KindChange:
		c := &Change{ID: s.ID, MergedAt: ts}
		if r := s.Content.Repository; r != nil {
			c.Repository = r.ID
			c.Service = r.ID[strings.LastIndex(r.ID, "/")+1:]
		}
		e.Change = c
		target = c
	}
	if err := applyCustomData(cd, kind, target, where); err != nil {
		return nil, err
	}
	if kind == KindChange && e.Change.Service == "" {
		return nil, reject(ReasonMissingField, "%s: change.merged %s has neither subject.content.repository nor customData.service, so its service is unknown",
			where, ident(e.Change.ID))
	}
	return e, nil
}

// applyCustomData lets customData, when it is a JSON object, carry what
// CDEvents has no field for, under our native field names: team, severity,
// changes, cause_deployment_id, and so on. The spec puts no restriction on
// customData, so anything else (a string, base64 data, a content type that
// is not JSON) is ignored.
func applyCustomData(cd *cdEvent, kind Kind, target any, where string) *DecodeError {
	if len(cd.CustomData) == 0 || cd.CustomData[0] != '{' {
		return nil
	}
	if ct := cd.CustomDataContentType; ct != "" && !isJSONMediaType(ct) {
		return nil
	}
	// A scan that gives up leaves in target only values that
	// json.Unmarshal writes there too, and json.Unmarshal then runs over it.
	if scanned(cd.CustomData, target.(jsonFields)) {
		return nil // the common case
	}
	if json.Unmarshal(cd.CustomData, target) == nil {
		return nil // one pass
	}
	// Find what is wrong, field by field, for the reason.
	fields, err := object(cd.CustomData, where+" customData")
	if err != nil {
		return err
	}
	for _, name := range timeFields[kind] {
		if _, err := timestamp(fields, name, where+" customData"); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(cd.CustomData, target); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return reject(ReasonWrongType, "%s: customData.%s is a JSON %s, want %s", where, te.Field, te.Value, te.Type)
		}
		return reject(ReasonInvalidJSON, "%s: customData: %v", where, err)
	}
	return nil
}

// cdSpecVersion returns the spec version of a context, from specversion
// (0.5 and later) or version (0.4), checked to be a semantic version of
// spec 0.4 or later.
func cdSpecVersion(c *cdContext, where string) (string, *DecodeError) {
	v := c.SpecVersion
	switch {
	case v == "" && c.Version == "":
		return "", reject(ReasonMissingField, "%s: CDEvent context has neither specversion (spec 0.5 and later) nor version (spec 0.4)", where)
	case v == "":
		v = c.Version
	case c.Version != "" && c.Version != v:
		return "", reject(ReasonInvalidValue, "%s: CDEvent context.specversion %s and context.version %s differ", where, ident(v), ident(c.Version))
	}
	major, minor, ok := parseSemver(v)
	if !ok {
		return "", reject(ReasonUnsupported, "%s: CDEvents spec version %s is not a semantic version; want 0.4.x, 0.5.x or later", where, ident(v))
	}
	if major == 0 && minor < 4 {
		return "", reject(ReasonUnsupported, "%s: CDEvents spec version %s is not supported, want 0.4.x, 0.5.x or later", where, v)
	}
	return v, nil
}

// splitCDType splits a CDEvents type into subject.predicate and version.
// custom is true for the dev.cdeventsx namespace.
func splitCDType(typ, where string) (name, version string, custom bool, err *DecodeError) {
	rest, ok := strings.CutPrefix(typ, "dev.cdevents.")
	if !ok {
		rest, custom = strings.CutPrefix(typ, "dev.cdeventsx.")
	}
	subject, rest, ok1 := strings.Cut(rest, ".")
	predicate, version, ok2 := strings.Cut(rest, ".")
	_, _, isVersion := parseSemver(version)
	if !ok1 || !ok2 || !isVersion || (!custom && (!cdTypeName(subject) || !cdTypeName(predicate))) {
		return "", "", false, reject(ReasonUnknownKind, "%s: type %s is not dev.cdevents.<subject>.<predicate>.<major.minor.patch>", where, ident(typ))
	}
	return subject + "." + predicate, version, custom, nil
}

// checkTypeVersion checks the version of an accepted type: for a spec
// release opsmetrics knows, the one that release publishes; for a later
// one, any version opsmetrics knows the meaning of.
func checkTypeVersion(spec, name, version, typ, where string) *DecodeError {
	major, minor, _ := parseSemver(spec)
	release := fmt.Sprintf("%d.%d", major, minor)
	var known []string
	for _, tv := range cdTypeVersions {
		if tv.spec == release {
			if version == tv.typ {
				return nil
			}
			return reject(ReasonUnsupported, "%s: type %s: version %s is not the version spec %s publishes for %s (%s)",
				where, ident(typ), version, release, name, tv.typ)
		}
		known = append(known, tv.typ)
	}
	for _, k := range known {
		if version == k {
			return nil
		}
	}
	return reject(ReasonUnsupported, "%s: type %s of CDEvents spec %s: type version %s is not one opsmetrics knows (%s)",
		where, ident(typ), spec, version, strings.Join(known, ", "))
}

// ErrNoCDEvent is returned by MarshalCDEvent for an event CDEvents cannot
// express: any patch, an incident message that neither detects nor
// resolves, or a change that is not merged.
var ErrNoCDEvent = errors.New("event has no CDEvents equivalent")

// CDEventsReleases are the spec releases MarshalCDEvent writes, by the
// name it takes, with the version their context carries.
var CDEventsReleases = map[string]string{"0.4": "0.4.1", "0.5": "0.5.1"}

// CDEvent encodes e as a bare CDEvent document of spec release specVersion
// ("0.4" or "0.5", written as 0.4.1 and 0.5.1), conforming to that
// release's published JSON schema: spec 0.4 names the context's version
// "version" and requires subject.type; 0.5 names it "specversion" and has
// no subject.type. Fields CDEvents has no place for travel in customData
// under their native names, so decoding gives e back.
func CDEvent(e *Event, source, specVersion string) ([]byte, error) {
	cd, err := cdEventOf(e, source, specVersion)
	if err != nil {
		return nil, err
	}
	return json.Marshal(cd)
}

// MarshalCDEvent encodes e as a structured-mode CloudEvent whose data is
// the CDEvent that CDEvent writes; the CloudEvent's id, source, type,
// subject and time are the CDEvent's id, source, type, subject id and
// timestamp, as the CDEvents CloudEvents binding requires.
func MarshalCDEvent(e *Event, source, specVersion string) ([]byte, error) {
	cd, err := cdEventOf(e, source, specVersion)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(cd)
	if err != nil {
		return nil, err
	}
	ce := cloudEvent{SpecVersion: "1.0", ID: cd.Context.ID, Source: source, Type: cd.Context.Type, Subject: cd.Subject.ID,
		Time: cd.Context.Timestamp, DataContentType: "application/json", Data: data}
	return json.Marshal(ce)
}

// CDEventBinary encodes e as a binary-mode CloudEvent: the CloudEvents
// attributes in ce_* headers, the CDEvent as the value.
func CDEventBinary(e *Event, source, specVersion string) ([]Header, []byte, error) {
	cd, err := cdEventOf(e, source, specVersion)
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(cd)
	if err != nil {
		return nil, nil, err
	}
	return []Header{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte(cd.Context.ID)},
		{Key: "ce_source", Value: []byte(source)},
		{Key: "ce_type", Value: []byte(cd.Context.Type)},
		{Key: "ce_subject", Value: []byte(cd.Subject.ID)},
		{Key: "ce_time", Value: []byte(cd.Context.Timestamp)},
		{Key: "content-type", Value: []byte("application/json")},
	}, data, nil
}

// purl is the artifactId of a deployment, which the spec types as a
// package URL: the artifact when it is one, else a generic purl of the
// service and version (customData keeps the artifact as it was).
func purl(d *Deployment) string {
	if strings.HasPrefix(d.Artifact, "pkg:") {
		return d.Artifact
	}
	version := d.Version
	if version == "" {
		version = d.ID
	}
	return "pkg:generic/" + url.PathEscape(d.Service) + "@" + url.PathEscape(version)
}

// cdEventOf builds the CDEvent of e.
func cdEventOf(e *Event, source, specVersion string) (*cdEvent, error) {
	ctxVersion, ok := CDEventsReleases[specVersion]
	if !ok {
		return nil, errors.New("CDEvents spec version must be 0.4 or 0.5")
	}
	var typeVersion string
	for _, tv := range cdTypeVersions {
		if tv.spec == specVersion {
			typeVersion = tv.typ
		}
	}
	var (
		typ     string
		ts      time.Time
		subject = &cdSubject{}
	)
	switch e.Kind {
	case KindDeployment:
		d := e.Deployment
		// A failure has no CDEvents predicate: it is sent as service.deployed
		// and customData carries the status.
		typ = "service.deployed"
		if d.Status == DeploymentRolledBack {
			typ = "service.rolledback"
		}
		subject.ID, subject.Type = d.Service, "service"
		subject.Content = cdSubjectFields{Environment: &cdRef{ID: d.Environment}, ArtifactID: purl(d)}
		ts = d.FinishedAt
	case KindIncident:
		i := e.Incident
		switch {
		case !i.ResolvedAt.IsZero():
			typ, ts = "incident.resolved", i.ResolvedAt
		case !i.DetectedAt.IsZero() && i.DetectionSource == DetectedByCustomer:
			typ, ts = "incident.reported", i.DetectedAt
		case !i.DetectedAt.IsZero():
			typ, ts = "incident.detected", i.DetectedAt
		default:
			return nil, ErrNoCDEvent
		}
		if i.Environment == "" {
			return nil, ErrNoCDEvent // required by the schemas of every incident type
		}
		subject.ID, subject.Type = i.ID, "incident"
		subject.Content = cdSubjectFields{Environment: &cdRef{ID: i.Environment}, Description: i.Title}
		if i.Service != "" {
			subject.Content.Service = &cdRef{ID: i.Service}
		}
		if typ == "incident.reported" {
			subject.Content.TicketURI = "urn:opsmetrics:incident:" + i.ID
		}
	case KindChange:
		c := e.Change
		if c.MergedAt.IsZero() {
			return nil, ErrNoCDEvent
		}
		typ, ts = "change.merged", c.MergedAt
		repo := c.Repository
		if repo == "" {
			repo = c.Service
		}
		subject.ID, subject.Type = c.ID, "change"
		subject.Content = cdSubjectFields{Repository: &cdRef{ID: repo}}
	default:
		return nil, ErrNoCDEvent
	}
	if specVersion != "0.4" {
		subject.Type = "" // spec 0.5 removed subject.type
	}
	custom, err := json.Marshal(payload(e))
	if err != nil {
		return nil, err
	}
	cd := &cdEvent{Context: &cdContext{ID: ceID(e, source), Source: source, Type: "dev.cdevents." + typ + "." + typeVersion,
		Timestamp: ts.UTC().Format(time.RFC3339Nano)}, Subject: subject, CustomData: custom}
	if specVersion == "0.4" {
		cd.Context.Version = ctxVersion
	} else {
		cd.Context.SpecVersion = ctxVersion
	}
	return cd, nil
}
