// Package api serves opsmetrics' HTTP API, described by the OpenAPI 3
// document it serves at /api/v1/openapi.json (openapi.json). GET
// /api/v1/kpis returns the same JSON document as `opsmetrics kpi --format
// json`; /api/v1/kpis/{kpi}/series one KPI by bucket, /baselines the
// current baselines of its series, /forecast their forecast (as
// `opsmetrics forecast --format json`) and /explain the rows behind it;
// /api/v1/anomalies the anomalies of a range. Parameters are the kpi
// command's flags, validated the same way, and a bad one gets a 400 that
// names it. /healthz and /readyz serve liveness and readiness probes. When a
// token is configured, /api/ requires it as a bearer token.
//
// Every request is bounded (Limits): its range and buckets, its filters,
// its rows, its ClickHouse time, and how many run and wait at once. A
// request over a bound gets a 400 or a 503 that names the setting;
// ClickHouse down gets a 503.
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

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Options configure the HTTP server's handler.
type Options struct {
	// Conn serves the API; nil leaves /api/ out (a replica that only
	// ingests still answers the probes).
	Conn driver.Conn
	// Defaults holds what an absent parameter means (metrics.Params.Defaults).
	Defaults metrics.Query
	// Token, when set, is required on /api/ as "Authorization: Bearer".
	Token string
	// Ready reports whether the process can do its work: Kafka and
	// ClickHouse reachable, the schema current. nil is always ready.
	Ready func(ctx context.Context) error
	// Available, when set and failing, makes the API answer 503 with
	// its error without querying: the schema is not migrated yet.
	Available func() error
	// Limits bound each request; zero fields take DefaultLimits'.
	Limits Limits
	// Catalog, when set, returns the current service catalog, which the
	// system and tier parameters and the change calendar's tier scopes
	// read at each request (a catalog.Watcher's Catalog).
	Catalog func() *catalog.Catalog
	// Tiers name the catalog's tiers as the alerts' tier labels do
	// (alerting.tiers); no levels: anomaly.DefaultTiers.
	Tiers anomaly.Tiers
	Log   *slog.Logger
}

// Limits bound the work of the API (configuration section api).
type Limits struct {
	MaxRange       time.Duration `yaml:"max_range"`              // longest range
	MaxBuckets     int           `yaml:"max_buckets"`            // most buckets per request
	MaxFilterBytes int           `yaml:"max_filter_bytes"`       // service, team, environment and production filters together
	QueryTimeout   time.Duration `yaml:"query_timeout"`          // ClickHouse time of one request
	MaxConcurrent  int           `yaml:"max_concurrent_queries"` // requests running at once
	MaxQueued      int           `yaml:"max_queued_queries"`     // requests waiting for a turn
	QueueTimeout   time.Duration `yaml:"queue_timeout"`          // longest wait for a turn
	MaxRows        int           `yaml:"max_rows"`               // most rows of an explanation or anomaly list
}

// DefaultLimits are the limits of the default configuration.
var DefaultLimits = Limits{MaxRange: 3 * 366 * 24 * time.Hour, MaxBuckets: 100, MaxFilterBytes: 64 << 10,
	QueryTimeout: 30 * time.Second, MaxConcurrent: 4, MaxQueued: 64, QueueTimeout: 10 * time.Second, MaxRows: 10000}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	return Limits{MaxRange: cmp.Or(l.MaxRange, d.MaxRange), MaxBuckets: cmp.Or(l.MaxBuckets, d.MaxBuckets),
		MaxFilterBytes: cmp.Or(l.MaxFilterBytes, d.MaxFilterBytes), QueryTimeout: cmp.Or(l.QueryTimeout, d.QueryTimeout),
		MaxConcurrent: cmp.Or(l.MaxConcurrent, d.MaxConcurrent), MaxQueued: cmp.Or(l.MaxQueued, d.MaxQueued),
		QueueTimeout: cmp.Or(l.QueueTimeout, d.QueueTimeout), MaxRows: cmp.Or(l.MaxRows, d.MaxRows)}
}

