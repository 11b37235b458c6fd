package store

import (
	"fmt"
	"regexp"
	"strings"
)

// On a ClickHouse cluster, every table of the schema becomes a replicated
// local table, name_local, on every node, and a Distributed table under the
// original name that the rest of opsmetrics reads and writes unchanged. An
// entity's messages shard together, by the first column of the sorting
// key, so folds and ReplacingMergeTree deduplication stay within a shard.
// Views are created on every node over the Distributed tables. Every DDL
// statement runs ON CLUSTER, which needs ZooKeeper, as replication does.

var (
	createTable = regexp.MustCompile(`(?s)^\s*CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)\s*ENGINE = (\w+)(?:\(([^)]*)\))?(.*)$`)
	createView  = regexp.MustCompile(`(?s)^\s*CREATE VIEW IF NOT EXISTS (\w+) AS(.*)$`)
	orderBy     = regexp.MustCompile(`ORDER BY \(?([\w]+)`)
	// fromTable finds the tables a view reads, which must be qualified:
	// distributed DDL runs in the default database on every node.
	fromTable = regexp.MustCompile(`\bFROM (\w+)\b`)
)

// clusterStatements turns one statement of a migration into its ON CLUSTER
// form for database db.
func clusterStatements(stmt, cluster, db string) ([]string, error) {
	on := " ON CLUSTER " + quoteIdent(cluster)
	q := func(name string) string { return quoteIdent(db) + "." + name }
	if m := createView.FindStringSubmatch(stmt); m != nil {
		body := fromTable.ReplaceAllStringFunc(m[2], func(f string) string {
			name := fromTable.FindStringSubmatch(f)[1]
			return "FROM " + q(name)
		})
		return []string{"CREATE VIEW IF NOT EXISTS " + q(m[1]) + on + " AS" + body}, nil
	}
	if rest, ok := strings.CutPrefix(strings.TrimSpace(stmt), "INSERT INTO "); ok {
		// Data, not DDL: it runs once, through the Distributed tables.
		return []string{"INSERT INTO " + quoteIdent(db) + "." + fromTable.ReplaceAllStringFunc(rest, func(f string) string {
			return "FROM " + q(fromTable.FindStringSubmatch(f)[1])
		})}, nil
	}
	if rest, ok := strings.CutPrefix(strings.TrimSpace(stmt), "ALTER TABLE "); ok {
		// A column goes to the replicated local tables; the Distributed
		// table, which holds no data, is created again over them: ClickHouse
		// 18.16 runs no ALTER ON CLUSTER on a table that is not replicated
		// when its shards replicate internally.
		name, alter, _ := strings.Cut(rest, " ")
		for _, m := range migrations {
			for _, create := range m.statements {
				if c := createTable.FindStringSubmatch(create); c != nil && c[1] == name {
					cs, err := clusterStatements(create, cluster, db)
					if err != nil {
						return nil, err
					}
					return []string{"ALTER TABLE " + q(name+"_local") + on + " " + alter, "DROP TABLE IF EXISTS " + q(name) + on, cs[1]}, nil
				}
			}
		}
		return nil, fmt.Errorf("no cluster form for %.60q: no table %s among the migrations", stmt, name)
	}
	m := createTable.FindStringSubmatch(stmt)
	if m == nil {
		return nil, fmt.Errorf("no cluster form for statement %.60q", stmt)
	}
	name, cols, engine, args, rest := m[1], m[2], m[3], m[4], m[5]
	local := name + "_local"
	path := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", db, local)
	if args != "" {
		path += ", " + args
	}
	key := "rand()"
	if k := orderBy.FindStringSubmatch(rest); k != nil {
		key = "cityHash64(" + k[1] + ")"
	}
	return []string{
		"CREATE TABLE IF NOT EXISTS " + q(local) + on + " (" + cols + ") ENGINE = Replicated" + engine + "(" + path + ")" + rest,
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s ENGINE = Distributed(%s, %s, %s, %s)",
			q(name), on, q(local), quoteIdent(cluster), quoteIdent(db), local, key),
	}, nil
}

// schemaMigrationsDDL creates the table that records applied migrations:
// one replication group across the whole cluster, so every node knows the
// schema version.
func schemaMigrationsDDL(cluster, db string) string {
	const cols = `version UInt32, description String, applied_at DateTime('UTC')`
	if cluster == "" {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (` + cols + `) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_migrations ON CLUSTER %s (%s)
		ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/%s/schema_migrations', '{replica}', applied_at) ORDER BY version`,
		quoteIdent(db), quoteIdent(cluster), cols, db)
}

// ClusterDDL returns every statement of the schema in its ON CLUSTER form,
// for review (opsmetrics migrate --cluster NAME --print).
func ClusterDDL(cluster, db string) ([]string, error) {
	out := []string{schemaMigrationsDDL(cluster, db)}
	for _, m := range migrations {
		for _, stmt := range m.statements {
			s, err := clusterStatements(stmt, cluster, db)
			if err != nil {
				return nil, fmt.Errorf("migration %d: %w", m.version, err)
			}
			out = append(out, s...)
		}
	}
	return out, nil
}
