package publish

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// TestMessage checks how a line becomes a Kafka message: the content type
// only for a structured CloudEvent (the Kafka binding, 3.3), its
// partitionkey as the key when it has one (3.1), the entity otherwise.
func TestMessage(t *testing.T) {
	p := New([]string{"127.0.0.1:1"}, Topics{event.KindDeployment: "deps"}, nil)
	defer p.Close()
	data := `{"deployment_id":"d-1","service":"cart","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z"}`
	for _, c := range []struct {
		name, line, key string
		structured      bool
	}{
		{"native", `{"kind":"deployment","event_id":"e",` + data[1:], "d-1", false},
		{"cloudevent", `{"specversion":"1.0","id":"c","source":"/ci","type":"` + event.TypeDeploymentReported + `","data":` + data + `}`, "d-1", true},
		{"cloudevent with partitionkey", `{"specversion":"1.0","id":"c","source":"/ci","type":"` + event.TypeDeploymentReported + `","partitionkey":"cart","data":` + data + `}`, "cart", true},
		{"bare cdevent", `{"context":{"specversion":"0.5.1","id":"x-1","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"cart","content":{"environment":{"id":"production"},"artifactId":"pkg:oci/cart@1"}}}`, "x-1", false},
	} {
		m, err := p.Message([]byte(c.line))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		hasCT := len(m.Headers) == 1 && m.Headers[0].Key == "content-type" && string(m.Headers[0].Value) == "application/cloudevents+json"
		if string(m.Key) != c.key || hasCT != c.structured || m.Topic != "deps" {
			t.Errorf("%s: key %q, headers %v, topic %s; want key %q, structured %v", c.name, m.Key, m.Headers, m.Topic, c.key, c.structured)
		}
	}
}
