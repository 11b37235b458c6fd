// Package config binds opsmetrics' settings onto the typed configurations
// that the packages own (ingest.Config, metrics.Config and the others): it
// fills any struct, in rising order of precedence, from its defaults, an
// optional YAML file (--config or OPSMETRICS_CONFIG, unknown keys refused),
// OPSMETRICS_<FLAG> environment variables (or the file OPSMETRICS_<FLAG>_FILE
// names, for secrets) and command-line flags. It knows no setting of its own
// and imports no opsmetrics package: the packages validate their types, and
// Section names the bad field in their errors (config: ingest.batch_size: …).
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvName is the environment variable that sets a flag.
func EnvName(flagName string) string {
	return "OPSMETRICS_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Binder binds flags and a YAML file onto one configuration value.
type Binder struct {
	fs      *flag.FlagSet
	root    any
	file    string
	bound   map[string]bool // flags registered by Var, whose usage names their variable already
	secrets map[string]bool
	paths   map[string]string // flag -> the setting's path in the file (ingest.batch_size)
	envSet  map[string]bool   // flags set from their environment variable
}

// New returns a Binder of the flag set fs onto root, a pointer to a struct
// holding the defaults, and registers --config on fs.
func New(fs *flag.FlagSet, root any) *Binder {
	b := &Binder{fs: fs, root: root, bound: map[string]bool{"config": true}, secrets: map[string]bool{},
		paths: map[string]string{}, envSet: map[string]bool{}}
	fs.StringVar(&b.file, "config", "", "YAML configuration file (env OPSMETRICS_CONFIG)")
	return b
}

// Var registers a flag of a setting; its usage names its variable. When v
// points at a field of the configuration (as String, Int and the other
// values of this package do), errors of that field name the flag or the
// variable that set it (see Attribute).
func (b *Binder) Var(v flag.Value, name, usage string) {
	b.bound[name] = true
	if p, ok := settingPath(b.root, v); ok {
		b.paths[name] = p
	}
	b.fs.Var(v, name, usage+" (env "+EnvName(name)+")")
}

// Secret marks flags whose values never appear in an error.
func (b *Binder) Secret(names ...string) {
	for _, n := range names {
		b.secrets[n] = true
	}
}

// Parse fills the configuration: the file first, then every flag of the
// set (registered by Var or by the caller) from its OPSMETRICS_<FLAG>
// variable, then the command line, which wins.
func (b *Binder) Parse(args []string) error {
	// The file is read before the flags are parsed, so that flags win:
	// find --config first.
	file := os.Getenv("OPSMETRICS_CONFIG")
	if f, ok := findFlag(args, "config"); ok {
		file = f
	}
	if file != "" {
		if err := LoadFile(file, b.root); err != nil {
			return err
		}
	}
	var envErr error
	b.fs.VisitAll(func(f *flag.Flag) {
		if !b.bound[f.Name] {
			f.Usage += " (env " + EnvName(f.Name) + ")"
		}
		if envErr != nil || f.Name == "config" {
			return
		}
		v, ok, err := fromEnv(EnvName(f.Name))
		if err == nil && ok {
			if err = f.Value.Set(v); err != nil {
				if want := Accepts(f.Value); want != "" && !b.secrets[f.Name] {
					err = fmt.Errorf("want %s, got %q", want, v)
				}
				err = fmt.Errorf("config: %s: %w", EnvName(f.Name), b.redact(f.Name, err))
			}
			b.envSet[f.Name] = true
		}
		envErr = err
	})
	if envErr != nil {
		return envErr
	}
	return b.fs.Parse(args)
}

// Attribute names the origin of each error joined in err (the errors of a
// Validate, each starting "config: " and the path of its field, as Section
// writes them) when a flag or an environment variable set that field: the
// flag on the command line reads "--batch-size: must be > 0, got -3", the
// variable "config: OPSMETRICS_BATCH_SIZE: must be > 0, got -3". Errors of
// fields the file or the defaults set stay as they are. Call it after
// Parse.
func (b *Binder) Attribute(err error) error {
	if err == nil {
		return nil
	}
	onCommandLine := map[string]bool{}
	b.fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
		for name, path := range b.paths {
			rest, ok := strings.CutPrefix(e.Error(), "config: "+path)
			if !ok || rest == "" || !strings.ContainsRune(":.[", rune(rest[0])) {
				continue
			}
			rest = strings.TrimPrefix(strings.TrimPrefix(rest, ":"), ".")
			switch {
			case onCommandLine[name]:
				out[i] = fmt.Errorf("--%s: %s", name, strings.TrimSpace(rest))
			case b.envSet[name]:
				out[i] = fmt.Errorf("config: %s: %s", EnvName(name), strings.TrimSpace(rest))
			}
			break
		}
	}
	return errors.Join(out...)
}

// settingPath is the path in the file (yaml names joined by dots, inline
// structs adding none) of the field of root that v points at.
func settingPath(root any, v flag.Value) (string, bool) {
	pv := reflect.ValueOf(v)
	if pv.Kind() != reflect.Pointer {
		return "", false
	}
	return findField(reflect.ValueOf(root).Elem(), pv.Pointer(), "")
}

func findField(s reflect.Value, addr uintptr, prefix string) (string, bool) {
	if s.Kind() != reflect.Struct {
		return "", false
	}
	for i := 0; i < s.NumField(); i++ {
		f, sf := s.Field(i), s.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		path := prefix + name
		if strings.Contains(","+opts+",", ",inline,") {
			path = strings.TrimSuffix(prefix, ".")
		}
		if f.Kind() == reflect.Struct {
			sub := path + "."
			if path == "" {
				sub = ""
			}
			if p, ok := findField(f, addr, sub); ok {
				return p, true
			}
			continue
		}
		if f.Addr().Pointer() == addr {
			return path, true
		}
	}
	return "", false
}

// Accepts is what a flag of the standard flag package (flag.Int,
// flag.Duration…) takes, for an error that says more than its own "parse
// error"; empty for other values, whose errors say it already.
func Accepts(v flag.Value) string {
	return map[string]string{"*flag.intValue": "an integer", "*flag.int64Value": "an integer", "*flag.uintValue": "a whole number",
		"*flag.uint64Value": "a whole number", "*flag.float64Value": "a number", "*flag.boolValue": "true or false",
		"*flag.durationValue": "a duration like 500ms, 2m or 1h30m"}[fmt.Sprintf("%T", v)]
}

// redact keeps the value of a secret setting out of an error.
func (b *Binder) redact(flag string, err error) error {
	if b.secrets[flag] {
		return errors.New("invalid value (not shown: it may hold a password)")
	}
	return err
}

func findFlag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// LoadFile decodes the YAML file at path onto into, refusing keys that name
// no field. An empty file changes nothing.
func LoadFile(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// fromEnv reads the variable name, or the file its name_FILE names (a
// secret, or any setting). Setting both is an error; the file's content is
// never shown.
func fromEnv(name string) (string, bool, error) {
	v, ok := os.LookupEnv(name)
	path, isFile := os.LookupEnv(name + "_FILE")
	if !isFile {
		return v, ok, nil
	}
	if ok {
		return "", false, fmt.Errorf("config: both %s and %s_FILE are set; set one", name, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("config: %s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), true, nil
}

// Section prefixes every error joined in err (the errors of a Validate,
// each starting with its field) with the section's path in the file and
// "config: ": config: ingest.batch_size: must be > 0, got -3. An empty
// section is the top level.
func Section(section string, err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	prefix := "config: "
	if section != "" {
		prefix += section + "."
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s%w", prefix, e)
	}
	return errors.Join(out...)
}
