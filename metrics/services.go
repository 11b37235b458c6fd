package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// The dimensions System and Tier are not stored with the events: each
// query maps the service onto its system and tier in the service catalog
// of the day, with ClickHouse's transform() over the catalog's names
// (docs/schema.md says why). A service the catalog does not know, or
// whose component has no system or tier, is in system or tier "".

// catalogDims are the dimensions read from the catalog.
var catalogDims = map[Dimension]func(catalog.Entity) string{
	System: func(e catalog.Entity) string { return e.System },
	Tier:   func(e catalog.Entity) string { return e.Tier },
}

// column is the expression of dimension d over a source's service column:
// the column itself, or its system or tier in q.Catalog.
func (q Query) column(d Dimension) chsql.Expr {
	get, ok := catalogDims[d]
	if !ok {
		return chsql.Ident(string(d), string(Service), string(Team), string(Environment))
	}
	var names, values []string
	for _, e := range q.Catalog.Entities() {
		if v := get(e); v != "" {
			names, values = append(names, catalog.Key(e.Name)), append(values, v)
		}
	}
	if len(names) == 0 {
		return chsql.Raw("''") // transform's arrays cannot be empty on 18.16
	}
	return chsql.SQL("transform(lower(service), ?, ?, '')", names, values)
}

// catalogFilters keep the services of q.Systems and q.Tiers.
func (q Query) catalogFilters() []chsql.Expr {
	var out []chsql.Expr
	for _, f := range []struct {
		d      Dimension
		values []string
	}{{System, q.Systems}, {Tier, lower(q.Tiers)}} {
		if len(f.values) > 0 {
			out = append(out, chsql.SQL("has(?, ?)", f.values, q.column(f.d)))
		}
	}
	return out
}

// WithCatalog is q reading the service catalog c: its system and tier
// dimensions and filters, and, with a change calendar, the services'
// tiers deployments_outside_window judges by (ServiceTiers). A process
// that reloads its catalog calls it on each use with the catalog of the
// moment; a nil c keeps q's.
func (q Query) WithCatalog(c *catalog.Catalog) Query {
	if c == nil {
		return q
	}
	q.Catalog = c
	if q.Calendar != nil {
		q.ServiceTiers = c.Tiers()
	}
	return q
}

// checkCatalog says why q cannot slice or filter by system or tier: no
// service catalog is configured.
func (q Query) checkCatalog() error {
	if q.Catalog.Len() > 0 {
		return nil
	}
	var need []string
	for _, d := range q.By {
		if catalogDims[d] != nil {
			need = append(need, "by "+string(d))
		}
	}
	if len(q.Systems) > 0 {
		need = append(need, "system")
	}
	if len(q.Tiers) > 0 {
		need = append(need, "tier")
	}
	if len(need) == 0 {
		return nil
	}
	return fmt.Errorf("%s: needs a service catalog (catalog.path in the configuration file, docs/catalog.md)", strings.Join(need, ", "))
}

// TeamMismatch is the entities of one kind stored with a team that is not
// their service's owner in the catalog: ingestion keeps the team an event
// sends (docs/catalog.md).
type TeamMismatch struct {
	Kind     string    `ch:"kind" json:"kind"` // deployment or incident
	Service  string    `ch:"service" json:"service"`
	Team     string    `ch:"team" json:"team"`
	Owner    string    `ch:"owner" json:"catalog_owner"`
	Entities uint64    `ch:"entities" json:"entities"`
	Last     time.Time `ch:"last" json:"last"`
}

// TeamMismatches reads the deployments that finished, and the incidents
// whose impact started (or that were detected), in [from, to), in every
// environment, whose team is set and is not their service's owner in c
// (compared without regard to case), by kind, service and team.
func TeamMismatches(ctx context.Context, conn driver.Conn, c *catalog.Catalog, from, to time.Time) ([]TeamMismatch, error) {
	var names, owners []string
	for _, e := range c.Entities() {
		names, owners = append(names, catalog.Key(e.Name)), append(owners, e.Owner)
	}
	if len(names) == 0 {
		return nil, nil
	}
	cols := []string{string(Service), string(Team), "finished_at"}
	started := "assumeNotNull(ifNull(impact_started_at, detected_at))"
	e := chsql.SQL(`SELECT kind, service, team, owner, count() AS entities, max(t) AS last
FROM (
	SELECT kind, service, team, transform(lower(service), ?, ?, '') AS owner, t
	FROM (
		SELECT 'deployment' AS kind, service, team, finished_at AS t FROM ?
		UNION ALL
		SELECT 'incident' AS kind, service, team, `+started+` AS t FROM ? WHERE isNotNull(ifNull(impact_started_at, detected_at)) AND `+started+` >= ? AND `+started+` < ?
	)
	WHERE team != '' AND has(?, lower(service))
)
WHERE lower(team) != lower(owner)
GROUP BY kind, service, team, owner
ORDER BY service, kind, team`, names, owners,
		deploymentsFinished(at(from), at(to), cols, chsql.Expr{}),
		incidentsStarted(at(from), at(to), string(Service), string(Team), "impact_started_at", "detected_at"), at(from), at(to), names)
	var out []TeamMismatch
	if err := query(ctx, conn, e, func(m *TeamMismatch) { out = append(out, *m) }); err != nil {
		return nil, fmt.Errorf("team mismatches: %w", err)
	}
	return out, nil
}
