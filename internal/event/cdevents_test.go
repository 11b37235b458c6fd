package event_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// cdDoc is a bare service.deployed CDEvent with the given context version
// members (`"specversion":"0.5.1"`) and type.
func cdDoc(versions, typ string) string {
	return `{"context":{` + versions + `,"id":"v-1","source":"/ci","type":"` + typ + `","timestamp":"2026-03-01T10:00:00Z"},` +
		`"subject":{"id":"checkout","content":{"environment":{"id":"production"},"artifactId":"pkg:oci/checkout@v1"}}}`
}

// TestCDEventsVersions checks how spec and type versions are read: exactly,
// as semantic versions, with the type version deciding for a later spec.
func TestCDEventsVersions(t *testing.T) {
	const deployed3, deployed2 = "dev.cdevents.service.deployed.0.3.0", "dev.cdevents.service.deployed.0.2.0"
	cases := []struct {
		name, doc string
		reason    event.Reason // empty: accepted
		detail    string
	}{
		{"0.5 specversion", cdDoc(`"specversion":"0.5.1"`, deployed3), "", ""},
		{"0.5.0", cdDoc(`"specversion":"0.5.0"`, deployed3), "", ""},
		{"0.4 version", cdDoc(`"version":"0.4.1"`, deployed2), "", ""},
		{"0.4 under specversion", cdDoc(`"specversion":"0.4.1"`, deployed2), "", ""},
		{"both fields agree", cdDoc(`"specversion":"0.5.1","version":"0.5.1"`, deployed3), "", ""},
		{"0.6 draft, known type version", cdDoc(`"specversion":"0.6.0-draft"`, deployed3), "", ""},
		{"1.2 later release, known type version", cdDoc(`"specversion":"1.2.0"`, deployed3), "", ""},
		{"0.6 draft, unknown type version", cdDoc(`"specversion":"0.6.0-draft"`, "dev.cdevents.service.deployed.0.4.0"),
			event.ReasonUnsupported, "type version 0.4.0 is not one opsmetrics knows"},
		{"0.5 with the 0.4 type version", cdDoc(`"specversion":"0.5.1"`, deployed2), event.ReasonUnsupported, "spec 0.5 publishes for service.deployed (0.3.0)"},
		{"0.4 with the 0.5 type version", cdDoc(`"version":"0.4.1"`, deployed3), event.ReasonUnsupported, "spec 0.4"},
		{"0.3", cdDoc(`"version":"0.3.0"`, "dev.cdevents.service.deployed.0.1.1"), event.ReasonUnsupported, "0.3.0 is not supported"},
		{"prefix is not a version", cdDoc(`"version":"0.4.1-evil' OR 1=1"`, deployed2), event.ReasonUnsupported, "is not a semantic version"},
		{"short version", cdDoc(`"specversion":"0.5"`, deployed3), event.ReasonUnsupported, `version 0.5 is not a semantic version`},
		{"v prefix", cdDoc(`"specversion":"v0.5.1"`, deployed3), event.ReasonUnsupported, "not a semantic version"},
		{"leading zero", cdDoc(`"specversion":"0.05.1"`, deployed3), event.ReasonUnsupported, "not a semantic version"},
		{"fields disagree", cdDoc(`"specversion":"0.5.1","version":"0.4.1"`, deployed3), event.ReasonInvalidValue, "differ"},
		{"no version", cdDoc(`"x":"y"`, deployed3), event.ReasonMissingField, "neither specversion"},
		{"type without version", cdDoc(`"specversion":"0.5.1"`, "dev.cdevents.service.deployed"), event.ReasonUnknownKind, "<major.minor.patch>"},
		{"type version not semver", cdDoc(`"specversion":"0.5.1"`, "dev.cdevents.service.deployed.3"), event.ReasonUnknownKind, "<major.minor.patch>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := decoder().Decode(event.Message{Value: []byte(c.doc)})
			if c.reason == "" {
				if err != nil || e.Deployment == nil || e.Deployment.Environment != "production" {
					t.Fatalf("Decode = %+v, %v; want a production deployment", e, err)
				}
				return
			}
			var de *event.DecodeError
			if !errors.As(err, &de) || de.Reason != c.reason || !strings.Contains(de.Detail, c.detail) {
				t.Fatalf("Decode(%s) = %v; want %s mentioning %q", c.doc, err, c.reason, c.detail)
			}
		})
	}
}

