package anomaly

// The Alertmanager client here is hand-written on net/http and encoding/json
// rather than taken from github.com/prometheus/alertmanager/api/v2/client:
// that module pulls in Alertmanager itself (go-openapi, the cluster and
// storage code and their dependencies) for the two endpoints we use, POST
// /api/v2/alerts here and GET /api/v2/alerts in the test harness, whose JSON
// is small and stable.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Alert is an alert as Alertmanager's POST /api/v2/alerts takes it. Its label
// set identifies it and must include alertname; annotations carry the text
// (summary, description, runbook_url, dashboard_url) that receivers show.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// NotifierConfig configures a Notifier. Zero durations take the defaults.
type NotifierConfig struct {
	URL              string        // Alertmanager base URL, e.g. http://127.0.0.1:9093
	ResendInterval   time.Duration // how often active alerts are re-sent; default 1m
	Timeout          time.Duration // per request; default 10s
	MaxBackoff       time.Duration // cap of the retry backoff; default 1m
	ResolveRetention time.Duration // how long a resolved alert keeps being re-sent as resolved; default 15m
}

// Validate reports the first field that cannot be used. Zero durations are
// valid and mean the default.
func (c NotifierConfig) Validate() error {
	if _, err := alertsEndpoint(c.URL); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ResendInterval", c.ResendInterval},
		{"Timeout", c.Timeout},
		{"MaxBackoff", c.MaxBackoff},
		{"ResolveRetention", c.ResolveRetention},
	} {
		if d.v < 0 {
			return fmt.Errorf("alertmanager notifier: %s: must not be negative, got %v", d.name, d.v)
		}
	}
	return nil
}

func (c NotifierConfig) withDefaults() NotifierConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ResendInterval, time.Minute)
	def(&c.Timeout, 10*time.Second)
	def(&c.MaxBackoff, time.Minute)
	def(&c.ResolveRetention, 15*time.Minute)
	return c
}

// alertsEndpoint returns the POST /api/v2/alerts URL under base. Errors show
// the URL without its password.
func alertsEndpoint(base string) (*url.URL, error) {
	if base == "" {
		return nil, errors.New("alertmanager notifier: URL: must be set, e.g. http://127.0.0.1:9093")
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, errors.New("alertmanager notifier: URL: not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager notifier: URL: must be an http:// or https:// URL with a host, got %q", u.Redacted())
	}
	return u.JoinPath("api", "v2", "alerts"), nil
}

// Notifier keeps the alerts that anomaly detection raises and delivers them to
// Alertmanager. It is built by NewNotifier and safe for concurrent use.
//
// Fire and Resolve only change what the Notifier holds; Run delivers the
// changes promptly and re-sends every active alert each ResendInterval, as
// Alertmanager expects. Nothing is dropped when Alertmanager is unreachable or
// rejects a batch: the alerts stay queued in memory and are retried with
// backoff. They are lost when the process exits, so a caller that does not
// keep Run going, such as a one-shot command, calls Flush before it exits.
type Notifier struct {
	cfg      NotifierConfig
	endpoint string // POST /api/v2/alerts
	redacted string // endpoint without its password, for logs
	client   *http.Client
	log      *slog.Logger
	m        *notifierMetrics
	wake     chan struct{} // buffered 1: a change is waiting for Run

	sendMu sync.Mutex // one POST at a time, so Alertmanager sees changes in order

	mu     sync.Mutex
	alerts map[string]*heldAlert // by labelsKey
}

// heldAlert is one alert held by the Notifier.
type heldAlert struct {
	alert    Alert     // StartsAt set, EndsAt zero
	resolved time.Time // when Resolve was called; zero while firing
	version  uint64    // bumped by every change
	sent     uint64    // the version Alertmanager last accepted
}

func (e *heldAlert) pending() bool { return e.sent != e.version }

// NewNotifier returns a Notifier for cfg. Its metrics are registered on reg
// unless reg is nil; log may be nil to discard logs.
func NewNotifier(cfg NotifierConfig, reg prometheus.Registerer, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	endpoint, _ := alertsEndpoint(cfg.URL)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newNotifierMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Notifier{
		cfg:      cfg,
		endpoint: endpoint.String(),
		redacted: endpoint.Redacted(),
		client:   &http.Client{},
		log:      log.With("url", endpoint.Redacted()),
		m:        m,
		wake:     make(chan struct{}, 1),
		alerts:   make(map[string]*heldAlert),
	}, nil
}

