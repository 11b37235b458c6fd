package ingest_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/eventfixtures"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// kcatProduce sends one message to topic with kcat (librdkafka), with its
// headers, as a producer outside the Go world would.
func kcatProduce(t *testing.T, kcat, broker, topic, key string, value []byte, headers []eventfixtures.Header) {
	t.Helper()
	args := []string{"-P", "-b", broker, "-t", topic, "-k", key}
	for _, h := range headers {
		args = append(args, "-H", h.Key+"="+h.Value)
	}
	cmd := exec.Command(kcat, args...)
	cmd.Stdin = bytes.NewReader(append(append([]byte(nil), value...), '\n'))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, out)
	}
}

// storedEvent reads the raw row of one message back from ClickHouse as an
// event, for eventfixtures.Summary.
func storedEvent(t *testing.T, h *harness, kind, id string) *event.Event {
	t.Helper()
	e := &event.Event{Kind: event.Kind(kind)}
	conn := h.Store.Conn()
	var err error
	switch kind {
	case "deployment":
		d := &event.Deployment{}
		var status string
		err = conn.QueryRow(t.Context(), `SELECT deployment_id, service, team, environment, status, finished_at, artifact, changes
			FROM deployment_events WHERE event_id = ?`, id).Scan(&d.ID, &d.Service, &d.Team, &d.Environment, &status, &d.FinishedAt, &d.Artifact, &d.Changes)
		d.Status, e.Deployment = event.DeploymentStatus(status), d
	case "incident":
		i := &event.Incident{}
		var sev, source string
		err = conn.QueryRow(t.Context(), `SELECT incident_id, service, environment, severity, detection_source, impact_started_at, detected_at, resolved_at, title
			FROM incident_events WHERE event_id = ?`, id).Scan(&i.ID, &i.Service, &i.Environment, &sev, &source, &i.ImpactStartedAt, &i.DetectedAt, &i.ResolvedAt, &i.Title)
		i.Severity, i.DetectionSource, e.Incident = event.Severity(sev), event.DetectionSource(source), i
	case "change":
		c := &event.Change{}
		err = conn.QueryRow(t.Context(), `SELECT change_id, service, repository, author, authored_at, merged_at
			FROM change_events WHERE event_id = ?`, id).Scan(&c.ID, &c.Service, &c.Repository, &c.Author, &c.AuthoredAt, &c.MergedAt)
		e.Change = c
	}
	if err != nil {
		t.Errorf("%s %s: not stored: %v", kind, id, err)
		return nil
	}
	return e
}

