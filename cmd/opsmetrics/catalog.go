package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// runCatalog checks the service catalog of the configuration: it loads
// (every error of every file), and which teams stored in the range differ
// from its owners; or stores it for the dashboards.
func runCatalog(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) > 0 && args[0] == "store" {
		return runCatalogStore(ctx, fs, args[1:])
	}
	if len(args) == 0 || args[0] != "check" {
		return subcommandUsage(fs, args, "usage: opsmetrics catalog check|store [flags]")
	}
	parse := bind(fs, setClickHouse)
	from := fs.String("from", "", "start of the range, inclusive: a date or RFC 3339 time (default: 30 days before --to)")
	to := fs.String("to", "", "end of the range, exclusive (default: today 00:00 UTC)")
	format := fs.String("format", "table", "output: table or json")
	cfg, err := parse(args[1:])
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return usagef("--format: want table or json, got %q", *format)
	}
	if !cfg.Catalog.Enabled() {
		return usagef("catalog check: no service catalog: set catalog.path in the configuration file (--config)")
	}
	req, err := metrics.Params{From: *from, To: *to}.Parse(time.Now())
	if err != nil {
		return paramsError(err)
	}
	cat, err := cfg.services()
	if err != nil {
		return err
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	ms, err := metrics.TeamMismatches(ctx, st.Conn(), cat, req.Query.From, req.Query.To)
	if err != nil {
		return err
	}
	s := cat.Stats()
	if *format == "json" {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		if err := e.Encode(map[string]any{"catalog": s, "from": req.Query.From, "to": req.Query.To, "mismatches": nonNil(ms)}); err != nil {
			return err
		}
	} else {
		fmt.Printf("catalog %s: %d services from %d files\n", cfg.Catalog.Path, s.Components, s.Files)
		fmt.Printf("teams stored from %s to %s (end exclusive) that are not their service's owner: %d\n",
			req.Query.From.Format(time.RFC3339), req.Query.To.Format(time.RFC3339), len(ms))
		if len(ms) > 0 {
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "SERVICE\tKIND\tTEAM SENT\tCATALOG OWNER\tENTITIES\tLAST")
			for _, m := range ms {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", m.Service, m.Kind, m.Team, m.Owner, m.Entities, m.Last.Format(time.RFC3339))
			}
			w.Flush()
		}
	}
	if len(ms) > 0 {
		return fmt.Errorf("%d teams differ from the catalog's owners: fix the events' team or the catalog's spec.owner", len(ms))
	}
	return nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// runCatalogStore stores the service catalog of the configuration in
// ClickHouse, where the dashboards' system and tier variables, their
// filters and the anomalies' owners read it (serve keeps it stored as the
// catalog reloads). It says whether the stored one changed.
func runCatalogStore(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if !cfg.Catalog.Enabled() {
		return usagef("catalog store: no service catalog: set catalog.path in the configuration file (--config)")
	}
	cat, err := cfg.services()
	if err != nil {
		return err
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	wrote, err := metrics.StoreCatalog(ctx, st.Conn(), cat)
	if err != nil {
		return err
	}
	if wrote {
		fmt.Printf("stored the service catalog %s for the dashboards: %d services\n", cfg.Catalog.Path, cat.Len())
	} else {
		fmt.Printf("the stored service catalog is already %s's: %d services\n", cfg.Catalog.Path, cat.Len())
	}
	return nil
}
