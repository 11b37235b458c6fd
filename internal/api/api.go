// Package api serves opsmetrics' HTTP API. GET /api/v1/kpis returns the same
// JSON document as `opsmetrics kpi --format json`; its parameters are the
// command's flags, validated the same way, and a bad one gets a 400 that
// names it. /healthz and /readyz serve liveness and readiness probes. When a
// token is configured, /api/ requires it as a bearer token.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

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
	Log   *slog.Logger
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
		mux.Handle("/api/", authorize(o.Token, o.Log, kpis(o.Conn, o.Defaults, o.Log)))
	}
	return mux
}

// authorize requires the bearer token when one is configured. A failure is
// logged with the client's address and what was wrong, never the token.
func authorize(token string, log *slog.Logger, next http.Handler) http.Handler {
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
			log.Warn("API authentication failed", "reason", reason, "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="opsmetrics"`)
			fail(w, http.StatusUnauthorized, "%s: send Authorization: Bearer <token>", reason)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func kpis(conn driver.Conn, defaults metrics.Query, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/kpis", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			fail(w, http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method)
			return
		}
		fields := map[string]*string{}
		p := metrics.Params{Defaults: defaults}
		for name, dst := range map[string]*string{"from": &p.From, "to": &p.To, "by": &p.By, "service": &p.Services,
			"team": &p.Teams, "environment": &p.Environments, "production": &p.Production, "bucket": &p.Bucket,
			"tz": &p.TZ, "compare": &p.Compare, "dora_report": &p.DORAReport, "max_gap": &p.MaxGap, "lead_time_from": &p.LeadTimeFrom,
			"lead_time_lookback": &p.LeadTimeLookback} {
			fields[name] = dst
		}
		for name, values := range r.URL.Query() {
			dst, ok := fields[name]
			if !ok {
				fail(w, http.StatusBadRequest, "unknown parameter %q", name)
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
			fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		rep, err := metrics.Run(r.Context(), conn, req.Query, req.Bucket, req.Location, req.Compare)
		if err != nil {
			log.Error("KPI query failed", "err", err, "query", r.URL.RawQuery)
			fail(w, http.StatusInternalServerError, "the KPI query failed; see the server log")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		rep.WriteJSON(w)
	})
	return mux
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}