// TestCDEventsConformance produces every conformance fixture (CDEvents we
// wrote from the published schemas of 0.4.1, 0.5.x and the 0.6 draft) with
// kcat in each form (bare, structured and binary CloudEvents), ingests them,
// and reads each back from ClickHouse: accepted types are stored with the
// fields the mapping gives, skipped types are counted and committed with
// no dead letter, and with dead_letter_unused they are dead letters.
func TestCDEventsConformance(t *testing.T) {
	kcat := kcatAvailable(t)
	h := newHarness(t, 3)
	fs, err := eventfixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	topics := map[string]string{"service": h.Topics.Deployments, "incident": h.Topics.Incidents, "change": h.Topics.Changes}
	type sent struct {
		f    eventfixtures.Fixture
		form string
	}
	var all []sent
	skipped := map[string]int{}
	for _, f := range fs {
		for _, form := range f.Forms() {
			// Each form is its own event about its own entity.
			v := f.Variant("-" + form.Name)
			vform := v.Forms()
			for _, vf := range vform {
				if vf.Name != form.Name {
					continue
				}
				topic := topics[strings.Split(f.Type, ".")[0]]
				if topic == "" {
					topic = h.Topics.Deployments // a shared CDEvents bus carries every type
				}
				kcatProduce(t, kcat, h.Brokers[0], topic, v.Subject, vf.Value, vf.Headers)
			}
			all = append(all, sent{v, form.Name})
			if f.Want == "" {
				skipped[f.Type]++
			}
		}
	}
	reg := h.ingestUntilIdle("conformance")

	for _, s := range all {
		if s.f.Want == "" {
			continue
		}
		kind := strings.SplitN(s.f.Want, " ", 2)[0]
		e := storedEvent(t, h, kind, s.f.Source+" "+s.f.ID)
		if e == nil {
			continue
		}
		if got := eventfixtures.Summary(e); got != s.f.Want {
			t.Errorf("%s %s stored as\n  %s\nwant\n  %s", s.f.Name, s.form, got, s.f.Want)
		}
	}
	if n := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters"); n != 0 {
		t.Errorf("dead letters: %d, want 0: %v", n, testenv.Rows(t, h.Store, "SELECT reason FROM dead_letters"))
	}
	for typ, n := range skipped {
		if got := testenv.Counter(t, reg, "opsmetrics_ingest_skipped_total", map[string]string{"type": typ}); got != float64(n) {
			t.Errorf("skipped %s: metric %v, want %d", typ, got, n)
		}
	}
	if got := testenv.Count(t, h.Store, "SELECT count() FROM deployment_events WHERE encoding = 'cdevents'"); got != 30 {
		t.Errorf("cdevents deployments stored: %d, want 30 (10 fixtures in 3 forms)", got)
	}
	// An incident's detected and resolved fixtures merge into one lifecycle.
	rows := testenv.Rows(t, h.Store, "SELECT state, toString(detected_at), toString(resolved_at) FROM incidents WHERE incident_id = 'PD-051-1-binary'")
	if fmt.Sprint(rows) != "[resolved | 2026-02-11 10:05:00 | 2026-02-11 14:45:00]" {
		t.Errorf("PD-051-1-binary: %v, want one resolved lifecycle", rows)
	}

	// The same bus with dead_letter_unused: the skipped types become dead
	// letters, the others are stored as before.
	h.cfg.DeadLetterUnused = true
	h.ResetOffsets("conformance-dl", 3)
	reg = h.ingestUntilIdle("conformance-dl")
	total := 0
	for _, n := range skipped {
		total += n
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_dead_letters_total", map[string]string{"reason": string(event.ReasonUnusedType)}); got != float64(total) {
		t.Errorf("unused_type dead letters: %v, want %d", got, total)
	}
	if n := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters WHERE reason_code = 'unused_type'"); n != uint64(total) {
		t.Errorf("unused_type rows in dead_letters: %d, want %d", n, total)
	}
}

