package event_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

// FuzzDecode feeds arbitrary payloads, in each header mode, to the decoder.
// It must never panic, must reject with a *DecodeError, and what it accepts
// must be valid and survive a native re-encoding unchanged.
func FuzzDecode(f *testing.F) {
	// Seeds: a generated stream in every encoding, plus the corpus in
	// testdata/fuzz/FuzzDecode.
	n := 0
	generator.Generate(generator.Config{Services: 2, Days: 3, Seed: 9, End: now}, func(e *event.Event) error {
		if n++; n > 40 {
			return errors.New("enough")
		}
		b, _ := event.MarshalNative(e)
		f.Add(b, uint8(0), "")
		b, _ = event.MarshalCloudEvent(e, "/fuzz")
		f.Add(b, uint8(1), "")
		_, b, _ = event.CloudEventBinary(e, "/fuzz")
		f.Add(b, uint8(2), string(e.Kind))
		if b, err := event.MarshalCDEvent(e, "/fuzz", "0.5"); err == nil {
			f.Add(b, uint8(1), "")
		}
		if b, err := event.CDEvent(e, "/fuzz", "0.4"); err == nil {
			f.Add(b, uint8(0), "")
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, value []byte, mode uint8, hv string) {
		d := &event.Decoder{Now: func() time.Time { return now }}
		e, err := d.Decode(event.Message{Value: value, Headers: fuzzHeaders(mode, hv)})
		if err != nil {
			var de *event.DecodeError
			var sk *event.Skipped
			if errors.As(err, &sk) {
				if !event.IsSkipLabel(sk.Type) {
					t.Fatalf("skipped with an unbounded label %q", sk.Type)
				}
				return
			}
			if !errors.As(err, &de) || de.Reason == "" || de.Detail == "" {
				t.Fatalf("error %v (%T) is not a complete *DecodeError", err, err)
			}
			return
		}
		if verr := event.Validate(e, now.Add(time.Hour)); verr != nil {
			t.Fatalf("accepted an invalid event: %v", verr)
		}
		if e.Time.IsZero() {
			t.Fatal("accepted event has no time")
		}
		b, merr := event.MarshalNative(e)
		if merr != nil {
			t.Fatalf("re-encode: %v", merr)
		}
		again, err := d.Decode(event.Message{Value: b})
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		again.Encoding = e.Encoding
		if !reflect.DeepEqual(normalizeChanges(again), normalizeChanges(e)) {
			t.Fatalf("native re-encoding changed the event:\n got %+v %+v\nwant %+v %+v", again, payloadOf(again), e, payloadOf(e))
		}
	})
}

// fuzzHeaders are FuzzDecode's headers: none (mode 0), structured mode (1),
// or binary mode (2) with hv as the type, or naming one of our types.
func fuzzHeaders(mode uint8, hv string) []event.Header {
	switch mode % 3 {
	case 1:
		return []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	case 2:
		typ := map[string]string{"deployment": event.TypeDeploymentReported, "incident": event.TypeIncidentUpdated,
			"change": event.TypeChangeReported, "patch": event.TypePatchReleased}[hv]
		if typ == "" {
			typ = hv
		}
		return []event.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("id-" + hv)},
			{Key: "ce_source", Value: []byte("/fuzz")}, {Key: "ce_type", Value: []byte(typ)}}
	}
	return nil
}
