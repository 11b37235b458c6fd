// Package chsql builds ClickHouse SQL statements from fragments that know
// what each piece is: raw SQL, bound values, identifiers from a closed set,
// points in time, and Grafana macros. One statement renders two ways: Bind
// gives the text with a ? per value and the values, for clickhouse-go;
// Inline gives the text with every value written as a ClickHouse literal
// and the macros as they are, for a Grafana panel, which cannot bind.
//
// A value is never scanned for placeholders: the ? of a template are read
// when the fragment is built, from the template alone, and a ? inside a
// quoted literal or identifier of the template is text. Inlined strings are
// quoted with their backslashes and quotes escaped, as every ClickHouse
// release, 18.16 included, reads them.
//
// Times are ClickHouse DateTime values, unsigned seconds that wrap: a bound
// time is clamped to [MinTime, MaxTime], and a time moved in SQL (Time.Add
// of an expression, Shift) is computed in Int64 and clamped, so that it
// never wraps.
package chsql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The times a ClickHouse DateTime holds on every release: 18.16's date
// tables end in 2105.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

type kind int

const (
	kindRaw kind = iota
	kindValue
	kindMacro
	kindTime
)

type part struct {
	kind kind
	raw  string // raw SQL, a macro, or an identifier
	val  any    // a bound value
	time Time
}

// Expr is a fragment of a statement. Its zero value is empty.
type Expr struct {
	parts []part
	err   error
}

// IsZero reports whether e is empty.
func (e Expr) IsZero() bool { return len(e.parts) == 0 && e.err == nil }

// SQL builds a fragment from a template of raw SQL in which each ? outside a
// quoted literal or identifier stands for the next argument: an Expr is
// spliced in, a Time is a point in time, and anything else is a value
// (string, []string, an integer, float64, bool, time.Time). A template whose
// ? and arguments do not pair is an error.
func SQL(template string, args ...any) Expr {
	var e Expr
	next := 0
	var quote rune
	start := 0
	flush := func(end int) {
		if end > start {
			e.parts = append(e.parts, part{kind: kindRaw, raw: template[start:end]})
		}
	}
	for i := 0; i < len(template); i++ {
		c := rune(template[i])
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '?':
			flush(i)
			start = i + 1
			if next >= len(args) {
				return Expr{err: fmt.Errorf("chsql: more placeholders than the %d arguments in %.60q", len(args), template)}
			}
			e.add(args[next])
			next++
		}
	}
	flush(len(template))
	if next != len(args) {
		e.err = fmt.Errorf("chsql: %d arguments for %d placeholders in %.60q", len(args), next, template)
	}
	return e
}

func (e *Expr) add(arg any) {
	switch a := arg.(type) {
	case Expr:
		e.parts = append(e.parts, a.parts...)
		if e.err == nil {
			e.err = a.err
		}
	case Time:
		e.parts = append(e.parts, part{kind: kindTime, time: a})
		if e.err == nil {
			e.err = a.expr.err
		}
	default:
		e.parts = append(e.parts, part{kind: kindValue, val: arg})
	}
}

// Raw is SQL text as it is, with no placeholder.
func Raw(sql string) Expr {
	if sql == "" {
		return Expr{}
	}
	return Expr{parts: []part{{kind: kindRaw, raw: sql}}}
}

// Macro is a Grafana macro or template variable ($__fromTime,
// $__timeFilter(c), ${service:singlequote}): written as it is by Inline,
// refused by Bind.
func Macro(text string) Expr { return Expr{parts: []part{{kind: kindMacro, raw: text}}} }

// Ident is the identifier name, which must be one of allowed: only names of
// a closed set ever reach a statement as identifiers.
func Ident(name string, allowed ...string) Expr {
	for _, a := range allowed {
		if name == a {
			return Raw(name)
		}
	}
	return Expr{err: fmt.Errorf("chsql: identifier %q: want one of %s", name, strings.Join(allowed, ", "))}
}

// Join joins the non-empty fragments with sep between them.
func Join(sep string, es ...Expr) Expr {
	var out Expr
	for _, e := range es {
		if e.IsZero() {
			continue
		}
		if !out.IsZero() {
			out.parts = append(out.parts, part{kind: kindRaw, raw: sep})
		}
		out.add(e)
	}
	return out
}

