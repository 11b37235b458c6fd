package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics are the ingester's Prometheus metrics. Label values are bounded:
// topics, kinds and the fixed set of rejection reasons.
type metrics struct {
	consumed     *prometheus.CounterVec
	stored       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	errors       *prometheus.CounterVec
	batchLatency prometheus.Histogram
	batchSize    prometheus.Histogram
	lag          *prometheus.GaugeVec
	committed    *prometheus.GaugeVec
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
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opsmetrics_ingest_errors_total",
			Help: "Failed operations that were retried or ended ingestion, by operation.",
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
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "opsmetrics_ingest_consumer_lag_messages",
			Help: "Messages in the partition after the last committed one, as of the last batch.",
		}, []string{"topic", "partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "opsmetrics_ingest_committed_offset",
			Help: "The last offset committed, per partition.",
		}, []string{"topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.stored, m.deadLettered, m.errors, m.batchLatency, m.batchSize, m.lag, m.committed)
	}
	return m
}
