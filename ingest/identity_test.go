package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestIDReuse stores events, then sends their ids again through Kafka on
// other topics and partitions: with other content, for another entity, in
// another month, as another kind, and unchanged. Only the unchanged ones
// are stored; the others are dead-lettered as id_conflict with a reason
// that names the id and what differs; and the views answer the same before
// and after ClickHouse merges every table with OPTIMIZE ... FINAL.
func TestIDReuse(t *testing.T) {
	h := newHarness(t, 3)
	first := []kafka.Message{
		{Topic: h.Topics.Deployments, Key: []byte("d-1"), Value: []byte(testenv.DeploymentJSON("e-1", "success", ""))},
		{Topic: h.Topics.Incidents, Key: []byte("INC-1"), Value: []byte(`{"kind":"incident","event_id":"e-2","incident_id":"INC-1",` +
			`"service":"checkout","environment":"production","severity":"high","detected_at":"2026-03-02T10:00:00Z"}`)},
	}
	h.Produce(first...)
	h.ingestUntilIdle("reuse")
	before := h.Views()

	again := []struct {
		name, topic, value, detail string
	}{
		{"other status", h.Topics.Deployments, testenv.DeploymentJSON("e-1", "failure", ""), `status "success" there, "failure" here`},
		{"other entity", h.Topics.Changes, strings.Replace(testenv.DeploymentJSON("e-1", "success", ""), `"d-e-1"`, `"d-2"`, 1),
			`deployment_id "d-e-1" there, "d-2" here`},
		{"other month", h.Topics.Patches, strings.Replace(testenv.DeploymentJSON("e-1", "success", ""), "2026-03-02", "2025-11-02", 1),
			"event_time 2026-03-02T10:00:00Z there, 2025-11-02T10:00:00Z here"},
		{"other kind", h.Topics.Incidents, `{"kind":"change","event_id":"e-2","change_id":"c-9","service":"checkout","merged_at":"2026-03-02T10:00:00Z"}`,
			"it is a incident event there, a change event here"},
		{"later severity under the same id", h.Topics.Incidents, `{"kind":"incident","event_id":"e-2","incident_id":"INC-1",` +
			`"service":"checkout","environment":"production","severity":"critical","detected_at":"2026-03-02T10:00:00Z"}`, `severity "high" there, "critical" here`},
		{"unchanged", h.Topics.Changes, testenv.DeploymentJSON("e-1", "success", ""), ""},
	}
	var msgs []kafka.Message
	for i, a := range again {
		// Keys spread the messages over the partitions.
		msgs = append(msgs, kafka.Message{Topic: a.topic, Key: []byte{byte('a' + i)}, Value: []byte(a.value)})
	}
	h.Produce(msgs...)
	reg := h.ingestUntilIdle("reuse")

	reasons := testenv.Rows(t, h.Store, "SELECT reason FROM dead_letters WHERE reason_code = 'id_conflict'")
	for _, a := range again {
		found := false
		for _, r := range reasons {
			found = found || (a.detail != "" && strings.Contains(r, a.detail))
		}
		if a.detail != "" && !found {
			t.Errorf("%s: no id_conflict dead letter saying %q in %q", a.name, a.detail, reasons)
		}
	}
	if len(reasons) != len(again)-1 {
		t.Errorf("%d id_conflict dead letters, want %d: %q", len(reasons), len(again)-1, reasons)
	}
	for _, r := range reasons {
		if !strings.Contains(r, `event id "e-`) || !strings.Contains(r, "first from ") {
			t.Errorf("conflict reason %q does not name the id and where it was first stored from", r)
		}
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_events_stored_total", map[string]string{}); got != 1 {
		t.Errorf("events stored in the second pass: %v, want 1 (the unchanged one)", got)
	}
	after := h.Views()
	for _, view := range []string{"deployments", "incidents", "patches", "changes"} {
		if after[view] != before[view] {
			t.Errorf("view %s changed by reused ids:\nbefore %s\nafter  %s", view, before[view], after[view])
		}
	}
	for _, table := range testenv.EventTables {
		if err := h.Store.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	merged := h.Views()
	for _, view := range []string{"deployments", "incidents", "patches", "changes"} {
		if merged[view] != before[view] {
			t.Errorf("view %s changed by OPTIMIZE FINAL:\nbefore %s\nafter  %s", view, before[view], merged[view])
		}
	}
	if n := testenv.Count(t, h.Store, "SELECT count() FROM deployment_events"); n != 1 {
		t.Errorf("deployment_events after merging: %d rows, want 1", n)
	}
}
