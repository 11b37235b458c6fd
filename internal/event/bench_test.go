package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	cdapi "github.com/cdevents/sdk-go/pkg/api"
	cdv05 "github.com/cdevents/sdk-go/pkg/api/v05"
	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

// BenchmarkDecode decodes a generated stream in each encoding, with the
// scanner (scan.go) and, as the reference, with encoding/json alone (the
// decoder as it was before the scanner), and prints both per event with
// the speed-up, for each encoding alone and for the mix that make demo and
// make bench-ingest produce. The two are measured in alternating rounds
// over the same messages, so that a busy machine slows both alike.
//
// It also measures in the same run what the official SDKs take for the
// part of the work they would do, so that docs/events.md can say whether
// decoding through them keeps ingestion as fast:
//
//   - sdk-cloudevents-envelope: the CloudEvents SDK reading and validating
//     the structured CloudEvent around a CDEvent, without the CDEvent;
//   - sdk-cdevents-parse: the CDEvents SDK parsing the CDEvent (no
//     validation, no mapping onto an event);
//   - sdk-cdevents-validate: the same, validated against the spec's schema.
//
// Each SDK figure is a lower bound of an SDK-based decoder, which would
// still map the result onto an event; it is printed with its ratio to our
// decoding of a CDEvent in a structured CloudEvent.
func BenchmarkDecode(b *testing.B) {
	var events []*event.Event
	generator.Generate(generator.Config{Services: 4, Days: 14, Seed: 3, End: now}, func(e *event.Event) error {
		events = append(events, e)
		return nil
	})
	structured := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	encodings := []struct {
		name string
		msgs []event.Message
	}{{name: "native"}, {name: "cloudevents-structured"}, {name: "cloudevents-binary"},
		{name: "cdevents-structured"}, {name: "cdevents-binary"}, {name: "cdevents-bare"}, {name: "mixed"}}
	add := func(i int, hs []event.Header, v []byte, err error) {
		if err == nil {
			encodings[i].msgs = append(encodings[i].msgs, event.Message{Value: v, Headers: hs})
		}
	}
	var cdData [][]byte
	for _, e := range events {
		v, err := event.MarshalNative(e)
		add(0, nil, v, err)
		v, err = event.MarshalCloudEvent(e, "/bench")
		add(1, structured, v, err)
		hs, v, err := event.CloudEventBinary(e, "/bench")
		add(2, hs, v, err)
		v, err = event.MarshalCDEvent(e, "/bench", "0.5")
		add(3, structured, v, err)
		hs, v, err = event.CDEventBinary(e, "/bench", "0.5")
		add(4, hs, v, err)
		v, err = event.CDEvent(e, "/bench", "0.5")
		add(5, nil, v, err)
		if err == nil {
			cdData = append(cdData, v)
		}
	}
	// mixed is the stream of make demo and make bench-ingest: mostly native,
	// some CloudEvents and CDEvents (opsmetrics publish sets the content-type
	// of structured CloudEvents).
	var jsonl bytes.Buffer
	if _, err := generator.WriteJSONL(&jsonl, generator.Config{Services: 4, Days: 14, Seed: 3, End: now}, generator.FormatMixed); err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(jsonl.Bytes()) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		var hs []event.Header
		if _, ok := event.StructuredCloudEvent(line); ok {
			hs = structured
		}
		add(6, hs, line, nil)
	}
	d := decoder()
	decodeAll := func(b *testing.B, msgs []event.Message) {
		for _, m := range msgs {
			if _, err := d.Decode(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, enc := range encodings {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := d.Decode(enc.msgs[i%len(enc.msgs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	sdks := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"sdk-cloudevents-envelope", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				var e ce.Event
				if err := json.Unmarshal(encodings[3].msgs[i%len(encodings[3].msgs)].Value, &e); err != nil {
					b.Fatal(err)
				}
				if err := e.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"sdk-cdevents-parse", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := cdv05.NewFromJsonBytes(cdData[i%len(cdData)]); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"sdk-cdevents-validate", func(b *testing.B) {
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
	sdkNs := map[string]float64{}
	for _, c := range sdks {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.run(b)
			sdkNs[c.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}

	// The table: both paths in alternating rounds of every message.
	type cost struct{ ns, allocs float64 }
	measure := func(msgs []event.Message, scanner bool) time.Duration {
		defer event.SetScanning(scanner)()
		start := time.Now()
		decodeAll(b, msgs)
		return time.Since(start)
	}
	allocs := func(msgs []event.Message, scanner bool) float64 {
		defer event.SetScanning(scanner)()
		return testing.AllocsPerRun(1, func() { decodeAll(b, msgs) }) / float64(len(msgs))
	}
	fmt.Printf("%-24s %8s %7s %11s %7s %9s\n", "decode, per event", "json ns", "allocs", "scanner ns", "allocs", "speed-up")
	var ours float64
	for _, enc := range encodings {
		var costs [2]cost
		const rounds = 40
		for range rounds {
			for i, scanner := range []bool{false, true} {
				costs[i].ns += float64(measure(enc.msgs, scanner).Nanoseconds()) / float64(rounds*len(enc.msgs))
			}
		}
		costs[0].allocs, costs[1].allocs = allocs(enc.msgs, false), allocs(enc.msgs, true)
		fmt.Printf("%-24s %8.0f %7.1f %11.0f %7.1f %8.2f×\n", enc.name, costs[0].ns, costs[0].allocs, costs[1].ns, costs[1].allocs,
			costs[0].ns/costs[1].ns)
		if enc.name == "cdevents-structured" {
			ours = costs[1].ns
		}
	}
	for _, c := range sdks {
		if ns := sdkNs[c.name]; ns > 0 {
			fmt.Printf("%-24s %8.0f ns/msg, %.2f× our cdevents-structured\n", c.name, ns, ns/ours)
		}
	}
}
