package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/eventfixtures"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestWriteColumnsAsRows stores the same decoded events with Write (whole
// columns) and with the row-at-a-time path it replaced (WriteRows), each
// into its own database, and compares every column read back but the
// ingestion time. The events are generated streams in every encoding the
// ingester reads, decoded as it decodes them, the CDEvents conformance
// fixtures in their three forms, and a few made to hit the edges (unset
// and pre-1970 times, nil and empty lists, empty and non-ASCII strings).
func TestWriteColumnsAsRows(t *testing.T) {
	columnar := testenv.Store(t, testenv.Database(t))
	rows := testenv.Store(t, testenv.Database(t))
	ctx := context.Background()
	records := differentialRecords(t)
	kinds := map[event.Kind]int{}
	for _, r := range records {
		kinds[r.Event.Kind]++
	}
	t.Logf("%d records: %v", len(records), kinds)
	for _, k := range event.Kinds {
		if kinds[k] == 0 {
			t.Fatalf("no %s records: the comparison would not cover that table", k)
		}
	}
	// In batches, as the ingester writes them.
	for lo := 0; lo < len(records); lo += 5000 {
		batch := records[lo:min(lo+5000, len(records))]
		if err := columnar.Write(ctx, batch, nil); err != nil {
			t.Fatal(err)
		}
		if err := rows.WriteRows(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
		cols := testenv.Rows(t, columnar, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ? AND name != 'ingested_at'", table)
		q := fmt.Sprintf("SELECT %s FROM %s ORDER BY source_topic, source_partition, source_offset", strings.Join(cols, ", "), table)
		got, want := testenv.Rows(t, columnar, q), testenv.Rows(t, rows, q)
		if len(got) != len(want) {
			t.Errorf("%s: %d rows written by columns, %d by rows", table, len(got), len(want))
			continue
		}
		diffs := 0
		for i := range got {
			if got[i] != want[i] {
				if diffs++; diffs <= 3 {
					t.Errorf("%s row %d (%s):\n columns: %s\n    rows: %s", table, i, strings.Join(cols, ", "), got[i], want[i])
				}
			}
		}
		if diffs > 3 {
			t.Errorf("%s: %d rows differ in all", table, diffs)
		}
	}
	// Every ingestion time is the batch's, and set.
	if n := testenv.Count(t, columnar, "SELECT count() FROM deployment_events WHERE ingested_at < now() - 3600"); n != 0 {
		t.Errorf("%d deployments stored with an ingestion time more than an hour ago", n)
	}
}

// differentialRecords are the events of TestWriteColumnsAsRows, each
// decoded from its message, at made-up positions.
func differentialRecords(t *testing.T) []store.Record {
	t.Helper()
	dec := event.Decoder{MaxBytes: 1 << 20, MaxFutureSkew: time.Hour}
	var records []store.Record
	add := func(name string, value []byte, hs []event.Header) {
		e, err := dec.Decode(event.Message{Topic: "ops.events", Value: value, Headers: hs})
		if err != nil {
			var skipped *event.Skipped
			if errors.As(err, &skipped) {
				return
			}
			t.Fatalf("%s: decode %s: %v", name, value, err)
		}
		records = append(records, store.Record{Event: e, Topic: name, Partition: len(records) % 7, Offset: int64(len(records))})
	}
	structured := []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	cfg := generator.Config{Services: 3, Days: 60, Seed: 23, End: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}
	n := 0
	_, err := generator.Generate(cfg, func(e *event.Event) error {
		n++
		native, err := event.MarshalNative(e)
		if err != nil {
			return err
		}
		add("native", native, nil)
		ce, err := event.MarshalCloudEvent(e, generator.Source)
		if err != nil {
			return err
		}
		add("cloudevents-structured", ce, structured)
		hs, data, err := event.CloudEventBinary(e, generator.Source)
		if err != nil {
			return err
		}
		add("cloudevents-binary", data, hs)
		for _, spec := range []string{"0.4", "0.5"} {
			if cd, err := event.MarshalCDEvent(e, generator.Source, spec); err == nil {
				add("cdevents-"+spec+"-structured", cd, structured)
			}
			if cd, err := event.CDEvent(e, generator.Source, spec); err == nil {
				add("cdevents-"+spec+"-bare", cd, nil)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fixtures, err := eventfixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		for _, form := range f.Forms() {
			hs := make([]event.Header, len(form.Headers))
			for i, h := range form.Headers {
				hs[i] = event.Header{Key: h.Key, Value: []byte(h.Value)}
			}
			add("fixture-"+f.Name+"-"+form.Name, form.Value, hs)
		}
	}
	// Edges, stored as they are (Write does not validate).
	pre1970 := time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)
	now := time.Now().UTC().Truncate(time.Second)
	for i, e := range []*event.Event{
		{Kind: event.KindDeployment, ID: "edge-nil-changes", Time: now, Encoding: event.EncodingNative,
			Deployment: &event.Deployment{ID: "d-edge-1", Service: "s", Environment: "production", Status: "success"}},
		{Kind: event.KindDeployment, ID: "edge-empty-changes", Time: pre1970, Encoding: event.EncodingNative,
			Deployment: &event.Deployment{ID: "d-edge-2", Service: "ß-ünïcødé ✓", StartedAt: pre1970, Unplanned: true, Changes: []string{}}},
		{Kind: event.KindDeployment, ID: "edge-changes", Time: now, Encoding: event.EncodingCDEvents,
			Deployment: &event.Deployment{ID: "d-edge-3", Changes: []string{"", "c-1", strings.Repeat("x", 300)}}},
		{Kind: event.KindIncident, ID: "edge-incident", Time: now, Encoding: event.EncodingCloudEvents,
			Incident: &event.Incident{ID: "inc-edge", Title: "quote \" and\nnewline", ResolvedAt: pre1970}},
		{Kind: event.KindPatch, ID: "edge-patch", Encoding: event.EncodingNative, Patch: &event.Patch{ID: "p-edge", Target: ""}},
		{Kind: event.KindChange, ID: "", Time: now, Encoding: event.EncodingNative, Change: &event.Change{ID: "c-edge", MergedAt: now}},
	} {
		records = append(records, store.Record{Event: e, Topic: "edges", Partition: i, Offset: int64(i)})
	}
	if n < 100 {
		t.Fatalf("generated only %d events", n)
	}
	return records
}
