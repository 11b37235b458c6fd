package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/opsmetrics/opsmetrics/dashboards"
)

func runDashboards(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "build":
			return runDashboardsBuild(fs, args[1:])
		case "provision":
			return runDashboardsProvision(ctx, fs, args[1:])
		}
	}
	return subcommandUsage(fs, args, "usage: opsmetrics dashboards build --out DIR [flags]\n"+
		"       opsmetrics dashboards provision --grafana-url URL [flags]")
}

// bindDataSources registers the flags that configure the data sources and
// returns a function that builds them from the parsed configuration.
func bindDataSources(fs *flag.FlagSet, passwordEnvUsage string) func(cfg *fileConfig) (dashboards.DataSources, error) {
	prom := fs.String("prometheus-url", "", "Prometheus URL for the pipeline health dashboard (empty: not provisioned)")
	passwordEnv := fs.String("password-env", "OPSMETRICS_CLICKHOUSE_PASSWORD", passwordEnvUsage)
	return func(cfg *fileConfig) (dashboards.DataSources, error) {
		return dashboards.DataSourcesFor(cfg.ClickHouse, *prom, *passwordEnv)
	}
}

func runDashboardsBuild(fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	out := fs.String("out", "", "directory to write the Grafana provisioning tree to")
	path := fs.String("dashboards-path", "/var/lib/grafana/dashboards/opsmetrics",
		"where Grafana will find the dashboard JSON files (the tree's dashboards/ directory, mounted)")
	sources := bindDataSources(fs, "environment variable Grafana reads the ClickHouse password from; no password is written")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	ds, err := sources(cfg)
	if err != nil {
		return err
	}
	o, err := cfg.dashboardOptions()
	if err != nil {
		return err
	}
	files, err := dashboards.WriteTree(*out, *path, ds, o)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println(f)
	}
	return nil
}

// grafanaTokenEnv is the environment variable provision reads the Grafana
// token from when there is no --grafana-token-file.
const grafanaTokenEnv = "OPSMETRICS_GRAFANA_TOKEN"

// runDashboardsProvision creates or updates the folder, the data sources
// and the dashboards through Grafana's HTTP API, and prints one line per
// object with what it did.
func runDashboardsProvision(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	grafanaURL := fs.String("grafana-url", "", "Grafana's URL, http(s)://host[:port][/sub-path]")
	tokenFile := fs.String("grafana-token-file", "", "file holding a Grafana service account token (default: env "+grafanaTokenEnv+")")
	user := fs.String("grafana-user", "", "Grafana user for basic auth, when there is no token")
	passwordFile := fs.String("grafana-password-file", "", "file holding the password of --grafana-user")
	org := fs.Int64("grafana-org-id", 0, "organisation to provision into (basic auth; 0: the user's current one)")
	sources := bindDataSources(fs, "environment variable holding the ClickHouse password, which is sent to Grafana (empty: none)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if *grafanaURL == "" {
		return usagef("--grafana-url is required")
	}
	g := dashboards.Grafana{URL: *grafanaURL, User: *user, OrgID: *org}
	switch {
	case *tokenFile != "" && *user != "":
		return usagef("--grafana-token-file and --grafana-user: use one or the other")
	case *tokenFile != "":
		if g.Token, err = readSecret(*tokenFile); err != nil {
			return fmt.Errorf("--grafana-token-file: %w", err)
		}
	case *user != "":
		if *passwordFile == "" {
			return usagef("--grafana-user needs --grafana-password-file")
		}
		if g.Password, err = readSecret(*passwordFile); err != nil {
			return fmt.Errorf("--grafana-password-file: %w", err)
		}
	default:
		g.Token = os.Getenv(grafanaTokenEnv)
		if g.Token == "" {
			return usagef("no Grafana credentials: set %s, or --grafana-token-file, or --grafana-user and --grafana-password-file", grafanaTokenEnv)
		}
	}
	if err := g.Validate(); err != nil {
		// "grafana: url: …" is of the flag --grafana-url.
		return usageError{errors.New(strings.NewReplacer("grafana: url:", "--grafana-url:", "grafana: org_id:", "--grafana-org-id:").Replace(err.Error()))}
	}
	ds, err := sources(cfg)
	if err != nil {
		return err
	}
	o, err := cfg.dashboardOptions()
	if err != nil {
		return err
	}
	p, err := dashboards.NewProvisioner(g, ds, o, cfg.Log.Logger())
	if err != nil {
		return err
	}
	res, err := p.Provision(ctx)
	if res != nil {
		for _, o := range res.Objects {
			fmt.Printf("%-10s %-24s %s\n", o.Kind, o.UID, o.Outcome)
		}
	}
	return err
}

// readSecret returns the content of the file at path, without the
// surrounding white space.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