// Fire makes a active. An alert already firing with the same labels keeps its
// first StartsAt and takes a's annotations and generator URL; otherwise
// StartsAt is a.StartsAt, or now when that is zero. a.EndsAt is ignored: the
// alert is active until Resolve.
func (n *Notifier) Fire(a Alert) {
	key := labelsKey(a.Labels)
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.alerts[key]
	switch {
	case !ok || !e.resolved.IsZero(): // new, or firing again after being resolved
		if !ok {
			e = &heldAlert{}
			n.alerts[key] = e
		}
		start := a.StartsAt
		if start.IsZero() {
			start = time.Now()
		}
		e.alert = Alert{Labels: maps.Clone(a.Labels), StartsAt: start}
		e.resolved = time.Time{}
	case maps.Equal(e.alert.Annotations, a.Annotations) && e.alert.GeneratorURL == a.GeneratorURL:
		return // nothing changed; the periodic re-send keeps it alive
	}
	e.alert.Annotations = maps.Clone(a.Annotations)
	e.alert.GeneratorURL = a.GeneratorURL
	e.version++
	n.changed()
}

// Resolve marks the alert with these labels resolved. It is sent with EndsAt
// set to now, re-sent as resolved for ResolveRetention, and then forgotten.
// Resolving an alert that is not firing does nothing.
func (n *Notifier) Resolve(labels map[string]string) {
	key := labelsKey(labels)
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.alerts[key]
	if !ok || !e.resolved.IsZero() {
		return
	}
	e.resolved = time.Now()
	e.version++
	n.changed()
}

// ResolveFromHistory resolves an alert this Notifier may never have fired:
// a one-shot run, or a restarted server, that knows from stored history
// that the alert was firing. Unlike Resolve, an unknown alert is sent once
// as resolved, from a.StartsAt (or now).
func (n *Notifier) ResolveFromHistory(a Alert) {
	key := labelsKey(a.Labels)
	n.mu.Lock()
	if _, ok := n.alerts[key]; ok {
		n.mu.Unlock()
		n.Resolve(a.Labels)
		return
	}
	defer n.mu.Unlock()
	now := time.Now()
	start := a.StartsAt
	if start.IsZero() || start.After(now) {
		start = now
	}
	n.alerts[key] = &heldAlert{alert: Alert{Labels: maps.Clone(a.Labels), Annotations: maps.Clone(a.Annotations), StartsAt: start},
		resolved: now, version: 1}
	n.changed()
}

// changed updates the gauges and wakes Run; n.mu must be held.
func (n *Notifier) changed() {
	n.updateGauges()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// updateGauges sets the queued and active gauges; n.mu must be held.
func (n *Notifier) updateGauges() {
	var queued, active int
	for _, e := range n.alerts {
		if e.pending() {
			queued++
		}
		if e.resolved.IsZero() {
			active++
		}
	}
	n.m.queued.Set(float64(queued))
	n.m.active.Set(float64(active))
}

// Active returns copies of the firing alerts, ordered by label set.
func (n *Notifier) Active() []Alert {
	n.mu.Lock()
	defer n.mu.Unlock()
	keys := make([]string, 0, len(n.alerts))
	for k, e := range n.alerts {
		if e.resolved.IsZero() {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]Alert, len(keys))
	for i, k := range keys {
		a := n.alerts[k].alert
		a.Labels = maps.Clone(a.Labels)
		a.Annotations = maps.Clone(a.Annotations)
		out[i] = a
	}
	return out
}

// Flush sends every alert changed since the last successful send, now, and
// returns an error if Alertmanager could not be reached or did not accept
// them. The alerts stay queued after an error.
func (n *Notifier) Flush(ctx context.Context) error {
	_, err := n.send(ctx, false)
	return err
}

// Run delivers changes as they happen, re-sends the active and recently
// resolved alerts every ResendInterval, and retries failures with exponential
// backoff, until ctx is done. It then makes one last attempt, bounded by
// Timeout, to deliver what is still queued. Call it once.
func (n *Notifier) Run(ctx context.Context) error {
	resend := time.NewTicker(n.cfg.ResendInterval)
	defer resend.Stop()
	var (
		retry    <-chan time.Time // set while backing off
		failures int              // consecutive failed attempts
		full     bool             // a re-send of everything is due
	)
	for {
		select {
		case <-ctx.Done():
			n.drain(ctx)
			return nil
		case <-n.wake:
			if retry != nil {
				continue // the retry will carry it
			}
		case <-resend.C:
			full = true
			if retry != nil {
				continue
			}
		case <-retry:
			retry = nil
		}
		count, err := n.send(ctx, full)
		if err == nil {
			if failures > 0 {
				n.log.Info("alertmanager accepts alerts again", "failed_attempts", failures, "alerts", count)
			}
			full, failures = false, 0
			continue
		}
		if ctx.Err() != nil {
			continue // shutting down: drain on the next turn
		}
		wait := retryBackoff(failures, n.cfg.MaxBackoff)
		failures++
		retry = time.After(wait)
		var se *statusError
		if errors.As(err, &se) && se.rejected() {
			// Alertmanager refuses the batch itself, e.g. an invalid label
			// name: our bug, so say it loudly. It stores the valid alerts of
			// a batch it rejects, so the others still reach it.
			n.log.Error("alertmanager rejected alerts; keeping them queued and retrying", "err", err, "alerts", count, "retry_in", wait)
		} else {
			n.log.Warn("send alerts to alertmanager failed; keeping them queued and retrying", "err", err, "alerts", count, "retry_in", wait)
		}
	}
}

// drain makes a last attempt to deliver queued changes, resolutions above
// all, when Run stops.
func (n *Notifier) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
	defer cancel()
	if count, err := n.send(ctx, false); err != nil {
		n.log.Warn("alerts not delivered to alertmanager at shutdown", "err", err, "alerts", count)
	}
}