// Time is a point in time: a time.Time, or a DateTime expression (a Grafana
// macro such as $__fromTime) moved by an offset. Its zero value is no time.
type Time struct {
	at     time.Time
	expr   Expr
	offset time.Duration
}

// At is the time t.
func At(t time.Time) Time { return Time{at: t} }

// TimeOf is the time the DateTime expression e gives.
func TimeOf(e Expr) Time { return Time{expr: e} }

// IsZero reports whether t is no time.
func (t Time) IsZero() bool { return t.expr.IsZero() && t.at.IsZero() }

// Add is t moved by d.
func (t Time) Add(d time.Duration) Time {
	if t.expr.IsZero() {
		return Time{at: t.at.Add(d)}
	}
	t.offset += d
	return t
}

// Shift is the DateTime expression expr moved by the integer expression
// offset of seconds, computed in Int64 and clamped to what a DateTime holds.
func Shift(expr, offset Expr) Expr {
	return SQL("toDateTime(greatest(least(toInt64(?) + (?), "+strconv.FormatInt(MaxTime.Unix(), 10)+"), 0), 'UTC')", expr, offset)
}

// Clamp is t within what a DateTime holds, in UTC.
func Clamp(t time.Time) time.Time {
	switch {
	case t.Before(MinTime):
		return MinTime
	case t.After(MaxTime):
		return MaxTime
	}
	return t.UTC()
}

// expr is the SQL of a time given as an expression: the expression, in
// parentheses, or Shift of it by the offset.
func (t Time) sql() Expr {
	if t.offset == 0 {
		return SQL("(?)", t.expr)
	}
	return Shift(t.expr, Raw(strconv.FormatInt(int64(t.offset/time.Second), 10)))
}

// Bind renders e for clickhouse-go: the statement with a ? per value, and
// the values, times clamped. A macro is an error.
func Bind(e Expr) (string, []any, error) {
	if e.err != nil {
		return "", nil, e.err
	}
	var b strings.Builder
	var args []any
	var walk func(ps []part) error
	walk = func(ps []part) error {
		for _, p := range ps {
			switch p.kind {
			case kindRaw:
				b.WriteString(p.raw)
			case kindMacro:
				return fmt.Errorf("chsql: the Grafana macro %s cannot be bound", p.raw)
			case kindValue:
				b.WriteByte('?')
				if t, ok := p.val.(time.Time); ok {
					args = append(args, Clamp(t))
				} else {
					args = append(args, p.val)
				}
			case kindTime:
				if p.time.expr.IsZero() {
					b.WriteByte('?')
					args = append(args, Clamp(p.time.at))
					continue
				}
				if err := walk(p.time.sql().parts); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(e.parts); err != nil {
		return "", nil, err
	}
	return b.String(), args, nil
}

// Inline renders e with every value as a ClickHouse literal and the macros
// as they are, for a Grafana panel.
func Inline(e Expr) (string, error) {
	if e.err != nil {
		return "", e.err
	}
	var b strings.Builder
	var walk func(ps []part) error
	walk = func(ps []part) error {
		for _, p := range ps {
			switch p.kind {
			case kindRaw, kindMacro:
				b.WriteString(p.raw)
			case kindValue:
				lit, err := Literal(p.val)
				if err != nil {
					return err
				}
				b.WriteString(lit)
			case kindTime:
				if p.time.expr.IsZero() {
					b.WriteString(timeLiteral(p.time.at))
					continue
				}
				if err := walk(p.time.sql().parts); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(e.parts); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Literal writes v as a ClickHouse literal: a quoted string, an array of
// strings, a number, 1 or 0, or a DateTime in UTC.
func Literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return Quote(v), nil
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]", nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", fmt.Errorf("chsql: cannot write %v as a literal", v)
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case time.Time:
		return timeLiteral(v), nil
	}
	return "", fmt.Errorf("chsql: cannot write a %T as a literal", v)
}

func timeLiteral(t time.Time) string {
	return "toDateTime('" + Clamp(t).Format(time.DateTime) + "', 'UTC')"
}

// Quote is s as a ClickHouse string literal: in single quotes, with its
// backslashes and single quotes escaped by a backslash.
func Quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
