package event

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// CDEvents spec versions we accept, with the version suffix their event
// types carry. Spec 0.4 released the service, incident and change events
// used here at 0.2.0 (incident events also at 0.1.0); spec 0.5 at 0.3.0.
var cdeventsTypeVersions = map[string][]string{
	"0.4": {"0.1.0", "0.2.0"},
	"0.5": {"0.3.0"},
}

type cdEvent struct {
	Context struct {
		Version   string `json:"version"`
		ID        string `json:"id"`
		Source    string `json:"source"`
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
	} `json:"context"`
	Subject    *cdSubject      `json:"subject"`
	CustomData json.RawMessage `json:"customData,omitempty"`
}

type cdSubject struct {
	ID      string          `json:"id"`
	Source  string          `json:"source,omitempty"`
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

func fromCDEvent(ce *cloudEvent, t time.Time, where string) (*Event, *DecodeError) {
	rest := strings.TrimPrefix(ce.Type, "dev.cdevents.")
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) != 3 {
		return nil, reject(ReasonUnknownKind, "%s: type %q is not dev.cdevents.<subject>.<predicate>.<version>", where, ce.Type)
	}
	subject, predicate, version := parts[0], parts[1], parts[2]
	kinds := map[string]Kind{
		"service.deployed": KindDeployment, "service.upgraded": KindDeployment, "service.rolledback": KindDeployment,
		"incident.detected": KindIncident, "incident.reported": KindIncident, "incident.resolved": KindIncident,
		"change.merged": KindChange,
	}
	kind, ok := kinds[subject+"."+predicate]
	if !ok {
		return nil, reject(ReasonUnknownKind, "%s: CDEvents type %q is not one opsmetrics accepts; it takes service.deployed, service.upgraded, service.rolledback, incident.detected, incident.reported, incident.resolved and change.merged", where, ce.Type)
	}
	if len(ce.Data) == 0 {
		return nil, reject(ReasonMissingField, "%s: CDEvent has no data", where)
	}
	if _, err := object(ce.Data, where+" data"); err != nil {
		return nil, err
	}
	var cd cdEvent
	if err := json.Unmarshal(ce.Data, &cd); err != nil {
		return nil, reject(ReasonWrongType, "%s: CDEvent: %v", where, err)
	}
	spec := ""
	for s := range cdeventsTypeVersions {
		if strings.HasPrefix(cd.Context.Version, s+".") {
			spec = s
		}
	}
	if spec == "" {
		return nil, reject(ReasonUnsupported, "%s: CDEvents spec version %q is not supported, want 0.4.x or 0.5.x", where, cd.Context.Version)
	}
	if !contains(cdeventsTypeVersions[spec], version) {
		return nil, reject(ReasonUnsupported, "%s: type %q: version %s is not a version of spec %s (want %s)", where, ce.Type,
			version, spec, strings.Join(cdeventsTypeVersions[spec], " or "))
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
			return nil, reject(ReasonWrongType, "%s: context.timestamp %q is not an RFC 3339 timestamp", where, cd.Context.Timestamp)
		}
		ts = parsed.UTC()
	}
	if ts.IsZero() {
		return nil, reject(ReasonMissingField, "%s: CDEvent has neither context.timestamp nor a CloudEvents time", where)
	}
	envID := ""
	if s.Content.Environment != nil {
		envID = s.Content.Environment.ID
	}

	e := &Event{Kind: kind, Encoding: EncodingCDEvents, Time: t}
	var target any
	switch kind {
	case KindDeployment:
		if envID == "" {
			return nil, reject(ReasonMissingField, "%s: %s requires subject.content.environment.id", where, subject+"."+predicate)
		}
		if s.Content.ArtifactID == "" {
			return nil, reject(ReasonMissingField, "%s: %s requires subject.content.artifactId", where, subject+"."+predicate)
		}
		status := DeploymentSuccess
		if predicate == "rolledback" {
			status = DeploymentRolledBack
		}
		e.Deployment = &Deployment{ID: ce.ID, Service: s.ID, Environment: envID, Status: status,
			Version: s.Content.ArtifactID, Artifact: s.Content.ArtifactID, StartedAt: ts, FinishedAt: ts}
		target = e.Deployment
	case KindIncident:
		if envID == "" {
			return nil, reject(ReasonMissingField, "%s: %s requires subject.content.environment", where, subject+"."+predicate)
		}
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
	// customData may carry what CDEvents has no field for, in our native
	// field names: team, severity, changes, cause_deployment_id, and so on.
	if len(cd.CustomData) > 0 && string(cd.CustomData) != "null" {
		fields, err := object(cd.CustomData, where+" customData")
		if err != nil {
			return nil, err
		}
		for _, name := range timeFields[kind] {
			if _, err := timestamp(fields, name, where+" customData"); err != nil {
				return nil, err
			}
		}
		if err := json.Unmarshal(cd.CustomData, target); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, reject(ReasonWrongType, "%s: customData.%s is a JSON %s, want %s", where, te.Field, te.Value, te.Type)
			}
			return nil, reject(ReasonInvalidJSON, "%s: customData: %v", where, err)
		}
	}
	return e, nil
}

// ErrNoCDEvent is returned by MarshalCDEvent for an event CDEvents cannot
// express: any patch, an incident message that neither detects nor
// resolves, or a change that is not merged.
var ErrNoCDEvent = errors.New("event has no CDEvents equivalent")

// MarshalCDEvent encodes e as a structured-mode CloudEvent carrying a
// CDEvent of spec version specVersion ("0.4" or "0.5"). Fields CDEvents has
// no place for travel in customData under their native names, so decoding
// gives e back.
func MarshalCDEvent(e *Event, source, specVersion string) ([]byte, error) {
	var ctxVersion, typeVersion string
	switch specVersion {
	case "0.4":
		ctxVersion, typeVersion = "0.4.1", "0.2.0"
	case "0.5":
		ctxVersion, typeVersion = "0.5.0", "0.3.0"
	default:
		return nil, errors.New("CDEvents spec version must be 0.4 or 0.5")
	}
	var (
		cd      cdEvent
		typ     string
		ts      time.Time
		id      = ceID(e, source)
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
		artifact := d.Artifact
		if artifact == "" {
			artifact = "pkg:generic/" + d.Service + "@" + d.Version
		}
		subject.ID, subject.Type = d.Service, "service"
		subject.Content = cdSubjectFields{Environment: &cdRef{ID: d.Environment}, ArtifactID: artifact}
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
			return nil, ErrNoCDEvent
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
	custom, err := json.Marshal(payload(e))
	if err != nil {
		return nil, err
	}
	cd.Context.Version = ctxVersion
	cd.Context.ID = id
	cd.Context.Source = source
	cd.Context.Type = "dev.cdevents." + typ + "." + typeVersion
	cd.Context.Timestamp = ts.UTC().Format(time.RFC3339Nano)
	cd.Subject = subject
	cd.CustomData = custom
	data, err := json.Marshal(cd)
	if err != nil {
		return nil, err
	}
	ce := cloudEvent{SpecVersion: "1.0", ID: id, Source: source, Type: cd.Context.Type,
		Time: e.Time.UTC().Format(time.RFC3339Nano), DataContentType: "application/json", Data: data}
	if e.Time.IsZero() {
		ce.Time = cd.Context.Timestamp
	}
	return json.Marshal(ce)
}
