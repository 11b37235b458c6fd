package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics are the ingester's Prometheus metrics. Label values are bounded:
// topics, kinds, the fixed set of rejection reasons and of CDEvents types.
type metrics struct {
	consumed     *prometheus.CounterVec
	stored       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	unknownEnv   prometheus.Counter
	errors       *prometheus.CounterVec
	batchLatency prometheus.Histogram
	batchSize    prometheus.Histogram
	batchBytes   prometheus.Histogram
	lag          *prometheus.GaugeVec
	committed    *prometheus.GaugeVec

	teamFromCatalog *prometheus.CounterVec
	teamMismatch    *prometheus.CounterVec

	deadLetterPublishFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_messages_consumed_total",
			Help: "Kafka messages fetched by the ingester.",
		}, []string{"topic"}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_events_stored_total",
			Help: "Events written to ClickHouse, by kind. Replayed messages count again.",
		}, []string{"kind"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_dead_letters_total",
			Help: "Messages rejected and sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_skipped_total",
			Help: "Valid CDEvents of types opsmetrics does not store, committed without a dead letter, by subject.predicate (other: an unknown dev.cdevents type; custom: dev.cdeventsx).",
		}, []string{"type"}),
		unknownEnv: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_deployments_unknown_environment_total",
			Help: "Deployments decoded with the placeholder environment unknown, which a deployment that names no environment gets.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_errors_total",
			Help: "Failed operations, all retried, by operation.",
		}, []string{"op"}),
		batchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "opsmetrics_ingest_batch_duration_seconds",
			Help:    "Time from the first message of a batch being fetched to its offsets being committed.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "opsmetrics_ingest_batch_messages",
			Help:    "Messages per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "opsmetrics_ingest_batch_bytes",
			Help:    "Bytes of the messages (keys, values, headers) per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "opsmetrics_ingest_consumer_lag_messages",
			Help: "Messages in the partition after the group's last committed one, read every lag interval and after each batch.",
		}, []string{"topic", "partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "opsmetrics_ingest_committed_offset",
			Help: "The last offset committed, per partition.",
		}, []string{"topic", "partition"}),
		teamFromCatalog: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_team_from_catalog_total",
			Help: "Events stored that sent no team and took their service's owner from the service catalog, by kind.",
		}, []string{"kind"}),
		teamMismatch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_team_mismatch_total",
			Help: "Events stored with a team other than their service's owner in the service catalog (they keep the team they sent), by service and catalog owner.",
		}, []string{"service", "catalog_owner"}),
		deadLetterPublishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_dead_letter_publish_failures_total",
			Help: "Dead letters the dead-letter topic refused even without payload; they are in dead_letters only.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.stored, m.deadLettered, m.skipped, m.unknownEnv, m.errors, m.batchLatency, m.batchSize, m.batchBytes,
			m.lag, m.committed, m.deadLetterPublishFailures, m.teamFromCatalog, m.teamMismatch)
	}
	return m
}
