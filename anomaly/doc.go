// Package anomaly judges the latest closed interval of every KPI series
// against its learned baseline (package baselines), records anomalies in
// ClickHouse, evaluates threshold rules on KPI targets, and notifies
// Prometheus Alertmanager: Detect finds what fires, Alerts turns it into
// alerts with human-readable annotations, and Notifier delivers them,
// re-sends them while active and resolves them, queueing through
// Alertmanager outages. ReadSeries and ScoreSeries score any exported
// series, irregular as real exports are, online.
package anomaly
