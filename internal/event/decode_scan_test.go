package event_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/eventfixtures"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

// FuzzDecodeScanner holds the decoder to what it did before the scanner
// (scan.go) existed: for every message, decoding with the scanner and with
// encoding/json alone must both accept the same event, or both reject it
// with the same reason and detail, or both skip it the same way. headers
// holds the message's headers as key=value lines.
//
// Seeds: a generated stream in every encoding, every conformance fixture in
// each of its forms, the corpus of FuzzDecode, and messages at the edges of
// what the scanner reads.
func FuzzDecodeScanner(f *testing.F) {
	for _, m := range append(append(producerMessages(f), fuzzDecodeCorpus(f)...), trickyMessages()...) {
		f.Add(m.Value, joinHeaders(m.Headers))
	}
	f.Fuzz(func(t *testing.T, value []byte, headers string) {
		m := event.Message{Value: value, Headers: splitHeaders(headers)}
		got, gotErr := decoder().Decode(m)
		restore := event.SetScanning(false)
		want, wantErr := decoder().Decode(m)
		restore()
		if msg := sameOutcome(got, gotErr, want, wantErr); msg != "" {
			t.Fatalf("%s\nvalue:   %q\nheaders: %q", msg, value, headers)
		}
	})
}

// trickyMessages are messages at the edges of what the scanner reads.
func trickyMessages() []event.Message {
	ce := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	dep := `"deployment_id":"d-1","service":"checkout","environment":"production","status":"success","finished_at":"2026-03-01T10:00:00Z"`
	native := func(members string) event.Message {
		return event.Message{Value: []byte(`{"kind":"deployment","event_id":"e-1",` + members + `}`)}
	}
	cd := `{"context":{"specversion":"0.5.1","id":"c-1","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","timestamp":"2026-03-01T10:00:00Z"},` +
		`"subject":{"id":"checkout","content":{"environment":{"id":"production"},"artifactId":"pkg:oci/checkout@v1"}}`
	own := `{"specversion":"1.0","id":"x-1","source":"/ci","type":"dev.opsmetrics.deployment.reported.0.1.0","time":"2026-03-01T10:00:00Z",`
	many := ""
	for i := range 40 {
		many += `"x` + strconv.Itoa(i) + `":1,`
	}
	msgs := []event.Message{
		native(dep),
		native(`"context":{"id":"x"},` + dep),
		native(`"Kind":"incident",` + dep),
		native(`"kind":"deployment",` + dep),
		native(`"specversion":null,` + dep),
		native(`"time":null,` + dep),
		native(`"time":"2026-03-01T10:00:00+01:00",` + dep),
		native(`"time":"2026-03-01T10:00:00\u005a",` + dep),
		native(`"time":"0001-01-01T01:00:00+01:00",` + dep),
		native(`"time":5,` + dep),
		native(many + dep),
		native(`"severity":7,` + dep),
		native(`"changes":[],` + dep),
		native(`"changes":["a",null],` + dep),
		native(`"unplanned":true,"fixes_incident":"INC-1",` + dep),
		native(`"actor":"new-hire","pipeline":"deploy-prod",` + dep),
		native(`"actor":7,` + dep),
		native(`"pipeline":"a\u001bb",` + dep),
		native(`"status":"  Rolled-Back ",` + strings.Replace(dep, `"status":"success",`, "", 1)),
		{Value: []byte(`{` + dep + `,"kind":"deployment","event_id":"e-1"}`)},
		{Value: []byte(`{` + many + dep + `,"time":"2026-03-01T10:00:00Z","kind":"deployment","event_id":"e-1"}`)},
		{Value: []byte(`{"service":"a","kind":"deployment","event_id":"e-1",` + dep + `}`)},
		{Value: []byte(`{"Service":"a",` + dep + `,"kind":"deployment","event_id":"e-1"}`)},
		{Value: []byte(`{"kind":"deploym\u0065nt","event_id":"e-1",` + dep + `}`)},
		{Value: []byte(`{"kind":"Deployment","event_id":"e-1",` + dep + `}`)},
		{Value: []byte(`{"kind":"deployment","event_id":"",` + dep + `}`)},
		{Value: []byte(`{"kind":"deployment","event_id":"\u0065-1",` + dep + `}`)},
		{Value: []byte(`{"kind":"","event_id":"e-1","context":{}}`)},
		{Value: []byte(`{"kind":null,"context":{"id":"x"}}`)},
		{Value: []byte(cd + `}`)},
		{Value: []byte(cd + `,"kind":""}`)},
		{Value: []byte(cd + `,"context":{"id":"y"}}`)},
		{Value: []byte(cd + `,"Context":{"id":"y"}}`)},
		{Value: []byte(cd + `,"customData":{"team":"t","changes":["c"],"status":"failure"}}`)},
		{Value: []byte(cd + `,"customData":{"team":7}}`)},
		{Value: []byte(cd + `,"customData":{"finished_at":"yesterday"}}`)},
		{Value: []byte(cd + `,"customData":{"team":"t"},"customDataContentType":"text/plain"}`)},
		{Value: []byte(cd + `,"customData":"dGVhbQ=="}`)},
		{Value: []byte(own + `"data":{` + dep + `}}`), Headers: ce},
		{Value: []byte(own + `"data":{` + dep + `}}`)},
		{Value: []byte(own + `"data":null}`), Headers: ce},
		{Value: []byte(own + `"data":{` + dep + `},"ID":"x-2"}`), Headers: ce},
		{Value: []byte(own + `"actor":"release-bot","pipeline":"nightly","data":{` + dep + `}}`), Headers: ce},
		{Value: []byte(own + `"actor":"release-bot","data":{"actor":"alice",` + dep + `}}`), Headers: ce},
		{Value: []byte(own + `"actor":7,"data":{` + dep + `}}`), Headers: ce},
		{Value: []byte(own + `"Actor":"x","data":{` + dep + `}}`), Headers: ce},
		{Value: []byte(own + `"pipeline":"ab","data":{` + dep + `}}`), Headers: ce},
		{Value: []byte(strings.Replace(own, `"deployment.reported`, `"cdevents.service.deployed`, 1) + `"actor":"bot","data":` + cd + `}}`), Headers: ce},
		{Value: []byte(own + `"data_base64":"e30="}`), Headers: ce},
		{Value: []byte(own + `"datacontenttype":"application/json","data_base64":"eyJkZXBsb3ltZW50X2lkIjoiZC0xIn0="}`), Headers: ce},
		{Value: []byte(strings.Replace(own, `"deployment.reported`, `"cdevents.service.deployed`, 1) + `"data":` + cd + `}}`), Headers: ce},
		{Value: []byte(`{` + dep + `}`), Headers: []event.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "CE_ID", Value: []byte("b-1")},
			{Key: "ce_id", Value: []byte("b-2")}, {Key: "ce_source", Value: []byte("/ci")}, {Key: "ce_type", Value: []byte(event.TypeDeploymentReported)},
			{Key: "Content-Type", Value: []byte("application/json; charset=utf-8")}}},
	}
	return msgs
}

