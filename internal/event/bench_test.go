package event_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

// BenchmarkDecode decodes a generated stream in each encoding.
func BenchmarkDecode(b *testing.B) {
	var events []*event.Event
	generator.Generate(generator.Config{Services: 4, Days: 14, Seed: 3, End: now}, func(e *event.Event) error {
		events = append(events, e)
		return nil
	})
	for _, enc := range []string{"native", "cloudevents"} {
		var msgs []event.Message
		for _, e := range events {
			var v []byte
			if enc == "native" {
				v, _ = event.MarshalNative(e)
			} else {
				v, _ = event.MarshalCloudEvent(e, "/bench")
			}
			msgs = append(msgs, event.Message{Value: v})
		}
		b.Run(enc, func(b *testing.B) {
			d := decoder()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := d.Decode(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
