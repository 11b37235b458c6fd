package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// TestSchemasMatchTheDecoder checks the published JSON Schemas against the
// decoder: an example with every required field decodes, and removing any
// field the schema requires makes the decoder reject it.
func TestSchemasMatchTheDecoder(t *testing.T) {
	examples := map[string]string{
		"deployment": `{"kind":"deployment","event_id":"e","deployment_id":"d","service":"s","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z"}`,
		"incident":   `{"kind":"incident","event_id":"e","incident_id":"i","detected_at":"2026-03-01T10:00:00Z"}`,
		"patch":      `{"kind":"patch","event_id":"e","patch_id":"p","target":"h","released_at":"2026-03-01T10:00:00Z"}`,
		"change":     `{"kind":"change","event_id":"e","change_id":"c","service":"s","merged_at":"2026-03-01T10:00:00Z"}`,
	}
	for kind, example := range examples {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schemas", kind+".schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
			AnyOf      []struct {
				Required []string `json:"required"`
			} `json:"anyOf"`
		}
		if err := json.Unmarshal(b, &schema); err != nil {
			t.Fatalf("%s schema is not valid JSON: %v", kind, err)
		}
		if _, err := decoder().Decode(event.Message{Value: []byte(example)}); err != nil {
			t.Fatalf("%s example: %v", kind, err)
		}
		var fields map[string]any
		json.Unmarshal([]byte(example), &fields)
		required := append([]string(nil), schema.Required...)
		if len(schema.AnyOf) > 0 {
			// The example carries exactly one of the alternatives.
			for _, alt := range schema.AnyOf {
				if _, ok := fields[alt.Required[0]]; ok {
					required = append(required, alt.Required[0])
				}
			}
		}
		for _, f := range required {
			if _, ok := schema.Properties[f]; !ok {
				t.Errorf("%s schema requires %s but does not describe it", kind, f)
			}
			without := map[string]any{}
			for k, v := range fields {
				if k != f {
					without[k] = v
				}
			}
			b, _ := json.Marshal(without)
			_, err := decoder().Decode(event.Message{Value: b})
			var de *event.DecodeError
			if !errors.As(err, &de) {
				t.Errorf("%s without required %s was accepted", kind, f)
			}
		}
		for f := range fields {
			if _, ok := schema.Properties[f]; !ok {
				t.Errorf("%s schema does not describe field %s", kind, f)
			}
		}
	}
}

// TestSchemasStateTheIdentifierRule validates native events with the
// published deployment schema (by a JSON Schema validator, not by us) and
// checks that it accepts exactly the identifiers the decoder accepts.
func TestSchemasStateTheIdentifierRule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schemas", "deployment.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("deployment.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("deployment.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"service", "actor", "pipeline"} {
		for _, value := range []string{"checkout", "zahlung-süd", strings.Repeat("s", 256), strings.Repeat("s", 257),
			"pay\x1bments", "check\u202eout", "a\u2028b", "tab\there", "del\x7f"} {
			ev := map[string]any{"kind": "deployment", "event_id": "e", "deployment_id": "d", "service": "checkout",
				"environment": "production", "status": "success", "finished_at": "2026-03-01T10:00:00Z"}
			ev[field] = value
			raw, _ := json.Marshal(ev)
			var v any
			json.Unmarshal(raw, &v)
			schemaOK := sch.Validate(v) == nil
			_, derr := decoder().Decode(event.Message{Value: raw})
			if schemaOK != (derr == nil) {
				t.Errorf("%s %q: schema accepts it %v, decoder error %v", field, value, schemaOK, derr)
			}
		}
	}
}
