package event_test

import (
	"encoding/json"
	"fmt"
	"testing"

	cdapi "github.com/cdevents/sdk-go/pkg/api"
	cdv05 "github.com/cdevents/sdk-go/pkg/api/v05"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

// BenchmarkDecode decodes a generated stream in each encoding, and measures
// in the same run what the official SDKs take for the part of the work they
// would do, so that docs/events.md can say whether decoding through them
// keeps ingestion as fast:
//
//   - sdk-cloudevents-envelope: the CloudEvents SDK reading and validating
//     the structured CloudEvent around a CDEvent, without the CDEvent;
//   - sdk-cdevents-parse: the CDEvents SDK parsing the CDEvent (no
//     validation, no mapping onto an event);
//   - sdk-cdevents-validate: the same, validated against the spec's schema.
//
// Each SDK figure is a lower bound of an SDK-based decoder, which would
// still map the result onto an event. It prints each time per message and
// its ratio to native decoding (the reference) and to ours for CDEvents.
func BenchmarkDecode(b *testing.B) {
	var events []*event.Event
	generator.Generate(generator.Config{Services: 4, Days: 14, Seed: 3, End: now}, func(e *event.Event) error {
		events = append(events, e)
		return nil
	})
	structured := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	var native, own, cdWrapped, cdBare []event.Message
	var cdData [][]byte
	for _, e := range events {
		v, _ := event.MarshalNative(e)
		native = append(native, event.Message{Value: v})
		v, _ = event.MarshalCloudEvent(e, "/bench")
		own = append(own, event.Message{Value: v, Headers: structured})
		if v, err := event.MarshalCDEvent(e, "/bench", "0.5"); err == nil {
			cdWrapped = append(cdWrapped, event.Message{Value: v, Headers: structured})
			d, _ := event.CDEvent(e, "/bench", "0.5")
			cdBare = append(cdBare, event.Message{Value: d})
			cdData = append(cdData, d)
		}
	}
	decode := func(msgs []event.Message) func(b *testing.B) {
		return func(b *testing.B) {
			d := decoder()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := d.Decode(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	cases := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"native", decode(native)},
		{"cloudevents", decode(own)},
		{"cdevents-structured", decode(cdWrapped)},
		{"cdevents-bare", decode(cdBare)},
		{"sdk-cloudevents-envelope", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var e ce.Event
				if err := json.Unmarshal(cdWrapped[i%len(cdWrapped)].Value, &e); err != nil {
					b.Fatal(err)
				}
				if err := e.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"sdk-cdevents-parse", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := cdv05.NewFromJsonBytes(cdData[i%len(cdData)]); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"sdk-cdevents-validate", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e, err := cdv05.NewFromJsonBytes(cdData[i%len(cdData)])
				if err == nil {
					err = cdapi.Validate(e)
				}
				if err != nil && !isIncidentArtifactQuirk(err) {
					b.Fatal(err)
				}
			}
		}},
	}
	ns := map[string]float64{}
	for _, c := range cases {
		var r testing.BenchmarkResult
		b.Run(c.name, func(b *testing.B) {
			c.run(b)
			r = testing.BenchmarkResult{N: b.N, T: b.Elapsed()}
		})
		if r.N > 0 {
			ns[c.name] = float64(r.T.Nanoseconds()) / float64(r.N)
		}
	}
	if ns["native"] == 0 || ns["cdevents-structured"] == 0 {
		return
	}
	fmt.Printf("%-28s %10s %10s %14s\n", "decode", "ns/msg", "÷ native", "÷ ours (cdev)")
	for _, c := range cases {
		fmt.Printf("%-28s %10.0f %10.2f %14.2f\n", c.name, ns[c.name], ns[c.name]/ns["native"], ns[c.name]/ns["cdevents-structured"])
	}
}
