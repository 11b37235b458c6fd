package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

var at = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func deployment(id, dep, status string, t time.Time) *event.Event {
	return &event.Event{Kind: event.KindDeployment, ID: id, Time: t, Encoding: event.EncodingNative,
		Deployment: &event.Deployment{ID: dep, Service: "checkout", Environment: "production", Status: event.DeploymentStatus(status), FinishedAt: t}}
}

func rec(e *event.Event, offset int64) store.Record {
	return store.Record{Event: e, Topic: "ops.deployments", Partition: 1, Offset: offset}
}

// claimAndWrite claims records and writes the accepted ones, as the
// ingester does, and returns the conflicts' details by offset.
func claimAndWrite(t *testing.T, st *store.Store, recs ...store.Record) (stored []int64, conflicts map[int64]string) {
	t.Helper()
	ok, cs, err := st.Claim(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(context.Background(), ok, nil); err != nil {
		t.Fatal(err)
	}
	conflicts = map[int64]string{}
	for _, r := range ok {
		stored = append(stored, r.Offset)
	}
	for _, c := range cs {
		conflicts[c.Record.Offset] = c.Detail
	}
	return stored, conflicts
}

// TestClaim stores an event, then sends its id again with the same content
// (a replay), with another status, another entity, another month and
// another kind, and twice in one batch with different contents. Only
// identical content is stored again; each conflict names the id and what
// differs.
func TestClaim(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	if stored, cs := claimAndWrite(t, st, rec(deployment("e-1", "d-1", "success", at), 1)); len(stored) != 1 || len(cs) != 0 {
		t.Fatalf("first message: stored %v, conflicts %v", stored, cs)
	}
	cases := []struct {
		name   string
		e      *event.Event
		detail string // "" for accepted
	}{
		{"replay", deployment("e-1", "d-1", "success", at), ""},
		{"sub-second difference only", deployment("e-1", "d-1", "success", at.Add(300*time.Millisecond)), ""},
		{"other status", deployment("e-1", "d-1", "failure", at), `status "success" there, "failure" here`},
		{"other entity", deployment("e-1", "d-2", "success", at), `deployment_id "d-1" there, "d-2" here`},
		{"other month", deployment("e-1", "d-1", "success", at.AddDate(0, 2, 0)), "event_time 2026-03-02T10:00:00Z there, 2026-05-02T10:00:00Z here"},
		{"other kind", &event.Event{Kind: event.KindChange, ID: "e-1", Time: at, Change: &event.Change{ID: "c-1", Service: "checkout", MergedAt: at}},
			"it is a deployment event there, a change event here"},
	}
	for i, c := range cases {
		stored, cs := claimAndWrite(t, st, rec(c.e, int64(10+i)))
		switch {
		case c.detail == "" && len(stored) != 1:
			t.Errorf("%s: refused: %v", c.name, cs)
		case c.detail != "" && len(stored) != 0:
			t.Errorf("%s: stored, want a conflict", c.name)
		case c.detail != "" && (!strings.Contains(cs[int64(10+i)], `event id "e-1"`) || !strings.Contains(cs[int64(10+i)], c.detail) ||
			!strings.Contains(cs[int64(10+i)], "ops.deployments/1 offset 1")):
			t.Errorf("%s: conflict %q, want it to name the id, the first message and %q", c.name, cs[int64(10+i)], c.detail)
		}
	}
	// Two contents of a new id in one batch: the first wins.
	stored, cs := claimAndWrite(t, st, rec(deployment("e-2", "d-5", "success", at), 20), rec(deployment("e-2", "d-5", "failure", at), 21),
		rec(deployment("e-2", "d-5", "success", at), 22))
	if fmt.Sprint(stored) != "[20 22]" || !strings.Contains(cs[21], "first from ops.deployments/1 offset 20") {
		t.Errorf("one batch: stored %v, conflicts %v", stored, cs)
	}
	views := testenv.Rows(t, st, "SELECT deployment_id, status, toString(finished_at) FROM deployments ORDER BY deployment_id")
	if want := "[d-1 | success | 2026-03-02 10:00:00 d-5 | success | 2026-03-02 10:00:00]"; fmt.Sprint(views) != want {
		t.Errorf("deployments view %v, want %s", views, want)
	}
}

// TestClaimRace claims one id with two contents from two connections at
// once, for many ids: whatever the timing, at most one content of an id
// is ever accepted, and a refused one is never stored.
func TestClaimRace(t *testing.T) {
	dsn := testenv.Database(t)
	a, b := testenv.Store(t, dsn), testenv.Store(t, dsn)
	const ids = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string][]string{}
	for i := range ids {
		id := fmt.Sprintf("race-%d", i)
		for j, st := range []*store.Store{a, b} {
			status := []string{"success", "failure"}[j]
			wg.Go(func() {
				stored, _ := claimAndWrite(t, st, rec(deployment(id, "d-"+id, status, at), int64(j)))
				if len(stored) == 1 {
					mu.Lock()
					outcomes[id] = append(outcomes[id], status)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	both := 0
	for id, o := range outcomes {
		if len(o) > 1 {
			t.Errorf("%s: both contents accepted", id)
		}
		both += len(o)
	}
	rows := testenv.Count(t, a, "SELECT uniqExact(event_id, status) FROM deployment_events")
	if rows != uint64(both) {
		t.Errorf("%d id and content pairs stored, %d accepted", rows, both)
	}
	t.Logf("%d of %d raced ids accepted one content, %d refused both", len(outcomes), ids, ids-len(outcomes))
	// Whatever the race decided holds for replays of either message.
	for i := range ids {
		id := fmt.Sprintf("race-%d", i)
		for j, status := range []string{"success", "failure"} {
			stored, _ := claimAndWrite(t, a, rec(deployment(id, "d-"+id, status, at), int64(10+j)))
			won := len(outcomes[id]) == 1 && outcomes[id][0] == status
			if (len(stored) == 1) != won {
				t.Errorf("%s replayed with %s: stored %v, accepted in the race %v", id, status, stored, outcomes[id])
			}
		}
	}
}

// TestClaimUnstored claims an id and crashes before its rows are written,
// then sends other content for it: with two contents claimed and none
// stored, neither is accepted, the replay of the first included. An id
// whose rows are stored is decided by them, and its replay records the
// acceptance, so that later messages need not read the rows back.
func TestClaimUnstored(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	ctx := context.Background()
	if ok, _, err := st.Claim(ctx, []store.Record{rec(deployment("u-1", "d-u", "success", at), 1)}); err != nil || len(ok) != 1 {
		t.Fatalf("first claim: accepted %d, err %v", len(ok), err) // and the rows are never written
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("u-1", "d-u", "failure", at), 2)); len(stored) != 0 ||
		!strings.Contains(cs[2], "no content of it is stored") || !strings.Contains(cs[2], "ops.deployments/1 offset 1") {
		t.Errorf("other content of an id claimed and not stored: stored %v, conflicts %v", stored, cs)
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("u-1", "d-u", "success", at), 3)); len(stored) != 0 {
		t.Errorf("replay of the first content after the other was claimed: stored, want refused (%v)", cs)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM deployment_events WHERE event_id = 'u-1'"); n != 0 {
		t.Errorf("%d rows of the refused id stored", n)
	}

	claimAndWrite(t, st, rec(deployment("s-1", "d-s", "success", at), 10))
	if stored, cs := claimAndWrite(t, st, rec(deployment("s-1", "d-s", "failure", at), 11)); len(stored) != 0 ||
		!strings.Contains(cs[11], `status "success" there, "failure" here`) {
		t.Errorf("other content of a stored id: stored %v, conflicts %v", stored, cs)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM event_ids WHERE event_id = 's-1' AND state = 1"); n != 0 {
		t.Errorf("accepted claims of an id claimed once: %d, want 0 (the only claim is the accepted one)", n)
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("s-1", "d-s", "success", at), 12)); len(stored) != 1 {
		t.Errorf("replay of the stored content: refused %v", cs)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM event_ids WHERE event_id = 's-1' AND state = 1"); n != 1 {
		t.Errorf("accepted claims after the replay decided by the stored rows: %d, want 1", n)
	}
}

// TestClaimLegacy stores rows as before migration 5, without claims, then
// claims them as the migration does: a message with the same content is
// stored again, one with other content is refused with what differs.
func TestClaimLegacy(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	ctx := context.Background()
	old := deployment("old-1", "d-old", "success", at)
	if err := st.Write(ctx, []store.Record{rec(old, 3)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range event.Kinds {
		if err := st.Conn().Exec(ctx, store.LegacyClaims(k)); err != nil {
			t.Fatalf("legacy claims of %s: %v", k, err)
		}
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("old-1", "d-old", "rolled_back", at), 4)); len(stored) != 0 ||
		!strings.Contains(cs[4], `status "success" there, "rolled_back" here`) {
		t.Errorf("other content of a legacy id: stored %v, conflicts %v", stored, cs)
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("old-1", "d-old", "success", at), 5)); len(stored) != 1 {
		t.Errorf("same content of a legacy id: refused %v", cs)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM event_ids WHERE event_id = 'old-1' AND state = 1"); n != 1 {
		t.Errorf("accepted claims of the legacy id after a replay: %d, want 1", n)
	}
}
