// Package e2e holds the whole-pipeline tests: the reliability suite (make
// reliability), which drives real Kafka producers, the opsmetrics binary,
// a private ClickHouse and Alertmanager through crashes, outages, poison
// input and overload, and checks that nothing is lost, doubled or stuck
// from ingestion to the API and alerts. It has no code of its own: only
// tests, which may import every package of the module.
package e2e
