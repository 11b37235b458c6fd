// Package eventfixtures holds the CDEvents conformance fixtures that the
// tests of the decoder and of ingestion share, with what each must become.
//
// The fixtures (testdata/<spec version>_<subject>_<predicate>.json) are
// CDEvents we wrote from the JSON schemas and conformance examples of each
// release of cdevents/spec (v0.4.1, v0.5.0, v0.5.1 and the 0.6.0 draft), with
// our own ids and values, as bare documents. Forms wraps one in a CloudEvent
// in each Kafka binding mode, as the CDEvents CloudEvents binding says.
package eventfixtures

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

//go:embed testdata/*.json
var files embed.FS

// Fixture is one conformance fixture.
type Fixture struct {
	Name string // file name without .json
	Spec string // the spec version its context names
	Type string // subject.predicate
	// Doc is the document, compacted to one line.
	Doc []byte
	// ID, Source, EventType, Timestamp and Subject are its context's id,
	// source, type and timestamp and its subject's id.
	ID, Source, EventType, Timestamp, Subject string
	// Want is what the event decodes to, as Summary writes it; empty for a
	// type opsmetrics skips.
	Want string
}

// All returns every fixture, sorted by name.
func All() ([]Fixture, error) {
	entries, err := files.ReadDir("testdata")
	if err != nil {
		return nil, err
	}
	var out []Fixture
	for _, e := range entries {
		b, err := files.ReadFile(path.Join("testdata", e.Name()))
		if err != nil {
			return nil, err
		}
		f, err := parse(strings.TrimSuffix(e.Name(), ".json"), b)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func parse(name string, b []byte) (Fixture, error) {
	spec, typ, _ := strings.Cut(name, "_")
	var doc struct {
		Context struct {
			ID        string `json:"id"`
			Source    string `json:"source"`
			Type      string `json:"type"`
			Timestamp string `json:"timestamp"`
		} `json:"context"`
		Subject struct {
			ID string `json:"id"`
		} `json:"subject"`
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return Fixture{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Fixture{}, fmt.Errorf("%s: %w", name, err)
	}
	want, ok := expected[name]
	if !ok && !skipped[name] {
		return Fixture{}, fmt.Errorf("fixture %s has no expectation", name)
	}
	c := doc.Context
	return Fixture{Name: name, Spec: spec, Type: strings.Replace(typ, "_", ".", 1), Doc: compact.Bytes(),
		ID: c.ID, Source: c.Source, EventType: c.Type, Timestamp: c.Timestamp, Subject: doc.Subject.ID, Want: want}, nil
}

// Variant returns f with tag appended to its context id and, but for a
// service event (whose subject is the service), its subject id, so that
// several copies of one fixture are separate events about separate
// entities; Want follows.
func (f Fixture) Variant(tag string) Fixture {
	v := f
	v.ID = f.ID + tag
	v.Doc = bytes.Replace(f.Doc, []byte(`"id":"`+f.ID+`"`), []byte(`"id":"`+v.ID+`"`), 1)
	if !strings.HasPrefix(f.Type, "service.") {
		v.Subject = f.Subject + tag
		v.Doc = bytes.Replace(v.Doc, []byte(`"subject":{"id":"`+f.Subject+`"`), []byte(`"subject":{"id":"`+v.Subject+`"`), 1)
	}
	if f.Want != "" {
		kind, rest, _ := strings.Cut(f.Want, " ")
		id, rest, _ := strings.Cut(rest, " ")
		if kind == "deployment" {
			id += tag // a CDEvents deployment is identified by its event
		} else {
			id = v.Subject
		}
		v.Want = kind + " " + id + " " + rest
	}
	return v
}

// Header is a Kafka header of a form.
type Header struct{ Key, Value string }

// Form is one way a fixture reaches Kafka.
type Form struct {
	Name    string // bare, structured or binary
	Value   []byte
	Headers []Header
}

// Forms are the three ways a fixture reaches Kafka: bare, and in a
// CloudEvent in each binding mode with the CloudEvent's id, source, type,
// subject and time taken from the CDEvent, and an extension attribute.
func (f Fixture) Forms() []Form {
	structured, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": f.ID, "source": f.Source, "type": f.EventType,
		"subject": f.Subject, "time": f.Timestamp, "datacontenttype": "application/json", "comacmeteam": "payments",
		"data": json.RawMessage(f.Doc)})
	return []Form{
		{Name: "bare", Value: f.Doc},
		{Name: "structured", Value: structured, Headers: []Header{{"content-type", "application/cloudevents+json; charset=UTF-8"}}},
		{Name: "binary", Value: f.Doc, Headers: []Header{
			{"ce_specversion", "1.0"}, {"ce_id", f.ID}, {"ce_source", f.Source}, {"ce_type", f.EventType},
			{"ce_subject", f.Subject}, {"ce_time", f.Timestamp}, {"ce_comacmeteam", "payments"},
			{"content-type", "application/json"}}},
	}
}

// Summary is an event's fields as one line, in the form of Fixture.Want.
func Summary(e *event.Event) string {
	f := func(t time.Time) string {
		if t.IsZero() || t.Unix() <= 0 {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	switch e.Kind {
	case event.KindDeployment:
		d := e.Deployment
		return fmt.Sprintf("deployment %s %s team=%s env=%s %s %s artifact=%s changes=%s", d.ID, d.Service, d.Team, d.Environment,
			d.Status, f(d.FinishedAt), d.Artifact, strings.Join(d.Changes, ","))
	case event.KindIncident:
		i := e.Incident
		return fmt.Sprintf("incident %s %s env=%s sev=%s source=%s impact=%s detected=%s resolved=%s title=%s", i.ID, i.Service, i.Environment,
			i.Severity, i.DetectionSource, f(i.ImpactStartedAt), f(i.DetectedAt), f(i.ResolvedAt), i.Title)
	case event.KindChange:
		c := e.Change
		return fmt.Sprintf("change %s %s repo=%s author=%s authored=%s merged=%s", c.ID, c.Service, c.Repository, c.Author, f(c.AuthoredAt), f(c.MergedAt))
	}
	return string(e.Kind)
}

// expected is what each fixture of an accepted type decodes to, written
// from the fixture and the mapping in docs/events.md (environment names are
// lower-cased, severities mapped, times in UTC, customData applied).
var expected = map[string]string{
	"0.4.1_service_deployed":         "deployment om-0.4.1-service-deployed-1 checkout team=payments env=production success 2026-02-10T09:41:07Z artifact=pkg:oci/checkout@sha256%3A041aa11bb22cc33dd44ee55ff66 changes=0410c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9",
	"0.4.1_service_upgraded":         "deployment om-0.4.1-service-upgraded-1 search team= env=production success 2026-02-10T11:02:00Z artifact=pkg:oci/search@v3.8.1 changes=",
	"0.4.1_service_rolledback":       "deployment om-0.4.1-service-rolledback-1 pricing team= env=staging rolled_back 2026-02-10T12:30:00Z artifact=pkg:oci/pricing@v2.0.9 changes=",
	"0.4.1_incident_detected":        "incident PD-041-1 checkout env=production sev=high source=monitoring impact=2026-02-10T09:58:30Z detected=2026-02-10T10:05:00Z resolved= title=checkout p99 latency over 2s",
	"0.4.1_incident_reported":        "incident SUP-041-7 billing env=production sev= source=customer impact= detected=2026-02-10T12:15:00Z resolved= title=customers cannot pay by card",
	"0.4.1_incident_resolved":        "incident PD-041-1 checkout env=production sev= source= impact= detected= resolved=2026-02-10T14:45:00Z title=",
	"0.4.1_change_merged":            "change 0410c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9 checkout repo=acme/checkout author=r.ng authored=2026-02-10T07:55:00Z merged=2026-02-10T08:20:00Z",
	"0.5.0_service_deployed":         "deployment om-0.5.0-service-deployed-1 checkout team= env=production failure 2026-02-11T09:41:07Z artifact=pkg:oci/checkout@sha256%3A051aa11bb22cc33dd44ee55ff66 changes=",
	"0.5.0_incident_detected":        "incident PD-050-1 checkout env=production sev=high source=monitoring impact=2026-02-11T09:58:30Z detected=2026-02-11T10:05:00Z resolved= title=checkout p99 latency over 2s",
	"0.5.0_change_merged":            "change 0500c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8 checkout repo=acme/checkout author= authored= merged=2026-02-11T08:20:00Z",
	"0.5.1_service_deployed":         "deployment om-0.5.1-service-deployed-1 checkout team=payments env=production success 2026-02-11T09:41:07Z artifact=pkg:oci/checkout@sha256%3A051aa11bb22cc33dd44ee55ff66 changes=0510c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9",
	"0.5.1_service_upgraded":         "deployment om-0.5.1-service-upgraded-1 search team= env=production success 2026-02-11T11:02:00Z artifact=pkg:oci/search@v3.8.1 changes=",
	"0.5.1_service_rolledback":       "deployment om-0.5.1-service-rolledback-1 pricing team= env=staging rolled_back 2026-02-11T12:30:00Z artifact=pkg:oci/pricing@v2.0.9 changes=",
	"0.5.1_incident_detected":        "incident PD-051-1 checkout env=production sev=high source=monitoring impact=2026-02-11T09:58:30Z detected=2026-02-11T10:05:00Z resolved= title=checkout p99 latency over 2s",
	"0.5.1_incident_reported":        "incident SUP-051-7 billing env=production sev= source=customer impact= detected=2026-02-11T12:15:00Z resolved= title=customers cannot pay by card",
	"0.5.1_incident_resolved":        "incident PD-051-1 checkout env=production sev= source= impact= detected= resolved=2026-02-11T14:45:00Z title=",
	"0.5.1_change_merged":            "change 0510c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9 checkout repo=acme/checkout author=r.ng authored=2026-02-11T07:55:00Z merged=2026-02-11T08:20:00Z",
	"0.6.0-draft_service_deployed":   "deployment om-0.6.0-draft-service-deployed-1 checkout team=payments env=production success 2026-02-12T09:41:07Z artifact=pkg:oci/checkout@sha256%3A060aa11bb22cc33dd44ee55ff66 changes=0600c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9",
	"0.6.0-draft_service_upgraded":   "deployment om-0.6.0-draft-service-upgraded-1 search team= env=production success 2026-02-12T11:02:00Z artifact=pkg:oci/search@v3.8.1 changes=",
	"0.6.0-draft_service_rolledback": "deployment om-0.6.0-draft-service-rolledback-1 pricing team= env=staging rolled_back 2026-02-12T12:30:00Z artifact=pkg:oci/pricing@v2.0.9 changes=",
	"0.6.0-draft_incident_detected":  "incident PD-060-1 checkout env=production sev=high source=monitoring impact=2026-02-12T09:58:30Z detected=2026-02-12T10:05:00Z resolved= title=checkout p99 latency over 2s",
	"0.6.0-draft_incident_reported":  "incident SUP-060-7 billing env=production sev= source=customer impact= detected=2026-02-12T12:15:00Z resolved= title=customers cannot pay by card",
	"0.6.0-draft_incident_resolved":  "incident PD-060-1 checkout env=production sev= source= impact= detected= resolved=2026-02-12T14:45:00Z title=",
	"0.6.0-draft_change_merged":      "change 0600c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9 checkout repo=acme/checkout author=r.ng authored=2026-02-12T07:55:00Z merged=2026-02-12T08:20:00Z",
}

// skipped are the fixtures of types opsmetrics does not store.
var skipped = map[string]bool{
	"0.4.1_pipelinerun_finished": true, "0.4.1_testcaserun_finished": true, "0.4.1_environment_created": true,
	"0.5.1_artifact_packaged": true, "0.5.1_build_finished": true, "0.5.1_ticket_created": true,
	"0.5.1_change_created": true, "0.5.0_service_removed": true,
}
