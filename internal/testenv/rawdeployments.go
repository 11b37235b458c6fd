package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/store"
)

// RawDeployment is one message about a deployment, written to
// deployment_events with the columns the breakdowns assume.
type RawDeployment struct {
	EventID, ID, Service, Team, Env, Status, Version, Actor, Pipeline string
	EventTime, Finished                                               time.Time
	Unplanned                                                         bool
}

// InsertRawDeployments writes ds to deployment_events.
func InsertRawDeployments(t *testing.T, st *store.Store, ds []RawDeployment) {
	t.Helper()
	ctx := context.Background()
	b, err := st.Conn().PrepareBatch(ctx, `INSERT INTO deployment_events (event_id, event_time, encoding, deployment_id, service, team,
		environment, started_at, finished_at, status, version, artifact, unplanned, fixes_incident, actor, pipeline, changes,
		source_topic, source_partition, source_offset, ingested_at)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		u := uint8(0)
		if d.Unplanned {
			u = 1
		}
		if err := b.Append(d.EventID, d.EventTime, "native", d.ID, d.Service, d.Team, d.Env, d.Finished.Add(-10*time.Minute), d.Finished,
			d.Status, d.Version, "", u, "", d.Actor, d.Pipeline, []string{}, "t", int32(0), int64(i), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
