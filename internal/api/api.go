// Package api serves opsmetrics' HTTP API. GET /api/v1/kpis returns the same
// JSON document as `opsmetrics kpi --format json`; its parameters are the
// command's flags, validated the same way, and a bad one gets a 400 that
// names it.
package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// Handler returns the API's handler.
// defaults holds what an absent parameter means (metrics.Params.Defaults).
func Handler(conn driver.Conn, defaults metrics.Query, log *slog.Logger) http.Handler {
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
