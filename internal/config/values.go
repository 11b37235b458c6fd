package config

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The flag values of settings: each sets the field it points at, and
// prints as the --help of every opsmetrics flag always has (a "value").

// String is a flag value of a string setting.
func String(p *string) *StringValue { return (*StringValue)(p) }

// StringValue is a string setting.
type StringValue string

func (v *StringValue) String() string     { return string(*v) }
func (v *StringValue) Set(s string) error { *v = StringValue(s); return nil }

// Int is a flag value of an integer setting.
func Int(p *int) *IntValue { return (*IntValue)(p) }

// IntValue is an integer setting.
type IntValue int

func (v *IntValue) String() string { return fmt.Sprint(int(*v)) }
func (v *IntValue) Set(s string) error {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*v = IntValue(n)
	return nil
}

// Duration is a flag value of a duration setting.
func Duration(p *time.Duration) *DurationValue { return (*DurationValue)(p) }

// DurationValue is a duration setting.
type DurationValue time.Duration

func (v *DurationValue) String() string { return time.Duration(*v).String() }
func (v *DurationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 500ms or 2m, got %q", s)
	}
	*v = DurationValue(d)
	return nil
}

// Bytes is a flag value of a size in bytes: a number, or one with a unit
// (KiB, MiB, GiB, or KB, MB, GB).
func Bytes(p *int64) *BytesValue { return (*BytesValue)(p) }

// BytesValue is a size in bytes.
type BytesValue int64

func (v *BytesValue) String() string { return fmt.Sprint(int64(*v)) }
func (v *BytesValue) Set(s string) error {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(num, &n); err != nil || n < 0 || strings.ContainsAny(num, " .") {
		return fmt.Errorf("want a size like 268435456, 256MiB or 1GiB, got %q", s)
	}
	*v = BytesValue(n * mult)
	return nil
}

// Bool is a flag value of a boolean setting.
func Bool(p *bool) *BoolValue { return (*BoolValue)(p) }

// BoolValue is a boolean setting; a bare flag sets it.
type BoolValue bool

func (v *BoolValue) String() string   { return fmt.Sprint(bool(*v)) }
func (v *BoolValue) IsBoolFlag() bool { return true }
func (v *BoolValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes":
		*v = true
	case "0", "f", "false", "no", "":
		*v = false
	default:
		return fmt.Errorf("want true or false, got %q", s)
	}
	return nil
}

// Map is a flag value of a map setting, written key=value,key=value.
func Map(p *map[string]string) *MapValue { return (*MapValue)(p) }

// MapValue is a map setting.
type MapValue map[string]string

func (v *MapValue) String() string {
	keys := make([]string, 0, len(*v))
	for k := range *v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + (*v)[k]
	}
	return strings.Join(keys, ",")
}

func (v *MapValue) Set(s string) error {
	m := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("want alias=environment pairs separated by commas, got %q", p)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	*v = m
	return nil
}

// List is a flag value of a list setting, written comma-separated.
func List(p *[]string) *ListValue { return (*ListValue)(p) }

// ListValue is a list setting.
type ListValue []string

func (v *ListValue) String() string { return strings.Join(*v, ",") }
func (v *ListValue) Set(s string) error {
	*v = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*v = append(*v, p)
		}
	}
	return nil
}
