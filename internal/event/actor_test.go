package event_test

import (
	"encoding/json"
	"errors"
	"testing"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Fixtures of our own, written to the CloudEvents JSON format and the
// CDEvents 0.5.1 schema of service.deployed, with the actor and the
// pipeline of a deployment where a producer can put them.
const (
	// deployedCDEvent is a CDEvent service.deployed whose customData names
	// neither actor nor pipeline.
	deployedCDEvent = `{"context":{"specversion":"0.5.1","id":"run-4471","source":"/ci/tekton","type":"dev.cdevents.service.deployed.0.3.0",` +
		`"timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"checkout","source":"/ci/tekton",` +
		`"content":{"environment":{"id":"production"},"artifactId":"pkg:oci/checkout@sha256%3A0b1c?tag=4.2.0"}}}`
	// deployedWithCustomData names them in customData, with our native
	// field names.
	deployedWithCustomData = `{"context":{"specversion":"0.5.1","id":"run-4472","source":"/ci/tekton","type":"dev.cdevents.service.deployed.0.3.0",` +
		`"timestamp":"2026-03-01T11:00:00Z"},"subject":{"id":"checkout","source":"/ci/tekton",` +
		`"content":{"environment":{"id":"production"},"artifactId":"pkg:oci/checkout@sha256%3A0b1d?tag=4.2.1"}},` +
		`"customData":{"actor":"carol","pipeline":"release-train"},"customDataContentType":"application/json"}`
)

// wrap is a structured CloudEvent carrying data, with extra members
// (extension attributes).
func wrap(id, typ, data, extensions string) []byte {
	return []byte(`{"specversion":"1.0","id":"` + id + `","source":"/ci/tekton","type":"` + typ + `","time":"2026-03-01T10:00:00Z",` +
		`"datacontenttype":"application/json"` + extensions + `,"data":` + data + `}`)
}

// TestActorAndPipeline reads a deployment's actor and pipeline from the
// CloudEvents extension attributes actor and pipeline (structured and
// binary), from CDEvents customData, and from our own type's data, which
// wins over the extensions; with the scanner and without it.
func TestActorAndPipeline(t *testing.T) {
	structured := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	own := `{"deployment_id":"d-7","service":"checkout","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z"}`
	ownWithActor := `{"deployment_id":"d-8","service":"checkout","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z","actor":"alice"}`
	binary := func(typ string, extra ...event.Header) []event.Header {
		return append([]event.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("b-1")},
			{Key: "ce_source", Value: []byte("/ci/tekton")}, {Key: "ce_type", Value: []byte(typ)},
			{Key: "content-type", Value: []byte("application/json")}}, extra...)
	}
	cases := []struct {
		name                string
		m                   event.Message
		sdk                 bool   // a structured CloudEvent, which the CloudEvents SDK must accept
		extActor            string // the actor extension the SDK reads
		actor, pipeline     string
		reason              event.Reason
		cdevent, cdeventDoc string
	}{
		{name: "CDEvent in a CloudEvent with extensions",
			m:   event.Message{Value: wrap("run-4471", "dev.cdevents.service.deployed.0.3.0", deployedCDEvent, `,"actor":"release-bot","pipeline":"deploy-prod"`), Headers: structured},
			sdk: true, extActor: "release-bot", actor: "release-bot", pipeline: "deploy-prod", cdeventDoc: deployedCDEvent},
		{name: "CDEvent customData",
			m:   event.Message{Value: wrap("run-4472", "dev.cdevents.service.deployed.0.3.0", deployedWithCustomData, ""), Headers: structured},
			sdk: true, actor: "carol", pipeline: "release-train", cdeventDoc: deployedWithCustomData},
		{name: "bare CDEvent customData", m: event.Message{Value: []byte(deployedWithCustomData)}, actor: "carol", pipeline: "release-train"},
		{name: "customData wins over the extensions",
			m:   event.Message{Value: wrap("run-4472", "dev.cdevents.service.deployed.0.3.0", deployedWithCustomData, `,"actor":"release-bot"`), Headers: structured},
			sdk: true, extActor: "release-bot", actor: "carol", pipeline: "release-train"},
		{name: "own type, extensions only",
			m:   event.Message{Value: wrap("x-1", event.TypeDeploymentReported, own, `,"actor":"release-bot","pipeline":"nightly"`), Headers: structured},
			sdk: true, extActor: "release-bot", actor: "release-bot", pipeline: "nightly"},
		{name: "own type's data wins",
			m:   event.Message{Value: wrap("x-2", event.TypeDeploymentReported, ownWithActor, `,"actor":"release-bot","pipeline":"nightly"`), Headers: structured},
			sdk: true, extActor: "release-bot", actor: "alice", pipeline: "nightly"},
		{name: "binary, ce_ headers",
			m: event.Message{Value: []byte(own), Headers: binary(event.TypeDeploymentReported,
				event.Header{Key: "ce_actor", Value: []byte("release-bot")}, event.Header{Key: "ce_pipeline", Value: []byte("deploy-prod")})},
			actor: "release-bot", pipeline: "deploy-prod"},
		{name: "binary CDEvent, ce_ headers",
			m: event.Message{Value: []byte(deployedCDEvent), Headers: binary("dev.cdevents.service.deployed.0.3.0",
				event.Header{Key: "ce_actor", Value: []byte("release-bot")})},
			actor: "release-bot"},
		{name: "an actor that is no string",
			m:      event.Message{Value: wrap("x-3", event.TypeDeploymentReported, own, `,"actor":7`), Headers: structured},
			reason: event.ReasonWrongType},
	}
	for _, c := range cases {
		if c.cdeventDoc != "" {
			validateSchema(t, c.name, "0.5.1", "service.deployed", []byte(c.cdeventDoc))
		}
		if c.sdk {
			var env ce.Event
			if err := json.Unmarshal(c.m.Value, &env); err != nil || env.Validate() != nil {
				t.Errorf("%s: the CloudEvents SDK refuses it: %v %v", c.name, err, env.Validate())
			} else if got, _ := env.Extensions()[event.ExtensionActor].(string); got != c.extActor {
				t.Errorf("%s: the SDK reads the actor extension %q, want %q", c.name, got, c.extActor)
			}
		}
		for _, scan := range []bool{true, false} {
			restore := event.SetScanning(scan)
			e, err := decoder().Decode(c.m)
			restore()
			if c.reason != "" {
				var de *event.DecodeError
				if !errors.As(err, &de) || de.Reason != c.reason {
					t.Errorf("%s (scanner %v): %v, want a %s rejection", c.name, scan, err, c.reason)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s (scanner %v): %v", c.name, scan, err)
				continue
			}
			if d := e.Deployment; d == nil || d.Actor != c.actor || d.Pipeline != c.pipeline {
				t.Errorf("%s (scanner %v): %+v, want actor %q, pipeline %q", c.name, scan, e.Deployment, c.actor, c.pipeline)
			}
		}
	}
}
