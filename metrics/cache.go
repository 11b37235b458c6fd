package metrics

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/prometheus/client_golang/prometheus"
)

// RollupCache keeps the rows of KPI rollup reads in memory, by statement,
// for the readers of one process (the API, the exporter, the dashboards'
// detection): a dozen clients asking for the same summary make one
// ClickHouse query. A statement names the rollup's generation, and a
// committed generation never changes (a build writes a new one), so a
// cached answer is the answer ClickHouse would give: exact, and stale
// never longer than the rollup itself. Identical reads that arrive while
// one is running wait for it rather than run again. The cache holds at
// most MaxBytes of rows (estimated from their sizes), dropping the least
// recently used.
type RollupCache struct {
	maxBytes int64

	mu       sync.Mutex
	bytes    int64
	lru      *list.List // of *cacheEntry, most recent first
	entries  map[string]*list.Element
	inflight map[string]*flight
	stats    CacheStats
	// latest is the latest committed rollup per definitions, and the raw
	// rows' fingerprint, as read less than lookupTTL ago.
	latest      map[string]latestLookup
	fingerprint latestLookup
}

// latestLookup is a lookup rollupFor makes, and when it was made.
type latestLookup struct {
	r  Rollup
	ok bool
	fp string
	at time.Time
}

// lookupTTL is how long a cache keeps which rollup is the latest and the
// raw rows' fingerprint: a build in another process is read at most this
// late (one in this process at once: RefreshRollup forgets them).
const lookupTTL = 2 * time.Second

// CacheStats counts what a RollupCache did.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	// Shared counts reads that waited for an identical one running.
	Shared  uint64
	Bytes   int64
	Entries int
}

type cacheEntry struct {
	key   string
	rows  []rollupRow
	bytes int64
}

type flight struct {
	done chan struct{}
	rows []rollupRow
	err  error
}

// DefaultRollupCacheBytes is the cache serve keeps when
// kpi.rollup_cache_bytes is not set.
const DefaultRollupCacheBytes = 64 << 20

// NewRollupCache returns a cache of at most maxBytes (nil when maxBytes
// is 0 or less: no cache).
func NewRollupCache(maxBytes int64) *RollupCache {
	if maxBytes <= 0 {
		return nil
	}
	return &RollupCache{maxBytes: maxBytes, lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*flight{},
		latest: map[string]latestLookup{}}
}

// Stats returns the counts so far.
func (c *RollupCache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Bytes, s.Entries = c.bytes, c.lru.Len()
	return s
}

// latestRollup is latestRollup, remembered for lookupTTL.
func (c *RollupCache) latestRollup(ctx context.Context, conn driver.Conn, params string) (Rollup, bool, error) {
	if c == nil {
		return latestRollup(ctx, conn, params)
	}
	c.mu.Lock()
	l, found := c.latest[params]
	c.mu.Unlock()
	if found && time.Since(l.at) < lookupTTL {
		return l.r, l.ok, nil
	}
	at := time.Now()
	r, ok, err := latestRollup(ctx, conn, params)
	if err == nil {
		c.mu.Lock()
		c.latest[params] = latestLookup{r: r, ok: ok, at: at}
		c.mu.Unlock()
	}
	return r, ok, err
}

// fingerprintOf is fingerprint, remembered for lookupTTL.
func (c *RollupCache) fingerprintOf(ctx context.Context, conn driver.Conn) (string, error) {
	if c == nil {
		return fingerprint(ctx, conn)
	}
	c.mu.Lock()
	l := c.fingerprint
	c.mu.Unlock()
	if !l.at.IsZero() && time.Since(l.at) < lookupTTL {
		return l.fp, nil
	}
	at := time.Now()
	fp, err := fingerprint(ctx, conn)
	if err == nil {
		c.mu.Lock()
		c.fingerprint = latestLookup{fp: fp, at: at}
		c.mu.Unlock()
	}
	return fp, err
}

// forget drops the lookups: a rollup was just committed.
func (c *RollupCache) forget() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.latest)
	c.fingerprint = latestLookup{}
	c.mu.Unlock()
}

// rows returns the rows of statement key, from the cache or by read.
func (c *RollupCache) rows(ctx context.Context, key string, read func() ([]rollupRow, error)) ([]rollupRow, error) {
	if c == nil {
		return read()
	}
	for {
		c.mu.Lock()
		if el, ok := c.entries[key]; ok {
			c.lru.MoveToFront(el)
			c.stats.Hits++
			c.mu.Unlock()
			return el.Value.(*cacheEntry).rows, nil
		}
		if f, ok := c.inflight[key]; ok {
			c.stats.Shared++
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The read it waited for was cancelled by its own caller:
			// this one runs its own.
			if f.err != nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue
			}
			return f.rows, f.err
		}
		f := &flight{done: make(chan struct{})}
		c.inflight[key] = f
		c.stats.Misses++
		c.mu.Unlock()

		f.rows, f.err = read()
		c.mu.Lock()
		delete(c.inflight, key)
		if f.err == nil {
			c.add(key, f.rows)
		}
		c.mu.Unlock()
		close(f.done)
		return f.rows, f.err
	}
}

// add caches rows under key, evicting the least recently used beyond
// maxBytes; rows larger than the whole cache are not kept. c.mu is held.
func (c *RollupCache) add(key string, rows []rollupRow) {
	size := int64(len(key)) + rowsBytes(rows)
	if size > c.maxBytes {
		return
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, rows: rows, bytes: size})
	c.bytes += size
	for c.bytes > c.maxBytes {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.entries, e.key)
		c.bytes -= e.bytes
		c.stats.Evictions++
	}
}

// rowsBytes estimates the memory rows hold.
func rowsBytes(rows []rollupRow) int64 {
	n := int64(cap(rows)) * int64(unsafe.Sizeof(rollupRow{}))
	for i := range rows {
		r := &rows[i]
		n += int64(len(r.D0) + len(r.D1) + len(r.D2) + len(r.D3) + len(r.Severity))
		n += int64(cap(r.SeverityCounts)) * 8
		for _, s := range r.Severities {
			n += int64(len(s)) + int64(unsafe.Sizeof(s))
		}
	}
	return n
}

var (
	cacheHitsDesc = prometheus.NewDesc("opsmetrics_kpi_rollup_cache_hits_total",
		"KPI rollup reads answered from the in-process cache.", nil, nil)
	cacheMissesDesc = prometheus.NewDesc("opsmetrics_kpi_rollup_cache_misses_total",
		"KPI rollup reads sent to ClickHouse.", nil, nil)
	cacheSharedDesc = prometheus.NewDesc("opsmetrics_kpi_rollup_cache_shared_total",
		"KPI rollup reads that waited for an identical read running.", nil, nil)
	cacheEvictionsDesc = prometheus.NewDesc("opsmetrics_kpi_rollup_cache_evictions_total",
		"KPI rollup answers dropped from the cache to stay within kpi.rollup_cache_bytes.", nil, nil)
	cacheBytesDesc = prometheus.NewDesc("opsmetrics_kpi_rollup_cache_bytes",
		"Estimated memory the cached KPI rollup answers hold.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *RollupCache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHitsDesc, cacheMissesDesc, cacheSharedDesc, cacheEvictionsDesc, cacheBytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *RollupCache) Collect(ch chan<- prometheus.Metric) {
	s := c.Stats()
	ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(cacheSharedDesc, prometheus.CounterValue, float64(s.Shared))
	ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(s.Bytes))
}
