package dashboards

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DataSources configures the provisioned data sources.
type DataSources struct {
	// ClickHouse server and database; the password is read by Grafana from
	// the environment variable PasswordEnv, so that no secret is written.
	Host, Database, User string
	Port                 int
	PasswordEnv          string
	Secure               bool
	// PrometheusURL, when set, provisions Prometheus for pipeline health.
	PrometheusURL string
}

// WriteTree writes a Grafana file-provisioning tree under dir:
// provisioning/datasources/opsmetrics.yaml,
// provisioning/dashboards/opsmetrics.yaml (a file provider reading
// dashboardsPath, the path Grafana will see the JSON files at), and
// dashboards/*.json, built with o. It returns the files written.
func WriteTree(dir, dashboardsPath string, ds DataSources, o Options) ([]string, error) {
	boards, err := All(o)
	if err != nil {
		return nil, err
	}
	var written []string
	write := func(rel string, b []byte) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		written = append(written, p)
		return nil
	}
	sources := []map[string]any{{
		"name": "opsmetrics ClickHouse", "uid": ClickHouseUID, "type": PluginID, "access": "proxy", "editable": false,
		"jsonData": map[string]any{"host": ds.Host, "port": ds.Port, "protocol": "native", "secure": ds.Secure,
			"username": ds.User, "defaultDatabase": ds.Database},
		"secureJsonData": map[string]any{"password": "${" + ds.PasswordEnv + "}"},
	}}
	if ds.PrometheusURL != "" {
		sources = append(sources, map[string]any{"name": "opsmetrics Prometheus", "uid": PrometheusUID, "type": "prometheus",
			"access": "proxy", "url": ds.PrometheusURL, "editable": false})
	}
	y, err := yaml.Marshal(map[string]any{"apiVersion": 1, "datasources": sources})
	if err != nil {
		return nil, err
	}
	if err := write("provisioning/datasources/opsmetrics.yaml", y); err != nil {
		return nil, err
	}
	y, err = yaml.Marshal(map[string]any{"apiVersion": 1, "providers": []map[string]any{{
		"name": "opsmetrics", "orgId": 1, "folder": "opsmetrics", "folderUid": FolderUID, "type": "file",
		"disableDeletion": false, "allowUiUpdates": false, "updateIntervalSeconds": 60,
		"options": map[string]any{"path": dashboardsPath},
	}}})
	if err != nil {
		return nil, err
	}
	if err := write("provisioning/dashboards/opsmetrics.yaml", y); err != nil {
		return nil, err
	}
	for _, d := range boards {
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := write(filepath.Join("dashboards", *d.Uid+".json"), append(b, '\n')); err != nil {
			return nil, fmt.Errorf("write dashboard %s: %w", *d.Uid, err)
		}
	}
	return written, nil
}

// DataSourcesFor builds the data sources from a ClickHouse DSN (empty: the
// defaults), the Prometheus URL and the environment variable Grafana reads
// the ClickHouse password from; the DSN's password is never used.
func DataSourcesFor(dsn, prometheusURL, passwordEnv string) (DataSources, error) {
	ds := DataSources{Host: "localhost", Port: 9000, Database: "default", User: "default",
		PasswordEnv: passwordEnv, PrometheusURL: prometheusURL}
	if dsn == "" {
		return ds, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return ds, fmt.Errorf("--clickhouse: %w", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "9000"
	}
	ds.Host = host
	if ds.Port, err = strconv.Atoi(port); err != nil {
		return ds, fmt.Errorf("--clickhouse: port %q: %w", port, err)
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		ds.Database = db
	}
	if u.User != nil && u.User.Username() != "" {
		ds.User = u.User.Username()
	}
	ds.Secure = u.Query().Get("secure") == "true"
	return ds, nil
}
