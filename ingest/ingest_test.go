package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// sample returns one event of kind k whose entity id carries tag, so that
// every encoding's copy is a separate entity.
func sample(k event.Kind, tag string) *event.Event {
	e := &event.Event{Kind: k, ID: "evt-" + string(k) + "-" + tag, Time: t0.Add(time.Hour), Encoding: event.EncodingNative}
	switch k {
	case event.KindDeployment:
		e.Deployment = &event.Deployment{ID: "dep-" + tag, Service: "checkout", Team: "payments", Environment: "production",
			StartedAt: t0, FinishedAt: t0.Add(7 * time.Minute), Status: event.DeploymentSuccess, Version: "v1.4.2",
			Changes: []string{"a1b2c3", "d4e5f6"}}
		e.Time = e.Deployment.FinishedAt
	case event.KindIncident:
		e.Incident = &event.Incident{ID: "INC-" + tag, Service: "checkout", Team: "payments", Environment: "production",
			Severity: event.SeverityHigh, DetectionSource: event.DetectedByMonitoring,
			ImpactStartedAt: t0.Add(10 * time.Minute), DetectedAt: t0.Add(14 * time.Minute)}
		e.Time = e.Incident.DetectedAt
	case event.KindPatch:
		e.Patch = &event.Patch{ID: "CVE-2026-1234", Target: "host-" + tag, TargetType: event.TargetHost, Severity: event.SeverityCritical,
			Environment: "production", ReleasedAt: t0.Add(-48 * time.Hour), AppliedAt: t0, Outcome: event.PatchApplied}
		e.Time = t0
	case event.KindChange:
		e.Change = &event.Change{ID: "sha-" + tag, Service: "checkout", Team: "payments", Repository: "shop/checkout",
			AuthoredAt: t0.Add(-30 * time.Hour), MergedAt: t0.Add(-3 * time.Hour)}
		e.Time = e.Change.MergedAt
	}
	return e
}

// stored returns the view row of e's entity in a form comparable with want.
func stored(t *testing.T, h *harness, e *event.Event) string {
	t.Helper()
	var q string
	var args []any
	switch e.Kind {
	case event.KindDeployment:
		q, args = "SELECT service, environment, status, toString(finished_at), arrayStringConcat(changes, ',') FROM deployments WHERE deployment_id = ?", []any{e.Deployment.ID}
	case event.KindIncident:
		q, args = "SELECT service, environment, severity, toString(detected_at), state FROM incidents WHERE incident_id = ?", []any{e.Incident.ID}
	case event.KindPatch:
		q, args = "SELECT environment, severity, toString(released_at), toString(applied_at), outcome FROM patches WHERE patch_id = ? AND target = ?", []any{e.Patch.ID, e.Patch.Target}
	case event.KindChange:
		q, args = "SELECT service, toString(merged_at) FROM changes WHERE change_id = ?", []any{e.Change.ID}
	}
	rows := testenv.Rows(t, h.Store, q, args...)
	return strings.Join(rows, "\n")
}

func want(e *event.Event) string {
	f := func(t time.Time) string { return t.UTC().Format(time.DateTime) }
	switch e.Kind {
	case event.KindDeployment:
		d := e.Deployment
		return strings.Join([]string{d.Service, d.Environment, string(d.Status), f(d.FinishedAt), strings.Join(d.Changes, ",")}, " | ")
	case event.KindIncident:
		i := e.Incident
		return strings.Join([]string{i.Service, i.Environment, string(i.Severity), f(i.DetectedAt), "open"}, " | ")
	case event.KindPatch:
		p := e.Patch
		return strings.Join([]string{p.Environment, string(p.Severity), f(p.ReleasedAt), f(p.AppliedAt), string(p.Outcome)}, " | ")
	default:
		c := e.Change
		return strings.Join([]string{c.Service, f(c.MergedAt)}, " | ")
	}
}