// TestSkippedTypes checks the label of skipped types and that it stays
// bounded whatever the type says.
func TestSkippedTypes(t *testing.T) {
	doc := func(typ string) string {
		return `{"context":{"specversion":"0.5.1","id":"s-1","source":"/ci","type":"` + typ + `","timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"x","content":{}}}`
	}
	for _, c := range []struct{ typ, label string }{
		{"dev.cdevents.pipelinerun.finished.0.3.0", "pipelinerun.finished"},
		{"dev.cdevents.taskrun.started.0.3.0", "taskrun.started"},
		{"dev.cdevents.approval.created.0.1.0", "approval.created"},
		{"dev.cdevents.service.removed.0.3.0", "service.removed"},
		{"dev.cdevents.quantum.entangled.0.1.0", "other"},
		{"dev.cdeventsx.harbor-quota.exceeded.0.1.0", "custom"},
	} {
		_, err := decoder().Decode(event.Message{Value: []byte(doc(c.typ))})
		var s *event.Skipped
		if !errors.As(err, &s) || s.Type != c.label {
			t.Errorf("%s: Decode = %v; want skipped as %s", c.typ, err, c.label)
		}
		d := decoder()
		d.RejectUnused = true
		_, err = d.Decode(event.Message{Value: []byte(doc(c.typ))})
		var de *event.DecodeError
		if !errors.As(err, &de) || de.Reason != event.ReasonUnusedType {
			t.Errorf("%s with RejectUnused: %v; want %s", c.typ, err, event.ReasonUnusedType)
		}
	}
	long := "dev.cdevents." + strings.Repeat("a", 500) + ".finished.0.1.0"
	_, err := decoder().Decode(event.Message{Value: []byte(doc(long))})
	var de *event.DecodeError
	if !errors.As(err, &de) || de.Reason != event.ReasonUnknownKind || len(de.Detail) > 300 {
		t.Errorf("an attacker-sized type: %v; want a short unknown_kind", err)
	}
	// A skipped type still has to be a CDEvent.
	_, err = decoder().Decode(event.Message{Value: []byte(strings.Replace(doc("dev.cdevents.build.queued.0.3.0"), `"specversion":"0.5.1"`, `"specversion":"0.5.1-x y"`, 1))})
	if !errors.As(err, &de) || de.Reason != event.ReasonUnsupported {
		t.Errorf("skipped type with a bad spec version: %v; want unsupported", err)
	}
}

