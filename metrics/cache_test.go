package metrics_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestRollupCache: reads through the cache give what ClickHouse gives, a
// repeated read is answered from the cache, identical concurrent reads
// make one query, a new rollup generation is never answered from the old
// one's entries, and the cache stays within its bytes.
func TestRollupCache(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	for _, b := range oracleStream(t, 5, end, 2) {
		writeEvents(t, st, b)
	}
	if _, _, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{}); err != nil {
		t.Fatal(err)
	}
	asJSON := func(sums []*metrics.Summary) string {
		for _, s := range sums {
			s.AsOf = nil
		}
		j, _ := json.Marshal(sums)
		return string(j)
	}
	read := func(q metrics.Query) string {
		t.Helper()
		sums, err := metrics.Summaries(ctx, st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(sums) == 0 || sums[0].AsOf == nil {
			t.Fatalf("%v: not read from the rollup", q.By)
		}
		return asJSON(sums)
	}
	cache := metrics.NewRollupCache(64 << 20)
	q := metrics.Query{From: end.AddDate(0, 0, -20), To: end, By: []metrics.Dimension{metrics.Service}}
	cached := q
	cached.Cache = cache
	want := read(q)
	if got := read(cached); got != want {
		t.Fatalf("first read through the cache differs from ClickHouse's:\n%s\nwant\n%s", got, want)
	}
	if got := read(cached); got != want {
		t.Fatalf("second read through the cache differs from ClickHouse's:\n%s\nwant\n%s", got, want)
	}
	if s := cache.Stats(); s.Hits != 1 || s.Misses != 1 || s.Entries != 1 || s.Bytes <= 0 {
		t.Fatalf("after two reads: %+v, want 1 hit, 1 miss, 1 entry of some bytes", s)
	}

	// Sixteen identical reads at once of a query not read yet: one miss.
	other := cached
	other.By = []metrics.Dimension{metrics.Team, metrics.Environment}
	wantOther := read(metrics.Query{From: other.From, To: other.To, By: other.By})
	before := cache.Stats()
	var wg sync.WaitGroup
	results := make([]string, 16)
	for i := range results {
		wg.Go(func() { results[i] = read(other) })
	}
	wg.Wait()
	for i, r := range results {
		if r != wantOther {
			t.Fatalf("concurrent read %d differs from ClickHouse's", i)
		}
	}
	after := cache.Stats()
	if misses := after.Misses - before.Misses; misses != 1 {
		t.Errorf("16 identical concurrent reads made %d ClickHouse queries, want 1 (%+v)", misses, after)
	}
	if n := (after.Hits - before.Hits) + (after.Shared - before.Shared) + (after.Misses - before.Misses); n != 16 {
		t.Errorf("16 reads counted as %d (%+v)", n, after)
	}

	// A deployment stored and a new rollup built: the cached answer of the
	// old generation is not given.
	writeEvents(t, st, []*event.Event{{Kind: event.KindDeployment, ID: "cache-late-1", Time: end.AddDate(0, 0, -2), Deployment: &event.Deployment{
		ID: "cache-late-1", Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: end.AddDate(0, 0, -2)}}})
	if _, built, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{Cache: cache}); err != nil || !built {
		t.Fatalf("rebuild: built %v, %v", built, err)
	}
	fresh := read(q)
	if fresh == want {
		t.Fatal("the new deployment changed no figure: the case checks nothing")
	}
	if got := read(cached); got != fresh {
		t.Fatalf("after a rebuild the cache gave the old generation's answer")
	}
	// A build by another process (a refresh that does not share the
	// cache) is read once the cache's lookups are older than their TTL.
	writeEvents(t, st, []*event.Event{{Kind: event.KindDeployment, ID: "cache-late-2", Time: end.AddDate(0, 0, -3), Deployment: &event.Deployment{
		ID: "cache-late-2", Service: "checkout", Environment: "production", Status: event.DeploymentFailure, FinishedAt: end.AddDate(0, 0, -3)}}})
	read(cached) // the lookups are remembered now
	if _, built, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{}); err != nil || !built {
		t.Fatalf("rebuild elsewhere: built %v, %v", built, err)
	}
	fresher := read(q)
	if fresher == fresh {
		t.Fatal("the second deployment changed no figure: the case checks nothing")
	}
	time.Sleep(2100 * time.Millisecond) // the lookups' TTL (lookupTTL)
	if got := read(cached); got != fresher {
		t.Fatalf("a build in another process was not read after the lookups' TTL")
	}

	// A cache that holds either answer but not both evicts the older.
	sizes := metrics.NewRollupCache(64 << 20)
	read(metrics.Query{From: q.From, To: q.To, By: q.By, Cache: sizes})
	sizeA := sizes.Stats().Bytes
	read(metrics.Query{From: q.From, To: q.To, By: other.By, Cache: sizes})
	sizeB := sizes.Stats().Bytes - sizeA
	bound := max(sizeA, sizeB) + 1
	small := metrics.NewRollupCache(bound)
	for _, by := range [][]metrics.Dimension{{metrics.Service}, {metrics.Team, metrics.Environment}, {metrics.Service}} {
		if got := read(metrics.Query{From: q.From, To: q.To, By: by, Cache: small}); got != read(metrics.Query{From: q.From, To: q.To, By: by}) {
			t.Fatalf("%v: the small cache's answer differs from ClickHouse's", by)
		}
		if s := small.Stats(); s.Bytes > bound {
			t.Fatalf("small cache holds %d bytes, bound %d", s.Bytes, bound)
		}
	}
	if s := small.Stats(); s.Evictions != 2 || s.Hits != 0 || s.Entries != 1 {
		t.Errorf("small cache: %+v, want 2 evictions, no hit, 1 entry", s)
	}
	if metrics.NewRollupCache(0) != nil {
		t.Error("a cache of 0 bytes should be none")
	}
}
