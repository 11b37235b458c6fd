// Package telemetry sets up what opsmetrics reports about itself: its logs
// (LogConfig, the configuration's log section), the OpenTelemetry tracer
// provider, configured by the standard OTEL_* environment variables, and
// the Prometheus registry and /metrics endpoint (MetricsServer).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing returns a tracer provider. When OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is not
// "true"), spans are exported over OTLP/HTTP, configured by the standard
// OTEL_* variables (headers, TLS, timeout, service name, sampler). Otherwise
// tracing is off and costs nothing. Call the returned function at exit to
// flush spans.
func Tracing(ctx context.Context) (trace.TracerProvider, func(context.Context) error, error) {
	if os.Getenv("OTEL_SDK_DISABLED") == "true" ||
		(os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "") {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	return tp, tp.Shutdown, nil
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MaxProfileDuration bounds the seconds= of the CPU profile and the
// execution trace: a longer one is refused with a 400.
const MaxProfileDuration = 60 * time.Second

// MetricsServer serves a registry at /metrics, and Go profiles at
// /debug/pprof/. Build it with ListenMetrics and run it with Run.
type MetricsServer struct {
	l   net.Listener
	srv *http.Server
	log *slog.Logger
}

// ListenMetrics binds addr, so that a bad address fails at start-up, and
// returns the server of reg on it.
func ListenMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*MetricsServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles, as Prometheus serves them, for diagnosing memory and CPU.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.Handle("/debug/pprof/profile", boundSeconds(http.HandlerFunc(pprof.Profile)))
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.Handle("/debug/pprof/trace", boundSeconds(http.HandlerFunc(pprof.Trace)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: MaxProfileDuration + 30*time.Second, IdleTimeout: 60 * time.Second}
	return &MetricsServer{l: l, srv: srv, log: log}, nil
}

// Addr is the address the server listens on.
func (m *MetricsServer) Addr() string { return m.l.Addr().String() }

// Run serves until ctx is done, then shuts the server down, waiting up to
// 5s for the requests in flight.
func (m *MetricsServer) Run(ctx context.Context) error {
	m.log.Info("serving metrics", "addr", m.Addr())
	served := make(chan error, 1)
	go func() { served <- m.srv.Serve(m.l) }()
	select {
	case err := <-served:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.srv.Shutdown(sctx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// boundSeconds refuses a profile request whose seconds= is not a whole
// number of seconds between 1 and MaxProfileDuration.
func boundSeconds(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("seconds"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || time.Duration(n)*time.Second > MaxProfileDuration {
				http.Error(w, fmt.Sprintf("seconds: want a whole number from 1 to %d, got %.20q", int(MaxProfileDuration.Seconds()), s),
					http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