// TestCloudEventsBinding checks the Kafka binding as the CloudEvents spec
// writes it (kafka-protocol-binding.md, json-format.md).
func TestCloudEventsBinding(t *testing.T) {
	data := `{"deployment_id":"d-9","service":"checkout","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z"}`
	structured := func(extra string) string {
		return `{"specversion":"1.0","id":"b-1","source":"/ci","type":"` + event.TypeDeploymentReported + `"` + extra + `}`
	}
	ct := func(v string) []event.Header { return []event.Header{{Key: "content-type", Value: []byte(v)}} }
	b64 := base64.StdEncoding.EncodeToString([]byte(data))
	cases := []struct {
		name    string
		value   string
		headers []event.Header
		reason  event.Reason // empty: accepted
		detail  string
	}{
		{"structured", structured(`,"data":` + data), ct("application/cloudevents+json; charset=UTF-8"), "", ""},
		{"structured, media type in capitals", structured(`,"data":` + data), ct("Application/CloudEvents+JSON"), "", ""},
		{"structured with ce_ headers too (binding 3.3.3)", structured(`,"data":` + data),
			append(ct("application/cloudevents+json"), event.Header{Key: "ce_id", Value: []byte("other")}, event.Header{Key: "ce_type", Value: []byte("x")}), "", ""},
		{"structured with extensions", structured(`,"comacmeregion":"eu","partitionkey":"checkout","sequence":7,"data":` + data), ct("application/cloudevents+json"), "", ""},
		{"binary with extensions", data, []event.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("b-2")},
			{Key: "ce_source", Value: []byte("/ci")}, {Key: "ce_type", Value: []byte(event.TypeDeploymentReported)},
			{Key: "ce_partitionkey", Value: []byte("checkout")}, {Key: "ce_comacmeregion", Value: []byte("eu")},
			{Key: "content-type", Value: []byte("application/json; charset=utf-8")}}, "", ""},
		{"data_base64 with a JSON content type", structured(`,"datacontenttype":"application/json","data_base64":"` + b64 + `"`), ct("application/cloudevents+json"), "", ""},
		{"data_base64 without a content type", structured(`,"data_base64":"` + b64 + `"`), ct("application/cloudevents+json"), event.ReasonUnsupported,
			"binary data (data_base64) with no datacontenttype"},
		{"data_base64 of another type", structured(`,"datacontenttype":"application/octet-stream","data_base64":"AAEC"`), ct("application/cloudevents+json"),
			event.ReasonUnsupported, `datacontenttype application/octet-stream`},
		{"data and data_base64", structured(`,"datacontenttype":"application/json","data":{},"data_base64":"` + b64 + `"`), ct("application/cloudevents+json"),
			event.ReasonInvalidJSON, "both data and data_base64"},
		{"vendor JSON media type", structured(`,"datacontenttype":"application/vnd.acme+json","data":` + data), ct("application/cloudevents+json"), "", ""},
		{"json as a parameter is not JSON", structured(`,"datacontenttype":"text/plain; format=json","data":"x"`), ct("application/cloudevents+json"),
			event.ReasonUnsupported, "is not JSON"},
		{"avro event format", structured(`,"data":` + data), ct("application/cloudevents+avro"), event.ReasonUnsupported, "application/cloudevents+avro"},
		{"batch", `[` + structured(`,"data":`+data) + `]`, ct("application/cloudevents-batch+json"), event.ReasonUnsupported, "no batch mode"},
		{"no id names type and source", `{"specversion":"1.0","source":"/ci","type":"` + event.TypeDeploymentReported + `","data":{}}`, ct("application/cloudevents+json"),
			event.ReasonMissingID, "CloudEvent (no id) of type " + event.TypeDeploymentReported + " from /ci has no id"},
		{"bad specversion without id", `{"specversion":"0.3","source":"/ci","type":"x"}`, ct("application/cloudevents+json"),
			event.ReasonUnsupported, "CloudEvent (no id) of type x from /ci"},
		{"bad base64 without id", `{"specversion":"1.0","source":"/ci","type":"x","datacontenttype":"application/json","data_base64":"!!"}`, ct("application/cloudevents+json"),
			event.ReasonWrongType, "CloudEvent (no id)"},
		{"control characters are quoted", `{"specversion":"1.0","id":"a\u001b[31m","source":"/ci","type":"x\r\ny"}`, ct("application/cloudevents+json"),
			event.ReasonUnknownKind, `CloudEvent "a\x1b[31m": type "x\r\ny"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := decoder().Decode(event.Message{Value: []byte(c.value), Headers: c.headers})
			if c.reason == "" {
				if err != nil || e.Deployment == nil || e.Deployment.ID != "d-9" {
					t.Fatalf("Decode = %+v, %v; want deployment d-9", e, err)
				}
				return
			}
			var de *event.DecodeError
			if !errors.As(err, &de) || de.Reason != c.reason || !strings.Contains(de.Detail, c.detail) {
				t.Fatalf("Decode = %v; want %s mentioning %q", err, c.reason, c.detail)
			}
		})
	}
	// A structured event with ce_ headers is read from its value: the
	// headers' id does not leak into its identity.
	e, err := decoder().Decode(event.Message{Value: []byte(structured(`,"data":` + data)),
		Headers: append(ct("application/cloudevents+json"), event.Header{Key: "ce_id", Value: []byte("other")})})
	if err != nil || e.ID != "/ci b-1" {
		t.Errorf("structured with ce_id header: %+v, %v; want id /ci b-1", e, err)
	}
	if key, ok := event.StructuredCloudEvent([]byte(structured(`,"partitionkey":"checkout","data":{}`))); !ok || key != "checkout" {
		t.Errorf("StructuredCloudEvent: partition key %q, %v; want checkout", key, ok)
	}
	if _, ok := event.StructuredCloudEvent([]byte(cdDoc(`"specversion":"0.5.1"`, "dev.cdevents.service.deployed.0.3.0"))); ok {
		t.Error("a bare CDEvent taken for a structured CloudEvent")
	}
}

// TestIdentifiers checks the identifier rule on the fields that become
// labels and on entity ids.
func TestIdentifiers(t *testing.T) {
	dep := func(field, value string) string {
		fields := map[string]string{"deployment_id": "d-1", "service": "checkout", "team": "payments", "environment": "production"}
		fields[field] = value
		b := `{"kind":"deployment","event_id":"e","status":"success","finished_at":"2026-03-01T10:00:00Z"`
		for k, v := range fields {
			b += `,"` + k + `":` + jsonString(v)
		}
		return b + "}"
	}
	for _, c := range []struct{ field, value, detail string }{
		{"service", strings.Repeat("s", 257), "service is 257 bytes, more than the limit of 256"},
		{"team", "pay\x00ments", "U+0000"},
		{"team", "pay\x1b[2Jments", "U+001B"},
		{"environment", "prod\r\nuction", "U+000D"},
		{"service", "checkout\u202egnp.exe", "U+202E"},
		{"service", "check\u2066out", "U+2066"},
		{"deployment_id", "d\u00851", "U+0085"},
		{"deployment_id", strings.Repeat("x", 300), "deployment_id is 300 bytes"},
	} {
		_, err := decoder().Decode(event.Message{Value: []byte(dep(c.field, c.value))})
		var de *event.DecodeError
		if !errors.As(err, &de) || de.Reason != event.ReasonInvalidValue || !strings.Contains(de.Detail, c.detail) {
			t.Errorf("%s %q: %v; want invalid_value mentioning %q", c.field, c.value, err, c.detail)
			continue
		}
		if strings.ContainsAny(de.Detail, "\x00\x1b\r\n\u202e\u2066\u0085") || len(de.Detail) > 300 {
			t.Errorf("%s: the reason carries the bad value: %q", c.field, de.Detail)
		}
	}
	// Up to the limit, and ordinary Unicode, are fine.
	for _, v := range []string{strings.Repeat("s", 256), "zahlung-süd", "支付", "paiements é"} {
		if _, err := decoder().Decode(event.Message{Value: []byte(dep("service", v))}); err != nil {
			t.Errorf("service %q: %v", v, err)
		}
	}
}

// TestEnvironments checks the placeholder environment, case and aliases.
func TestEnvironments(t *testing.T) {
	dep := func(env string) string {
		return `{"kind":"deployment","event_id":"e","deployment_id":"d","service":"s","status":"success","finished_at":"2026-03-01T10:00:00Z"` + env + `}`
	}
	d := decoder()
	d.EnvironmentAliases = map[string]string{"prod": "production", "prd-eu": "production"}
	for _, c := range []struct{ env, want string }{
		{``, event.UnknownEnvironment},
		{`,"environment":""`, event.UnknownEnvironment},
		{`,"environment":"  "`, event.UnknownEnvironment},
		{`,"environment":"PRODUCTION"`, "production"},
		{`,"environment":" Production "`, "production"},
		{`,"environment":"Prod"`, "production"},
		{`,"environment":"PRD-EU"`, "production"},
		{`,"environment":"Staging"`, "staging"},
	} {
		e, err := d.Decode(event.Message{Value: []byte(dep(c.env))})
		if err != nil || e.Deployment.Environment != c.want {
			t.Errorf("environment %s: %+v, %v; want %q", c.env, e, err, c.want)
		}
	}
	// Incidents keep an absent environment absent: their messages merge.
	e, err := d.Decode(event.Message{Value: []byte(`{"kind":"incident","event_id":"i","incident_id":"I","detected_at":"2026-03-01T10:00:00Z"}`)})
	if err != nil || e.Incident.Environment != "" {
		t.Errorf("incident without environment: %+v, %v; want it empty", e, err)
	}
	e, err = d.Decode(event.Message{Value: []byte(`{"kind":"incident","event_id":"i","incident_id":"I","environment":"PROD","detected_at":"2026-03-01T10:00:00Z"}`)})
	if err != nil || e.Incident.Environment != "production" {
		t.Errorf("incident in PROD: %+v, %v; want production", e, err)
	}
}

// TestClockSkewChange checks that a commit authored after its merge is
// accepted as it is.
func TestClockSkewChange(t *testing.T) {
	e, err := decoder().Decode(event.Message{Value: []byte(`{"kind":"change","event_id":"e","change_id":"abc","service":"s","authored_at":"2026-03-01T10:00:00Z","merged_at":"2026-03-01T09:00:00Z"}`)})
	if err != nil || e.Change.AuthoredAt.Hour() != 10 || e.Change.MergedAt.Hour() != 9 {
		t.Fatalf("Decode = %+v, %v; want the change as sent", e, err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
