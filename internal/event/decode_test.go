package event_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

var now = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func decoder() *event.Decoder { return &event.Decoder{Now: func() time.Time { return now }} }

// TestEveryEncodingRoundTrips encodes a generated stream in every encoding
// and checks that decoding gives back the same events.
func TestEveryEncodingRoundTrips(t *testing.T) {
	var events []*event.Event
	if _, err := generator.Generate(generator.Config{Services: 4, Days: 14, Seed: 3, End: now}, func(e *event.Event) error {
		events = append(events, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const source = "/test"
	counts := map[string]int{}
	for _, e := range events {
		type encoded struct {
			name    string
			value   []byte
			headers []event.Header
			id      string
		}
		var encs []encoded
		b, err := event.MarshalNative(e)
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, encoded{"native", b, nil, e.ID})
		b, err = event.MarshalCloudEvent(e, source)
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, encoded{"structured", b, []event.Header{{Key: "Content-Type", Value: []byte("application/cloudevents+json; charset=utf-8")}}, source + " " + e.ID})
		hs, b, err := event.CloudEventBinary(e, source)
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, encoded{"binary", b, hs, source + " " + e.ID})
		for _, v := range []string{"0.4", "0.5"} {
			b, err := event.MarshalCDEvent(e, source, v)
			if errors.Is(err, event.ErrNoCDEvent) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			encs = append(encs, encoded{"cdevents-" + v, b, nil, source + " " + e.ID})
		}
		for _, enc := range encs {
			got, err := decoder().Decode(event.Message{Value: enc.value, Headers: enc.headers})
			if err != nil {
				t.Fatalf("%s %s: decode: %v\n%s", e.Kind, enc.name, err, enc.value)
			}
			counts[string(e.Kind)+"/"+enc.name]++
			want := *e
			want.ID, want.Encoding = enc.id, got.Encoding
			if !reflect.DeepEqual(normalizeChanges(got), normalizeChanges(&want)) {
				t.Fatalf("%s %s: round trip differs\n got %+v %+v\nwant %+v %+v", e.Kind, enc.name, got, payloadOf(got), &want, payloadOf(&want))
			}
		}
	}
	for _, k := range []string{"deployment", "incident", "change"} {
		for _, enc := range []string{"native", "structured", "binary", "cdevents-0.4", "cdevents-0.5"} {
			if counts[k+"/"+enc] == 0 {
				t.Errorf("no %s event was round-tripped as %s", k, enc)
			}
		}
	}
	if counts["patch/binary"] == 0 {
		t.Error("no patch was round-tripped")
	}
}

func normalizeChanges(e *event.Event) *event.Event {
	if e.Deployment != nil && len(e.Deployment.Changes) == 0 {
		c := *e
		d := *e.Deployment
		d.Changes = nil
		c.Deployment = &d
		return &c
	}
	return e
}

func payloadOf(e *event.Event) any {
	switch e.Kind {
	case event.KindDeployment:
		return e.Deployment
	case event.KindIncident:
		return e.Incident
	case event.KindPatch:
		return e.Patch
	}
	return e.Change
}