// retryBackoff returns the wait before retry number failures+1: 1s doubling
// up to ceiling, less a random part of up to half, so that many senders
// spread out.
func retryBackoff(failures int, ceiling time.Duration) time.Duration {
	d := ceiling
	if failures < 30 {
		d = min(time.Second<<failures, ceiling)
	}
	return d/2 + rand.N(d/2+1)
}

// send posts the alerts changed since their last delivery, or all held alerts
// when full, in one request. It returns how many alerts it tried to send.
func (n *Notifier) send(ctx context.Context, full bool) (int, error) {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()

	type item struct {
		e        *heldAlert
		version  uint64
		resolved bool
	}
	now := time.Now()
	var (
		batch []item
		wire  []Alert
	)
	n.mu.Lock()
	for k, e := range n.alerts {
		if !e.resolved.IsZero() && !e.pending() && now.Sub(e.resolved) > n.cfg.ResolveRetention {
			delete(n.alerts, k)
			continue
		}
		if !full && !e.pending() {
			continue
		}
		a := e.alert // the maps are replaced, never changed in place, so sharing them is safe
		if e.resolved.IsZero() {
			// Like Prometheus: should we stop re-sending, Alertmanager
			// resolves the alert by itself after a few missed re-sends.
			a.EndsAt = now.Add(4 * n.cfg.ResendInterval)
		} else {
			a.EndsAt = e.resolved
		}
		batch = append(batch, item{e, e.version, !e.resolved.IsZero()})
		wire = append(wire, a)
	}
	n.updateGauges()
	n.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}

	if err := n.post(ctx, wire); err != nil {
		n.m.failures.Inc()
		return len(batch), fmt.Errorf("send %d alerts to alertmanager: %w", len(batch), err)
	}

	var firing, resolved int
	n.mu.Lock()
	for _, it := range batch {
		it.e.sent = max(it.e.sent, it.version)
		if it.resolved {
			resolved++
		} else {
			firing++
		}
	}
	n.updateGauges()
	n.mu.Unlock()
	n.m.sent.WithLabelValues("firing").Add(float64(firing))
	n.m.sent.WithLabelValues("resolved").Add(float64(resolved))
	n.m.lastSuccess.SetToCurrentTime()
	return len(batch), nil
}

func (n *Notifier) post(ctx context.Context, alerts []Alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "opsmetrics")
	resp, err := n.client.Do(req) // its errors name the URL without password
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return &statusError{url: n.redacted, code: resp.StatusCode, status: resp.Status, body: strings.TrimSpace(string(msg))}
}

// statusError is a non-2xx answer from Alertmanager.
type statusError struct {
	url    string // without password
	code   int
	status string
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("POST %s answered %s: %s", e.url, e.status, e.body)
}

// rejected reports whether Alertmanager refused the request itself rather
// than being unable to take it now.
func (e *statusError) rejected() bool {
	return e.code >= 400 && e.code < 500 && e.code != http.StatusTooManyRequests
}

// labelsKey identifies an alert by its label set.
func labelsKey(labels map[string]string) string {
	names := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0xff)
		b.WriteString(labels[k])
		b.WriteByte(0xff)
	}
	return b.String()
}

// notifierMetrics are the Notifier's Prometheus metrics.
type notifierMetrics struct {
	sent        *prometheus.CounterVec
	failures    prometheus.Counter
	queued      prometheus.Gauge
	active      prometheus.Gauge
	lastSuccess prometheus.Gauge
}

func newNotifierMetrics(reg prometheus.Registerer) (*notifierMetrics, error) {
	m := &notifierMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_alerts_sent_total",
			Help: "Alerts delivered to Alertmanager, by state (firing or resolved). Re-sends count again.",
		}, []string{"state"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opsmetrics_alert_send_failures_total",
			Help: "Requests to Alertmanager that failed or were not accepted; their alerts stay queued.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "opsmetrics_alerts_queued",
			Help: "Alerts changed since Alertmanager last accepted them, waiting to be delivered.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "opsmetrics_alerts_active",
			Help: "Firing alerts held by the notifier.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "opsmetrics_alertmanager_last_success_timestamp_seconds",
			Help: "When Alertmanager last accepted alerts, as Unix seconds.",
		}),
	}
	m.sent.WithLabelValues("firing")
	m.sent.WithLabelValues("resolved")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sent, m.failures, m.queued, m.active, m.lastSuccess} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register alertmanager notifier metrics: %w", err)
			}
		}
	}
	return m, nil
}
