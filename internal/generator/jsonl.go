package generator

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Format is the wire encoding WriteJSONL writes events in.
type Format string

// Output formats.
const (
	// FormatNative writes every event in the native JSON format.
	FormatNative Format = "native"
	// FormatCloudEvents writes every event as a structured-mode CloudEvent
	// of opsmetrics' own types.
	FormatCloudEvents Format = "cloudevents"
	// FormatCDEvents writes every event that CDEvents can express as a
	// structured-mode CloudEvent carrying a CDEvent of spec 0.5.1, valid
	// against that release's schemas, and the others (patches, incident
	// acknowledgements) as CloudEvents of opsmetrics' own types.
	FormatCDEvents Format = "cdevents"
	// FormatMixed writes a deterministic mix: most events native, some as
	// CloudEvents, and deployments, incidents and changes also as CDEvents of
	// spec 0.4.1 and 0.5.1, in CloudEvents and as bare CDEvent documents, the
	// way a real organisation's tools would send them.
	FormatMixed Format = "mixed"
)

// Validate reports a format that is none of the above.
func (f Format) Validate() error {
	switch f {
	case FormatNative, FormatCloudEvents, FormatCDEvents, FormatMixed:
		return nil
	}
	return fmt.Errorf("generator: format: want native, cloudevents, cdevents or mixed, got %q", f)
}

// Source is the CloudEvents source of generated events.
const Source = "/opsmetrics/generator"

// WriteJSONL generates the stream of cfg and writes it to w as JSON Lines in
// format f.
func WriteJSONL(w io.Writer, cfg Config, f Format) (Stats, error) {
	if err := f.Validate(); err != nil {
		return Stats{}, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	n := 0
	stats, err := Generate(cfg, func(e *event.Event) error {
		b, err := encodeLine(e, f, n)
		n++
		if err != nil {
			return err
		}
		bw.Write(b)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return stats, err
	}
	return stats, bw.Flush()
}

func encodeLine(e *event.Event, f Format, n int) ([]byte, error) {
	if f == FormatCloudEvents {
		return event.MarshalCloudEvent(e, Source)
	}
	if f == FormatNative {
		return event.MarshalNative(e)
	}
	if f == FormatCDEvents {
		b, err := event.MarshalCDEvent(e, Source, "0.5")
		if errors.Is(err, event.ErrNoCDEvent) {
			return event.MarshalCloudEvent(e, Source)
		}
		return b, err
	}
	var b []byte
	err := event.ErrNoCDEvent
	switch n % 10 {
	case 3:
		return event.MarshalCloudEvent(e, Source)
	case 6:
		b, err = event.MarshalCDEvent(e, Source, "0.4")
	case 8:
		b, err = event.MarshalCDEvent(e, Source, "0.5")
	case 9:
		b, err = event.CDEvent(e, Source, "0.5")
	}
	if errors.Is(err, event.ErrNoCDEvent) {
		return event.MarshalNative(e)
	}
	return b, err
}