func headers(hs []event.Header) []kafka.Header {
	out := make([]kafka.Header, len(hs))
	for i, h := range hs {
		out[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// TestRoundTrip sends every kind in every encoding through Kafka, some of it
// with kcat (librdkafka), and finds each in its public view.
func TestRoundTrip(t *testing.T) {
	h := newHarness(t, 3)
	topics := publish.TopicsFrom(h.Topics)
	kcat := kcatAvailable(t)

	type sent struct {
		name string
		e    *event.Event
	}
	var all []sent
	var msgs []kafka.Message
	for _, k := range event.Kinds {
		encodings := []string{"native", "ce-structured", "ce-binary", "kcat-native", "kcat-ce-binary"}
		if k != event.KindPatch {
			encodings = append(encodings, "cdevents-0.4", "cdevents-0.5")
		}
		for _, enc := range encodings {
			e := sample(k, enc)
			all = append(all, sent{string(k) + "/" + enc, e})
			var (
				value []byte
				hs    []event.Header
				err   error
			)
			switch enc {
			case "native", "kcat-native":
				value, err = event.MarshalNative(e)
			case "ce-structured":
				value, err = event.MarshalCloudEvent(e, "/test/roundtrip")
				hs = []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
			case "ce-binary", "kcat-ce-binary":
				hs, value, err = event.CloudEventBinary(e, "/test/roundtrip")
			case "cdevents-0.4":
				value, err = event.MarshalCDEvent(e, "/test/roundtrip", "0.4")
				hs = []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
			case "cdevents-0.5":
				value, err = event.MarshalCDEvent(e, "/test/roundtrip", "0.5")
				hs = []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
			}
			if err != nil {
				t.Fatalf("%s/%s: encode: %v", k, enc, err)
			}
			if strings.HasPrefix(enc, "kcat") {
				args := []string{"-P", "-b", h.Brokers[0], "-t", topics[k], "-k", e.EntityKey()}
				for _, hd := range hs {
					args = append(args, "-H", hd.Key+"="+string(hd.Value))
				}
				cmd := exec.Command(kcat, args...)
				cmd.Stdin = bytes.NewReader(append(value, '\n'))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kcat %v: %v\n%s", args, err, out)
				}
				continue
			}
			msgs = append(msgs, kafka.Message{Topic: topics[k], Key: []byte(e.EntityKey()), Value: value, Headers: headers(hs)})
		}
	}
	h.Produce(msgs...)
	reg := h.ingestUntilIdle("roundtrip")

	for _, s := range all {
		if got, want := stored(t, h, s.e), want(s.e); got != want {
			t.Errorf("%s: stored\n  %q\nwant\n  %q", s.name, got, want)
		}
	}
	if n := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters"); n != 0 {
		t.Errorf("dead letters: %d, want 0: %v", n, testenv.Rows(t, h.Store, "SELECT reason FROM dead_letters"))
	}
	encodings := testenv.Rows(t, h.Store, `SELECT encoding, count() FROM (
		SELECT encoding FROM deployment_events UNION ALL SELECT encoding FROM incident_events
		UNION ALL SELECT encoding FROM patch_events UNION ALL SELECT encoding FROM change_events) GROUP BY encoding ORDER BY encoding`)
	if want := []string{"cdevents | 6", "cloudevents | 12", "native | 8"}; fmt.Sprint(encodings) != fmt.Sprint(want) {
		t.Errorf("stored encodings %v, want %v", encodings, want)
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_events_stored_total", map[string]string{"kind": "deployment"}); got != 7 {
		t.Errorf("stored deployments metric = %v, want 7", got)
	}
}

// TestIncidentLifecycleMerge sends an incident's lifecycle in several
// messages, out of order and with one duplicated, and checks the view merges
// them into one row.
func TestIncidentLifecycleMerge(t *testing.T) {
	h := newHarness(t, 1)
	steps := []map[string]any{
		{"event_id": "i-3", "time": "2026-03-02T12:00:00Z", "resolved_at": "2026-03-02T12:00:00Z", "mitigated_at": "2026-03-02T11:30:00+01:00"},
		{"event_id": "i-1", "time": "2026-03-02T09:05:00Z", "impact_started_at": "2026-03-02T09:00:00Z", "detected_at": "2026-03-02T09:05:00Z",
			"severity": "medium", "service": "search", "team": "discovery", "environment": "production", "detection_source": "customer"},
		{"event_id": "i-2", "time": "2026-03-02T09:20:00Z", "acknowledged_at": "2026-03-02T09:20:00Z", "severity": "sev1", "cause_deployment_id": "dep-9"},
		{"event_id": "i-2", "time": "2026-03-02T09:20:00Z", "acknowledged_at": "2026-03-02T09:20:00Z", "severity": "sev1", "cause_deployment_id": "dep-9"},
	}
	var msgs []kafka.Message
	for _, s := range steps {
		var b strings.Builder
		b.WriteString(`{"kind":"incident","incident_id":"INC-42"`)
		for k, v := range s {
			fmt.Fprintf(&b, ",%q:%q", k, v)
		}
		b.WriteString("}")
		msgs = append(msgs, kafka.Message{Topic: h.Topics.Incidents, Key: []byte("INC-42"), Value: []byte(b.String())})
	}
	h.Produce(msgs...)
	h.ingestUntilIdle("lifecycle")
	got := testenv.Rows(t, h.Store, `SELECT service, team, severity, detection_source, toString(impact_started_at), toString(detected_at),
		toString(acknowledged_at), toString(mitigated_at), toString(resolved_at), state, cause_deployment_id, messages FROM incidents`)
	want := []string{"search | discovery | critical | customer | 2026-03-02 09:00:00 | 2026-03-02 09:05:00 | 2026-03-02 09:20:00 | 2026-03-02 10:30:00 | 2026-03-02 12:00:00 | resolved | dep-9 | 3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("incidents view:\n got %q\nwant %q", got, want)
	}
}

// TestBadInput sends malformed messages between good ones. Each bad one must
// land in dead_letters and on the dead-letter topic with its reason, be
// counted, and not stop the good ones around it.
func TestBadInput(t *testing.T) {
	h := newHarness(t, 1)
	h.cfg.MaxMessageBytes = 64 << 10 // below the broker's limit, so an oversized message can be produced
	future := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	dep := `"kind":"deployment","deployment_id":"d-1","service":"checkout","environment":"production","status":"success","finished_at":"2026-03-02T10:00:00Z"`
	cases := []struct {
		name    string
		value   string
		headers []kafka.Header
		reason  event.Reason
		detail  string // a substring the reason must contain
	}{
		{"invalid JSON", `{"kind":"deployment",`, nil, event.ReasonInvalidJSON, ""},
		{"not an object", `[1,2,3]`, nil, event.ReasonInvalidJSON, ""},
		{"empty payload", ``, nil, event.ReasonInvalidJSON, ""},
		{"wrong type", `{"event_id":"b1",` + strings.Replace(dep, `"service":"checkout"`, `"service":42`, 1) + `}`, nil, event.ReasonWrongType, "service"},
		{"bad timestamp", `{"event_id":"b2",` + strings.Replace(dep, `2026-03-02T10:00:00Z`, `yesterday`, 1) + `}`, nil, event.ReasonWrongType, "finished_at"},
		{"missing event id", `{` + dep + `}`, nil, event.ReasonMissingID, "event_id"},
		{"missing service", `{"event_id":"b3",` + strings.Replace(dep, `"service":"checkout",`, ``, 1) + `}`, nil, event.ReasonMissingField, "service"},
		{"unknown kind", `{"kind":"pipeline","event_id":"b4"}`, nil, event.ReasonUnknownKind, "pipeline"},
		{"bad status", `{"event_id":"b5",` + strings.Replace(dep, `"success"`, `"exploded"`, 1) + `}`, nil, event.ReasonInvalidValue, "exploded"},
		{"future timestamp", `{"event_id":"b6",` + strings.Replace(dep, `2026-03-02T10:00:00Z`, future, 1) + `}`, nil, event.ReasonFutureTimestamp, "finished_at"},
		{"resolved before detected", `{"kind":"incident","event_id":"b7","incident_id":"INC-7","detected_at":"2026-03-01T11:00:00Z","resolved_at":"2026-03-01T10:00:00Z"}`, nil, event.ReasonTimeOrder, "INC-7"},
		{"finished before started", `{"event_id":"b8",` + dep + `,"started_at":"2026-03-02T11:00:00Z"}`, nil, event.ReasonTimeOrder, "started_at"},
		{"oversized", `{"event_id":"b9",` + dep + `,"title":"` + strings.Repeat("x", 100<<10) + `"}`, nil, event.ReasonOversized, ""},
		{"not UTF-8", "{\"event_id\":\"b10\"," + strings.Replace(dep, "checkout", "caf\xe9", 1) + "}", nil, event.ReasonNotUTF8, ""},
		{"cloudevent without id", `{"specversion":"1.0","source":"/ci","type":"dev.opsmetrics.deployment.reported.0.1.0","data":{}}`,
			[]kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}, event.ReasonMissingID, "id"},
		{"binary cloudevent without id", `{"deployment_id":"d-2"}`,
			[]kafka.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_source", Value: []byte("/ci")},
				{Key: "ce_type", Value: []byte("dev.opsmetrics.deployment.reported.0.1.0")}}, event.ReasonMissingID, "id"},
		{"cdevent without subject", `{"specversion":"1.0","id":"c1","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","data":{"context":{"version":"0.5.0","id":"c1","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","timestamp":"2026-03-02T10:00:00Z"}}}`,
			[]kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}, event.ReasonMissingSubject, "subject"},
		{"unsupported cdevents version", `{"specversion":"1.0","id":"c2","source":"/ci","type":"dev.cdevents.service.deployed.0.1.0","data":{"context":{"version":"0.3.0","id":"c2","source":"/ci","type":"dev.cdevents.service.deployed.0.1.0","timestamp":"2026-03-02T10:00:00Z"},"subject":{"id":"checkout","content":{"environment":{"id":"production"},"artifactId":"pkg:oci/checkout@v1"}}}}`,
			[]kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}, event.ReasonUnsupported, ""},
	}
	var msgs []kafka.Message
	good := 0
	for i, c := range cases {
		g := fmt.Sprintf(`{"kind":"change","event_id":"good-%d","change_id":"sha-%d","service":"checkout","merged_at":"2026-03-02T10:00:00Z"}`, i, i)
		msgs = append(msgs,
			kafka.Message{Topic: h.Topics.Changes, Value: []byte(g)},
			kafka.Message{Topic: h.Topics.Changes, Value: []byte(c.value), Headers: c.headers})
		good++
	}
	msgs = append(msgs, kafka.Message{Topic: h.Topics.Changes, Value: []byte(`{"kind":"change","event_id":"good-last","change_id":"sha-last","service":"checkout","merged_at":"2026-03-02T10:00:00Z"}`)})
	good++
	h.Produce(msgs...)
	reg := h.ingestUntilIdle("bad-input")

	if n := testenv.Count(t, h.Store, "SELECT count() FROM changes"); n != uint64(good) {
		t.Errorf("changes stored: %d, want %d (the good events around the bad ones)", n, good)
	}
	// In one partition the bad message of case i is at offset 2i+1.
	dlq := h.ConsumeAll(h.Topics.DeadLetter, 1)
	byOffset := map[string]kafka.Message{}
	for _, m := range dlq {
		for _, hd := range m.Headers {
			if hd.Key == ingest.HeaderOffset {
				byOffset[string(hd.Value)] = m
			}
		}
	}
	for i, c := range cases {
		offset := int64(2*i + 1)
		rows := testenv.Rows(t, h.Store, "SELECT reason_code, reason FROM dead_letters WHERE topic = ? AND offset = ?", h.Topics.Changes, offset)
		if len(rows) != 1 {
			t.Errorf("%s: %d dead_letters rows at offset %d, want 1", c.name, len(rows), offset)
			continue
		}
		code, reason, _ := strings.Cut(rows[0], " | ")
		if code != string(c.reason) || !strings.Contains(reason, c.detail) {
			t.Errorf("%s: dead letter reason %q (%s), want code %s mentioning %q", c.name, reason, code, c.reason, c.detail)
		}
		m, ok := byOffset[fmt.Sprint(offset)]
		if !ok {
			t.Errorf("%s: not on the dead-letter topic", c.name)
			continue
		}
		var hdrReason string
		for _, hd := range m.Headers {
			if hd.Key == ingest.HeaderReason {
				hdrReason = string(hd.Value)
			}
		}
		if hdrReason != reason {
			t.Errorf("%s: dead-letter header reason %q, want %q", c.name, hdrReason, reason)
		}
		if c.reason != event.ReasonOversized && string(m.Value) != c.value {
			t.Errorf("%s: dead-letter payload differs from the original", c.name)
		}
	}
	if len(dlq) != len(cases) {
		t.Errorf("dead-letter topic has %d messages, want %d", len(dlq), len(cases))
	}
	total := 0.0
	for _, r := range []event.Reason{event.ReasonInvalidJSON, event.ReasonWrongType, event.ReasonMissingID, event.ReasonMissingField,
		event.ReasonUnknownKind, event.ReasonInvalidValue, event.ReasonFutureTimestamp, event.ReasonTimeOrder, event.ReasonOversized,
		event.ReasonNotUTF8, event.ReasonMissingSubject, event.ReasonUnsupported} {
		total += testenv.Counter(t, reg, "opsmetrics_ingest_dead_letters_total", map[string]string{"reason": string(r)})
	}
	if total != float64(len(cases)) {
		t.Errorf("dead-letter metric total %v, want %d", total, len(cases))
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_dead_letters_total", map[string]string{"reason": "time_order"}); got != 2 {
		t.Errorf("dead letters with reason time_order: %v, want 2", got)
	}
}

