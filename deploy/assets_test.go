package deploy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file reads the assets into small typed models: only the fields the
// tests look at, decoded leniently so that the rest of a file may use any
// key its tool accepts.

const (
	composeFile    = "compose/docker-compose.yml"
	dockerfilePath = "Dockerfile"
	k8sDir         = "k8s"
	kustomization  = "k8s/kustomization.yaml"
	systemdUnit    = "systemd/opsmetrics.service"

	// defaultShutdownTimeout is --shutdown-timeout's default
	// (docs/configuration.md), for command lines that do not set it.
	defaultShutdownTimeout = 30 * time.Second
)

// yamlFiles lists every YAML file under deploy/, sorted.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// yamlDocs returns the documents of a YAML file, which may hold several.
func yamlDocs(path string) ([]*yaml.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, len(docs)+1, err)
		}
		docs = append(docs, &n)
	}
}

// decodeFile decodes a single-document YAML file into v.
func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	docs, err := yamlDocs(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%s: want one YAML document, got %d", path, len(docs))
	}
	if err := docs[0].Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// words is a command line: a YAML list, or a string split at white space.
type words []string

func (w *words) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*w = strings.Fields(n.Value)
		return nil
	}
	var l []string
	err := n.Decode(&l)
	*w = l
	return err
}

// envMap is an environment: a YAML mapping or a list of NAME=value.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.MappingNode {
		m := map[string]string{}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			(*e)[k] = v
		}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	for _, kv := range l {
		k, v, _ := strings.Cut(kv, "=")
		(*e)[k] = v
	}
	return nil
}

// scalar is any YAML scalar as its text: an int-or-string port, a quantity.
type scalar string

func (s *scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a scalar, got a %v", n.Line, n.Tag)
	}
	*s = scalar(n.Value)
	return nil
}

// compose is a Docker Compose file. Secrets and volumes of services use the
// short syntax and depends_on the long one, which the tests require.
type compose struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]yaml.Node `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Entrypoint  words    `yaml:"entrypoint"`
	Command     words    `yaml:"command"`
	Environment envMap   `yaml:"environment"`
	Secrets     []string `yaml:"secrets"`
	Volumes     []string `yaml:"volumes"`
	Ports       []string `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test words `yaml:"test"`
	} `yaml:"healthcheck"`
	Restart         string `yaml:"restart"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// runsOpsmetrics reports whether the service runs the opsmetrics image.
func (s composeService) runsOpsmetrics() bool {
	return s.Build != nil || isOpsmetricsImage(s.Image)
}

// strings returns every string of the service a path could hide in.
func (s composeService) strings() []string {
	out := append(append([]string{}, s.Entrypoint...), s.Command...)
	for _, v := range s.Environment {
		out = append(out, v)
	}
	if s.Healthcheck != nil {
		out = append(out, s.Healthcheck.Test...)
	}
	return out
}

// mount returns the target of the volume named source, if mounted.
func (s composeService) mount(source string) (target string, ok bool) {
	for _, v := range s.Volumes {
		m := parseComposeMount(v)
		if m.source == source {
			return m.target, true
		}
	}
	return "", false
}

type composeMount struct {
	source, target string
	readOnly       bool
}

// parseComposeMount parses the short syntax SOURCE:TARGET[:MODE].
func parseComposeMount(s string) composeMount {
	parts := strings.Split(s, ":")
	m := composeMount{source: parts[0]}
	if len(parts) > 1 {
		m.target = parts[1]
	}
	if len(parts) > 2 {
		m.readOnly = strings.Contains(parts[2], "ro")
	}
	return m
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	decodeFile(t, composeFile, &c)
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	return c
}

// k8sObject is one Kubernetes manifest; node is the whole document, decoded
// again into the type of its kind by decode.
type k8sObject struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	file       string
	node       *yaml.Node
}

func (o k8sObject) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Metadata.Name, o.file) }

func (o k8sObject) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%v: %v", o, err)
	}
}

type metadata struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// selects reports whether the selector matches labels. An empty selector
// matches nothing here: none of ours should be empty.
func (s labelSelector) selects(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// workload is a Deployment or a Job.
type workload struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata metadata `yaml:"metadata"`
			Spec     podSpec  `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	Containers                    []container     `yaml:"containers"`
	InitContainers                []container     `yaml:"initContainers"`
	Volumes                       []volume        `yaml:"volumes"`
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string     `yaml:"name"`
		Value     string     `yaml:"value"`
		ValueFrom *yaml.Node `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]scalar `yaml:"requests"`
		Limits   map[string]scalar `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

// env returns the container's environment; a variable from valueFrom has
// the value "(valueFrom)".
func (c container) env() map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
		if e.ValueFrom != nil {
			m[e.Name] = "(valueFrom)"
		}
	}
	return m
}

// port returns the number of a container port given by name or number.
func (c container) port(ref scalar) (int, bool) {
	for _, p := range c.Ports {
		if string(ref) == p.Name || string(ref) == fmt.Sprint(p.ContainerPort) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port scalar `yaml:"port"`
	} `yaml:"httpGet"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string      `yaml:"name"`
		Items []keyToPath `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string      `yaml:"secretName"`
		Items      []keyToPath `yaml:"items"`
	} `yaml:"secret"`
}

type keyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort scalar `yaml:"targetPort"`
}

type podDisruptionBudget struct {
	Spec struct {
		MinAvailable   *scalar       `yaml:"minAvailable"`
		MaxUnavailable *scalar       `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type serviceMonitor struct {
	Spec struct {
		Selector          labelSelector `yaml:"selector"`
		NamespaceSelector struct {
			Any        bool     `yaml:"any"`
			MatchNames []string `yaml:"matchNames"`
		} `yaml:"namespaceSelector"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

// keyed is a ConfigMap or a Secret: the keys it holds.
type keyed struct {
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

func (k keyed) value(key string) (string, bool) {
	if v, ok := k.StringData[key]; ok {
		return v, true
	}
	v, ok := k.Data[key]
	return v, ok
}

type kustomizationFile struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

// k8sManifests reads every Kubernetes object under k8s/ but the
// kustomization itself.
func k8sManifests(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []k8sObject
	for _, f := range files {
		if f == kustomization {
			continue
		}
		docs, err := yamlDocs(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			o := k8sObject{file: f, node: d}
			if err := d.Decode(&o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func find(objs []k8sObject, kind string) []k8sObject {
	var out []k8sObject
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// workloadIn returns the one workload of kind in file.
func workloadIn(t *testing.T, objs []k8sObject, file, kind string) (k8sObject, workload) {
	t.Helper()
	for _, o := range objs {
		if o.file == file && o.Kind == kind {
			var w workload
			o.decode(t, &w)
			return o, w
		}
	}
	t.Fatalf("%s: no %s", file, kind)
	return k8sObject{}, workload{}
}

// dockerfile is a parsed Dockerfile: its instructions, continuation lines
// joined, comments dropped.
type dockerfile []dockerInstruction

type dockerInstruction struct {
	line      int
	keyword   string // upper case
	arguments string
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   dockerfile
		cur   strings.Builder
		start int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		keyword, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{line: start, keyword: strings.ToUpper(keyword), arguments: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stage is one FROM and what follows it.
type stage struct {
	image, name  string
	instructions dockerfile
}

func (d dockerfile) stages() []stage {
	var out []stage
	for _, in := range d {
		if in.keyword == "FROM" {
			var fields []string
			for _, f := range strings.Fields(in.arguments) {
				if !strings.HasPrefix(f, "--") { // --platform=...
					fields = append(fields, f)
				}
			}
			s := stage{}
			if len(fields) > 0 {
				s.image = fields[0]
			}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			out = append(out, s)
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].instructions = append(out[len(out)-1].instructions, in)
		}
	}
	return out
}

// last returns the last instruction with keyword.
func (d dockerfile) last(keyword string) (dockerInstruction, bool) {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i].keyword == keyword {
			return d[i], true
		}
	}
	return dockerInstruction{}, false
}

// execForm decodes the JSON array form of ENTRYPOINT or CMD.
func (in dockerInstruction) execForm() ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(in.arguments), &l); err != nil {
		return nil, fmt.Errorf("line %d: %s %s: want the exec form, a JSON array (the shell form runs opsmetrics under /bin/sh, which does not pass SIGTERM on): %w",
			in.line, in.keyword, in.arguments, err)
	}
	return l, nil
}

// unit is a systemd unit file: section, then key, then every value the key
// was given, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	var pending string
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if pending == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			pending += more + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s: not a key=value line in a section: %q", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u[section][k] = append(u[section][k], v)
	}
	return u
}

// one returns the last value of a key: the one systemd uses for keys that
// take a single value.
func (u unit) one(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// parseEnvFile reads NAME=value lines, as systemd's EnvironmentFile= does.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not NAME=value: %q", path, line)
		}
		env[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return env
}

// parseSystemdDuration parses a time span as systemd does for the common
// forms: plain seconds, or units Go's time.ParseDuration knows.
func parseSystemdDuration(s string) (time.Duration, error) {
	var secs int
	if _, err := fmt.Sscan(s, &secs); err == nil && fmt.Sprint(secs) == s {
		return time.Duration(secs) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// imageRef splits an image reference into its repository, tag and digest.
func imageRef(ref string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

func isOpsmetricsImage(ref string) bool {
	repo, _, _ := imageRef(ref)
	return repo == "opsmetrics" || strings.HasSuffix(repo, "/opsmetrics")
}

// flagValue finds a flag's value in a command line by syntax alone (-name
// or --name, then =value or the next word), for tests that do not build
// the binary. The binary's own parsing is checked by TestInvocations.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
		}
	}
	return "", false
}

// shutdownTimeout is the --shutdown-timeout of a command line.
func shutdownTimeout(args []string) (time.Duration, error) {
	v, ok := flagValue(args, "shutdown-timeout")
	if !ok {
		return defaultShutdownTimeout, nil
	}
	return time.ParseDuration(v)
}

var runSecretRE = regexp.MustCompile(`/run/secrets/([A-Za-z0-9_.-]+)`)
