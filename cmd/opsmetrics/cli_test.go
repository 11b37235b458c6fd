package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// opsmetrics runs the built binary with args, without the caller's
// OPSMETRICS_ variables, and returns what it wrote to stdout and stderr and
// its exit code.
func opsmetrics(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPSMETRICS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run opsmetrics %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// TestHelpGoesToStdout: --help of the root, of every command and of every
// subcommand is on stdout with exit 0, and lists flags as --flag.
func TestHelpGoesToStdout(t *testing.T) {
	words := [][]string{{}, {"kpi", "explain"}, {"baselines", "learn"}, {"baselines", "show"},
		{"anomaly", "detect"}, {"anomaly", "score"}, {"dashboards", "build"}, {"dashboards", "provision"}, {"targets", "review"}, {"catalog", "check"}, {"catalog", "store"}, {"completion"}}
	for _, c := range commands {
		words = append(words, []string{c.name})
	}
	for _, w := range words {
		out, errOut, code := opsmetrics(t, append(w, "--help")...)
		name := strings.TrimSpace("opsmetrics " + strings.Join(w, " "))
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: opsmetrics") {
			t.Errorf("%s --help: exit %d, stderr %q, stdout:\n%s", name, code, errOut, out)
			continue
		}
		if len(w) == 0 {
			continue
		}
		if usage, _, _ := strings.Cut(out, "\n\n"); !strings.Contains(usage, name+" ") {
			t.Errorf("%s --help does not start with its usage:\n%s", name, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
				t.Errorf("%s --help shows a flag as -flag: %q", name, line)
			}
		}
		wantFlags := len(w) == 2 || (w[0] != "baselines" && w[0] != "anomaly" && w[0] != "dashboards" && w[0] != "targets" && w[0] != "catalog" && w[0] != "completion")
		if hasFlags := strings.Contains(out, "\nFlags:\n  --"); hasFlags != wantFlags {
			t.Errorf("%s --help lists flags: %v, want %v:\n%s", name, hasFlags, wantFlags, out)
		}
	}
	if out, _, code := opsmetrics(t, "kpi", "explain", "--help"); code != 0 || !strings.Contains(out, "  --service") {
		t.Errorf("kpi explain --help does not list --service (exit %d):\n%s", code, out)
	}
	if out, errOut, code := opsmetrics(t); code != exitUsage || out != "" || !strings.Contains(errOut, "Commands:") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
}

// TestVersion: --version prints what the Go toolchain recorded in the
// binary, read here with debug/buildinfo: the module version, the commit
// (or that none was recorded) and the Go release.
func TestVersion(t *testing.T) {
	out, _, code := opsmetrics(t, "--version")
	bi, err := buildinfo.ReadFile(testenv.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	want := "commit unknown"
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			want = "commit " + s.Value
		}
	}
	if code != 0 || !strings.HasPrefix(out, "opsmetrics "+bi.Main.Version+" ") || !strings.Contains(out, want) || !strings.HasSuffix(out, ", "+bi.GoVersion+"\n") {
		t.Errorf("--version: exit %d: %q, want the module version %s, %q and %s", code, out, bi.Main.Version, want, bi.GoVersion)
	}
}

// TestVersionFromMake: the commit the Makefile passes with -ldflags (it
// builds with -X main.commit=$(COMMIT)) is printed whatever the toolchain
// recorded, with its -dirty marker read as local changes.
func TestVersionFromMake(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ commit, want string }{
		{"0123abc", "commit 0123abc, "},
		{"0123abc-dirty", "commit 0123abc with local changes, "},
	} {
		bin := filepath.Join(dir, "opsmetrics-"+c.commit)
		build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X main.commit="+c.commit, "-o", bin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || !strings.HasPrefix(string(out), "opsmetrics ") || !strings.Contains(string(out), c.want) {
			t.Errorf("built with commit %s, --version: %q (%v), want %q", c.commit, out, err, c.want)
		}
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil || !strings.Contains(string(mk), `-ldflags "-X main.commit=$(COMMIT)"`) {
		t.Errorf("the Makefile does not build with -X main.commit=$(COMMIT) (%v)", err)
	}
}