// TestDuplicatesAndReplays ingests a generated stream, then the same events
// produced a second time, then everything again after the group's offsets
// are reset to zero, and checks that no public view changes.
func TestDuplicatesAndReplays(t *testing.T) {
	h := newHarness(t, 4)
	var buf bytes.Buffer
	stats, err := generator.WriteJSONL(&buf, generator.Config{Services: 6, Days: 21, Seed: 7, End: t0, Anomalies: false}, generator.FormatMixed)
	if err != nil {
		t.Fatal(err)
	}
	produceFile := func() {
		p := publish.New(h.Brokers, publish.TopicsFrom(h.Topics), nil)
		defer p.Close()
		if _, err := p.File(context.Background(), bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	produceFile()
	h.ingestUntilIdle("first")
	before := h.Views()
	if n := testenv.Count(t, h.Store, "SELECT count() FROM deployments"); n != uint64(stats.Deployments) {
		t.Fatalf("deployments: %d, want %d", n, stats.Deployments)
	}

	produceFile() // the same events again, at new offsets
	again := h.ingestUntilIdle("first")
	h.ResetOffsets("first", 4)
	replay := h.ingestUntilIdle("first") // the same group, rewound to offset zero
	after := h.Views()
	for view, rows := range before {
		if after[view] != rows {
			t.Errorf("view %s changed after duplicates and replay:\nbefore %d bytes, after %d bytes", view, len(rows), len(after[view]))
		}
	}
	// Prove the duplicates were really consumed and stored again.
	if got := testenv.SumCounter(t, again, "opsmetrics_ingest_events_stored_total"); got != float64(stats.Events) {
		t.Errorf("second pass stored %v events, want the %d duplicates", got, stats.Events)
	}
	if got := testenv.SumCounter(t, replay, "opsmetrics_ingest_events_stored_total"); got != float64(2*stats.Events) {
		t.Errorf("replay from zero stored %v events, want %d", got, 2*stats.Events)
	}
	for _, table := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
		if err := h.Store.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	if n := testenv.Count(t, h.Store, "SELECT count() FROM deployment_events"); n != uint64(stats.Deployments) {
		t.Errorf("deployment_events after merge: %d rows, want %d: duplicates are not merged away", n, stats.Deployments)
	}
	if got := h.Views(); got["incidents"] != before["incidents"] {
		t.Errorf("incidents view changed after merging")
	}
}