// TestCDEventsMalformed sends CDEvents that are not usable between good ones:
// each is a dead letter whose reason names what was wrong, and the good
// ones around it are stored.
func TestCDEventsMalformed(t *testing.T) {
	h := newHarness(t, 1)
	ce := func(data string) []byte {
		return []byte(`{"specversion":"1.0","id":"m","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","data":` + data + `}`)
	}
	ctx := `"context":{"specversion":"0.5.1","id":"m","source":"/ci","type":"dev.cdevents.service.deployed.0.3.0","timestamp":"2026-03-01T10:00:00Z"}`
	cases := []struct {
		name   string
		value  []byte
		ct     bool
		reason event.Reason
		detail string
	}{
		{"no artifactId", ce(`{` + ctx + `,"subject":{"id":"s","content":{"environment":{"id":"production"}}}}`), true, event.ReasonMissingField, "artifactId"},
		{"spec version by prefix", []byte(`{"context":{"version":"0.4.1-evil' OR 1=1","id":"m2","source":"/ci","type":"dev.cdevents.service.deployed.0.2.0","timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"s","type":"service","content":{"environment":{"id":"production"},"artifactId":"pkg:oci/s@1"}}}`),
			false, event.ReasonUnsupported, "not a semantic version"},
		{"unknown type version of a later spec", []byte(strings.NewReplacer(`"0.5.1"`, `"0.7.0"`, "deployed.0.3.0", "deployed.0.4.0").Replace(
			`{` + ctx + `,"subject":{"id":"s","content":{"environment":{"id":"production"},"artifactId":"pkg:oci/s@1"}}}`)),
			false, event.ReasonUnsupported, "type version 0.4.0 is not one opsmetrics knows"},
		{"no subject", ce(`{` + ctx + `}`), true, event.ReasonMissingSubject, "no subject"},
		{"environment is a string", ce(`{` + ctx + `,"subject":{"id":"s","content":{"environment":"production","artifactId":"pkg:oci/s@1"}}}`), true, event.ReasonWrongType, "subject.content.environment"},
		{"types differ", ce(`{"context":{"specversion":"0.5.1","type":"dev.cdevents.incident.detected.0.3.0"},"subject":{"id":"s","content":{}}}`), true, event.ReasonInvalidValue, "differ"},
		{"bare without id", []byte(`{"context":{"specversion":"0.5.1","source":"/ci","type":"dev.cdevents.build.queued.0.3.0","timestamp":"2026-03-01T10:00:00Z"},"subject":{"id":"b","content":{}}}`),
			false, event.ReasonMissingID, "(no id)"},
	}
	var msgs []kafka.Message
	for i, c := range cases {
		good := fmt.Sprintf(`{"kind":"change","event_id":"good-%d","change_id":"sha-%d","service":"checkout","merged_at":"2026-03-02T10:00:00Z"}`, i, i)
		bad := kafka.Message{Topic: h.Topics.Changes, Value: c.value}
		if c.ct {
			bad.Headers = []kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
		}
		msgs = append(msgs, kafka.Message{Topic: h.Topics.Changes, Value: []byte(good)}, bad)
	}
	h.Produce(msgs...)
	h.ingestUntilIdle("malformed")
	if n := testenv.Count(t, h.Store, "SELECT count() FROM changes"); n != uint64(len(cases)) {
		t.Errorf("good changes stored: %d, want %d", n, len(cases))
	}
	for i, c := range cases {
		rows := testenv.Rows(t, h.Store, "SELECT reason_code, reason FROM dead_letters WHERE offset = ?", int64(2*i+1))
		if len(rows) != 1 {
			t.Errorf("%s: %d dead letters, want 1", c.name, len(rows))
			continue
		}
		code, reason, _ := strings.Cut(rows[0], " | ")
		if code != string(c.reason) || !strings.Contains(reason, c.detail) {
			t.Errorf("%s: dead letter %s %q, want %s mentioning %q", c.name, code, reason, c.reason, c.detail)
		}
	}
}

// TestPlaceholderEnvironment: CI systems often send no environment. Such a
// deployment is stored under "unknown" and counted; environment names are
// lower-cased and aliased on the way in.
func TestPlaceholderEnvironment(t *testing.T) {
	h := newHarness(t, 1)
	h.cfg.EnvironmentAliases = map[string]string{"Prod": "production"}
	dep := func(id, env string) kafka.Message {
		return kafka.Message{Topic: h.Topics.Deployments, Value: []byte(fmt.Sprintf(
			`{"kind":"deployment","event_id":"%s","deployment_id":"%s","service":"cart","status":"success","finished_at":"2026-03-01T10:00:00Z"%s}`, id, id, env))}
	}
	h.Produce(dep("d-none", ""), dep("d-empty", `,"environment":""`), dep("d-prod", `,"environment":"PROD"`), dep("d-stg", `,"environment":"Staging"`))
	reg := h.ingestUntilIdle("placeholder")
	rows := testenv.Rows(t, h.Store, "SELECT deployment_id, environment FROM deployments ORDER BY deployment_id")
	if want := "[d-empty | unknown d-none | unknown d-prod | production d-stg | staging]"; fmt.Sprint(rows) != want {
		t.Errorf("stored %v, want %s", rows, want)
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_deployments_unknown_environment_total", nil); got != 2 {
		t.Errorf("unknown environment metric %v, want 2", got)
	}
}
