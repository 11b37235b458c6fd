package chsql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func TestRender(t *testing.T) {
	from := chsql.TimeOf(chsql.Macro("$__fromTime"))
	cases := []struct {
		name   string
		expr   chsql.Expr
		bound  string // Bind's text, or its error
		args   int
		inline string // Inline's text, or its error
	}{
		{"string with quotes and backslashes", chsql.SQL("service = ?", `it's a \'path\' C:\x`), "service = ?", 1,
			`service = 'it\'s a \\\'path\\\' C:\\x'`},
		{"array of strings", chsql.SQL("has(?, environment)", []string{"production", "o'prod"}), "has(?, environment)", 1,
			`has(['production', 'o\'prod'], environment)`},
		{"empty array", chsql.SQL("has(?, environment)", []string{}), "has(?, environment)", 1, "has([], environment)"},
		{"numbers and booleans", chsql.SQL("? + ? + ? + ?", int64(-3), 7, 2.5, true), "? + ? + ? + ?", 4, "-3 + 7 + 2.5 + 1"},
		{"a time", chsql.SQL("finished_at >= ?", chsql.At(t0)), "finished_at >= ?", 1, "finished_at >= toDateTime('2026-03-02 09:30:00', 'UTC')"},
		{"a time before 1970 is 1970", chsql.SQL("t >= ?", chsql.At(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC))), "t >= ?", 1,
			"t >= toDateTime('1970-01-01 00:00:00', 'UTC')"},
		{"a time after 2105 is 2105", chsql.SQL("t < ?", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)), "t < ?", 1,
			"t < toDateTime('2105-12-31 23:59:59', 'UTC')"},
		{"a macro time", chsql.SQL("t >= ?", from), "chsql: the Grafana macro $__fromTime cannot be bound", 0, "t >= ($__fromTime)"},
		{"a macro time moved", chsql.SQL("t >= ?", from.Add(-24*time.Hour)), "chsql: the Grafana macro $__fromTime cannot be bound", 0,
			"t >= toDateTime(greatest(least(toInt64($__fromTime) + (-86400), 4291747199), 0), 'UTC')"},
		{"a spliced fragment", chsql.SQL("SELECT ? FROM ?", chsql.Raw("count()"), chsql.SQL("(SELECT * FROM t WHERE a = ?)", "x")),
			"SELECT count() FROM (SELECT * FROM t WHERE a = ?)", 1, "SELECT count() FROM (SELECT * FROM t WHERE a = 'x')"},
		{"? in a quoted literal is text", chsql.SQL(`SELECT 'why?', "a?b", ?`, "v"), `SELECT 'why?', "a?b", ?`, 1, `SELECT 'why?', "a?b", 'v'`},
		{"an escaped quote in a literal", chsql.SQL(`SELECT 'it\'s?', ?`, "v"), `SELECT 'it\'s?', ?`, 1, `SELECT 'it\'s?', 'v'`},
		{"a known identifier", chsql.SQL("SELECT ?", chsql.Ident("team", "service", "team")), "SELECT team", 0, "SELECT team"},
		{"an unknown identifier", chsql.SQL("SELECT ?", chsql.Ident("1; DROP TABLE t", "service", "team")),
			`chsql: identifier "1; DROP TABLE t": want one of service, team`, 0, `chsql: identifier "1; DROP TABLE t": want one of service, team`},
		{"more placeholders than arguments", chsql.SQL("? AND ?", 1), "chsql: more placeholders", 0, "chsql: more placeholders"},
		{"more arguments than placeholders", chsql.SQL("?", 1, 2), "chsql: 2 arguments for 1 placeholders", 0, "chsql: 2 arguments for 1 placeholders"},
		{"a value that has no literal", chsql.SQL("?", struct{}{}), "?", 1, "chsql: cannot write a struct {} as a literal"},
		{"joined", chsql.Join(" AND ", chsql.SQL("a = ?", 1), chsql.Expr{}, chsql.SQL("b = ?", "x")), "a = ? AND b = ?", 2, "a = 1 AND b = 'x'"},
		{"shifted", chsql.Shift(chsql.Raw("assumeNotNull(released_at)"), chsql.SQL("multiIf(sev = ?, ?, ?)", "high", int64(60), int64(90))),
			"toDateTime(greatest(least(toInt64(assumeNotNull(released_at)) + (multiIf(sev = ?, ?, ?)), 4291747199), 0), 'UTC')", 3,
			"toDateTime(greatest(least(toInt64(assumeNotNull(released_at)) + (multiIf(sev = 'high', 60, 90)), 4291747199), 0), 'UTC')"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, args, err := chsql.Bind(c.expr)
			if err != nil {
				text = err.Error()
			}
			if !strings.HasPrefix(text, c.bound) || len(args) != c.args {
				t.Errorf("Bind: %q with %d args, want %q with %d", text, len(args), c.bound, c.args)
			}
			lit, err := chsql.Inline(c.expr)
			if err != nil {
				lit = err.Error()
			}
			if !strings.HasPrefix(lit, c.inline) {
				t.Errorf("Inline: %q, want %q", lit, c.inline)
			}
		})
	}
}

// TestOnClickHouse sends values that are hard to quote to the ClickHouse of
// the tests (Debian's 18.16), bound and inlined, and reads them back.
func TestOnClickHouse(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	ctx := context.Background()
	hard := []string{`it's`, `back\slash`, `\'`, `'; DROP TABLE x; --`, "tab\tnew\nline", "nul\x00byte", "ünïcødé ‮", `?`, ``}
	for _, s := range hard {
		e := chsql.SQL("SELECT ? AS s, ? AS a", s, []string{s, "x"})
		for _, mode := range []string{"bound", "inlined"} {
			text, args, err := chsql.Bind(e)
			if mode == "inlined" {
				text, err = chsql.Inline(e)
				args = nil
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			var arr []string
			if err := st.Conn().QueryRow(ctx, text, args...).Scan(&got, &arr); err != nil {
				t.Fatalf("%s %q: %v\n%s", mode, s, err, text)
			}
			if got != s || len(arr) != 2 || arr[0] != s || arr[1] != "x" {
				t.Errorf("%s %q: read back %q and %q", mode, s, got, arr)
			}
		}
	}
	for _, tm := range []time.Time{t0, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
		e := chsql.SQL("SELECT toUInt32(?)", chsql.At(tm))
		want := uint32(chsql.Clamp(tm).Unix())
		text, args, _ := chsql.Bind(e)
		lit, _ := chsql.Inline(e)
		for mode, q := range map[string]struct {
			text string
			args []any
		}{"bound": {text, args}, "inlined": {lit, nil}} {
			var got uint32
			if err := st.Conn().QueryRow(ctx, q.text, q.args...).Scan(&got); err != nil {
				t.Fatalf("%s %v: %v", mode, tm, err)
			}
			if got != want {
				t.Errorf("%s %v: %d seconds, want %d", mode, tm, got, want)
			}
		}
	}
	// A time moved in SQL never wraps: 60 years before 2026 is 1970, not 2101.
	var got uint32
	lit, _ := chsql.Inline(chsql.SQL("SELECT toUInt32(?)", chsql.TimeOf(chsql.Raw("toDateTime('2026-03-02 00:00:00', 'UTC')")).Add(-60*365*24*time.Hour)))
	if err := st.Conn().QueryRow(ctx, lit).Scan(&got); err != nil || got != 0 {
		t.Errorf("2026 moved back 60 years: %d, %v; want 0 (1970)", got, err)
	}
}