// TestDecodeScannerAgrees decodes each tricky message with and without the
// scanner.
func TestDecodeScannerAgrees(t *testing.T) {
	for _, m := range trickyMessages() {
		got, gotErr := decoder().Decode(m)
		restore := event.SetScanning(false)
		want, wantErr := decoder().Decode(m)
		restore()
		if msg := sameOutcome(got, gotErr, want, wantErr); msg != "" {
			t.Errorf("%s\nvalue:   %q\nheaders: %q", msg, m.Value, joinHeaders(m.Headers))
		}
	}
}

// TestScannerReadsEveryEncoding checks that the scanner, not encoding/json,
// reads the messages producers send: a generated stream in every encoding
// and the conformance fixtures in each form.
func TestScannerReadsEveryEncoding(t *testing.T) {
	var gaveUp int
	defer event.CountGiveUps(&gaveUp)()
	msgs := producerMessages(t)
	for _, m := range msgs {
		before := gaveUp
		decoder().Decode(m)
		if gaveUp != before {
			t.Errorf("the scanner left to encoding/json %q with headers %q", m.Value, joinHeaders(m.Headers))
		}
	}
	if len(msgs) < 500 {
		t.Fatalf("only %d messages", len(msgs))
	}
}

// sameOutcome says how two decodings of a message differ, or "".
func sameOutcome(got *event.Event, gotErr error, want *event.Event, wantErr error) string {
	switch {
	case gotErr == nil && wantErr == nil:
		if !reflect.DeepEqual(got, want) {
			return "accepted as different events:\n scanner " + spew(got) + "\n    json " + spew(want)
		}
	case gotErr == nil || wantErr == nil:
		return "scanner: " + outcome(got, gotErr) + "\n   json: " + outcome(want, wantErr)
	default:
		var gs, ws *event.Skipped
		var gd, wd *event.DecodeError
		switch {
		case errors.As(gotErr, &gs) && errors.As(wantErr, &ws):
			if *gs != *ws {
				return "skipped differently:\n scanner " + gotErr.Error() + " (" + gs.Type + ")\n    json " + wantErr.Error() + " (" + ws.Type + ")"
			}
		case errors.As(gotErr, &gd) && errors.As(wantErr, &wd):
			if *gd != *wd {
				return "rejected differently:\n scanner " + gotErr.Error() + "\n    json " + wantErr.Error()
			}
		default:
			return "scanner: " + outcome(got, gotErr) + "\n   json: " + outcome(want, wantErr)
		}
	}
	return ""
}

