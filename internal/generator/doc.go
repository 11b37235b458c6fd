// Package generator is a deterministic, seeded generator of realistic
// operations event streams, used by the demo, tests and benchmarks.
//
// Generate produces deployments, the changes they ship, incidents and their
// lifecycle messages, and patch waves for a synthetic organisation of
// services and teams described by a Config. The same Config always produces
// the byte-identical sequence of events, in non-decreasing Event.Time order,
// so a generated stream can stand in for a real Kafka topic: every event is
// valid by the rules the decoder enforces, and no timestamp is at or after
// Config.End.
//
// The stream is shaped like a real organisation's: services deploy at rates
// from several times a day to weekly, mostly during their team's working
// hours on weekdays, to the pre-production environments before production;
// failed production deployments sometimes cause incidents, some of which
// name their cause and some of which are fixed by unplanned (rework)
// deployments; security advisories are released every few days and applied
// to hosts, images and services with a latency that depends on severity.
// Every deployment names its actor (an engineer of its team, or the
// release bot ReleaseBot a quarter of the time) and its pipeline
// (deploy-<team>, release-train for the bot); the
// native format, our CloudEvents types and CDEvents customData carry them.
// With Config.Anomalies set, the last seven days also hold the anomalies
// listed in Stats.Anomalies, for detectors to find; the failure burst is
// the new hire's (NewHire), who triggers most of the service's releases
// then, and whose deployments mostly fail.
//
// Event ids are "gen-<seed>-<n>", n counting the emitted events from zero.
// Entity ids look like real ones and carry the seed, so that streams of
// different seeds never share an entity: deployments "deploy-<seed>-<n>",
// incidents "INC-<seed>-<n>", advisories "ADV-<seed>-<year>-<nnnn>", and
// changes 40-digit commit SHAs drawn from the seed's random streams.
package generator
