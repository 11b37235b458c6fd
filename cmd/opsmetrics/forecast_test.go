package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestForecastCommand: eight weeks in which team payments has three
// incidents every weekday and none at weekends, and team discovery one
// every day. After baselines learn, the forecast of the next fortnight
// by team expects about that, in every format; before it, the command
// says to learn.
func TestForecastCommand(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	at := start.Add(56 * 24 * time.Hour)
	var recs []store.Record
	incident := func(service, team string, t0 time.Time) {
		id := fmt.Sprintf("INC-%d", len(recs))
		recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindIncident, ID: "e-" + id,
			Time: t0.Add(time.Hour), Incident: &event.Incident{ID: id, Service: service, Team: team, Environment: "production",
				Severity: "high", ImpactStartedAt: t0.Add(-10 * time.Minute), DetectedAt: t0, ResolvedAt: t0.Add(time.Hour)}}})
	}
	for d := start; d.Before(at); d = d.Add(24 * time.Hour) {
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			for i := range 3 {
				incident("checkout", "payments", d.Add(time.Duration(9+2*i)*time.Hour))
			}
		}
		incident("search", "discovery", d.Add(14*time.Hour))
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	args := []string{"forecast", "--clickhouse", dsn, "--kpi", "incidents", "--by", "team", "--horizon", "14d", "--at", at.Format(time.RFC3339)}
	if out, errOut, code := opsmetrics(t, args...); code != exitFailure || !strings.Contains(errOut, "run opsmetrics baselines learn") {
		t.Errorf("forecast before any learn: exit %d, stdout %q, stderr %q; want exit 1 saying to learn", code, out, errOut)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("baselines:\n  steps: [day]\n"), 0o644)
	if out, errOut, code := opsmetrics(t, "baselines", "learn", "--config", cfg, "--clickhouse", dsn, "--at", at.Format(time.RFC3339)); code != 0 {
		t.Fatalf("baselines learn: exit %d: %s%s", code, out, errOut)
	}

	js, errOut, code := opsmetrics(t, append(args, "--format", "json")...)
	var doc struct {
		KPI, Step string
		From, To  time.Time
		Level     float64
		Series    []struct {
			Team, Service, Status string
			Intervals             []struct {
				Start                            time.Time
				Expected, Lower, Upper, Coverage float64
			}
			Total *struct{ Expected, Lower, Upper float64 }
		}
	}
	if err := json.Unmarshal([]byte(js), &doc); code != 0 || err != nil {
		t.Fatalf("forecast --format json: exit %d, %v: %s%s", code, err, js, errOut)
	}
	if doc.KPI != "incidents" || doc.Step != "day" || !doc.From.Equal(at) || !doc.To.Equal(at.Add(14*24*time.Hour)) || doc.Level != 0.9 ||
		len(doc.Series) != 2 {
		t.Fatalf("forecast document: %s %s %s–%s at %v with %d series; want incidents per day over 14 days from %s at 0.9, two teams",
			doc.KPI, doc.Step, doc.From, doc.To, doc.Level, len(doc.Series), at)
	}
	perDay := map[string]func(time.Weekday) float64{
		"payments": func(wd time.Weekday) float64 {
			if wd == time.Saturday || wd == time.Sunday {
				return 0
			}
			return 3
		},
		"discovery": func(time.Weekday) float64 { return 1 },
	}
	for _, s := range doc.Series {
		want := perDay[s.Team]
		if want == nil || s.Service != "" || s.Status != "ready" || len(s.Intervals) != 14 || s.Total == nil {
			t.Errorf("series of team %q service %q (%s): %d intervals, total %v; want a ready team series of 14 days with a total",
				s.Team, s.Service, s.Status, len(s.Intervals), s.Total)
			continue
		}
		sum := 0.0
		for i, iv := range s.Intervals {
			w := want(iv.Start.Weekday())
			sum += w
			if !iv.Start.Equal(at.Add(time.Duration(i)*24*time.Hour)) || math.Abs(iv.Expected-w) > 0.35 || iv.Lower > w || iv.Upper < w ||
				iv.Coverage < 0.9 {
				t.Errorf("team %s, %s: expected %v in [%v, %v] (coverage %v), want about %v inside a band of at least 90%%",
					s.Team, iv.Start.Format("Mon 2006-01-02"), iv.Expected, iv.Lower, iv.Upper, iv.Coverage, w)
			}
		}
		if tot := s.Total; math.Abs(tot.Expected-sum) > 0.05*sum || tot.Lower > sum || tot.Upper < sum {
			t.Errorf("team %s: total %v in [%v, %v], want about %v inside", s.Team, tot.Expected, tot.Lower, tot.Upper, sum)
		}
	}

	table, errOut, code := opsmetrics(t, args...)
	if code != 0 || !strings.HasPrefix(table, "forecast of incidents (") ||
		!strings.Contains(table, "2026-03-02 00:00 to 2026-03-16 00:00 (end exclusive), time zone UTC\n") ||
		!hasLine(table, "team payments", "2026-03-07 Sat", "0–1") || !hasLine(table, "team discovery", "total of 14 days", "14") {
		t.Errorf("forecast table (exit %d, %s):\n%s", code, errOut, table)
	}
	out, _, code := opsmetrics(t, append(args, "--format", "csv", "--team", "payments")...)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 16 || rows[0][6] != "interval" || rows[1][3] != "payments" || rows[15][6] != "total" {
		t.Errorf("forecast --team payments --format csv (exit %d, %v): want a header, 14 days and the total of payments:\n%s", code, err, out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kpi", "vibes"}, `--kpi: unknown KPI "vibes": the baselined ones are deployments, incidents`},
		{[]string{"--kpi", "mtta"}, `--kpi: unknown KPI "mtta"`},
		{[]string{}, "--kpi: required: one of deployments, incidents"},
		{[]string{"--kpi", "incidents", "--by", "team,environment"}, "--by: baselines are learnt for"},
		{[]string{"--kpi", "incidents", "--horizon", "0d"}, "--horizon: want a positive horizon"},
		{[]string{"--kpi", "incidents", "--step", "week"}, "--step: want day or hour"},
		{[]string{"--kpi", "incidents", "--format", "xml"}, "--format: want table, json or csv"},
	} {
		out, errOut, code := opsmetrics(t, append([]string{"forecast", "--clickhouse", dsn}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("forecast %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

// hasLine reports whether a line of out has these fields, in order.
func hasLine(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, f := range fields {
			_, after, found := strings.Cut(rest, f)
			rest, ok = after, ok && found
		}
		if ok {
			return true
		}
	}
	return false
}
