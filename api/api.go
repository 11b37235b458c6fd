// Package api serves opsmetrics' HTTP API. GET /api/v1/kpis returns the same
// JSON document as `opsmetrics kpi --format json`; its parameters are the
// command's flags, validated the same way, and a bad one gets a 400 that
// names it. /healthz and /readyz serve liveness and readiness probes. When a
// token is configured, /api/ requires it as a bearer token.
//
// Every request is bounded (Limits): its range and buckets, its filters,
// its ClickHouse time, and how many run and wait at once. A request over a
// bound gets a 400 or a 503 that names the setting; ClickHouse down gets a
// 503.
package api

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// Options configure the HTTP server's handler.
type Options struct {
	// Conn serves the KPI API; nil leaves /api/ out (a replica that only
	// ingests still answers the probes).
	Conn driver.Conn
	// Defaults holds what an absent parameter means (metrics.Params.Defaults).
	Defaults metrics.Query
	// Token, when set, is required on /api/ as "Authorization: Bearer".
	Token string
	// Ready reports whether the process can do its work: Kafka and
	// ClickHouse reachable, the schema current. nil is always ready.
	Ready func(ctx context.Context) error
	// Available, when set and failing, makes the KPI API answer 503 with
	// its error without querying: the schema is not migrated yet.
	Available func() error
	// Limits bound each request; zero fields take DefaultLimits'.
	Limits Limits
	Log    *slog.Logger
}

// Limits bound the work of the KPI API (configuration section api).
type Limits struct {
	MaxRange       time.Duration `yaml:"max_range"`              // longest range
	MaxBuckets     int           `yaml:"max_buckets"`            // most buckets per request
	MaxFilterBytes int           `yaml:"max_filter_bytes"`       // service, team, environment and production filters together
	QueryTimeout   time.Duration `yaml:"query_timeout"`          // ClickHouse time of one request
	MaxConcurrent  int           `yaml:"max_concurrent_queries"` // requests running at once
	MaxQueued      int           `yaml:"max_queued_queries"`     // requests waiting for a turn
	QueueTimeout   time.Duration `yaml:"queue_timeout"`          // longest wait for a turn
}

// DefaultLimits are the limits of the default configuration.
var DefaultLimits = Limits{MaxRange: 3 * 366 * 24 * time.Hour, MaxBuckets: 100, MaxFilterBytes: 64 << 10,
	QueryTimeout: 30 * time.Second, MaxConcurrent: 4, MaxQueued: 64, QueueTimeout: 10 * time.Second}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	return Limits{MaxRange: cmp.Or(l.MaxRange, d.MaxRange), MaxBuckets: cmp.Or(l.MaxBuckets, d.MaxBuckets),
		MaxFilterBytes: cmp.Or(l.MaxFilterBytes, d.MaxFilterBytes), QueryTimeout: cmp.Or(l.QueryTimeout, d.QueryTimeout),
		MaxConcurrent: cmp.Or(l.MaxConcurrent, d.MaxConcurrent), MaxQueued: cmp.Or(l.MaxQueued, d.MaxQueued),
		QueueTimeout: cmp.Or(l.QueueTimeout, d.QueueTimeout)}
}

// WriteTimeout is the HTTP write timeout that lets a request wait for its
// turn and run to its query timeout.
func (l Limits) WriteTimeout() time.Duration {
	l = l.withDefaults()
	return l.QueueTimeout + l.QueryTimeout + 10*time.Second
}

// New returns the handler of opsmetrics' HTTP server.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", err)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	if o.Conn != nil {
		l := o.Limits.withDefaults()
		k := &kpiHandler{o: o, limits: l, turns: newTurns(l)}
		mux.Handle("/api/", authorize(o.Token, &throttle{log: o.Log, every: 10 * time.Second}, k.mux()))
	}
	return mux
}