func TestRejections(t *testing.T) {
	ce := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	dep := `"kind":"deployment","deployment_id":"d-1","service":"checkout","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z"`
	cases := []struct {
		name    string
		value   string
		headers []event.Header
		max     int
		reason  event.Reason
		detail  string
	}{
		{"empty", "", nil, 0, event.ReasonInvalidJSON, "empty"},
		{"truncated", `{"kind":`, nil, 0, event.ReasonInvalidJSON, "not valid JSON"},
		{"array", `[]`, nil, 0, event.ReasonInvalidJSON, "want an object"},
		{"null", `null`, nil, 0, event.ReasonInvalidJSON, "null"},
		{"oversized", `{"x":"` + strings.Repeat("a", 100) + `"}`, nil, 50, event.ReasonOversized, "limit of 50"},
		{"latin-1", "{\"kind\":\"caf\xe9\"}", nil, 0, event.ReasonNotUTF8, "offset 12"},
		{"latin-1 header", `{}`, []event.Header{{Key: "ce_source", Value: []byte{0xff}}}, 0, event.ReasonNotUTF8, "ce_source"},
		{"no kind", `{"event_id":"e"}`, nil, 0, event.ReasonUnknownKind, "no kind"},
		{"unknown kind", `{"kind":"build","event_id":"e"}`, nil, 0, event.ReasonUnknownKind, `"build"`},
		{"kind not a string", `{"kind":1,"event_id":"e"}`, nil, 0, event.ReasonWrongType, "kind is a number"},
		{"no event id", `{` + dep + `}`, nil, 0, event.ReasonMissingID, "event_id"},
		{"service is a number", `{"event_id":"e",` + strings.Replace(dep, `"checkout"`, `7`, 1) + `}`, nil, 0, event.ReasonWrongType, "service"},
		{"changes not an array", `{"event_id":"e","changes":"abc",` + dep + `}`, nil, 0, event.ReasonWrongType, "changes"},
		{"bad time", `{"event_id":"e",` + strings.Replace(dep, `2026-03-01T10:00:00Z`, `01/03/2026`, 1) + `}`, nil, 0, event.ReasonWrongType, `finished_at "01/03/2026"`},
		{"time without zone", `{"event_id":"e",` + strings.Replace(dep, `2026-03-01T10:00:00Z`, `2026-03-01T10:00:00`, 1) + `}`, nil, 0, event.ReasonWrongType, "finished_at"},
		{"missing status", `{"event_id":"e",` + strings.Replace(dep, `"status":"success",`, ``, 1) + `}`, nil, 0, event.ReasonMissingField, "deployment d-1: required field status"},
		{"bad status", `{"event_id":"e",` + strings.Replace(dep, `"success"`, `"meh"`, 1) + `}`, nil, 0, event.ReasonInvalidValue, `status "meh"`},
		{"future", `{"event_id":"e",` + strings.Replace(dep, `2026-03-01`, `2026-03-05`, 1) + `}`, nil, 0, event.ReasonFutureTimestamp, "finished_at 2026-03-05T10:00:00Z is in the future"},
		{"resolved before detected", `{"kind":"incident","event_id":"e","incident_id":"INC-7","detected_at":"2026-03-01T11:00:00Z","resolved_at":"2026-03-01T10:00:00Z"}`, nil, 0, event.ReasonTimeOrder,
			"incident INC-7: resolved_at 2026-03-01T10:00:00Z is before detected_at 2026-03-01T11:00:00Z"},
		{"offsets compared in UTC", `{"kind":"incident","event_id":"e","incident_id":"INC-8","detected_at":"2026-03-01T11:00:00+02:00","acknowledged_at":"2026-03-01T08:30:00Z"}`, nil, 0, event.ReasonTimeOrder, "acknowledged_at"},
		{"incident without timestamps", `{"kind":"incident","event_id":"e","incident_id":"INC-9","severity":"high"}`, nil, 0, event.ReasonMissingField, "at least one of"},
		{"bad severity", `{"kind":"incident","event_id":"e","incident_id":"INC-9","severity":"apocalyptic","detected_at":"2026-03-01T10:00:00Z"}`, nil, 0, event.ReasonInvalidValue, "severity"},
		{"patch applied before released", `{"kind":"patch","event_id":"e","patch_id":"CVE-1","target":"h1","released_at":"2026-03-01T10:00:00Z","applied_at":"2026-02-01T10:00:00Z"}`, nil, 0, event.ReasonTimeOrder, "applied_at"},
		{"patch without target", `{"kind":"patch","event_id":"e","patch_id":"CVE-1","released_at":"2026-03-01T10:00:00Z"}`, nil, 0, event.ReasonMissingField, "target"},
		{"cloudevent without id", `{"specversion":"1.0","source":"/ci","type":"` + event.TypeDeploymentReported + `","data":{}}`, ce, 0, event.ReasonMissingID, "no id"},
		{"cloudevent without source", `{"specversion":"1.0","id":"x","type":"` + event.TypeDeploymentReported + `","data":{}}`, ce, 0, event.ReasonMissingID, "no source"},
		{"cloudevent 0.3", `{"specversion":"0.3","id":"x","source":"/ci","type":"` + event.TypeDeploymentReported + `"}`, ce, 0, event.ReasonUnsupported, "specversion"},
		{"unknown cloudevent type", `{"specversion":"1.0","id":"x","source":"/ci","type":"com.example.thing","data":{}}`, ce, 0, event.ReasonUnknownKind, "com.example.thing"},
		{"cloudevent data not JSON", `{"specversion":"1.0","id":"x","source":"/ci","type":"` + event.TypeDeploymentReported + `","datacontenttype":"text/plain","data":"hi"}`, ce, 0, event.ReasonUnsupported, "text/plain"},
		{"binary without id", `{}`, []event.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_source", Value: []byte("/ci")}, {Key: "ce_type", Value: []byte(event.TypeChangeReported)}}, 0, event.ReasonMissingID, "no id"},
		{"cdevent without subject", `{"specversion":"1.0","id":"x","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","data":{"context":{"version":"0.5.0","timestamp":"2026-03-01T10:00:00Z"}}}`, ce, 0, event.ReasonMissingSubject, "no subject"},
		{"cdevent without artifact", `{"specversion":"1.0","id":"x","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","data":{"context":{"version":"0.5.0","timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"checkout","content":{"environment":{"id":"production"}}}}}`, ce, 0, event.ReasonMissingField, "artifactId"},
		{"cdevent reported without ticket", `{"specversion":"1.0","id":"x","source":"/ci","type":"dev.cdevents.incident.reported.0.2.0","data":{"context":{"version":"0.4.1","timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"INC-1","content":{"environment":{"id":"production"}}}}}`, ce, 0, event.ReasonMissingField, "ticketURI"},
		{"cdevents spec 0.3", `{"specversion":"1.0","id":"x","source":"/ci","type":"dev.cdevents.service.deployed.0.1.0","data":{"context":{"version":"0.3.0"},"subject":{"id":"s"}}}`, ce, 0, event.ReasonUnsupported, "0.3.0"},
		{"cdevents type version mismatch", `{"specversion":"1.0","id":"x","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","data":{"context":{"version":"0.4.1"},"subject":{"id":"s"}}}`, ce, 0, event.ReasonUnsupported, "spec 0.4"},
		{"cdevent without context", `{"specversion":"1.0","id":"x","source":"/ci","type":"dev.cdevents.pipelinerun.finished.0.2.0","data":{}}`, ce, 0, event.ReasonMissingField, "no context"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decoder()
			d.MaxBytes = c.max
			e, err := d.Decode(event.Message{Value: []byte(c.value), Headers: c.headers})
			var de *event.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q) = %+v, %v; want a *DecodeError", c.value, e, err)
			}
			if de.Reason != c.reason || !strings.Contains(de.Detail, c.detail) {
				t.Fatalf("Decode(%.80q):\n got %s: %s\nwant %s mentioning %q", c.value, de.Reason, de.Detail, c.reason, c.detail)
			}
		})
	}
}

