// Package baselines learns what normal looks like for every KPI series:
// one KPI at one step (hour or day) for one slice (the organisation, a
// team, a service in an environment, or an environment). Each series gets
// a model chosen by its kind, documented in docs/baselines.md: seasonal
// Poisson or negative binomial counts (seasonal median and MAD when
// dense), binomial or beta-binomial rates that weigh their denominator,
// and robust log-scale durations. Learn stores the models, their bands per
// seasonal slot and their training range in ClickHouse as one generation
// that readers switch to atomically; Fit, Model.Score and
// Model.ScoreRecent (the interval, window and silence tests) work on
// points alone, for offline scoring. Dense is the streaming model of
// workload metrics at minute steps (CPU, latency, error and request
// rates), with its season found from the data and its scores calibrated
// on the series itself.
package baselines