// Connections is how many ClickHouse connections the API needs: each
// running request may hold metrics.RollupStatements at once (a KPI read
// of the rollup), and one is left for the rest.
func (l Limits) Connections() int {
	return metrics.RollupStatements*l.withDefaults().MaxConcurrent + 1
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
		h := &handler{o: o, limits: l, turns: newTurns(l)}
		mux.Handle("/api/", authorize(o.Token, &throttle{log: o.Log, every: 10 * time.Second}, h.mux()))
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

// handler serves /api/: every resource runs its ClickHouse work through do,
// which bounds it.
type handler struct {
	o      Options
	limits Limits
	turns  *turns
}

// route is one resource of the API; its path is the same in the OpenAPI
// document (openapi.json), which TestOpenAPI checks.
type route struct {
	path  string
	serve http.HandlerFunc
}

func (h *handler) routes() []route {
	return []route{
		{"/api/v1/kpis", h.kpis},
		{"/api/v1/kpis/{kpi}/series", h.series},
		{"/api/v1/kpis/{kpi}/baselines", h.baselines},
		{"/api/v1/kpis/{kpi}/forecast", h.forecast},
		{"/api/v1/kpis/{kpi}/explain", h.explain},
		{"/api/v1/anomalies", h.anomalies},
		{"/api/v1/openapi.json", serveOpenAPI},
	}
}

func (h *handler) mux() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range h.routes() {
		mux.Handle(rt.path, onlyGet(rt.serve))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "no resource %s; the API is described at /api/v1/openapi.json", excerpt(r.URL.Path, 256))
	})
	return mux
}

// onlyGet answers every method but GET (and HEAD) with a 405.
func onlyGet(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", http.MethodGet)
			fail(w, http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method)
			return
		}
		next(w, r)
	}
}

// bind sets each URL query parameter's field; an unknown or repeated
// parameter is an error that names it.
func bind(r *http.Request, fields map[string]*string) error {
	for name, values := range r.URL.Query() {
		dst, ok := fields[name]
		if !ok {
			return fmt.Errorf("unknown parameter %q", excerpt(name, 64))
		}
		if len(values) != 1 {
			return fmt.Errorf("parameter %q given %d times; give it once, comma-separated", excerpt(name, 64), len(values))
		}
		*dst = values[0]
	}
	return nil
}

// parse binds the request's parameters onto fields of p and parses p.
func parse(r *http.Request, p *metrics.Params, fields map[string]*string) (*metrics.Request, error) {
	if err := bind(r, fields); err != nil {
		return nil, err
	}
	return p.Parse(time.Now())
}

// badRequest answers a request whose parameters do not hold with a 400
// that says why.
func badRequest(w http.ResponseWriter, err error) {
	fail(w, http.StatusBadRequest, "%s", excerpt(err.Error(), 512))
}

// params is a KPI request bounded by the API's limits.
func (h *handler) params() metrics.Params {
	d := h.o.Defaults
	if h.o.Catalog != nil {
		d = d.WithCatalog(h.o.Catalog())
	}
	return metrics.Params{Defaults: d, Limits: metrics.Limits{MaxRange: h.limits.MaxRange, MaxBuckets: h.limits.MaxBuckets,
		MaxFilterBytes: h.limits.MaxFilterBytes, RangeSetting: "api.max_range", BucketsSetting: "api.max_buckets",
		FilterSetting: "api.max_filter_bytes"}}
}

// fields are the parameters of p that each KPI resource takes, named as
// the kpi command's flags (with _ for -); add the resource's own to them.
func fields(p *metrics.Params, names ...string) map[string]*string {
	all := map[string]*string{"from": &p.From, "to": &p.To, "by": &p.By, "service": &p.Services,
		"team": &p.Teams, "environment": &p.Environments, "system": &p.Systems, "tier": &p.Tiers, "production": &p.Production, "bucket": &p.Bucket,
		"tz": &p.TZ, "compare": &p.Compare, "dora_report": &p.DORAReport, "max_gap": &p.MaxGap, "lead_time_from": &p.LeadTimeFrom,
		"lead_time_lookback": &p.LeadTimeLookback}
	out := map[string]*string{}
	for _, n := range names {
		out[n] = all[n]
	}
	return out
}