// TestUsageErrors: every usage error exits 2 with a message on stderr that
// says what is wrong and, for names, which ones are valid: an unknown
// command, flag or name, a missing setting, and a value that fails to parse
// or to validate, which names the flag that gave it (or the file's field).
func TestUsageErrors(t *testing.T) {
	dsn := testenv.Database(t)
	unreachable := "clickhouse://127.0.0.1:1/db" // never dialled: the values fail first
	badFile := filepath.Join("testdata", "config", "bad-batch-size.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"kpii"}, `did you mean "kpi"?`},
		{[]string{"baseline"}, `did you mean "baselines"?`},
		{[]string{"serv"}, `did you mean "serve"?`},
		{[]string{"kpi", "--nope"}, "flag provided but not defined: --nope"},
		{[]string{"kpi", "--clickhouse", dsn, "--bucket", "hour"}, "--bucket: unknown bucket \"hour\": want day, week or month"},
		{[]string{"kpi", "--clickhouse", dsn, "--format", "xml"}, "want table, json or csv"},
		{[]string{"kpi", "--clickhouse", dsn, "--by", "region"}, "want service, team, environment, system or tier"},
		{[]string{"kpi", "--clickhouse", dsn, "--dora-report", "1999"}, "--dora-report:"},
		{[]string{"kpi", "explain", "vibes", "--clickhouse", dsn}, "unknown KPI \"vibes\": want one of deployment_frequency, change_failure_rate"},
		{[]string{"kpi", "explain"}, "KPI is one of deployment_frequency"},
		{[]string{"kpi", "explain", "mttr", "--format", "json"}, "flag provided but not defined: --format\nRun 'opsmetrics kpi explain --help' for usage."},
		{[]string{"kpi"}, "clickhouse: required (--clickhouse or OPSMETRICS_CLICKHOUSE)"},
		{[]string{"baselines", "show", "--clickhouse", dsn, "--kpi", "nope"}, "unknown KPI \"nope\": the baselined ones are deployments, incidents"},
		{[]string{"baselines", "show", "--clickhouse", dsn, "--status", "weird"}, "unknown status \"weird\": want ready or learning"},
		{[]string{"baselines", "show", "--clickhouse", dsn, "--step", "week"}, "unknown step \"week\""},
		{[]string{"baselines", "lern"}, "unknown subcommand \"lern\""},
		{[]string{"report", "--clickhouse", dsn}, "--out is required"},
		{[]string{"migrate", "--print"}, "--print needs --cluster"},
		{[]string{"generate", "--days", "many"}, "invalid value \"many\" for flag --days: want an integer"},
		{[]string{"generate", "--services", "-1", "--out", os.DevNull}, "--services: must be > 0, got -1"},
		{[]string{"generate", "--format", "xml", "--out", os.DevNull}, "--format: want native, cloudevents, cdevents or mixed, got \"xml\""},
		{[]string{"demo", "--keep=maybe"}, "invalid boolean value \"maybe\" for --keep: want true or false"},
		{[]string{"ingest", "--until-idle", "5x"}, "invalid value \"5x\" for flag --until-idle: want a duration like 500ms"},
		{[]string{"ingest", "--clickhouse", unreachable, "--brokers", "b:1", "--memory-budget", "abc"},
			"invalid value \"abc\" for flag --memory-budget: want a size like 268435456, 256MiB or 1GiB, got \"abc\""},
		{[]string{"ingest", "--clickhouse", unreachable, "--brokers", "b:1", "--memory-budget", "100MiB"}, "--memory-budget: must be at least 128 MiB"},
		{[]string{"ingest", "--clickhouse", unreachable, "--brokers", "b:1", "--batch-size", "-1"}, "--batch-size: must be > 0, got -1"},
		{[]string{"ingest", "--clickhouse", unreachable, "--brokers", "kafka"}, "--brokers: want host:port, got \"kafka\""},
		{[]string{"ingest", "--clickhouse", unreachable, "--brokers", "b:1", "--log-level", "loud"}, "--log-level: want debug, info, warn or error, got \"loud\""},
		{[]string{"migrate", "--clickhouse", "postgres://x"}, "--clickhouse: want clickhouse://user:pass@host:port/db, got \"postgres://x\""},
		{[]string{"kpi", "--clickhouse", unreachable, "--tz", "Nowhere/City"}, "--tz: unknown time zone \"Nowhere/City\""},
		{[]string{"report", "--clickhouse", unreachable, "--tz", "Nowhere/City", "--out", os.DevNull}, "--tz: unknown time zone \"Nowhere/City\""},
		{[]string{"serve", "--clickhouse", unreachable, "--components", "api", "--kpi-refresh", "1ms"}, "--kpi-refresh: must be at least 1s"},
		{[]string{"serve", "--clickhouse", unreachable, "--alertmanager", "ftp://am"}, "--alertmanager: want an http(s) URL"},
		{[]string{"baselines", "learn", "--clickhouse", unreachable, "--at", "yesterday"}, "--at: want a date (2006-01-02) or an RFC 3339 time, got \"yesterday\"\nRun 'opsmetrics baselines learn --help' for usage."},
		{[]string{"anomaly", "detect", "--clickhouse", unreachable, "--from", "2026-03-05", "--to", "2026-03-01"}, "--from 2026-03-05 is not before --to"},
		{[]string{"anomaly", "score", "--in", "-", "--kind", "foo"}, "--kind: unknown kind \"foo\": want count, rate, duration, dense, auto"},
		{[]string{"anomaly", "score", "--in", "-", "--season", "-3"}, "--season: want a number of intervals, auto or none, got \"-3\""},
		{[]string{"anomaly", "score"}, "--in is required"},
		// The configuration file: its field, and exit 2 too.
		{[]string{"ingest", "--clickhouse", unreachable, "--brokers", "b:1", "--config", badFile}, "config: ingest.batch_size: must be > 0, got -5"},
		{[]string{"kpi", "--config", "nosuch.yaml"}, "config: open nosuch.yaml: no such file or directory"},
		{[]string{"kpi", "--config", filepath.Join("testdata", "config", "bad-unknown-key.yaml")}, "field batchsize not found"},
		{[]string{"kpi", "--clickhouse", dsn, "checkout"}, "unexpected argument \"checkout\""},
	} {
		out, errOut, code := opsmetrics(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("opsmetrics %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
}

// TestReadCommandsNeedTheSchema: no command but migrate changes the
// schema. On a database that does not exist, and on one without the
// schema, each command that reads it fails saying to run migrate, and
// creates nothing; after migrate, they work.
func TestReadCommandsNeedTheSchema(t *testing.T) {
	srv := testenv.ClickHouse(t)
	root := testenv.Store(t, srv.DSN("default"))
	ctx := context.Background()
	empty := "t_" + testenv.RandomName()
	if err := root.Conn().Exec(ctx, "CREATE DATABASE "+empty); err != nil {
		t.Fatal(err)
	}
	missing := "t_" + testenv.RandomName()
	out := filepath.Join(t.TempDir(), "report.html")
	commands := [][]string{
		{"kpi"}, {"kpi", "explain", "change_failure_rate"}, {"report", "--out", out},
		{"baselines", "learn"}, {"baselines", "show"}, {"anomaly", "detect"}, {"targets", "review"},
	}
	for _, db := range []string{missing, empty} {
		for _, args := range commands {
			args = append(args, "--clickhouse", srv.DSN(db))
			_, errOut, code := opsmetrics(t, args...)
			if code != exitFailure || !strings.Contains(errOut, "run `opsmetrics migrate` with the same --clickhouse first") {
				t.Errorf("opsmetrics %s: exit %d, stderr %q; want exit 1 saying to run migrate", strings.Join(args, " "), code, errOut)
			}
		}
	}
	if n := testenv.Count(t, root, "SELECT count() FROM system.databases WHERE name = ?", missing); n != 0 {
		t.Errorf("a command created database %s", missing)
	}
	if n := testenv.Count(t, root, "SELECT count() FROM system.tables WHERE database = ?", empty); n != 0 {
		t.Errorf("commands created %d tables in database %s", n, empty)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("report wrote %s without a schema", out)
	}
	if stdout, errOut, code := opsmetrics(t, "migrate", "--clickhouse", srv.DSN(missing)); code != 0 || !strings.Contains(stdout, "schema at version") {
		t.Fatalf("migrate: exit %d: %s%s", code, stdout, errOut)
	}
	for _, args := range commands {
		args = append(args, "--clickhouse", srv.DSN(missing))
		if _, errOut, code := opsmetrics(t, args...); code != 0 {
			t.Errorf("after migrate, opsmetrics %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
	}
}

// TestUnknownSliceIsANote: a team, service or environment without data is
// no error, but stderr says so; one with data gets no note.
func TestUnknownSliceIsANote(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if err := st.Write(context.Background(), []store.Record{{Event: &event.Event{Kind: event.KindDeployment, ID: "d1", Time: t0,
		Deployment: &event.Deployment{ID: "d1", Service: "checkout", Team: "payments", Environment: "production",
			Status: event.DeploymentSuccess, FinishedAt: t0}}}}, nil); err != nil {
		t.Fatal(err)
	}
	rng := []string{"--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03"}
	_, errOut, code := opsmetrics(t, append([]string{"kpi", "--team", "nosuchteam,payments", "--service", "checkout"}, rng...)...)
	if code != 0 || !strings.Contains(errOut, "no data for team nosuchteam in range 2026-03-01T00:00:00Z to 2026-03-03T00:00:00Z") ||
		strings.Contains(errOut, "payments") || strings.Contains(errOut, "checkout") {
		t.Errorf("kpi --team nosuchteam,payments: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = opsmetrics(t, append([]string{"kpi", "explain", "change_failure_rate", "--service", "nosuchservice"}, rng...)...)
	if code != 0 || !strings.Contains(errOut, "no data for service nosuchservice in range") {
		t.Errorf("kpi explain --service nosuchservice: exit %d, stderr %q", code, errOut)
	}
	if out, errOut, code := opsmetrics(t, "baselines", "learn", "--clickhouse", dsn, "--at", "2026-03-03"); code != 0 {
		t.Fatalf("baselines learn: exit %d: %s%s", code, out, errOut)
	}
	out, errOut, code := opsmetrics(t, "baselines", "show", "--clickhouse", dsn, "--team", "nosuchteam")
	if code != 0 || !strings.Contains(errOut, "note: no baselines for team nosuchteam") {
		t.Errorf("baselines show --team nosuchteam: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if _, errOut, code := opsmetrics(t, "baselines", "show", "--clickhouse", dsn, "--team", "payments", "--service", "checkout"); code != 0 || errOut != "" {
		t.Errorf("baselines show --team payments --service checkout: exit %d, stderr %q", code, errOut)
	}
}

// TestServeWithoutMigrate: serve --migrate=false leaves the schema alone:
// on an unmigrated database it is not ready and says to run migrate, and
// once migrate has run it becomes ready.
func TestServeWithoutMigrate(t *testing.T) {
	srv := testenv.ClickHouse(t)
	db := "t_" + testenv.RandomName()
	listen := freeAddr(t)
	_, _, logs := startOpsmetrics(t, nil, "serve", "--components", "api", "--migrate=false",
		"--clickhouse", srv.DSN(db), "--listen", listen)
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 30*time.Second, "/readyz says to run migrate", func() (bool, string) {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "run `opsmetrics migrate`"), fmt.Sprintf("%d %s\n%s", code, body, logs)
	})
	root := testenv.Store(t, srv.DSN("default"))
	if n := testenv.Count(t, root, "SELECT count() FROM system.databases WHERE name = ?", db); n != 0 {
		t.Errorf("serve --migrate=false created database %s", db)
	}
	if out, errOut, code := opsmetrics(t, "migrate", "--clickhouse", srv.DSN(db)); code != 0 {
		t.Fatalf("migrate: exit %d: %s%s", code, out, errOut)
	}
	testenv.Eventually(t, 60*time.Second, "ready after migrate", func() (bool, string) {
		code, body := readyz()
		return code == http.StatusOK, fmt.Sprintf("%d %s\n%s", code, body, logs)
	})
}

// TestKPIOutputCarriesItsContext: the table, and kpi explain's, start with
// its range and time zone, and the table marks partial buckets; JSON bucket times carry --tz's offset as
// from and to do; CSV carries the comparison, the levels and the patch
// KPIs that JSON carries.
func TestKPIOutputCarriesItsContext(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	t0 := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) // a Wednesday
	var recs []store.Record
	for i, id := range []string{"d1", "d2", "d3"} {
		at := t0.Add(time.Duration(i) * 72 * time.Hour)
		recs = append(recs, store.Record{Offset: int64(i), Event: &event.Event{Kind: event.KindDeployment, ID: id, Time: at,
			Deployment: &event.Deployment{ID: id, Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: at}}})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	rng := []string{"kpi", "--clickhouse", dsn, "--from", "2026-03-04", "--to", "2026-03-17", "--bucket", "week", "--tz", "Europe/Berlin"}
	table, errOut, code := opsmetrics(t, rng...)
	if code != 0 || !strings.HasPrefix(table, "2026-03-04 00:00 to 2026-03-17 00:00 (end exclusive), time zone Europe/Berlin\n") ||
		!strings.Contains(table, "2026-03-04*") || !strings.Contains(table, "2026-03-16*") || strings.Contains(table, "2026-03-09*") ||
		!strings.Contains(table, "* partial week: the range covers only part of it") || !strings.Contains(table, "(patches)") {
		t.Errorf("kpi table (exit %d, %s):\n%s", code, errOut, table)
	}
	// kpi explain heads its rows with the same line, and shows their times
	// in that zone.
	explain, errOut, code := opsmetrics(t, "kpi", "explain", "deployment_frequency", "--clickhouse", dsn,
		"--from", "2026-03-04", "--to", "2026-03-17", "--tz", "Europe/Berlin")
	if code != 0 || !strings.HasPrefix(explain, "2026-03-04 00:00 to 2026-03-17 00:00 (end exclusive), time zone Europe/Berlin\n\ndeployment_frequency = ") ||
		!strings.Contains(explain, " 2026-03-04 13:00 ") { // d1 finished at 12:00 UTC
		t.Errorf("kpi explain (exit %d, %s):\n%s", code, errOut, explain)
	}
	js, _, code := opsmetrics(t, append(rng, "--format", "json")...)
	var doc struct {
		From      string `json:"from"`
		Summaries []struct {
			Bucket  string `json:"bucket"`
			Partial bool   `json:"partial"`
		} `json:"summaries"`
	}
	if err := json.Unmarshal([]byte(js), &doc); code != 0 || err != nil || len(doc.Summaries) != 3 {
		t.Fatalf("kpi json (exit %d, %v):\n%s", code, err, js)
	}
	if doc.From != "2026-03-04T00:00:00+01:00" || doc.Summaries[1].Bucket != "2026-03-09T00:00:00+01:00" ||
		!doc.Summaries[0].Partial || doc.Summaries[1].Partial || !doc.Summaries[2].Partial {
		t.Errorf("kpi json: from %s, buckets %+v; want Berlin offsets and the edge weeks partial", doc.From, doc.Summaries)
	}
	out, _, code := opsmetrics(t, append(rng, "--format", "csv", "--compare")...)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 4 {
		t.Fatalf("kpi csv (exit %d, %v):\n%s", code, err, out)
	}
	for _, col := range []string{"week", "partial", "bucket_end", "deployments", "previous.deployments", "dora_levels.deployment_frequency",
		"patches_released", "patch_compliance", "mttr_median_seconds"} {
		if !slices.Contains(rows[0], col) {
			t.Errorf("kpi csv has no column %s: %q", col, rows[0])
		}
	}
}

// TestLongJobsSayWhatTheyDid: report checks --out before anything else;
// ingest --until-idle ends with its counts; produce against a dead broker
// says how many events got through; progress shows on a terminal only.
func TestLongJobsSayWhatTheyDid(t *testing.T) {
	srv := testenv.ClickHouse(t)
	_, errOut, code := opsmetrics(t, "report", "--clickhouse", srv.DSN("t_"+testenv.RandomName()), "--out", filepath.Join(t.TempDir(), "no", "r.html"))
	if code != exitFailure || !strings.Contains(errOut, "cannot write there") || strings.Contains(errOut, "migrate") {
		t.Errorf("report to a missing directory: exit %d, stderr %q; want the --out error before the schema's", code, errOut)
	}

	file := filepath.Join(t.TempDir(), "events.jsonl")
	if code := run([]string{"generate", "--services", "2", "--days", "3", "--end", "2026-03-01", "--out", file}); code != 0 {
		t.Fatalf("generate: exit %d", code)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Count(b, []byte("\n"))
	_, errOut, code = opsmetrics(t, "produce", "--brokers", "127.0.0.1:1", "--file", file)
	if code != exitFailure || !strings.Contains(errOut, "0 events acknowledged by the brokers, then:") {
		t.Errorf("produce to a dead broker: exit %d, stderr %q", code, errOut)
	}

	topics := broker.DefaultTopics()
	_, brokers := testenv.Kafka(t, 2, append(topics.Inputs(), topics.DeadLetter)...)
	if _, errOut, code := opsmetrics(t, "produce", "--brokers", brokers[0], "--file", file); code != 0 ||
		!strings.Contains(errOut, fmt.Sprintf("produced %d events", lines)) || strings.Contains(errOut, "\r") {
		t.Fatalf("produce: exit %d, stderr %q", code, errOut)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers[0]), Topic: topics.Deployments}
	if err := w.WriteMessages(context.Background(), kafka.Message{Value: []byte("not an event")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	dsn := testenv.Database(t)
	out, errOut, code := opsmetrics(t, "ingest", "--clickhouse", dsn, "--brokers", brokers[0], "--until-idle", "2s")
	// The counts, then the KPI rollup built of what was stored.
	want := fmt.Sprintf("stored %d events, dead-lettered 1 messages, skipped 0 (of %d consumed)\nkpi rollup: built ", lines, lines+1)
	if code != 0 || !strings.HasPrefix(out, want) || strings.Contains(errOut, "\r") {
		t.Errorf("ingest --until-idle: exit %d, stdout %q, want %q; stderr:\n%s", code, out, want, errOut)
	}
	// The KPIs read next come from that rollup, and say so.
	if out, errOut, code := opsmetrics(t, "kpi", "--clickhouse", dsn); code != 0 || !strings.Contains(out, "from the KPI rollup built ") {
		t.Errorf("kpi after ingest --until-idle: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// On a terminal (script(1) gives the command one), report shows that
	// it is working.
	page := filepath.Join(t.TempDir(), "r.html")
	cmd := exec.Command("script", "-qec", testenv.Binary(t)+" report --clickhouse "+dsn+" --from 2026-02-20 --to 2026-03-01 --out "+page, os.DevNull)
	tty, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(tty), "computing the report") {
		t.Errorf("report on a terminal: %v, no progress shown:\n%q", err, tty)
	}
	if _, err := os.Stat(page); err != nil {
		t.Errorf("report on a terminal: %v", err)
	}
}

// TestCompletion runs the bash completion script in bash: commands,
// subcommands and each one's flags complete.
func TestCompletion(t *testing.T) {
	bin := testenv.Binary(t)
	for _, c := range []struct {
		words []string // the last is the word being completed
		want  string
	}{
		{[]string{"kp"}, "kpi"},
		{[]string{"baselines", ""}, "learn show"},
		{[]string{"baselines", "show", "--st"}, "--status --step"},
		{[]string{"kpi", "--buc"}, "--bucket"},
		{[]string{"kpi", "explain", "--serv"}, "--service"},
		{[]string{"serve", "--migr"}, "--migrate"},
		{[]string{"completion", ""}, "bash zsh"},
	} {
		words := "opsmetrics"
		for _, w := range c.words {
			words += fmt.Sprintf(" %q", w)
		}
		script := fmt.Sprintf(`source <(%s completion bash) && COMP_WORDS=(%s) && COMP_CWORD=%d && _opsmetrics && echo "${COMPREPLY[*]}"`,
			bin, words, len(c.words))
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
			t.Errorf("completing %q: %q (%v), want %q", c.words, got, err, c.want)
		}
	}
	if out, _, code := opsmetrics(t, "completion", "zsh"); code != 0 || !strings.HasPrefix(out, "#compdef opsmetrics\n") || !strings.Contains(out, "bashcompinit") {
		t.Errorf("completion zsh: exit %d:\n%.200s", code, out)
	}
	if _, errOut, code := opsmetrics(t, "completion", "fish"); code != exitUsage || !strings.Contains(errOut, "bash|zsh") {
		t.Errorf("completion fish: exit %d, %q", code, errOut)
	}
}