// authorize requires the bearer token when one is configured. A failure is
// logged with the client's address and what was wrong, never the token, at
// most once per throttle period.
func authorize(token string, log *throttle, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			reason := "wrong bearer token"
			if !ok {
				reason = "no bearer token"
			}
			log.warn(time.Now(), "API authentication failed", "reason", reason, "remote", r.RemoteAddr, "path", excerpt(r.URL.Path, 256))
			w.Header().Set("WWW-Authenticate", `Bearer realm="opsmetrics"`)
			fail(w, http.StatusUnauthorized, "%s: send Authorization: Bearer <token>", reason)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// throttle logs at most one line per period; the next line says how many
// were left out.
type throttle struct {
	log        *slog.Logger
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (t *throttle) warn(now time.Time, msg string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.suppressed++
		return
	}
	if t.suppressed > 0 {
		args = append(args, "suppressed_since_last", t.suppressed)
	}
	t.last, t.suppressed = now, 0
	t.log.Warn(msg, args...)
}

type kpiHandler struct {
	o      Options
	limits Limits
	turns  *turns
}

func (k *kpiHandler) mux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/kpis", k.serve)
	return mux
}

func (k *kpiHandler) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		fail(w, http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method)
		return
	}
	fields := map[string]*string{}
	p := metrics.Params{Defaults: k.o.Defaults, Limits: metrics.Limits{MaxRange: k.limits.MaxRange, MaxBuckets: k.limits.MaxBuckets,
		MaxFilterBytes: k.limits.MaxFilterBytes, RangeSetting: "api.max_range", BucketsSetting: "api.max_buckets",
		FilterSetting: "api.max_filter_bytes"}}
	for name, dst := range map[string]*string{"from": &p.From, "to": &p.To, "by": &p.By, "service": &p.Services,
		"team": &p.Teams, "environment": &p.Environments, "production": &p.Production, "bucket": &p.Bucket,
		"tz": &p.TZ, "compare": &p.Compare, "dora_report": &p.DORAReport, "max_gap": &p.MaxGap, "lead_time_from": &p.LeadTimeFrom,
		"lead_time_lookback": &p.LeadTimeLookback} {
		fields[name] = dst
	}
	for name, values := range r.URL.Query() {
		dst, ok := fields[name]
		if !ok {
			fail(w, http.StatusBadRequest, "unknown parameter %q", excerpt(name, 64))
			return
		}
		if len(values) != 1 {
			fail(w, http.StatusBadRequest, "parameter %q given %d times; give it once, comma-separated", name, len(values))
			return
		}
		*dst = values[0]
	}
	req, err := p.Parse(time.Now())
	if err != nil {
		fail(w, http.StatusBadRequest, "%s", excerpt(err.Error(), 512))
		return
	}
	if k.o.Available != nil {
		if err := k.o.Available(); err != nil {
			unavailable(w, "%v", err)
			return
		}
	}
	heavy := req.QuerySets()*(1+len(req.Query.By)) > 2
	leave, err := k.turns.enter(r.Context(), heavy)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		unavailable(w, "%v", err)
		return
	}
	defer leave()

	ctx, cancel := context.WithTimeout(r.Context(), k.limits.QueryTimeout)
	defer cancel()
	priority := 1 // ClickHouse runs lower numbers first, and pauses higher ones while they run
	if heavy {
		priority = 2
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(math.Ceil(k.limits.QueryTimeout.Seconds())),
		"priority":           priority,
		// Filters are inlined in the SQL, several times per query.
		"max_query_size": 1<<20 + 32*k.limits.MaxFilterBytes,
	}))
	rep, err := metrics.Run(ctx, k.o.Conn, req.Query, req.Bucket, req.Location, req.Compare)
	if err != nil {
		kind := classify(err)
		if dl, _ := ctx.Deadline(); r.Context().Err() == nil && !time.Now().Before(dl.Add(-time.Second)) {
			kind = failTimeout // whatever the driver made of the deadline: the connection's read deadline is the query's
		}
		switch kind {
		case failTimeout:
			unavailable(w, "the KPI query took longer than %v (api.query_timeout); narrow the range, or ask for fewer buckets or slices",
				k.limits.QueryTimeout)
		case failUnavailable:
			k.o.Log.Warn("KPI query failed: ClickHouse unavailable", "err", excerpt(err.Error(), 1024))
			unavailable(w, "ClickHouse is unavailable; retry later")
		default:
			k.o.Log.Error("KPI query failed", "err", excerpt(err.Error(), 1024), "query", excerpt(r.URL.RawQuery, 512))
			fail(w, http.StatusInternalServerError, "the KPI query failed; see the server log")
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	rep.WriteJSON(w)
}

// turns bounds the KPI requests running at once, and the queue of those
// waiting. A heavy request (many query sets) may take all turns but one,
// so that simple requests still run while heavy ones pile up.
type turns struct {
	all, heavy chan struct{}
	waiting    atomic.Int64
	limits     Limits
}

func newTurns(l Limits) *turns {
	return &turns{all: make(chan struct{}, l.MaxConcurrent), heavy: make(chan struct{}, max(l.MaxConcurrent-1, 1)), limits: l}
}

// enter waits for a turn and returns the function that gives it back.
func (t *turns) enter(ctx context.Context, heavy bool) (func(), error) {
	sems := []chan struct{}{t.all}
	if heavy {
		sems = []chan struct{}{t.heavy, t.all}
	}
	var held []chan struct{}
	leave := func() {
		for _, s := range held {
			<-s
		}
	}
	free := true
	for _, s := range sems {
		select {
		case s <- struct{}{}:
			held = append(held, s)
		default:
			free = false
		}
		if !free {
			break
		}
	}
	if free {
		return leave, nil
	}
	if t.waiting.Add(1) > int64(t.limits.MaxQueued) {
		t.waiting.Add(-1)
		leave()
		return nil, fmt.Errorf("too many KPI requests: %d running and %d waiting (api.max_concurrent_queries, api.max_queued_queries); retry later",
			t.limits.MaxConcurrent, t.limits.MaxQueued)
	}
	defer t.waiting.Add(-1)
	timer := time.NewTimer(t.limits.QueueTimeout)
	defer timer.Stop()
	for _, s := range sems[len(held):] {
		select {
		case s <- struct{}{}:
			held = append(held, s)
		case <-timer.C:
			leave()
			return nil, fmt.Errorf("no turn for this KPI request within %v (api.queue_timeout): %d requests run at once (api.max_concurrent_queries); retry later",
				t.limits.QueueTimeout, t.limits.MaxConcurrent)
		case <-ctx.Done():
			leave()
			return nil, ctx.Err()
		}
	}
	return leave, nil
}

type failure int

const (
	failOther failure = iota
	failTimeout
	failUnavailable
)

// classify tells a query timeout and an unavailable ClickHouse from other
// failures.
func classify(err error) failure {
	var ex *clickhouse.Exception
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return failTimeout
	case errors.As(err, &ex) && ex.Code == 159: // TIMEOUT_EXCEEDED
		return failTimeout
	case errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 81): // UNKNOWN_TABLE, UNKNOWN_DATABASE: not migrated yet
		return failUnavailable
	case errors.As(err, &ex) && ex.Code == 202: // TOO_MANY_SIMULTANEOUS_QUERIES
		return failUnavailable
	case errors.As(err, &ex):
		return failOther
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "read" && oe.Timeout() {
		return failTimeout // a query that outlived the connection's read deadline
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, clickhouse.ErrAcquireConnTimeout) {
		return failUnavailable
	}
	return failOther
}

func unavailable(w http.ResponseWriter, format string, args ...any) {
	fail(w, http.StatusServiceUnavailable, format, args...)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

// excerpt cuts s to n bytes, saying how much was left out.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes more)", s[:cut], len(s)-cut)
}