// kpiFields are the parameters of /api/v1/kpis.
var kpiFields = []string{"from", "to", "by", "service", "team", "environment", "system", "tier", "production", "bucket", "tz", "compare",
	"dora_report", "max_gap", "lead_time_from", "lead_time_lookback"}

func (h *handler) kpis(w http.ResponseWriter, r *http.Request) {
	p := h.params()
	req, err := parse(r, &p, fields(&p, kpiFields...))
	if err != nil {
		badRequest(w, err)
		return
	}
	var rep *metrics.Report
	if !h.do(w, r, "KPI query", heavy(req), func(ctx context.Context) (err error) {
		rep, err = metrics.Run(ctx, h.o.Conn, req.Query, req.Bucket, req.Location, req.Compare)
		return err
	}) {
		return
	}
	writeJSON(w, rep)
}

// heavy reports a KPI request of more than two query sets, counting
// buckets, the comparison and each by dimension.
func heavy(req *metrics.Request) bool { return req.QuerySets()*(1+len(req.Query.By)) > 2 }

// do runs the ClickHouse work of a request, what, within the API's limits:
// once the schema is available, with a turn, within the query timeout and
// at the ClickHouse priority of its weight. When it cannot run or fails,
// do answers the request and returns false.
func (h *handler) do(w http.ResponseWriter, r *http.Request, what string, heavy bool, work func(ctx context.Context) error) bool {
	if h.o.Available != nil {
		if err := h.o.Available(); err != nil {
			unavailable(w, "%v", err)
			return false
		}
	}
	leave, err := h.turns.enter(r.Context(), heavy)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		unavailable(w, "%v", err)
		return false
	}
	defer leave()

	ctx, cancel := context.WithTimeout(r.Context(), h.limits.QueryTimeout)
	defer cancel()
	priority := 1 // ClickHouse runs lower numbers first, and pauses higher ones while they run
	if heavy {
		priority = 2
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(math.Ceil(h.limits.QueryTimeout.Seconds())),
		"priority":           priority,
		// Filters are inlined in the SQL, several times per query.
		"max_query_size": 1<<20 + 32*h.limits.MaxFilterBytes,
	}))
	err = work(ctx)
	if err == nil {
		return true
	}
	kind := classify(err)
	if dl, _ := ctx.Deadline(); r.Context().Err() == nil && !time.Now().Before(dl.Add(-time.Second)) {
		kind = failTimeout // whatever the driver made of the deadline: the connection's read deadline is the query's
	}
	switch kind {
	case failTimeout:
		unavailable(w, "the %s took longer than %v (api.query_timeout); narrow the range, or ask for fewer buckets or slices",
			what, h.limits.QueryTimeout)
	case failUnavailable:
		h.o.Log.Warn(what+" failed: ClickHouse unavailable", "err", excerpt(err.Error(), 1024))
		unavailable(w, "ClickHouse is unavailable; retry later")
	default:
		h.o.Log.Error(what+" failed", "err", excerpt(err.Error(), 1024), "path", excerpt(r.URL.Path, 256), "query", excerpt(r.URL.RawQuery, 512))
		fail(w, http.StatusInternalServerError, "the %s failed; see the server log", what)
	}
	return false
}

// turns bounds the API requests running at once, and the queue of those
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
		return nil, fmt.Errorf("too many API requests: %d running and %d waiting (api.max_concurrent_queries, api.max_queued_queries); retry later",
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
			return nil, fmt.Errorf("no turn for this API request within %v (api.queue_timeout): %d requests run at once (api.max_concurrent_queries); retry later",
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
