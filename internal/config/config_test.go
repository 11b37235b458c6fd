package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// settings is a configuration as a package owns one: a file format, and
// flags bound onto its fields.
type settings struct {
	Name    string        `yaml:"name"`
	Secret  string        `yaml:"secret"`
	Wait    time.Duration `yaml:"wait"`
	Section struct {
		Size int      `yaml:"size"`
		Tags []string `yaml:"tags"`
	} `yaml:"section"`
}

func bindTest(t *testing.T) (*settings, *flag.FlagSet, *Binder) {
	t.Helper()
	s := &settings{Name: "default", Wait: time.Second}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	b := New(fs, s)
	b.Var(String(&s.Name), "name", "a name")
	b.Var(String(&s.Secret), "secret", "a password")
	b.Var(Duration(&s.Wait), "wait", "a wait")
	b.Var(Int(&s.Section.Size), "size", "a size")
	b.Secret("secret")
	return s, fs, b
}

func TestPrecedence(t *testing.T) {
	s, _, b := bindTest(t)
	t.Setenv("OPSMETRICS_NAME", "from-env")
	t.Setenv("OPSMETRICS_SIZE", "222")
	if err := b.Parse([]string{"--config", "testdata/good.yaml", "--size", "333"}); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name: env beats file", s.Name, "from-env"},
		{"size: flag beats env and file", s.Section.Size, 333},
		{"wait from file", s.Wait, 3 * time.Second},
		{"tags from file", strings.Join(s.Section.Tags, ","), "a,b"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestFiles(t *testing.T) {
	for _, c := range []struct {
		file, want string
	}{
		{"good", ""},
		{"empty", ""},
		{"unknown-key", "field sise not found"},
		{"missing", "no such file"},
	} {
		s := &settings{Name: "default"}
		err := LoadFile(filepath.Join("testdata", c.file+".yaml"), s)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.file, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.file, err, c.want)
		case c.file == "empty" && s.Name != "default":
			t.Errorf("an empty file changed the defaults: %+v", s)
		}
	}
}

// TestSecretsFromFiles: OPSMETRICS_X_FILE reads a setting from a file;
// setting both is an error, and no error shows the secret.
func TestSecretsFromFiles(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(f, []byte("hunter2\n"), 0o600)
	t.Setenv("OPSMETRICS_SECRET_FILE", f)
	s, _, b := bindTest(t)
	if err := b.Parse(nil); err != nil || s.Secret != "hunter2" {
		t.Fatalf("from file: %q, %v", s.Secret, err)
	}
	t.Setenv("OPSMETRICS_SECRET", "hunter2")
	if _, _, b := bindTest(t); b.Parse(nil) == nil || !strings.Contains(b.Parse(nil).Error(), "set one") {
		t.Errorf("both set: no error saying to set one")
	}
	os.Unsetenv("OPSMETRICS_SECRET")
	t.Setenv("OPSMETRICS_SECRET_FILE", filepath.Join(t.TempDir(), "missing"))
	if _, _, b := bindTest(t); b.Parse(nil) == nil || !strings.Contains(b.Parse(nil).Error(), "OPSMETRICS_SECRET_FILE") {
		t.Errorf("missing file: no error naming the variable")
	}
}

func TestBadEnvironmentValue(t *testing.T) {
	t.Setenv("OPSMETRICS_WAIT", "soon")
	_, _, b := bindTest(t)
	if err := b.Parse(nil); err == nil || !strings.Contains(err.Error(), "config: OPSMETRICS_WAIT: want a duration") {
		t.Errorf("bad duration: %v", err)
	}
}

