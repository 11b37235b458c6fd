package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
)

// The service catalog is configuration, read from files by the processes
// that slice KPIs by system and tier. Grafana reads no files: for the
// dashboards' system and tier variables, their filters and the owner and
// tier of an anomaly, StoreCatalog copies the catalog into ClickHouse
// (service_catalog, migration 14) under a new generation whenever its
// content changes, and panels read the latest (CurrentServiceCatalog).

// CurrentServiceCatalog is the view of the latest stored catalog: one row
// per service with key (the lower-cased name that events' service columns
// match, lower-cased, as Query.column does), service, system, tier, owner
// and lifecycle.
const CurrentServiceCatalog = "current_service_catalog"

// ServiceKey is the SQL expression of the key a service column col
// matches in CurrentServiceCatalog.
func ServiceKey(col string) string { return "lower(" + col + ")" }

// keepCatalogs is how many stored catalogs StoreCatalog keeps: the latest,
// and the one before for readers that began before it was committed.
const keepCatalogs = 2

// StoreCatalog stores c as the current service catalog unless the latest
// stored one has the same services, and reports whether it wrote. The rows
// are written before the generation that commits them, so a reader never
// sees part of a catalog; older generations but one are dropped. A nil c
// stores an empty catalog (none configured any more). On a cluster the
// older generations are kept (one catalog's rows each).
func StoreCatalog(ctx context.Context, conn driver.Conn, c *catalog.Catalog) (bool, error) {
	entities := c.Entities()
	h := sha256.New()
	for _, e := range entities {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\n", catalog.Key(e.Name), e.Name, e.System, e.Tier, e.Owner, e.Lifecycle)
	}
	fp := hex.EncodeToString(h.Sum(nil))
	last, err := latestCatalogFingerprint(ctx, conn)
	if err != nil {
		return false, err
	}
	if last == fp {
		return false, nil
	}
	gen := uint64(time.Now().UnixNano())
	if len(entities) > 0 {
		b, err := conn.PrepareBatch(ctx, `INSERT INTO service_catalog (generation, key, service, system, tier, owner, lifecycle)`)
		if err != nil {
			return false, fmt.Errorf("store the service catalog: %w", err)
		}
		for _, e := range entities {
			if err := b.Append(gen, catalog.Key(e.Name), e.Name, e.System, e.Tier, e.Owner, e.Lifecycle); err != nil {
				_ = b.Abort()
				return false, fmt.Errorf("store the service catalog: %w", err)
			}
		}
		if err := b.Send(); err != nil {
			return false, fmt.Errorf("store the service catalog: %w", err)
		}
	}
	if err := conn.Exec(ctx, `INSERT INTO service_catalog_generations (generation, fingerprint, services, stored_at)
		SELECT toUInt64(?), ?, toUInt64(?), toDateTime(?, 'UTC')`, gen, fp, len(entities), time.Now().Unix()); err != nil {
		return false, fmt.Errorf("commit the service catalog: %w", err)
	}
	// On a cluster (migrate --cluster) service_catalog is a Distributed
	// table, which holds no partitions: the generations stay there.
	var engine string
	if err := conn.QueryRow(ctx, `SELECT any(engine) FROM system.tables
		WHERE database = currentDatabase() AND name = 'service_catalog'`).Scan(&engine); err != nil {
		return true, fmt.Errorf("find the stored service catalog's table: %w", err)
	}
	if engine == "Distributed" {
		return true, nil
	}
	var gens []uint64
	if err := conn.QueryRow(ctx, `SELECT arrayReverseSort(groupArray(generation)) FROM service_catalog_generations`).Scan(&gens); err != nil {
		return true, fmt.Errorf("list the stored service catalogs: %w", err)
	}
	for _, g := range gens[min(keepCatalogs, len(gens)):] {
		if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE service_catalog DROP PARTITION %d", g)); err != nil {
			return true, fmt.Errorf("drop stored service catalog %d: %w", g, err)
		}
	}
	return true, nil
}

// latestCatalogFingerprint is the fingerprint of the latest stored
// catalog, "" when none is stored.
func latestCatalogFingerprint(ctx context.Context, conn driver.Conn) (string, error) {
	var fps []string
	if err := conn.QueryRow(ctx, `SELECT groupArray(fingerprint) FROM (
		SELECT fingerprint FROM service_catalog_generations ORDER BY generation DESC LIMIT 1)`).Scan(&fps); err != nil {
		return "", fmt.Errorf("read the stored service catalog: %w", err)
	}
	if len(fps) == 0 {
		return "", nil
	}
	return fps[0], nil
}

// CatalogPublisher keeps the stored service catalog that of a process
// that reloads its catalog: every Interval it stores Catalog() if it is a
// new snapshot (StoreCatalog writes only when the services changed). A
// failed store is logged and tried again at the next tick.
type CatalogPublisher struct {
	Conn     driver.Conn
	Catalog  func() *catalog.Catalog
	Interval time.Duration
	Log      *slog.Logger
}

// Run stores the catalog at once, then on each change, until ctx is done.
func (p CatalogPublisher) Run(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var stored *catalog.Catalog
	failing := false
	for {
		if c := p.Catalog(); c != stored {
			wrote, err := StoreCatalog(ctx, p.Conn, c)
			switch {
			case err != nil && ctx.Err() == nil:
				if !failing {
					p.Log.Error("storing the service catalog for the dashboards failed; retrying", "err", err)
				}
				failing = true
			case err == nil:
				stored, failing = c, false
				if wrote {
					p.Log.Info("service catalog stored for the dashboards", "services", c.Len())
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