func TestAliasesAndOffsets(t *testing.T) {
	e, err := decoder().Decode(event.Message{Value: []byte(`{"kind":"incident","event_id":"e","incident_id":"I","severity":"SEV1","detection_source":"Customer","detected_at":"2026-03-01T12:00:00+02:00"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Incident.Severity != event.SeverityCritical || e.Incident.DetectionSource != event.DetectedByCustomer {
		t.Errorf("aliases not normalised: %+v", e.Incident)
	}
	if want := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC); !e.Incident.DetectedAt.Equal(want) || e.Incident.DetectedAt.Location() != time.UTC {
		t.Errorf("detected_at = %v, want %v in UTC", e.Incident.DetectedAt, want)
	}
	if !e.Time.Equal(e.Incident.DetectedAt) {
		t.Errorf("event time %v, want the latest timestamp %v", e.Time, e.Incident.DetectedAt)
	}
	d, err := decoder().Decode(event.Message{Value: []byte(`{"kind":"deployment","event_id":"e","deployment_id":"d","service":"s","environment":"production","status":"rollback","finished_at":"2026-03-01T10:00:00Z","fixes_incident":"I"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Deployment.Status != event.DeploymentRolledBack || !d.Deployment.Unplanned {
		t.Errorf("deployment not normalised: %+v", d.Deployment)
	}
}
