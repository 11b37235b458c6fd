package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// This file builds the opsmetrics binary once per test run and reads what
// its --help says, so that the assets are checked against the real command
// line rather than against a copy of it.

func TestMain(m *testing.M) { testenv.Main(m) }

// binary returns the path of opsmetrics built from this module.
func binary(t *testing.T) string { return testenv.Binary(t) }

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// cleanEnv is the test's environment without OPSMETRICS_* variables, so
// that the caller's settings cannot change what the binary says or does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPSMETRICS_") {
			env = append(env, kv)
		}
	}
	return env
}

// help is what `opsmetrics SUBCOMMAND --help` lists.
type help struct {
	command string // "serve", "dashboards build"
	flags   map[string]flagHelp
}

type flagHelp struct {
	isBool bool
	usage  string
	def    string // the "(default ...)" text, unquoted; empty when none
}

var helps struct {
	sync.Mutex
	m map[string]*help
}

// helpFor runs `opsmetrics WORDS... --help` and parses the flags it lists.
// An unknown subcommand fails (exit status 2, or 1 for an unknown second
// word).
func helpFor(t *testing.T, words ...string) (*help, error) {
	t.Helper()
	key := strings.Join(words, " ")
	helps.Lock()
	defer helps.Unlock()
	if h, ok := helps.m[key]; ok {
		return h, nil
	}
	cmd := exec.Command(binary(t), append(words, "--help")...)
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("opsmetrics %s --help: %v: %s", key, err, firstLines(out.String(), 3))
	}
	h := &help{command: key, flags: parseFlags(out.String())}
	if helps.m == nil {
		helps.m = map[string]*help{}
	}
	helps.m[key] = h
	return h, nil
}

var defaultRE = regexp.MustCompile(`\(default (.*)\)$`)

// parseFlags reads the flag list Go's flag.PrintDefaults writes: "  -name"
// or "  -name type" (no type: a boolean), then the usage on lines starting
// with four spaces and a tab (or after a tab on the same line, for short
// names).
func parseFlags(text string) map[string]flagHelp {
	flags := map[string]flagHelp{}
	var name string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			head, usage, _ := strings.Cut(strings.TrimPrefix(line[3:], "-"), "\t") // --flag or -flag
			fields := strings.Fields(head)
			if len(fields) == 0 {
				continue
			}
			name = fields[0]
			flags[name] = flagHelp{isBool: len(fields) == 1, usage: usage}
		case strings.HasPrefix(line, "    \t") && name != "":
			f := flags[name]
			f.usage = strings.TrimSpace(f.usage + " " + strings.TrimSpace(line))
			flags[name] = f
		}
	}
	for n, f := range flags {
		if m := defaultRE.FindStringSubmatch(f.usage); m != nil {
			f.def = strings.Trim(m[1], `"`)
			flags[n] = f
		}
	}
	return flags
}

// envName is the environment variable of a flag: OPSMETRICS_ and the name
// in upper snake case.
func envName(flag string) string {
	return "OPSMETRICS_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// extraEnv are the documented variables that are not a flag's
// (docs/configuration.md, docs/dashboards.md and serve's API token); their
// *_FILE variants are accepted too.
var extraEnv = []string{"OPSMETRICS_CONFIG", "OPSMETRICS_API_TOKEN", "OPSMETRICS_GRAFANA_TOKEN"}

// invocation is one opsmetrics command line in the assets, with the
// environment the asset gives it.
type invocation struct {
	where string
	args  []string // after the program name
	env   map[string]string
}

// resolve finds the subcommand of a command line: the first word, and the
// second when the first lists no flags of its own (dashboards build,
// baselines learn, anomaly detect). It returns its help and the arguments
// after it.
func resolve(t *testing.T, args []string) (*help, []string, error) {
	t.Helper()
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return nil, nil, fmt.Errorf("no subcommand in %q", args)
	}
	h, err := helpFor(t, args[0])
	if err != nil {
		return nil, nil, fmt.Errorf("subcommand %q: %w", args[0], err)
	}
	n := 1
	if len(h.flags) == 0 && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		if h, err = helpFor(t, args[0], args[1]); err != nil {
			return nil, nil, fmt.Errorf("subcommand %q: %w", args[0]+" "+args[1], err)
		}
		n = 2
	}
	if len(h.flags) == 0 {
		return nil, nil, fmt.Errorf("opsmetrics %s --help lists no flags: is a subcommand missing?", h.command)
	}
	return h, args[n:], nil
}

// checkArgs parses args as Go's flag package would against the flags h
// lists, and returns the values set, by flag name. Like the flag package,
// it stops at the first word that is not a flag, which is an error here:
// none of the subcommands the assets run take positional arguments, and
// flags after one would be silently ignored.
func checkArgs(h *help, args []string) (map[string]string, []error) {
	values := map[string]string{}
	var errs []error
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			errs = append(errs, fmt.Errorf("argument %q is not a flag: opsmetrics %s would stop parsing flags there", a, h.command))
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := h.flags[name]
		if !ok {
			errs = append(errs, fmt.Errorf("flag --%s: opsmetrics %s --help does not list it (it lists %s)", name, h.command, flagNames(h)))
			continue
		}
		if !f.isBool && !hasValue {
			if i+1 == len(args) {
				errs = append(errs, fmt.Errorf("flag --%s: no value", name))
				break
			}
			i++
			value = args[i]
		}
		values[name] = value
	}
	return values, errs
}

