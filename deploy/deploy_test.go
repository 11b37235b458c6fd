package deploy_test

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests check what can be checked without Docker or a cluster. Those
// that need the binary build it (cli_test.go); the others read the files
// only, so that a broken build does not hide a broken manifest.

func TestYAMLFilesParse(t *testing.T) {
	files := yamlFiles(t)
	if len(files) < 10 {
		t.Fatalf("found %d YAML files under deploy/, want the compose, Prometheus, Alertmanager and Kubernetes files: %q", len(files), files)
	}
	for _, f := range files {
		docs, err := yamlDocs(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", f)
		}
	}
}

func TestKubernetesObjectsAreComplete(t *testing.T) {
	var k kustomizationFile
	decodeFile(t, kustomization, &k)
	seen := map[string]string{}
	for _, o := range k8sManifests(t) {
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: object with apiVersion %q, kind %q, metadata.name %q: all three are required", o.file, o.APIVersion, o.Kind, o.Metadata.Name)
			continue
		}
		id := o.Kind + "/" + o.Metadata.Name
		if f, dup := seen[id]; dup {
			t.Errorf("%s: %s is also defined in %s", o.file, id, f)
		}
		seen[id] = o.file
		switch {
		case o.Kind == "Namespace":
			if k.Namespace != "" && o.Metadata.Name != k.Namespace {
				t.Errorf("%v: the kustomization puts everything in namespace %q", o, k.Namespace)
			}
		case k.Namespace != "" && o.Metadata.Namespace != "" && o.Metadata.Namespace != k.Namespace:
			t.Errorf("%v: namespace %q, but the kustomization sets %q", o, o.Metadata.Namespace, k.Namespace)
		}
	}
	if k.Namespace != "" && seen["Namespace/"+k.Namespace] == "" {
		t.Errorf("no manifest creates the namespace %q the kustomization uses", k.Namespace)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	var k kustomizationFile
	decodeFile(t, kustomization, &k)
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if f != kustomization {
			want = append(want, filepath.Base(f))
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s resources = %q, want exactly the manifests in %s/: %q", kustomization, got, k8sDir, want)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: the kustomization is not built")
	}
	out, err := exec.Command(kubectl, "kustomize", k8sDir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", k8sDir, err, out)
	}
	var objects int
	for _, o := range k8sManifests(t) {
		objects++
		if !bytes.Contains(out, []byte("name: "+o.Metadata.Name+"\n")) {
			t.Errorf("kubectl kustomize output lacks %v", o)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^kind: `).FindAll(out, -1)); n != objects {
		t.Errorf("kubectl kustomize rendered %d objects, want the %d of the manifests", n, objects)
	}
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	longRunning := []string{"kafka", "clickhouse", "grafana", "alertmanager", "prometheus", "opsmetrics"}
	oneShots := []string{"opsmetrics-migrate", "dashboards", "demo-events"}
	for _, name := range longRunning {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("no compose service %q", name)
			continue
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("service %s: restart %q: a long-running service should restart (unless-stopped)", name, s.Restart)
		}
	}
	for _, name := range oneShots {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("no compose one-shot service %q", name)
			continue
		}
		if s.Restart != "" && s.Restart != "no" {
			t.Errorf("service %s: restart %q: a one-shot must not restart", name, s.Restart)
		}
	}
	// Images with a shell and a client to probe with.
	for _, name := range []string{"kafka", "clickhouse", "grafana", "alertmanager", "prometheus"} {
		if s, ok := c.Services[name]; ok && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			t.Errorf("service %s: no healthcheck", name)
		}
	}
	for dependent, dependency := range map[string]string{"grafana": "dashboards", "opsmetrics": "opsmetrics-migrate"} {
		if got := c.Services[dependent].DependsOn[dependency].Condition; got != "service_completed_successfully" {
			t.Errorf("service %s: depends_on %s with condition %q, want service_completed_successfully", dependent, dependency, got)
		}
	}

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		for _, dep := range sortedKeys(s.DependsOn) {
			target, ok := c.Services[dep]
			cond := s.DependsOn[dep].Condition
			switch {
			case !ok:
				t.Errorf("service %s: depends_on %q, which is no service", name, dep)
			case cond == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("service %s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			case cond == "service_completed_successfully" && target.Restart != "" && target.Restart != "no":
				t.Errorf("service %s: waits for %s to complete, but %s restarts (%s)", name, dep, dep, target.Restart)
			case cond != "service_started" && cond != "service_healthy" && cond != "service_completed_successfully":
				t.Errorf("service %s: depends_on %s: unknown condition %q", name, dep, cond)
			}
		}
		if s.Image == "" {
			t.Errorf("service %s: no image (a built service needs one too, to name what it builds)", name)
		}
		if s.Build != nil {
			ctx := filepath.Join(filepath.Dir(composeFile), s.Build.Context)
			if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
				t.Errorf("service %s: build context %s is not the module root: %v", name, s.Build.Context, err)
			}
			if _, err := os.Stat(filepath.Join(ctx, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: dockerfile: %v", name, err)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s: port %q is published on every interface: bind it to 127.0.0.1", name, p)
			}
		}
		for _, v := range s.Volumes {
			m := parseComposeMount(v)
			if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") {
				if _, err := os.Stat(filepath.Join(filepath.Dir(composeFile), m.source)); err != nil {
					t.Errorf("service %s: bind mount %q: %v", name, v, err)
				}
			} else if _, ok := c.Volumes[m.source]; !ok {
				t.Errorf("service %s: volume %q is not declared under volumes:", name, m.source)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("service %s: secret %q is not declared under secrets:", name, sec)
			}
		}
		for _, str := range s.strings() {
			for _, m := range runSecretRE.FindAllStringSubmatch(str, -1) {
				if !slices.Contains(s.Secrets, m[1]) {
					t.Errorf("service %s: reads %s but does not mount the secret %q", name, m[0], m[1])
				}
			}
		}
		for _, k := range sortedKeys(s.Environment) {
			if strings.HasSuffix(k, "_FILE") && !runSecretRE.MatchString(s.Environment[k]) {
				t.Errorf("service %s: %s=%s is not a secret under /run/secrets", name, k, s.Environment[k])
			}
		}
		if s.runsOpsmetrics() && len(s.Command) > 0 && s.Command[0] == "serve" {
			grace, err := time.ParseDuration(s.StopGracePeriod)
			shutdown, err2 := shutdownTimeout(s.Command)
			if err != nil || err2 != nil || grace <= shutdown {
				t.Errorf("service %s: stop_grace_period %q must exceed --shutdown-timeout (%v), or the final flush is killed", name, s.StopGracePeriod, shutdown)
			}
		}
	}
	for _, name := range sortedKeys(c.Secrets) {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(composeFile), c.Secrets[name].File))
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("secret %s: file %q must exist and not be empty (err: %v)", name, c.Secrets[name].File, err)
		}
	}
}

// composeServe returns the compose service that runs opsmetrics serve.
func composeServe(t *testing.T, c compose) (string, composeService) {
	t.Helper()
	for _, name := range sortedKeys(c.Services) {
		if s := c.Services[name]; s.runsOpsmetrics() && len(s.Command) > 0 && s.Command[0] == "serve" {
			return name, s
		}
	}
	t.Fatal("no compose service runs opsmetrics serve")
	return "", composeService{}
}

func readSecret(t *testing.T, c compose, name string) string {
	t.Helper()
	sec, ok := c.Secrets[name]
	if !ok {
		t.Fatalf("no compose secret %q", name)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(composeFile), sec.File))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestComposeWiring(t *testing.T) {
	c := loadCompose(t)
	serveName, serve := composeServe(t, c)

	t.Run("kafka advertises the brokers opsmetrics uses", func(t *testing.T) {
		advertised := map[string]bool{}
		for _, l := range strings.Split(c.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"], ",") {
			// NAME://host:port; listener names such as PLAINTEXT_HOST are no URL schemes.
			if _, hostPort, ok := strings.Cut(strings.TrimSpace(l), "://"); ok {
				advertised[hostPort] = true
			}
		}
		for _, name := range sortedKeys(c.Services) {
			s := c.Services[name]
			if !s.runsOpsmetrics() {
				continue
			}
			brokers, ok := flagValue(s.Command, "brokers")
			if !ok {
				continue
			}
			for _, b := range strings.Split(brokers, ",") {
				if !advertised[b] {
					t.Errorf("service %s: broker %s is not among kafka's KAFKA_ADVERTISED_LISTENERS %v", name, b, sortedKeys(advertised))
				}
			}
		}
	})

	t.Run("the ClickHouse DSN matches the server", func(t *testing.T) {
		ch := c.Services["clickhouse"]
		var passwordSecret string
		for _, str := range ch.strings() {
			if m := runSecretRE.FindStringSubmatch(str); m != nil {
				passwordSecret = m[1]
			}
		}
		if passwordSecret == "" {
			t.Fatal("service clickhouse reads its password from no secret")
		}
		password := readSecret(t, c, passwordSecret)
		checkDSN := func(where, dsn string, wantPassword bool) {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Errorf("%s: DSN does not parse: %v", where, err)
				return
			}
			got, hasPassword := u.User.Password()
			switch {
			case u.Scheme != "clickhouse" || u.Hostname() != "clickhouse" || u.Port() != "9000":
				t.Errorf("%s: DSN %s: want clickhouse://USER:PASSWORD@clickhouse:9000/DB", where, u.Redacted())
			case u.User.Username() != ch.Environment["CLICKHOUSE_USER"]:
				t.Errorf("%s: DSN user %q, the server creates %q (CLICKHOUSE_USER)", where, u.User.Username(), ch.Environment["CLICKHOUSE_USER"])
			case strings.Trim(u.Path, "/") != ch.Environment["CLICKHOUSE_DB"]:
				t.Errorf("%s: DSN database %q, the server creates %q (CLICKHOUSE_DB)", where, u.Path, ch.Environment["CLICKHOUSE_DB"])
			case wantPassword && got != password:
				t.Errorf("%s: DSN password differs from the secret %s the server uses", where, passwordSecret)
			case !wantPassword && hasPassword:
				t.Errorf("%s: DSN carries a password, which would end up in a file", where)
			}
		}
		for _, name := range sortedKeys(c.Services) {
			s := c.Services[name]
			if f, ok := s.Environment["OPSMETRICS_CLICKHOUSE_FILE"]; ok {
				m := runSecretRE.FindStringSubmatch(f)
				if m == nil {
					continue // TestComposeServices reports it
				}
				checkDSN("service "+name+" ("+m[1]+")", readSecret(t, c, m[1]), true)
			}
			if dsn, ok := flagValue(s.Command, "clickhouse"); ok && s.runsOpsmetrics() {
				checkDSN("service "+name+" --clickhouse", dsn, false)
			}
		}
	})

	t.Run("Grafana mounts the tree dashboards build writes", func(t *testing.T) {
		d, g := c.Services["dashboards"], c.Services["grafana"]
		if len(d.Command) < 2 || d.Command[0] != "dashboards" || d.Command[1] != "build" {
			t.Fatalf("service dashboards: command %q, want dashboards build ...", d.Command)
		}
		out, _ := flagValue(d.Command, "out")
		var volume string
		for _, v := range d.Volumes {
			if m := parseComposeMount(v); m.target == out && out != "" {
				volume = m.source
			}
		}
		if volume == "" {
			t.Fatalf("service dashboards: --out %q is on no volume", out)
		}
		at, ok := g.mount(volume)
		if !ok {
			t.Fatalf("service grafana does not mount volume %s, where dashboards writes the tree", volume)
		}
		if got, want := g.Environment["GF_PATHS_PROVISIONING"], at+"/provisioning"; got != want {
			t.Errorf("grafana: GF_PATHS_PROVISIONING = %q, want %q", got, want)
		}
		if got, want := firstValue(d.Command, "dashboards-path"), at+"/dashboards"; got != want {
			t.Errorf("dashboards: --dashboards-path = %q, want %q, where Grafana sees the JSON files", got, want)
		}
		if env := firstValue(d.Command, "password-env"); env == "" || !regexp.MustCompile(`\b`+regexp.QuoteMeta(env)+`\b`).MatchString(strings.Join(g.strings(), " ")) {
			t.Errorf("dashboards: --password-env %q: grafana sets no such variable", env)
		}
		if u, err := url.Parse(firstValue(d.Command, "prometheus-url")); err != nil || c.Services[u.Hostname()].Image == "" ||
			!strings.HasPrefix(c.Services[u.Hostname()].Image, "prom/prometheus:") {
			t.Errorf("dashboards: --prometheus-url %q is not the prometheus service", firstValue(d.Command, "prometheus-url"))
		}
	})

	t.Run("opsmetrics sends alerts to the alertmanager service", func(t *testing.T) {
		am, ok := flagValue(serve.Command, "alertmanager")
		if !ok {
			am = serve.Environment["OPSMETRICS_ALERTMANAGER"]
		}
		u, err := url.Parse(am)
		if err != nil || !strings.HasPrefix(c.Services[u.Hostname()].Image, "prom/alertmanager:") || u.Port() != "9093" {
			t.Errorf("service %s: --alertmanager %q, want http://alertmanager:9093", serveName, am)
		}
	})
}

// firstValue is flagValue without the found flag.
func firstValue(args []string, name string) string {
	v, _ := flagValue(args, name)
	return v
}

// port is the port of a listen address such as :9464 or 127.0.0.1:8080.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return p
}

func TestPrometheusScrapesOpsmetrics(t *testing.T) {
	c := loadCompose(t)
	name, serve := composeServe(t, c)
	addr, ok := flagValue(serve.Command, "metrics-addr")
	if !ok {
		t.Fatalf("service %s: no --metrics-addr: /metrics is off", name)
	}
	target := net.JoinHostPort(name, port(t, addr))

	const path = "compose/prometheus.yml"
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeFile(t, path, &cfg)
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, target) {
				found = true
				if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
					t.Errorf("%s: job %s scrapes %s, opsmetrics serves /metrics", path, sc.JobName, sc.MetricsPath)
				}
			}
		}
	}
	if !found {
		t.Errorf("%s: no job scrapes %s (service %s, --metrics-addr %s)", path, target, name, addr)
	}
	if at, ok := c.Services["prometheus"].mount("./prometheus.yml"); !ok || at != "/etc/prometheus/prometheus.yml" {
		t.Errorf("service prometheus: mounts ./prometheus.yml at %q, want /etc/prometheus/prometheus.yml", at)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): the configuration is not checked")
	}
	if out, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check config %s: %v\n%s", path, err, out)
	}
}

func TestAlertmanagerConfig(t *testing.T) {
	const path = "compose/alertmanager.yml"
	if at, ok := loadCompose(t).Services["alertmanager"].mount("./alertmanager.yml"); !ok || at != "/etc/alertmanager/alertmanager.yml" {
		t.Errorf("service alertmanager: mounts ./alertmanager.yml at %q, want /etc/alertmanager/alertmanager.yml", at)
	}
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Skip("amtool not installed (Debian package prometheus-alertmanager): the configuration is not checked")
	}
	if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
		t.Errorf("amtool check-config %s: %v\n%s", path, err, out)
	}
}

// mountedKey checks that path, as a container sees it, is a key of a
// ConfigMap or Secret mounted into the container.
func mountedKey(t *testing.T, objs []k8sObject, spec podSpec, c container, path string) string {
	t.Helper()
	best := -1
	for i, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/")
		if (path == dir || strings.HasPrefix(path, dir+"/")) && (best < 0 || len(dir) > len(c.VolumeMounts[best].MountPath)) {
			best = i
		}
	}
	if best < 0 {
		return "is on no volume mount"
	}
	m := c.VolumeMounts[best]
	rel := strings.TrimPrefix(strings.TrimPrefix(path, strings.TrimSuffix(m.MountPath, "/")), "/")
	if m.SubPath != "" {
		rel = m.SubPath
	}
	var (
		kind, name string
		items      []keyToPath
	)
	for _, v := range spec.Volumes {
		if v.Name != m.Name {
			continue
		}
		switch {
		case v.ConfigMap != nil:
			kind, name, items = "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items
		case v.Secret != nil:
			kind, name, items = "Secret", v.Secret.SecretName, v.Secret.Items
		}
	}
	if kind == "" {
		return "is on volume " + m.Name + ", which is no ConfigMap or Secret volume"
	}
	key := rel
	if len(items) > 0 {
		key = ""
		for _, it := range items {
			if it.Path == rel {
				key = it.Key
			}
		}
		if key == "" {
			return "is not among the items volume " + m.Name + " projects"
		}
	}
	for _, o := range find(objs, kind) {
		if o.Metadata.Name == name {
			var k keyed
			o.decode(t, &k)
			if _, ok := k.value(key); !ok {
				return kind + " " + name + " has no key " + key
			}
			return ""
		}
	}
	return "is in " + kind + " " + name + ", which no manifest defines"
}

func TestKubernetesPods(t *testing.T) {
	objs := k8sManifests(t)
	for _, o := range append(find(objs, "Deployment"), find(objs, "Job")...) {
		var w workload
		o.decode(t, &w)
		spec := w.Spec.Template.Spec
		if !w.Spec.Selector.selects(w.Spec.Template.Metadata.Labels) && o.Kind == "Deployment" {
			t.Errorf("%v: selector %v does not match its pod labels %v", o, w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels)
		}
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			where := o.String() + " container " + c.Name
			pod, sc := spec.SecurityContext, c.SecurityContext
			if !isTrue(sc.RunAsNonRoot) && !isTrue(pod.RunAsNonRoot) {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (pod.RunAsUser != nil && *pod.RunAsUser == 0) {
				t.Errorf("%s: runs as user 0", where)
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: capabilities.drop lacks ALL", where)
			}
			if sc.SeccompProfile.Type != "RuntimeDefault" && pod.SeccompProfile.Type != "RuntimeDefault" {
				t.Errorf("%s: no RuntimeDefault seccompProfile (the restricted Pod Security Standard wants one)", where)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" {
					t.Errorf("%s: no resources.requests.%s", where, r)
				}
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: no resources.limits.memory", where)
			}
			if !isOpsmetricsImage(c.Image) {
				continue
			}
			env := c.env()
			for _, k := range sortedKeys(env) {
				if strings.HasSuffix(k, "_FILE") {
					if problem := mountedKey(t, objs, spec, c, env[k]); problem != "" {
						t.Errorf("%s: %s=%s %s", where, k, env[k], problem)
					}
				}
			}
			if cfg, ok := flagValue(c.Args, "config"); ok {
				if problem := mountedKey(t, objs, spec, c, cfg); problem != "" {
					t.Errorf("%s: --config %s %s", where, cfg, problem)
				}
			}
			if len(c.Args) > 0 && c.Args[0] == "serve" {
				shutdown, err := shutdownTimeout(c.Args)
				if err != nil {
					t.Errorf("%s: --shutdown-timeout: %v", where, err)
				}
				if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
					t.Errorf("%s: terminationGracePeriodSeconds must be set above --shutdown-timeout (%v), or the final flush is killed", where, shutdown)
				}
			}
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func TestKubernetesDeployments(t *testing.T) {
	objs := k8sManifests(t)
	tests := []struct {
		file       string
		replicas   int
		strategy   string // empty: any
		components string
	}{
		{file: "k8s/ingest-deployment.yaml", replicas: 3, components: "ingest"},
		{file: "k8s/scheduler-deployment.yaml", replicas: 1, strategy: "Recreate", components: "api,kpi,anomaly"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			o, w := workloadIn(t, objs, tt.file, "Deployment")
			if w.Spec.Replicas == nil || *w.Spec.Replicas != tt.replicas {
				t.Errorf("%v: replicas %v, want %d", o, w.Spec.Replicas, tt.replicas)
			}
			if tt.strategy != "" && w.Spec.Strategy.Type != tt.strategy {
				t.Errorf("%v: strategy %q, want %q", o, w.Spec.Strategy.Type, tt.strategy)
			}
			var found bool
			for _, c := range w.Spec.Template.Spec.Containers {
				if !isOpsmetricsImage(c.Image) {
					continue
				}
				found = true
				if len(c.Args) == 0 || c.Args[0] != "serve" {
					t.Fatalf("%v container %s: args %q, want serve ...", o, c.Name, c.Args)
				}
				if got := firstValue(c.Args, "components"); got != tt.components {
					t.Errorf("%v container %s: --components %q, want %q", o, c.Name, got, tt.components)
				}
				listen, ok := flagValue(c.Args, "listen")
				if !ok {
					t.Fatalf("%v container %s: no --listen: serve would listen on 127.0.0.1, out of the kubelet's reach", o, c.Name)
				}
				for _, p := range []struct {
					name, path string
					probe      *probe
				}{{"readinessProbe", "/readyz", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
					if p.probe == nil || p.probe.HTTPGet == nil {
						t.Errorf("%v container %s: no %s httpGet %s", o, c.Name, p.name, p.path)
						continue
					}
					if p.probe.HTTPGet.Path != p.path {
						t.Errorf("%v container %s: %s path %q, want %q", o, c.Name, p.name, p.probe.HTTPGet.Path, p.path)
					}
					if n, ok := c.port(p.probe.HTTPGet.Port); !ok || strconv.Itoa(n) != port(t, listen) {
						t.Errorf("%v container %s: %s port %q is not the --listen port %s", o, c.Name, p.name, p.probe.HTTPGet.Port, listen)
					}
				}
			}
			if !found {
				t.Errorf("%v: no container runs the opsmetrics image", o)
			}
		})
	}
}

// podsOf returns the pod templates of every Deployment and Job.
func podsOf(t *testing.T, objs []k8sObject) map[string]workload {
	t.Helper()
	pods := map[string]workload{}
	for _, o := range append(find(objs, "Deployment"), find(objs, "Job")...) {
		var w workload
		o.decode(t, &w)
		pods[o.String()] = w
	}
	return pods
}

func TestKubernetesSelectors(t *testing.T) {
	objs := k8sManifests(t)
	pods := podsOf(t, objs)

	t.Run("the PodDisruptionBudget covers the ingesters only", func(t *testing.T) {
		pdbs := find(objs, "PodDisruptionBudget")
		if len(pdbs) == 0 {
			t.Fatal("no PodDisruptionBudget")
		}
		ingest, w := workloadIn(t, objs, "k8s/ingest-deployment.yaml", "Deployment")
		for _, o := range pdbs {
			var p podDisruptionBudget
			o.decode(t, &p)
			if !p.Spec.Selector.selects(w.Spec.Template.Metadata.Labels) {
				t.Errorf("%v: selector %v does not select the pods of %v (%v)", o, p.Spec.Selector.MatchLabels, ingest, w.Spec.Template.Metadata.Labels)
			}
			for id, other := range pods {
				if id != ingest.String() && p.Spec.Selector.selects(other.Spec.Template.Metadata.Labels) {
					t.Errorf("%v: also selects the pods of %s", o, id)
				}
			}
			replicas := 1
			if w.Spec.Replicas != nil {
				replicas = *w.Spec.Replicas
			}
			switch {
			case p.Spec.MaxUnavailable != nil:
				if n, err := strconv.Atoi(string(*p.Spec.MaxUnavailable)); err == nil && (n < 1 || n >= replicas) {
					t.Errorf("%v: maxUnavailable %d of %d replicas", o, n, replicas)
				}
			case p.Spec.MinAvailable != nil:
				if n, err := strconv.Atoi(string(*p.Spec.MinAvailable)); err == nil && (n < 1 || n >= replicas) {
					t.Errorf("%v: minAvailable %d of %d replicas: a node drain could never evict one, or the budget protects nothing", o, n, replicas)
				}
			default:
				t.Errorf("%v: neither minAvailable nor maxUnavailable", o)
			}
		}
	})

	services := map[string]k8sService{}
	for _, o := range find(objs, "Service") {
		var s k8sService
		o.decode(t, &s)
		services[o.Metadata.Name] = s
	}

	t.Run("every Service port reaches a container port", func(t *testing.T) {
		for _, name := range sortedKeys(services) {
			s := services[name]
			var matched int
			for id, w := range pods {
				if !(labelSelector{MatchLabels: s.Spec.Selector}).selects(w.Spec.Template.Metadata.Labels) {
					continue
				}
				matched++
				for _, sp := range s.Spec.Ports {
					target := sp.TargetPort
					if target == "" {
						target = scalar(strconv.Itoa(sp.Port))
					}
					ok := false
					for _, c := range w.Spec.Template.Spec.Containers {
						if _, found := c.port(target); found {
							ok = true
						}
					}
					if !ok {
						t.Errorf("Service %s port %s: targetPort %q is no container port of %s", name, sp.Name, target, id)
					}
				}
			}
			if matched == 0 {
				t.Errorf("Service %s: selector %v matches no pods", name, s.Spec.Selector)
			}
		}
	})

	t.Run("the ServiceMonitor scrapes the metrics port", func(t *testing.T) {
		sms := find(objs, "ServiceMonitor")
		if len(sms) == 0 {
			t.Fatal("no ServiceMonitor")
		}
		for _, o := range sms {
			var sm serviceMonitor
			o.decode(t, &sm)
			if len(sm.Spec.Endpoints) == 0 {
				t.Errorf("%v: no endpoints", o)
			}
			var matched int
			for _, so := range find(objs, "Service") {
				if !sm.Spec.Selector.selects(so.Metadata.Labels) {
					continue
				}
				if ns := sm.Spec.NamespaceSelector.MatchNames; len(ns) > 0 && !slices.Contains(ns, so.Metadata.Namespace) {
					t.Errorf("%v: selects %v by labels, but its namespaceSelector %v excludes namespace %q", o, so, ns, so.Metadata.Namespace)
				}
				matched++
				svc := services[so.Metadata.Name]
				for _, ep := range sm.Spec.Endpoints {
					if ep.Path != "" && ep.Path != "/metrics" {
						t.Errorf("%v: endpoint path %q, opsmetrics serves /metrics", o, ep.Path)
					}
					i := slices.IndexFunc(svc.Spec.Ports, func(p servicePort) bool { return p.Name == ep.Port })
					if i < 0 {
						t.Errorf("%v: endpoint port %q is not a port name of %v", o, ep.Port, so)
						continue
					}
					checkMetricsPort(t, o, svc, svc.Spec.Ports[i].TargetPort, pods)
				}
			}
			if matched == 0 {
				t.Errorf("%v: selector %v matches no Service", o, sm.Spec.Selector.MatchLabels)
			}
		}
	})
}

// checkMetricsPort requires the container port a scraped Service port
// targets to be the one serve's --metrics-addr listens on.
func checkMetricsPort(t *testing.T, sm k8sObject, svc k8sService, target scalar, pods map[string]workload) {
	t.Helper()
	for id, w := range pods {
		if !(labelSelector{MatchLabels: svc.Spec.Selector}).selects(w.Spec.Template.Metadata.Labels) {
			continue
		}
		for _, c := range w.Spec.Template.Spec.Containers {
			addr, ok := flagValue(c.Args, "metrics-addr")
			n, found := c.port(target)
			if !found || !isOpsmetricsImage(c.Image) {
				continue
			}
			if !ok || strconv.Itoa(n) != port(t, addr) {
				t.Errorf("%v: scrapes port %d of %s, but --metrics-addr is %q", sm, n, id, addr)
			}
		}
	}
}

func TestImagesPinned(t *testing.T) {
	type ref struct{ where, image string }
	var refs []ref
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		refs = append(refs, ref{"compose service " + name, c.Services[name].Image})
	}
	for _, o := range k8sManifests(t) {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		var w workload
		o.decode(t, &w)
		for _, ct := range append(w.Spec.Template.Spec.InitContainers, w.Spec.Template.Spec.Containers...) {
			refs = append(refs, ref{o.String() + " container " + ct.Name, ct.Image})
		}
	}
	stages := parseDockerfile(t, dockerfilePath).stages()
	var names []string
	for _, s := range stages {
		if !slices.Contains(names, s.image) { // FROM an earlier stage needs no tag
			refs = append(refs, ref{dockerfilePath + " FROM", s.image})
		}
		names = append(names, s.name)
	}
	for _, r := range refs {
		_, tag, _ := imageRef(r.image)
		if r.image == "" || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q: want an explicit tag other than latest", r.where, r.image)
		}
	}

	var k kustomizationFile
	decodeFile(t, kustomization, &k)
	for _, img := range k.Images {
		if img.Digest == "" && (img.NewTag == "" || img.NewTag == "latest") {
			t.Errorf("%s: image %s: newTag %q, want a pinned tag", kustomization, img.Name, img.NewTag)
		}
	}

	// Grafana plugins: "id version" or "id@version", comma-separated.
	for _, name := range sortedKeys(c.Services) {
		plugins := c.Services[name].Environment["GF_INSTALL_PLUGINS"]
		for _, p := range strings.Split(plugins, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if f := strings.FieldsFunc(p, func(r rune) bool { return r == ' ' || r == '@' }); len(f) != 2 || f[1] == "latest" {
				t.Errorf("compose service %s: GF_INSTALL_PLUGINS entry %q: want \"plugin-id version\"", name, p)
			}
		}
	}

	// The Go image must be able to build the module.
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if want == nil {
		t.Fatal("go.mod has no go directive")
	}
	_, tag, _ := imageRef(stages[0].image)
	got, _, _ := strings.Cut(tag, "-")
	if !strings.HasPrefix(stages[0].image, "golang:") || versionLess(got, string(want[1])) {
		t.Errorf("%s: builds with %s, go.mod wants go %s", dockerfilePath, stages[0].image, want[1])
	}
}

// versionLess compares dotted decimal versions.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, dockerfilePath).stages()
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a build stage and a final one", dockerfilePath, len(stages))
	}
	var builds bool
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.instructions {
			a := in.arguments
			if in.keyword == "RUN" && strings.Contains(a, "go build") && strings.Contains(a, "./cmd/opsmetrics") {
				builds = true
				if !strings.Contains(a, "CGO_ENABLED=0") {
					t.Errorf("%s:%d: go build without CGO_ENABLED=0: the binary would need a libc the final image lacks", dockerfilePath, in.line)
				}
			}
		}
	}
	if !builds {
		t.Errorf("%s: no build stage runs go build ./cmd/opsmetrics", dockerfilePath)
	}
	final := stages[len(stages)-1].instructions
	user, ok := final.last("USER")
	if name, _, _ := strings.Cut(user.arguments, ":"); !ok || name == "root" || name == "0" {
		t.Errorf("%s: the final stage runs as %q, want a non-root USER", dockerfilePath, user.arguments)
	}
	ep, ok := final.last("ENTRYPOINT")
	if !ok {
		t.Fatalf("%s: no ENTRYPOINT", dockerfilePath)
	}
	entry, err := ep.execForm()
	if err != nil {
		t.Fatal(err)
	}
	if len(entry) == 0 || filepath.Base(entry[0]) != "opsmetrics" {
		t.Fatalf("%s: ENTRYPOINT %q, want opsmetrics", dockerfilePath, entry)
	}
	var copied bool
	for _, in := range final {
		if in.keyword == "COPY" && strings.Contains(in.arguments, "--from=") && strings.HasSuffix(in.arguments, " "+entry[0]) {
			copied = true
		}
	}
	if !copied {
		t.Errorf("%s: nothing copies the built binary to %s", dockerfilePath, entry[0])
	}
	if _, err := os.Stat(dockerfilePath + ".dockerignore"); err != nil {
		t.Errorf("%s.dockerignore: %v: without it .git and the compose secrets enter the build context", dockerfilePath, err)
	}
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, systemdUnit)
	for _, d := range []struct{ key, want string }{
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"PrivateTmp", "yes"},
		{"Restart", "on-failure"},
	} {
		if got := u.one("Service", d.key); got != d.want {
			t.Errorf("%s: %s=%q, want %q", systemdUnit, d.key, got, d.want)
		}
	}
	if user := u.one("Service", "User"); u.one("Service", "DynamicUser") != "yes" && (user == "" || user == "root" || user == "0") {
		t.Errorf("%s: neither DynamicUser=yes nor a dedicated User=", systemdUnit)
	}
	if !slices.Contains(u["Service"]["EnvironmentFile"], "/etc/opsmetrics/opsmetrics.env") {
		t.Errorf("%s: EnvironmentFile=%q, want /etc/opsmetrics/opsmetrics.env", systemdUnit, u["Service"]["EnvironmentFile"])
	}
	if len(u["Install"]["WantedBy"]) == 0 {
		t.Errorf("%s: no [Install] WantedBy=: systemctl enable would do nothing", systemdUnit)
	}

	start := execStart(u)
	if len(start) < 2 || start[0] != "/usr/local/bin/opsmetrics" || start[1] != "serve" {
		t.Fatalf("%s: ExecStart=%q, want /usr/local/bin/opsmetrics serve ...", systemdUnit, start)
	}
	if cfg := firstValue(start, "config"); cfg != "/etc/opsmetrics/config.yaml" {
		t.Errorf("%s: --config %q, want /etc/opsmetrics/config.yaml", systemdUnit, cfg)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(systemdUnit), "config.yaml")); err != nil {
		t.Errorf("no example configuration beside the unit: %v", err)
	}
	shutdown, err := shutdownTimeout(start)
	if err != nil {
		t.Fatalf("%s: --shutdown-timeout: %v", systemdUnit, err)
	}
	if stop, err := parseSystemdDuration(u.one("Service", "TimeoutStopSec")); err != nil || stop <= shutdown {
		t.Errorf("%s: TimeoutStopSec=%q must exceed --shutdown-timeout (%v), or systemd kills the final flush", systemdUnit, u.one("Service", "TimeoutStopSec"), shutdown)
	}

	credentials := map[string]bool{}
	for _, lc := range u["Service"]["LoadCredential"] {
		id, _, _ := strings.Cut(lc, ":")
		credentials[id] = true
	}
	env := unitEnv(t, u)
	for _, k := range sortedKeys(env) {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		dir, id := filepath.Split(env[k])
		if (dir != "%d/" && dir != "${CREDENTIALS_DIRECTORY}/") || !credentials[id] {
			t.Errorf("%s: %s=%s is not a file of a LoadCredential= (%v)", systemdUnit, k, env[k], sortedKeys(credentials))
		}
	}
}

// secretEnv are the variables whose value is a secret: they must come from
// files (their *_FILE variants) so that no asset holds the value inline.
var secretEnv = []string{"OPSMETRICS_CLICKHOUSE", "OPSMETRICS_API_TOKEN", "OPSMETRICS_GRAFANA_TOKEN"}

func TestSecretsComeFromFiles(t *testing.T) {
	for _, inv := range invocations(t) {
		for _, k := range secretEnv {
			if _, ok := inv.env[k]; ok {
				t.Errorf("%s: sets %s inline; use %s_FILE", inv.where, k, k)
			}
		}
		if dsn, ok := flagValue(inv.args, "clickhouse"); ok {
			if u, err := url.Parse(dsn); err == nil {
				if _, hasPassword := u.User.Password(); hasPassword {
					t.Errorf("%s: --clickhouse carries a password; use OPSMETRICS_CLICKHOUSE_FILE", inv.where)
				}
			}
		}
	}
}

// The tests below run the binary.

// TestServeFlagsContract lists the serve flags the assets rely on, so that
// a missing one is named once here rather than in every command line.
func TestServeFlagsContract(t *testing.T) {
	h, err := helpFor(t, "serve")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, def string }{
		{"components", "ingest,api,kpi,anomaly"},
		{"brokers", ""},
		{"clickhouse", ""},
		{"listen", "127.0.0.1:8080"},
		{"metrics-addr", ""},
		{"alertmanager", ""},
		{"api-token-file", ""},
		{"shutdown-timeout", ""},
		{"config", ""},
		{"log-format", ""},
	} {
		got, ok := h.flags[f.name]
		switch {
		case !ok:
			t.Errorf("opsmetrics serve --help does not list --%s, which deploy/ uses", f.name)
		case f.def != "" && got.def != f.def:
			t.Errorf("opsmetrics serve --%s: default %q, want %q", f.name, got.def, f.def)
		}
	}
}

func TestInvocations(t *testing.T) {
	invs := invocations(t)
	if len(invs) < 8 {
		t.Fatalf("found %d opsmetrics command lines in the assets, want the compose services, Kubernetes containers, systemd unit and Dockerfile", len(invs))
	}
	for _, inv := range invs {
		t.Run(inv.where, func(t *testing.T) {
			h, rest, err := resolve(t, inv.args)
			if err != nil {
				t.Fatalf("opsmetrics %s: %v", strings.Join(inv.args, " "), err)
			}
			values, errs := checkArgs(h, rest)
			errs = append(errs, checkEnv(h, inv.env)...)
			for _, err := range errs {
				t.Errorf("opsmetrics %s: %v", strings.Join(inv.args, " "), err)
			}
			comps, ok := values["components"]
			if !ok {
				return
			}
			usage := h.flags["components"].usage
			for _, c := range strings.Split(comps, ",") {
				if !regexp.MustCompile(`\b` + regexp.QuoteMeta(c) + `\b`).MatchString(usage) {
					t.Errorf("--components %s: component %q is not among those opsmetrics %s --help describes: %q", comps, c, h.command, usage)
				}
			}
		})
	}
}

// TestConfigFilesLoad loads every opsmetrics configuration file of the
// assets with the binary: dashboards build reads --config with the same
// loader as every subcommand (unknown keys are errors, then Validate) and
// needs no server.
func TestConfigFilesLoad(t *testing.T) {
	configs := map[string]string{}
	for _, o := range find(k8sManifests(t), "ConfigMap") {
		var k keyed
		o.decode(t, &k)
		for _, key := range sortedKeys(k.Data) {
			if strings.HasSuffix(key, ".yaml") {
				configs[o.String()+" "+key] = k.Data[key]
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(systemdUnit), "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	configs["systemd/config.yaml"] = string(b)
	bin := binary(t)
	for _, name := range sortedKeys(configs) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte(configs[name]), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "dashboards", "build", "--config", path, "--out", filepath.Join(dir, "tree"))
			cmd.Env = cleanEnv()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("opsmetrics rejects %s: %v\n%s", name, err, out)
			}
		})
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on the unit, with
// ExecStart pointed at the freshly built binary (verify wants it to exist).
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	b, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(systemdUnit))
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte("/usr/local/bin/opsmetrics"), []byte(binary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	var problems []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, filepath.Base(systemdUnit)) {
			problems = append(problems, line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", systemdUnit, err, strings.Join(problems, "\n"))
	}
}