// TestSubcommandFlagsReadTheEnvironment: a flag a subcommand defines itself
// reads OPSMETRICS_<FLAG> too, and the command line still wins.
func TestSubcommandFlagsReadTheEnvironment(t *testing.T) {
	_, fs, b := bindTest(t)
	components := fs.String("components", "all", "components")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	t.Setenv("OPSMETRICS_COMPONENTS", "ingest")
	t.Setenv("OPSMETRICS_LISTEN", ":9999")
	if err := b.Parse([]string{"--listen", ":7777"}); err != nil {
		t.Fatal(err)
	}
	if *components != "ingest" || *listen != ":7777" {
		t.Errorf("components %q (want ingest from the environment), listen %q (want :7777 from the flag)", *components, *listen)
	}
	for _, name := range []string{"components", "name"} {
		if f := fs.Lookup(name); strings.Count(f.Usage, EnvName(name)) != 1 {
			t.Errorf("--help of --%s names its variable other than once: %q", name, f.Usage)
		}
	}
}

func TestValues(t *testing.T) {
	var (
		n int64
		m map[string]string
		l []string
		v bool
	)
	for _, c := range []struct {
		value flag.Value
		in    string
		want  string // String() after Set, or the error
	}{
		{Bytes(&n), "268435456", "268435456"},
		{Bytes(&n), "512MiB", "536870912"},
		{Bytes(&n), "1GiB", "1073741824"},
		{Bytes(&n), "200MB", "200000000"},
		{Bytes(&n), "lots", "want a size like"},
		{Bytes(&n), "1.5GiB", "want a size like"},
		{Map(&m), "b=2, a = 1", "a=1,b=2"},
		{Map(&m), "prod", "want alias=environment pairs"},
		{List(&l), " x, ,y ", "x,y"},
		{Bool(&v), "yes", "true"},
		{Bool(&v), "maybe", "want true or false"},
	} {
		got := ""
		if err := c.value.Set(c.in); err != nil {
			got = err.Error()
		} else {
			got = c.value.String()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%T.Set(%q): %q, want %q", c.value, c.in, got, c.want)
		}
	}
}

func TestSection(t *testing.T) {
	err := Section("ingest", errors.Join(fmt.Errorf("batch_size: must be > 0, got -3"), errors.New("session_timeout: must be >= 1s")))
	want := "config: ingest.batch_size: must be > 0, got -3\nconfig: ingest.session_timeout: must be >= 1s"
	if err == nil || err.Error() != want {
		t.Errorf("Section: %v, want %q", err, want)
	}
	if err := Section("", errors.New("group: must not be empty")); err == nil || err.Error() != "config: group: must not be empty" {
		t.Errorf("top-level Section: %v", err)
	}
	if Section("ingest", nil) != nil {
		t.Error("Section of no error is an error")
	}
}

// TestAttribute: an error of a field names the flag or the variable that
// set the field, and stays the file's when the file did.
func TestAttribute(t *testing.T) {
	invalid := errors.Join(errors.New("config: section.size: must be > 0"), errors.New("config: wait: too long"))
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag", []string{"--size", "-1"}, nil, "--size: must be > 0\nconfig: wait: too long"},
		{"environment", nil, map[string]string{"OPSMETRICS_SIZE": "-1", "OPSMETRICS_WAIT": "1h"}, "config: OPSMETRICS_SIZE: must be > 0\nconfig: OPSMETRICS_WAIT: too long"},
		{"file", []string{"--config", "testdata/good.yaml"}, nil, "config: section.size: must be > 0\nconfig: wait: too long"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, _, b := bindTest(t)
			if err := b.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if got := b.Attribute(invalid).Error(); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestBadEnvironmentValueOfAStandardFlag: the variable of a flag of the
// flag package says what the flag takes, not "parse error".
func TestBadEnvironmentValueOfAStandardFlag(t *testing.T) {
	_, fs, b := bindTest(t)
	fs.Int("count", 0, "a count")
	t.Setenv("OPSMETRICS_COUNT", "many")
	if err := b.Parse(nil); err == nil || err.Error() != `config: OPSMETRICS_COUNT: want an integer, got "many"` {
		t.Errorf("bad integer: %v", err)
	}
}