// checkEnv requires every OPSMETRICS_* variable, or the variable it is the
// *_FILE variant of, to be one of extraEnv or the variable of a flag of h
// (OPSMETRICS_ and the flag's name in upper snake case). The flag's usage
// must also name the variable: not every flag reads one, and a variable
// nothing reads is a setting silently lost.
func checkEnv(h *help, env map[string]string) []error {
	flagOf := map[string]string{}
	read := map[string]bool{}
	for name, f := range h.flags {
		v := envName(name)
		flagOf[v] = name
		if regexp.MustCompile(`\b` + v + `\b`).MatchString(f.usage) {
			read[v] = true
		}
	}
	for _, e := range extraEnv {
		read[e] = true
	}
	var errs []error
	for _, k := range sortedKeys(env) {
		base := strings.TrimSuffix(k, "_FILE")
		switch {
		case !strings.HasPrefix(k, "OPSMETRICS_") || read[k] || read[base]:
		case flagOf[k] != "" || flagOf[base] != "":
			flag := flagOf[k]
			if flag == "" {
				flag = flagOf[base]
			}
			errs = append(errs, fmt.Errorf("environment variable %s: the usage of --%s in opsmetrics %s --help names no such variable, so it would be ignored: pass --%s instead",
				k, flag, h.command, flag))
		default:
			errs = append(errs, fmt.Errorf("environment variable %s: no flag of opsmetrics %s reads it (want OPSMETRICS_<FLAG>[_FILE] for one of %s, or one of %s)",
				k, h.command, flagNames(h), strings.Join(extraEnv, ", ")))
		}
	}
	return errs
}

func flagNames(h *help) string {
	var names []string
	for n := range h.flags {
		names = append(names, "--"+n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " / ")
}

// invocations collects every opsmetrics command line of the assets: the
// compose services that run the image, the Kubernetes containers that do,
// the systemd unit's ExecStart and the Dockerfile's ENTRYPOINT and CMD.
func invocations(t *testing.T) []invocation {
	t.Helper()
	var out []invocation

	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if !s.runsOpsmetrics() {
			continue
		}
		args := []string(s.Command)
		if len(s.Entrypoint) > 0 {
			if filepath.Base(s.Entrypoint[0]) != "opsmetrics" {
				t.Errorf("compose service %s: entrypoint %q does not run opsmetrics", name, s.Entrypoint)
				continue
			}
			args = append(append([]string{}, s.Entrypoint[1:]...), args...)
		}
		if len(args) == 0 {
			t.Errorf("compose service %s: no command: say which subcommand it runs", name)
			continue
		}
		out = append(out, invocation{where: "compose service " + name, args: args, env: s.Environment})
	}

	for _, o := range k8sManifests(t) {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		var w workload
		o.decode(t, &w)
		spec := w.Spec.Template.Spec
		for _, ct := range append(spec.InitContainers, spec.Containers...) {
			if !isOpsmetricsImage(ct.Image) {
				continue
			}
			args := ct.Args
			if len(ct.Command) > 0 {
				if filepath.Base(ct.Command[0]) != "opsmetrics" {
					t.Errorf("%v container %s: command %q does not run opsmetrics", o, ct.Name, ct.Command)
					continue
				}
				args = append(append([]string{}, ct.Command[1:]...), ct.Args...)
			}
			out = append(out, invocation{where: fmt.Sprintf("%s/%s container %s", o.file, o.Metadata.Name, ct.Name), args: args, env: ct.env()})
		}
	}

	u := parseUnit(t, systemdUnit)
	start := execStart(u)
	if len(start) == 0 || filepath.Base(start[0]) != "opsmetrics" {
		t.Errorf("%s: ExecStart %q does not run opsmetrics", systemdUnit, start)
	} else {
		out = append(out, invocation{where: systemdUnit, args: start[1:], env: unitEnv(t, u)})
	}

	df := parseDockerfile(t, dockerfilePath)
	final := df.stages()[len(df.stages())-1].instructions
	ep, ok := final.last("ENTRYPOINT")
	if !ok {
		t.Errorf("%s: no ENTRYPOINT", dockerfilePath)
		return out
	}
	entry, err := ep.execForm()
	if err != nil {
		t.Errorf("%s: %v", dockerfilePath, err)
		return out
	}
	var cmdArgs []string
	if cmd, ok := final.last("CMD"); ok {
		if cmdArgs, err = cmd.execForm(); err != nil {
			t.Errorf("%s: %v", dockerfilePath, err)
		}
	}
	if len(entry) == 0 || filepath.Base(entry[0]) != "opsmetrics" {
		t.Errorf("%s: ENTRYPOINT %q does not run opsmetrics", dockerfilePath, entry)
	} else if args := append(entry[1:], cmdArgs...); len(args) > 0 {
		out = append(out, invocation{where: dockerfilePath + " ENTRYPOINT and CMD", args: args, env: dockerfileEnv(final)})
	}
	return out
}

// execStart is the unit's ExecStart= command line, without the prefixes
// that change how systemd runs it.
func execStart(u unit) []string {
	return strings.Fields(strings.TrimLeft(u.one("Service", "ExecStart"), "-@:+!|"))
}

// unitEnv is the environment of a unit: its Environment= lines and the
// example of its EnvironmentFile= shipped beside it.
func unitEnv(t *testing.T, u unit) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, f := range u["Service"]["EnvironmentFile"] {
		example := filepath.Join(filepath.Dir(systemdUnit), filepath.Base(strings.TrimPrefix(f, "-")))
		for k, v := range parseEnvFile(t, example) {
			env[k] = v
		}
	}
	for _, line := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			env[k] = v
		}
	}
	return env
}

// dockerfileEnv is what ENV sets in a stage (the NAME=value forms).
func dockerfileEnv(d dockerfile) map[string]string {
	env := map[string]string{}
	for _, in := range d {
		if in.keyword != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.arguments) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = strings.Trim(v, `"`)
			}
		}
	}
	return env
}
