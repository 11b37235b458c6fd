package store

import "github.com/opsmetrics/opsmetrics/internal/event"

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
		"CREATE VIEW IF NOT EXISTS deployments AS " + Deployments(""),
		"CREATE VIEW IF NOT EXISTS incidents AS " + Incidents(""),
		"CREATE VIEW IF NOT EXISTS patches AS " + Patches(""),
		"CREATE VIEW IF NOT EXISTS changes AS " + Changes(""),
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
	{3, "baselines and anomalies", []string{
		// A learn writes every row of a new generation, then commits it with
		// one row in baseline_generations: readers of current_baselines see
		// a whole generation or the previous one, never half of one.
		`CREATE TABLE IF NOT EXISTS baselines (
			generation UInt64,
			series String,
			kpi String,
			step String,
			service String,
			team String,
			environment String,
			kind String,
			family String,
			status String,
			params String,
			train_from DateTime('UTC'),
			train_to DateTime('UTC'),
			trained_at DateTime('UTC'),
			slot UInt16,
			expected Float64,
			lower Float64,
			upper Float64
		) ENGINE = MergeTree
		PARTITION BY toYYYYMM(trained_at)
		ORDER BY (generation, series, slot)`,
		`CREATE TABLE IF NOT EXISTS baseline_generations (
			generation UInt64,
			trained_at DateTime('UTC'),
			series UInt64
		) ENGINE = MergeTree
		ORDER BY generation`,
		`CREATE VIEW IF NOT EXISTS current_baselines AS
		SELECT * FROM baselines
		WHERE generation = (SELECT max(generation) FROM baseline_generations)`,
		// One row per series and anomalous interval: re-detecting the same
		// interval replaces its row.
		`CREATE TABLE IF NOT EXISTS anomalies (
			series String,
			kpi String,
			step String,
			service String,
			team String,
			environment String,
			interval_start DateTime('UTC'),
			interval_end DateTime('UTC'),
			observed Float64,
			num Float64,
			den Float64,
			expected Float64,
			lower Float64,
			upper Float64,
			direction String,
			tail Float64,
			severity String,
			firing UInt8,
			generation UInt64,
			detected_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(detected_at)
		PARTITION BY toYYYYMM(interval_start)
		ORDER BY (series, interval_start)`,
	}},
	{4, "kpi series", []string{
		// The KPI series baselines learn from and detection judges, as
		// computed by package metrics: dashboards draw them with their bands.
		// Rewriting an interval replaces its row.
		`CREATE TABLE IF NOT EXISTS kpi_series (
			series String,
			kpi String,
			kind String,
			step String,
			service String,
			team String,
			environment String,
			interval_start DateTime('UTC'),
			value Float64,
			num Float64,
			den Float64,
			present UInt8,
			computed_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(computed_at)
		PARTITION BY toYYYYMM(interval_start)
		ORDER BY (series, interval_start)`,
	}},
	{5, "event identity", []string{
		// One row per event id and content claimed for it (identity.go):
		// keyed by the id alone, not partitioned by time, so that an id
		// means one content whatever month and entity a message names.
		// The state only rises (claimed, accepted), and merges keep the
		// highest.
		`CREATE TABLE IF NOT EXISTS event_ids (
			event_id String,
			content_hash FixedString(16),
			state UInt8,
			kind String,
			entity_id String,
			target String,
			event_time DateTime('UTC'),
			source_topic String,
			source_partition Int32,
			source_offset Int64,
			claimed_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(state)
		ORDER BY (event_id, content_hash)`,
		legacyClaims(event.KindDeployment),
		legacyClaims(event.KindIncident),
		legacyClaims(event.KindPatch),
		legacyClaims(event.KindChange),
	}},
	{6, "judged intervals", []string{
		// One row per series and interval that detection judged, anomalous
		// or not, with the band the decision used and the end of the data
		// its baseline was learnt from (anomaly.Judged reads it): what the
		// report and the dashboard draw as the band at each point, and which
		// intervals a backfill has still to judge. Judging again replaces
		// the row.
		`CREATE TABLE IF NOT EXISTS judged_intervals (
			series String,
			kpi String,
			step String,
			service String,
			team String,
			environment String,
			interval_start DateTime('UTC'),
			status String,
			judged UInt8,
			anomaly UInt8,
			firing UInt8,
			test String,
			observed Float64,
			expected Float64,
			lower Float64,
			upper Float64,
			tail Float64,
			direction String,
			trained_to DateTime('UTC'),
			judged_at DateTime('UTC')
		) ENGINE = ReplacingMergeTree(judged_at)
		PARTITION BY toYYYYMM(interval_start)
		ORDER BY (series, interval_start)`,
	}},
	{7, "deployment actor and pipeline", []string{
		// Who or what triggered a deployment, and the pipeline that ran it
		// (metrics.DeploymentBreakdown ranks them as contributing factors).
		// One column a statement: ClickHouse 18.16 has no ADD COLUMN IF NOT
		// EXISTS, so the runner skips a column that exists (addedColumn).
		`ALTER TABLE deployment_events ADD COLUMN actor String DEFAULT '' AFTER fixes_incident`,
		`ALTER TABLE deployment_events ADD COLUMN pipeline String DEFAULT '' AFTER actor`,
	}},
	{8, "contributing factors of anomalies", []string{
		// What explains a firing anomaly, in words (anomaly.Explain); empty
		// for the KPIs that name none and for rows written before.
		`ALTER TABLE anomalies ADD COLUMN factors String DEFAULT ''`,
	}},
	{9, "KPI rollup", []string{
		// One row per UTC day and slice: the counts and samples of the KPI
		// queries for it (metrics.RefreshRollup writes it, metrics.Summaries
		// reads it). A build writes a whole generation, its own partition,
		// and then commits it in kpi_rollups; older ones are dropped.
		`CREATE TABLE IF NOT EXISTS kpi_daily (
			generation UInt64,
			day Date,
			service String,
			team String,
			environment String,
			deployments UInt64,
			successful UInt64,
			failed UInt64,
			rework UInt64,
			durations Array(Float64),
			incidents UInt64,
			unresolved UInt64,
			mttr Array(Float64),
			mttd Array(Float64),
			mtta Array(Float64),
			mttr_impact Array(Float64),
			severities Array(String),
			severity_counts Array(UInt64),
			leads Array(Float64),
			lead_starts Array(DateTime('UTC')),
			not_deployed UInt64,
			recoveries Array(Float64),
			unrecovered UInt64,
			patch_ids Array(String),
			patch_severities Array(String),
			patch_released Array(DateTime('UTC')),
			patch_applied Array(DateTime('UTC')),
			patch_outcomes Array(String)
		) ENGINE = MergeTree
		PARTITION BY generation
		ORDER BY (day, environment, service, team)`,
		// One row per committed rollup: the definitions it was built for,
		// the fingerprint of the raw rows it read, when and how long.
		`CREATE TABLE IF NOT EXISTS kpi_rollups (
			generation UInt64,
			params String,
			fingerprint String,
			built_at DateTime('UTC'),
			took_seconds Float64,
			rows UInt64
		) ENGINE = MergeTree
		ORDER BY (params, generation)`,
	}},
	{10, "KPI rollup: patch targets judged at build", []string{
		// What the patch KPIs need of a day's targets, counted by the
		// build with the deadlines of its definitions (metrics.patchDay):
		// the counts that do not depend on the range end, and the
		// deadlines of the open and the unapplied targets, which the read
		// compares with it. Rollups built before have none and are not
		// read (their definitions lack the deadlines).
		`ALTER TABLE kpi_daily ADD COLUMN patch_failed UInt64`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_with_outcome UInt64`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_due_closed Array(UInt64)`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_good Array(UInt64)`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_open_due Array(Int64)`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_open_sev Array(UInt8)`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_unapplied_due Array(Int64)`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_latency Array(Float64)`,
	}},
	{11, "KPI rollup: incident attributions", []string{
		// Every incident with the deployment it is attributed to and how
		// (metrics.Attributions), written by the build of a generation of
		// kpi_daily with the same definitions, for the reports' incident
		// lists (metrics.AttributionsOf).
		`CREATE TABLE IF NOT EXISTS kpi_attributions (
			generation UInt64,
			impact DateTime('UTC'),
			incident_id String,
			service String,
			environment String,
			resolved DateTime('UTC'),
			deployment_id String,
			method String
		) ENGINE = MergeTree
		PARTITION BY generation
		ORDER BY (impact, incident_id)`,
	}},
	{12, "contributing factors of anomalies, structured", []string{
		// The factors of migration 8's sentence, one array element per
		// factor in the order they were found (anomaly.Factor): the value
		// of a dimension, its harmful events, its trials (none for
		// counts), its events expected at the baseline, its excess over
		// them, its share of its dimension's excess and the events it was
		// counted among. Empty where the sentence is.
		`ALTER TABLE anomalies ADD COLUMN factor_dimensions Array(String) AFTER factors`,
		`ALTER TABLE anomalies ADD COLUMN factor_values Array(String) AFTER factor_dimensions`,
		`ALTER TABLE anomalies ADD COLUMN factor_observed Array(Float64) AFTER factor_values`,
		`ALTER TABLE anomalies ADD COLUMN factor_trials Array(Float64) AFTER factor_observed`,
		`ALTER TABLE anomalies ADD COLUMN factor_expected Array(Float64) AFTER factor_trials`,
		`ALTER TABLE anomalies ADD COLUMN factor_excess Array(Float64) AFTER factor_expected`,
		`ALTER TABLE anomalies ADD COLUMN factor_shares Array(Float64) AFTER factor_excess`,
		`ALTER TABLE anomalies ADD COLUMN factor_of Array(Float64) AFTER factor_shares`,
	}},
	{13, "change-window alerts fired", []string{
		// When each deployment's DeploymentOutsideWindow alert first fired
		// (anomaly.WindowAlerts): a deployment stored late alerts once,
		// and a replay of its messages, which stores them again, does not
		// raise it again. Several rows of one deployment (replicas, runs
		// racing) are read by their earliest.
		`CREATE TABLE IF NOT EXISTS window_alerts (
			deployment_id String,
			fired_at DateTime('UTC')
		) ENGINE = MergeTree
		ORDER BY deployment_id`,
	}},
	{14, "service catalog for the dashboards", []string{
		// The service catalog as the processes that read its files last
		// stored it (metrics.StoreCatalog): the dashboards' system and tier
		// variables and filters and the anomalies' owner and tier read it.
		// A generation's rows are written before its row in
		// service_catalog_generations commits them; key is the lower-cased
		// name that an event's service matches.
		`CREATE TABLE IF NOT EXISTS service_catalog (
			generation UInt64,
			key String,
			service String,
			system String,
			tier String,
			owner String,
			lifecycle String
		) ENGINE = MergeTree
		PARTITION BY generation
		ORDER BY key`,
		`CREATE TABLE IF NOT EXISTS service_catalog_generations (
			generation UInt64,
			fingerprint String,
			services UInt64,
			stored_at DateTime('UTC')
		) ENGINE = MergeTree
		ORDER BY generation`,
		`CREATE VIEW IF NOT EXISTS current_service_catalog AS
		SELECT key, service, system, tier, owner, lifecycle FROM service_catalog
		WHERE generation = (SELECT max(generation) FROM service_catalog_generations)`,
	}},
	{15, "KPI rollup: change-calendar counts", []string{
		// deployments_outside_window of each UTC day and slice, for the
		// change calendar and service tiers a build was given
		// (metrics.windowKey, kept in kpi_rollups.window_key; empty: none,
		// and calendar figures read the raw rows): the production
		// deployments the calendar judged, those outside their windows or
		// in a freeze, those in a freeze, and the unplanned fixes outside.
		`CREATE TABLE IF NOT EXISTS kpi_window_daily (
			generation UInt64,
			day Date,
			service String,
			team String,
			environment String,
			deployments UInt64,
			outside UInt64,
			in_freeze UInt64,
			fixes UInt64
		) ENGINE = MergeTree
		PARTITION BY generation
		ORDER BY (day, environment, service, team)`,
		`ALTER TABLE kpi_rollups ADD COLUMN window_key String DEFAULT ''`,
	}},
	{16, "KPI rollup: patch targets' names, deployments outside windows", []string{
		// The target of each patch target a day keeps (beside patch_ids),
		// for the overdue-patches table.
		`ALTER TABLE kpi_daily ADD COLUMN patch_targets Array(String)`,
		// The production deployments that broke the change calendar of a
		// build given one (outside their windows or in a freeze), for the
		// dashboards' list of them: t is the start (the finish when it is
		// unknown), the time the calendar judged.
		`CREATE TABLE IF NOT EXISTS kpi_window_deployments (
			generation UInt64,
			t DateTime('UTC'),
			finished_at DateTime('UTC'),
			deployment_id String,
			service String,
			team String,
			environment String,
			actor String,
			pipeline String,
			version String,
			window_class String
		) ENGINE = MergeTree
		PARTITION BY generation
		ORDER BY (finished_at, deployment_id)`,
	}},
	{17, "event identity: id hashes for the claims' read", []string{
		// Claim's read of a batch's claims matches 64-bit hashes of the
		// ids (city.CH64 in Go, ClickHouse's cityHash64) rather than the
		// ids: its ids fall in nearly every granule of the table, so the
		// read scans the table whichever column it matches, and a column of
		// 8 bytes a row is cheaper to scan than the ids (identity.go). Parts
		// written before this migration compute it from event_id when read,
		// until merges rewrite them.
		`ALTER TABLE event_ids ADD COLUMN id_hash UInt64 DEFAULT cityHash64(event_id)`,
	}},
	{18, "KPI rollup: lead times split by start, patch counts and advisories", []string{
		// A build of format 4 keeps in leads and lead_starts only the lead
		// times whose change started within kpi_rollups.lead_split
		// seconds before the day and before its end, which every read with
		// a lookback at least that long counts without looking at the
		// start; the others go to leads_far and lead_far_starts.
		`ALTER TABLE kpi_daily ADD COLUMN leads_far Array(Float64)`,
		`ALTER TABLE kpi_daily ADD COLUMN lead_far_starts Array(DateTime('UTC'))`,
		`ALTER TABLE kpi_rollups ADD COLUMN lead_split UInt64`,
		// The day's patch targets, counted, and its distinct patch ids,
		// so that a read counts the targets and advisories without
		// reading patch_ids (a string a target).
		`ALTER TABLE kpi_daily ADD COLUMN patch_count UInt64`,
		`ALTER TABLE kpi_daily ADD COLUMN patch_advisories Array(String)`,
	}},
}

// legacyClaims claims every event stored before migration 5, as "legacy"
// (state 2): its content hash is computed when a message with its id comes,
// from the row itself. A marker stands in for the hash, one per entity, so
// that an id stored for two entities keeps both. Running it twice inserts
// the same rows, which merge.
func legacyClaims(k event.Kind) string {
	entity, target := kindFields[k][0].name, "''"
	if k == event.KindPatch {
		target = "target"
	}
	return `INSERT INTO event_ids (event_id, content_hash, state, kind, entity_id, target, event_time,
			source_topic, source_partition, source_offset, claimed_at)
		SELECT event_id, MD5(concat('` + string(k) + `', '\0', ` + entity + `, '\0', ` + target + `)), 2, '` + string(k) + `', ` + entity + `, ` + target + `,
			min(event_time), argMin(source_topic, ingested_at), argMin(source_partition, ingested_at), argMin(source_offset, ingested_at), min(ingested_at)
		FROM ` + tables[k] + `
		GROUP BY event_id, ` + entity + `, ` + target
}
