package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestIDHashMatchesClickHouse holds Go's hash of an event id to
// ClickHouse's cityHash64, which the id_hash column's default computes for
// the claims written before migration 17: ids of every length the hash
// treats apart (0-16, 17-32, 33-64, longer), ASCII and not.
func TestIDHashMatchesClickHouse(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(17, 5))
	alphabet := []rune("abcdefXYZ0123456789-_:/.éüß漢字🙂\x00\t")
	ids := []string{"", "a", "gen-11-1", "gen-11-1000000", "0b1a4c3e-9f3a-4a55-8d2e-8c0c9d7c1e2f", strings.Repeat("x", 1000)}
	for n := 0; n < 300; n++ {
		var b strings.Builder
		for range n % 150 {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		ids = append(ids, b.String())
	}
	rows, err := st.Conn().Query(context.Background(), "SELECT s, cityHash64(s) FROM (SELECT arrayJoin(?) AS s)", ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			s string
			h uint64
		)
		if err := rows.Scan(&s, &h); err != nil {
			t.Fatal(err)
		}
		n++
		if got := store.IDHash(s); got != h {
			t.Errorf("id %q (%d bytes): Go %d, ClickHouse %d", s, len(s), got, h)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(ids) {
		t.Fatalf("ClickHouse hashed %d ids of %d", n, len(ids))
	}
}

// TestClaimBeforeIDHashes claims ids whose claims were written before
// migration 17, in parts that lack id_hash (ClickHouse computes it from
// the id when read): a replay is stored again, other content is refused.
func TestClaimBeforeIDHashes(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	ctx := context.Background()
	claimAndWrite(t, st, rec(deployment("pre-1", "d-pre", "success", at), 1))
	// The claims as a release before migration 17 left them: the column
	// dropped and added again, so that no part holds it.
	for _, q := range []string{"ALTER TABLE event_ids DROP COLUMN id_hash",
		"ALTER TABLE event_ids ADD COLUMN id_hash UInt64 DEFAULT cityHash64(event_id)"} {
		if err := st.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if n := testenv.Count(t, st, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'event_ids' AND name = 'id_hash'"); n != 1 {
		t.Fatalf("id_hash columns: %d", n)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM event_ids WHERE id_hash = ?", store.IDHash("pre-1")); n != 1 {
		t.Fatalf("claims of pre-1 found by their computed hash: %d, want 1", n)
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("pre-1", "d-pre", "failure", at), 2)); len(stored) != 0 ||
		!strings.Contains(cs[2], `status "success" there, "failure" here`) {
		t.Errorf("other content of an id claimed before migration 17: stored %v, conflicts %v", stored, cs)
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("pre-1", "d-pre", "success", at), 3)); len(stored) != 1 {
		t.Errorf("replay of an id claimed before migration 17: refused %v", cs)
	}
	// The acceptance that replay wrote carries the id's hash, so the next
	// message's read finds it.
	if n := testenv.Count(t, st, "SELECT count() FROM event_ids WHERE id_hash = ? AND state = 1", store.IDHash("pre-1")); n != 1 {
		t.Errorf("acceptances of pre-1 under its hash: %d, want 1", n)
	}
}

// TestClaimHashShared claims ids whose hash another id's claims share (a
// collision, forged in the table): the shared hash only sends the id to
// the exact read, so a new id is still stored, and a batch's own ids that
// share a hash are decided by their ids too.
func TestClaimHashShared(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	ctx := context.Background()
	// A claim of another id, content and state, under new-1's hash (an
	// INSERT ... SELECT: 18.16 waits for a data block after VALUES).
	forge := fmt.Sprintf(`INSERT INTO event_ids (event_id, content_hash, state, kind, entity_id, target, event_time,
		source_topic, source_partition, source_offset, claimed_at, id_hash)
		SELECT 'someone-else', 'xxxxxxxxxxxxxxxx', 1, 'deployment', 'd-x', '', now(), 'ops.deployments', 9, 9, now(), %d`, store.IDHash("new-1"))
	if err := st.Conn().Exec(ctx, forge); err != nil {
		t.Fatal(err)
	}
	stored, cs := claimAndWrite(t, st, rec(deployment("new-1", "d-1", "success", at), 1), rec(deployment("new-2", "d-2", "success", at), 2))
	if len(stored) != 2 || len(cs) != 0 {
		t.Errorf("new ids, one sharing its hash with another id's claim: stored %v, conflicts %v", stored, cs)
	}
	if stored, cs := claimAndWrite(t, st, rec(deployment("new-1", "d-1", "failure", at), 3)); len(stored) != 0 ||
		!strings.Contains(cs[3], `status "success" there, "failure" here`) {
		t.Errorf("other content of the id sharing a hash: stored %v, conflicts %v", stored, cs)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM deployment_events WHERE event_id IN ('new-1', 'new-2')"); n != 2 {
		t.Errorf("rows stored: %d, want 2", n)
	}
}
