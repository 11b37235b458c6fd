package store

// A migration is one versioned, idempotent step of the schema. Steps are
// never edited once released: a change is a new step. Every statement must
// run on ClickHouse 18.16 and on current releases, so the schema uses only
// MergeTree-family engines, plain types and functions both have.
type migration struct {
	version     uint32
	description string
	statements  []string
}

// The raw event tables are append-only. Their ReplacingMergeTree sorting key
// ends in event_id, so a replayed or duplicated message is merged away in the
// background; until then the public views below, which group by entity and
// pick values by (event_time, event_id), return the same result whether a
// message was stored once or many times.
var migrations = []migration{
	{1, "raw event tables, dead letters", []string{
		`CREATE TABLE IF NOT EXISTS deployment_events (
			event_id String,
			event_time DateTime('UTC'),
			encoding String,
			deployment_id String,
			service String,
			team String,
			environment String,
			started_at DateTime('UTC'),
			finished_at DateTime('UTC'),
			status String,
			version String,
			artifact String,
			unplanned UInt8,
			fixes_incident String,
			changes Array(String),
			source_topic String,
			source_partition Int32,
			source_offset Int64,
			ingested_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(ingested_at)
		PARTITION BY toYYYYMM(event_time)
		ORDER BY (deployment_id, event_id)`,
		`CREATE TABLE IF NOT EXISTS incident_events (
			event_id String,
			event_time DateTime('UTC'),
			encoding String,
			incident_id String,
			title String,
			service String,
			team String,
			environment String,
			severity String,
			detection_source String,
			impact_started_at DateTime('UTC'),
			detected_at DateTime('UTC'),
			acknowledged_at DateTime('UTC'),
			mitigated_at DateTime('UTC'),
			resolved_at DateTime('UTC'),
			cause_deployment_id String,
			cause_commit String,
			source_topic String,
			source_partition Int32,
			source_offset Int64,
			ingested_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(ingested_at)
		PARTITION BY toYYYYMM(event_time)
		ORDER BY (incident_id, event_id)`,
		`CREATE TABLE IF NOT EXISTS patch_events (
			event_id String,
			event_time DateTime('UTC'),
			encoding String,
			patch_id String,
			target String,
			target_type String,
			severity String,
			service String,
			team String,
			environment String,
			released_at DateTime('UTC'),
			applied_at DateTime('UTC'),
			outcome String,
			source_topic String,
			source_partition Int32,
			source_offset Int64,
			ingested_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(ingested_at)
		PARTITION BY toYYYYMM(event_time)
		ORDER BY (patch_id, target, event_id)`,
		`CREATE TABLE IF NOT EXISTS change_events (
			event_id String,
			event_time DateTime('UTC'),
			encoding String,
			change_id String,
			service String,
			team String,
			repository String,
			author String,
			authored_at DateTime('UTC'),
			merged_at DateTime('UTC'),
			source_topic String,
			source_partition Int32,
			source_offset Int64,
			ingested_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(ingested_at)
		PARTITION BY toYYYYMM(event_time)
		ORDER BY (change_id, event_id)`,
		`CREATE TABLE IF NOT EXISTS dead_letter_events (
			topic String,
			partition Int32,
			offset Int64,
			message_key String,
			payload String,
			header_keys Array(String),
			header_values Array(String),
			reason_code String,
			reason String,
			dead_lettered_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(dead_lettered_at)
		ORDER BY (topic, partition, offset)`,
	}},
	{2, "public views: one row per entity in its latest state", []string{
		`CREATE VIEW IF NOT EXISTS deployments AS
		SELECT
			deployment_id,
			argMax(service, v) AS service,
			argMax(team, v) AS team,
			argMax(environment, v) AS environment,
			nullIf(argMax(started_at, v), toDateTime(0, 'UTC')) AS started_at,
			argMax(finished_at, v) AS finished_at,
			argMax(status, v) AS status,
			argMax(version, v) AS version,
			argMax(artifact, v) AS artifact,
			argMax(unplanned, v) AS unplanned,
			argMax(fixes_incident, v) AS fixes_incident,
			argMax(changes, v) AS changes,
			argMax(encoding, v) AS encoding,
			max(event_time) AS updated_at
		FROM (SELECT *, tuple(event_time, event_id) AS v FROM deployment_events)
		GROUP BY deployment_id`,
		`CREATE VIEW IF NOT EXISTS incidents AS
		SELECT
			incident_id,
			title, service, team, environment, severity, detection_source,
			impact_started_at, detected_at, acknowledged_at, mitigated_at, resolved_at,
			multiIf(isNotNull(resolved_at), 'resolved', isNotNull(mitigated_at), 'mitigated',
				isNotNull(acknowledged_at), 'acknowledged', 'open') AS state,
			cause_deployment_id, cause_commit, messages, updated_at
		FROM (
			SELECT
				incident_id,
				argMaxIf(title, v, title != '') AS title,
				argMaxIf(service, v, service != '') AS service,
				argMaxIf(team, v, team != '') AS team,
				argMaxIf(environment, v, environment != '') AS environment,
				argMaxIf(severity, v, severity != '') AS severity,
				argMinIf(detection_source, tuple(detected, event_id), detection_source != '' AND detected > toDateTime(0, 'UTC')) AS detection_source,
				nullIf(minIf(impact_started_at, impact_started_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS impact_started_at,
				nullIf(minIf(detected_at, detected_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS detected_at,
				nullIf(minIf(acknowledged_at, acknowledged_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS acknowledged_at,
				nullIf(minIf(mitigated_at, mitigated_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS mitigated_at,
				nullIf(max(resolved_at), toDateTime(0, 'UTC')) AS resolved_at,
				argMaxIf(cause_deployment_id, v, cause_deployment_id != '') AS cause_deployment_id,
				argMaxIf(cause_commit, v, cause_commit != '') AS cause_commit,
				uniqExact(event_id) AS messages,
				max(event_time) AS updated_at
			FROM (SELECT *, tuple(event_time, event_id) AS v, detected_at AS detected FROM incident_events)
			GROUP BY incident_id
		)`,
		`CREATE VIEW IF NOT EXISTS patches AS
		SELECT
			patch_id,
			target,
			argMaxIf(target_type, v, target_type != '') AS target_type,
			argMaxIf(severity, v, severity != '') AS severity,
			argMaxIf(service, v, service != '') AS service,
			argMaxIf(team, v, team != '') AS team,
			argMaxIf(environment, v, environment != '') AS environment,
			nullIf(minIf(released_at, released_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS released_at,
			nullIf(argMaxIf(applied_at, v, applied_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS applied_at,
			if(countIf(o != '') = 0, 'open', argMaxIf(o, v, o != '')) AS outcome,
			max(event_time) AS updated_at
		FROM (SELECT *, tuple(event_time, event_id) AS v, outcome AS o FROM patch_events)
		GROUP BY patch_id, target`,
		`CREATE VIEW IF NOT EXISTS changes AS
		SELECT
			change_id,
			argMaxIf(service, v, service != '') AS service,
			argMaxIf(team, v, team != '') AS team,
			argMaxIf(repository, v, repository != '') AS repository,
			argMaxIf(author, v, author != '') AS author,
			nullIf(minIf(authored_at, authored_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS authored_at,
			nullIf(minIf(merged_at, merged_at > toDateTime(0, 'UTC')), toDateTime(0, 'UTC')) AS merged_at,
			max(event_time) AS updated_at
		FROM (SELECT *, tuple(event_time, event_id) AS v FROM change_events)
		GROUP BY change_id`,
		`CREATE VIEW IF NOT EXISTS dead_letters AS
		SELECT
			topic, partition, offset,
			any(message_key) AS message_key,
			any(payload) AS payload,
			any(header_keys) AS header_keys,
			any(header_values) AS header_values,
			any(reason_code) AS reason_code,
			any(reason) AS reason,
			min(dead_lettered_at) AS dead_lettered_at
		FROM dead_letter_events
		GROUP BY topic, partition, offset`,
	}},
}