func outcome(e *event.Event, err error) string {
	if err != nil {
		return fmt.Sprintf("%T %v", err, err)
	}
	return "accepted " + spew(e)
}

func spew(e *event.Event) string { return fmt.Sprintf("%+v %+v", e, payloadOf(e)) }

// joinHeaders and splitHeaders write and read headers as key=value lines.
func joinHeaders(hs []event.Header) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Key + "=" + string(h.Value) + "\n")
	}
	return b.String()
}

func splitHeaders(s string) []event.Header {
	var hs []event.Header
	for line := range strings.Lines(s) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		hs = append(hs, event.Header{Key: k, Value: []byte(v)})
	}
	return hs
}

// producerMessages are messages in every encoding: a generated stream, in
// each encoding, and the conformance fixtures, in each form.
func producerMessages(tb testing.TB) []event.Message {
	structured := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	var msgs []event.Message
	n := 0
	generator.Generate(generator.Config{Services: 4, Days: 14, Seed: 11, End: now}, func(e *event.Event) error {
		if n++; n > 60 {
			return errors.New("enough")
		}
		b, _ := event.MarshalNative(e)
		msgs = append(msgs, event.Message{Value: b})
		b, _ = event.MarshalCloudEvent(e, "/fuzz")
		msgs = append(msgs, event.Message{Value: b, Headers: structured}, event.Message{Value: b})
		hs, b, _ := event.CloudEventBinary(e, "/fuzz")
		msgs = append(msgs, event.Message{Value: b, Headers: hs})
		for _, v := range []string{"0.4", "0.5"} {
			if b, err := event.MarshalCDEvent(e, "/fuzz", v); err == nil {
				msgs = append(msgs, event.Message{Value: b, Headers: structured})
			}
			if b, err := event.CDEvent(e, "/fuzz", v); err == nil {
				msgs = append(msgs, event.Message{Value: b})
			}
			if hs, b, err := event.CDEventBinary(e, "/fuzz", v); err == nil {
				msgs = append(msgs, event.Message{Value: b, Headers: hs})
			}
		}
		return nil
	})
	fs, err := eventfixtures.All()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range fs {
		for _, form := range f.Forms() {
			m := event.Message{Value: form.Value}
			for _, h := range form.Headers {
				m.Headers = append(m.Headers, event.Header{Key: h.Key, Value: []byte(h.Value)})
			}
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// fuzzDecodeCorpus reads FuzzDecode's corpus (testdata/fuzz/FuzzDecode:
// the value, the header mode and a header value) as messages, with the
// headers FuzzDecode gives each mode.
func fuzzDecodeCorpus(tb testing.TB) []event.Message {
	files, _ := filepath.Glob("testdata/fuzz/FuzzDecode/*")
	var msgs []event.Message
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		var args []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			if open := strings.IndexByte(line, '('); open > 0 && strings.HasSuffix(line, ")") {
				args = append(args, line[open+1:len(line)-1])
			}
		}
		if len(args) != 3 {
			tb.Fatalf("%s: want 3 arguments, got %q", name, args)
		}
		value, err1 := strconv.Unquote(args[0])
		hv, err2 := strconv.Unquote(args[2])
		mode, err3 := corpusByte(args[1])
		if err := errors.Join(err1, err2, err3); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		msgs = append(msgs, event.Message{Value: []byte(value), Headers: fuzzHeaders(mode, hv)})
	}
	return msgs
}

// corpusByte reads a byte of a corpus file: '2' or 50.
func corpusByte(s string) (uint8, error) {
	if c, err := strconv.Unquote(s); err == nil && len(c) == 1 {
		return c[0], nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	return uint8(n), err
}

// TestDecodeActorAndPipeline: both decoders read a deployment's actor and
// pipeline from the native fields of docs/events.md.
func TestDecodeActorAndPipeline(t *testing.T) {
	raw := []byte(`{"kind":"deployment","event_id":"e-7","time":"2026-03-01T10:00:00Z","deployment_id":"d-7","service":"checkout",` +
		`"environment":"production","status":"failure","finished_at":"2026-03-01T10:00:00Z","actor":"new-hire","pipeline":"deploy-prod"}`)
	for _, scanning := range []bool{true, false} {
		restore := event.SetScanning(scanning)
		e, err := decoder().Decode(event.Message{Value: raw})
		restore()
		if err != nil {
			t.Fatalf("scanning %v: %v", scanning, err)
		}
		if d := e.Deployment; d.Actor != "new-hire" || d.Pipeline != "deploy-prod" {
			t.Errorf("scanning %v: actor %q, pipeline %q", scanning, d.Actor, d.Pipeline)
		}
	}
}
