package generator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// testEnd is a Monday midnight, so that the default 90 days are whole weeks
// plus six days.
var testEnd = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// run generates cfg and returns every emitted event.
func run(t testing.TB, cfg Config) ([]*event.Event, Stats) {
	t.Helper()
	var evs []*event.Event
	st, err := Generate(cfg, func(ev *event.Event) error {
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return evs, st
}

// encode returns the events as JSON lines: the bytes a stream would carry.
func encode(t testing.TB, evs []*event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			t.Fatalf("encode %s: %v", ev.ID, err)
		}
	}
	return buf.Bytes()
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; empty for valid
	}{
		{name: "zero config takes defaults", cfg: Config{}},
		{name: "explicit", cfg: Config{Services: 3, Teams: 7, Days: 1, Seed: 9, End: testEnd, Environments: []string{"prod"}}},
		{name: "anomalies", cfg: Config{Services: 2, Days: 14, Anomalies: true}},
		{name: "negative services", cfg: Config{Services: -3}, want: "generator: services: must be > 0, got -3"},
		{name: "negative teams", cfg: Config{Teams: -1}, want: "generator: teams: must be > 0, got -1"},
		{name: "negative days", cfg: Config{Days: -90}, want: "generator: days: must be > 0, got -90"},
		{name: "end too early", cfg: Config{Days: 10, End: time.Unix(86400, 0)}, want: "generator: end: must be at least 10 days after 1970-01-01"},
		{name: "no environments", cfg: Config{Environments: []string{}}, want: "generator: environments: must name at least one environment, got none"},
		{name: "empty environment", cfg: Config{Environments: []string{"production", ""}}, want: "generator: environments[1]: must not be empty"},
		{name: "duplicate environment", cfg: Config{Environments: []string{"production", "staging", "production"}}, want: `generator: environments[2]: duplicate environment "production"`},
		{name: "anomalies need two services", cfg: Config{Services: 1, Anomalies: true}, want: "generator: services: must be >= 2 when anomalies are injected, got 1"},
		{name: "anomalies need history", cfg: Config{Days: 10, Anomalies: true}, want: "generator: days: must be >= 14 when anomalies are injected, got 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", tt.cfg, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate(%+v) = %v, want error containing %q", tt.cfg, err, tt.want)
			}
			if tt.want != "" {
				if _, gerr := Generate(tt.cfg, func(*event.Event) error { return nil }); gerr == nil {
					t.Errorf("Generate(%+v) succeeded, want the Validate error", tt.cfg)
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Services: 8, Days: 30, End: testEnd, Anomalies: true}
	a, sa := run(t, cfg)
	b, sb := run(t, cfg)
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Fatalf("two runs of %+v differ", cfg)
	}
	if fmt.Sprint(sa) != fmt.Sprint(sb) {
		t.Errorf("stats differ: %+v and %+v", sa, sb)
	}

	cfg.Seed = 2
	c, _ := run(t, cfg)
	if bytes.Equal(encode(t, a), encode(t, c)) {
		t.Errorf("seeds 1 and 2 gave the same stream")
	}
	if a[0].ID != "gen-1-0" || c[0].ID != "gen-2-0" {
		t.Errorf("first event ids = %q, %q, want gen-1-0, gen-2-0", a[0].ID, c[0].ID)
	}
}

// TestUUIDs: with Config.UUIDs the stream is the same but for its event
// ids, which are distinct version-4 UUIDs, the same in two runs.
func TestUUIDs(t *testing.T) {
	cfg := Config{Services: 8, Days: 30, End: testEnd}
	plain, _ := run(t, cfg)
	cfg.UUIDs = true
	a, _ := run(t, cfg)
	b, _ := run(t, cfg)
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Fatalf("two runs with UUIDs differ")
	}
	if len(a) != len(plain) {
		t.Fatalf("%d events with UUIDs, %d without", len(a), len(plain))
	}
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i, e := range a {
		if !uuidRE.MatchString(e.ID) || seen[e.ID] {
			t.Fatalf("event %d: id %q is not a new version-4 UUID", i, e.ID)
		}
		seen[e.ID] = true
		p := *plain[i]
		p.ID = e.ID
		if !bytes.Equal(encode(t, []*event.Event{&p}), encode(t, []*event.Event{e})) {
			t.Fatalf("event %d differs beyond its id", i)
		}
	}
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// check returns why ev breaks a rule the decoder enforces, or a rule of the
// generator's stream, or nil.
func check(ev *event.Event, end time.Time) error {
	if ev.ID == "" {
		return errors.New("no event id")
	}
	if ev.Encoding != event.EncodingNative {
		return fmt.Errorf("encoding %q, want native", ev.Encoding)
	}
	payloads := 0
	for _, set := range []bool{ev.Deployment != nil, ev.Incident != nil, ev.Patch != nil, ev.Change != nil} {
		if set {
			payloads++
		}
	}
	if payloads != 1 {
		return fmt.Errorf("%d payloads, want 1", payloads)
	}
	var stamps []time.Time // in the order they must be in
	switch ev.Kind {
	case event.KindDeployment:
		d := ev.Deployment
		if d == nil {
			return errors.New("kind deployment without a deployment")
		}
		if d.ID == "" || d.Service == "" || d.Environment == "" || d.FinishedAt.IsZero() {
			return fmt.Errorf("deployment %+v lacks a required field", d)
		}
		switch d.Status {
		case event.DeploymentSuccess, event.DeploymentFailure, event.DeploymentRolledBack:
		default:
			return fmt.Errorf("deployment %s: status %q", d.ID, d.Status)
		}
		if d.Unplanned != (d.FixesIncident != "") {
			return fmt.Errorf("deployment %s: unplanned %v but fixes %q", d.ID, d.Unplanned, d.FixesIncident)
		}
		for _, c := range d.Changes {
			if !shaRE.MatchString(c) {
				return fmt.Errorf("deployment %s: change %q is not a SHA", d.ID, c)
			}
		}
		stamps = []time.Time{d.StartedAt, d.FinishedAt}
	case event.KindIncident:
		in := ev.Incident
		if in == nil {
			return errors.New("kind incident without an incident")
		}
		if in.ID == "" {
			return errors.New("incident without an id")
		}
		stamps = []time.Time{in.ImpactStartedAt, in.DetectedAt, in.AcknowledgedAt, in.MitigatedAt, in.ResolvedAt}
		if !slices.ContainsFunc(stamps, func(t time.Time) bool { return !t.IsZero() }) {
			return fmt.Errorf("incident %s: no lifecycle timestamp", in.ID)
		}
		if in.Severity != "" && !slices.Contains(severities, in.Severity) {
			return fmt.Errorf("incident %s: severity %q", in.ID, in.Severity)
		}
	case event.KindPatch:
		p := ev.Patch
		if p == nil {
			return errors.New("kind patch without a patch")
		}
		if p.ID == "" || p.Target == "" || (p.ReleasedAt.IsZero() && p.AppliedAt.IsZero()) {
			return fmt.Errorf("patch %+v lacks a required field", p)
		}
		if (p.Outcome == "") != p.AppliedAt.IsZero() {
			return fmt.Errorf("patch %s|%s: outcome %q with applied_at %v", p.ID, p.Target, p.Outcome, p.AppliedAt)
		}
		stamps = []time.Time{p.ReleasedAt, p.AppliedAt}
	case event.KindChange:
		c := ev.Change
		if c == nil {
			return errors.New("kind change without a change")
		}
		if !shaRE.MatchString(c.ID) || c.Service == "" {
			return fmt.Errorf("change %+v: bad id or no service", c)
		}
		stamps = []time.Time{c.AuthoredAt, c.MergedAt}
	default:
		return fmt.Errorf("kind %q", ev.Kind)
	}

	var last time.Time
	for _, ts := range stamps {
		if ts.IsZero() {
			continue
		}
		if ts.Before(last) {
			return fmt.Errorf("%s %s: timestamps out of order: %v", ev.Kind, ev.EntityKey(), stamps)
		}
		if !ts.Before(end) {
			return fmt.Errorf("%s %s: timestamp %v is not before end %v", ev.Kind, ev.EntityKey(), ts, end)
		}
		last = ts
	}
	if !ev.Time.Equal(last) {
		return fmt.Errorf("%s %s: event time %v, want the latest timestamp %v", ev.Kind, ev.EntityKey(), ev.Time, last)
	}
	return nil
}

func TestEventsValid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "defaults", cfg: Config{End: testEnd}},
		{name: "anomalies", cfg: Config{End: testEnd, Anomalies: true}},
		{name: "production only", cfg: Config{Services: 6, Days: 30, End: testEnd, Environments: []string{"production"}}},
		{name: "three environments", cfg: Config{Services: 6, Days: 30, End: testEnd, Environments: []string{"prod", "qa", "dev"}}},
		{name: "end mid-day", cfg: Config{Services: 6, Days: 30, End: time.Date(2026, 3, 4, 13, 45, 30, 500, time.UTC)}},
		{name: "one service one week", cfg: Config{Services: 1, Teams: 1, Days: 7, End: testEnd, Seed: 42}},
		{name: "more services than names", cfg: Config{Services: 90, Teams: 15, Days: 10, End: testEnd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, st := run(t, tt.cfg)
			if len(evs) == 0 {
				t.Fatalf("no events")
			}
			ids := make(map[string]bool, len(evs))
			counts := map[event.Kind]int{}
			for i, ev := range evs {
				if err := check(ev, tt.cfg.End); err != nil {
					t.Fatalf("event %d (%s): %v", i, ev.ID, err)
				}
				if ids[ev.ID] {
					t.Fatalf("event %d: duplicate id %s", i, ev.ID)
				}
				ids[ev.ID] = true
				if i > 0 && ev.Time.Before(evs[i-1].Time) {
					t.Fatalf("event %d (%s) at %v is before event %d at %v", i, ev.ID, ev.Time, i-1, evs[i-1].Time)
				}
				counts[ev.Kind]++
			}
			if st.Events != len(evs) || st.Deployments != counts[event.KindDeployment] ||
				st.IncidentMessages != counts[event.KindIncident] || st.PatchMessages != counts[event.KindPatch] ||
				st.Changes != counts[event.KindChange] {
				t.Errorf("stats %+v do not match the emitted counts %v (total %d)", st, counts, len(evs))
			}
		})
	}
}

func TestServiceNamesUnique(t *testing.T) {
	evs, _ := run(t, Config{Services: 130, Teams: 30, Days: 21, End: testEnd})
	services, teams := map[string]string{}, map[string]bool{}
	for _, ev := range evs {
		if d := ev.Deployment; d != nil {
			if team, ok := services[d.Service]; ok && team != d.Team {
				t.Fatalf("service %s in teams %s and %s", d.Service, team, d.Team)
			}
			services[d.Service] = d.Team
			teams[d.Team] = true
		}
	}
	if len(services) < 100 || len(teams) < 25 {
		t.Errorf("%d services in %d teams deployed, want most of 130 services in 30 teams", len(services), len(teams))
	}
	if _, ok := services["checkout-2"]; !ok {
		t.Errorf("no service checkout-2 among %d services", len(services))
	}
	// Services lists them with the teams their events name.
	listed, err := Services(Config{Services: 130, Teams: 30, Days: 21, End: testEnd})
	if err != nil || len(listed) != 130 {
		t.Fatalf("Services: %d, %v; want 130", len(listed), err)
	}
	for _, s := range listed {
		if team, ok := services[s.Name]; ok && team != s.Team {
			t.Errorf("Services puts %s in team %s, its deployments name %s", s.Name, s.Team, team)
		}
		delete(services, s.Name)
	}
	if len(services) != 0 {
		t.Errorf("services deployed but not listed: %v", services)
	}
}

func TestVolume(t *testing.T) {
	_, st := run(t, Config{End: testEnd})
	t.Logf("20 services × 90 days: %+v", st)
	if st.Events < 15000 || st.Events > 40000 {
		t.Errorf("%d events, want 15000 to 40000", st.Events)
	}
	for name, n := range map[string]int{
		"deployments": st.Deployments, "incidents": st.Incidents, "patches": st.Patches, "changes": st.Changes,
	} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
	if st.IncidentMessages > 3*st.Incidents || st.IncidentMessages < 2*st.Incidents {
		t.Errorf("%d incident messages for %d incidents, want about 3 each", st.IncidentMessages, st.Incidents)
	}

	// Volume is linear in services and in days.
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"twice the services", Config{Services: 40, End: testEnd}},
		{"twice the days", Config{Days: 180, End: testEnd}},
	} {
		_, st2 := run(t, tt.cfg)
		if r := float64(st2.Events) / float64(st.Events); r < 1.7 || r > 2.3 {
			t.Errorf("%s: %d events against %d, ratio %.2f, want about 2", tt.name, st2.Events, st.Events, r)
		}
	}
}

func TestSeasonality(t *testing.T) {
	evs, _ := run(t, Config{End: testEnd})
	var weekday, weekend int
	days := map[time.Weekday]map[string]bool{}
	for _, ev := range evs {
		d := ev.Deployment
		if d == nil || d.Environment != "production" {
			continue
		}
		wd := d.StartedAt.Weekday()
		if days[wd] == nil {
			days[wd] = map[string]bool{}
		}
		days[wd][d.StartedAt.Format(time.DateOnly)] = true
		if wd == time.Saturday || wd == time.Sunday {
			weekend++
		} else {
			weekday++
		}
	}
	perWeekday := float64(weekday) / float64(len(days[time.Monday])*5)
	perWeekend := float64(weekend) / float64(len(days[time.Saturday])*2)
	t.Logf("production deployments per day: %.1f on weekdays, %.1f at weekends", perWeekday, perWeekend)
	if perWeekday < 5*perWeekend {
		t.Errorf("%.1f production deployments per weekday, %.1f per weekend day: want weekdays ≫ weekends", perWeekday, perWeekend)
	}
}

// stream indexes a generated stream for the relational tests.
type stream struct {
	evs         []*event.Event
	deployments map[string]*event.Deployment
	changes     map[string]*event.Change
	opened      map[string]*event.Incident // an incident's first message
	pos         map[string]int             // position of a deployment, change or incident's first message
}

func index(evs []*event.Event, _ Stats) *stream {
	s := &stream{
		evs:         evs,
		deployments: map[string]*event.Deployment{},
		changes:     map[string]*event.Change{},
		opened:      map[string]*event.Incident{},
		pos:         map[string]int{},
	}
	for i, ev := range evs {
		switch {
		case ev.Deployment != nil:
			s.deployments[ev.Deployment.ID] = ev.Deployment
			s.pos[ev.Deployment.ID] = i
		case ev.Change != nil:
			s.changes[ev.Change.ID] = ev.Change
			s.pos[ev.Change.ID] = i
		case ev.Incident != nil && !ev.Incident.DetectedAt.IsZero():
			s.opened[ev.Incident.ID] = ev.Incident
			s.pos[ev.Incident.ID] = i
		}
	}
	return s
}

func TestDeploymentsShipChanges(t *testing.T) {
	s := index(run(t, Config{End: testEnd}))
	staged := map[string]*event.Deployment{} // service|version → successful staging deployment
	for i, ev := range s.evs {
		d := ev.Deployment
		if d == nil {
			continue
		}
		if d.Environment == "staging" && d.Status == event.DeploymentSuccess {
			staged[d.Service+"|"+d.Version] = d
		}
		if d.Environment != "production" {
			continue
		}
		lo, hi := 1, 6
		if d.Unplanned {
			lo, hi = 1, 2
		}
		if n := len(d.Changes); n < lo || n > hi {
			t.Errorf("production deployment %s (unplanned %v) ships %d changes, want %d to %d", d.ID, d.Unplanned, n, lo, hi)
		}
		for _, id := range d.Changes {
			c, ok := s.changes[id]
			switch {
			case !ok:
				t.Errorf("deployment %s ships change %s that was never emitted", d.ID, id)
			case s.pos[id] > i:
				t.Errorf("deployment %s emitted before its change %s", d.ID, id)
			case c.Service != d.Service:
				t.Errorf("deployment %s of %s ships change %s of %s", d.ID, d.Service, id, c.Service)
			case c.MergedAt.After(d.StartedAt):
				t.Errorf("deployment %s started %v before its change %s was merged %v", d.ID, d.StartedAt, id, c.MergedAt)
			}
		}
		if !d.Unplanned {
			st, ok := staged[d.Service+"|"+d.Version]
			if !ok || st.FinishedAt.After(d.StartedAt) {
				t.Errorf("production deployment %s of %s %s was not staged before it started", d.ID, d.Service, d.Version)
			}
		}
	}
}

func TestFailureRatesVary(t *testing.T) {
	evs, _ := run(t, Config{Days: 180, End: testEnd})
	total, failed := map[string]int{}, map[string]int{}
	for _, ev := range evs {
		if d := ev.Deployment; d != nil && d.Environment == "production" && !d.Unplanned {
			total[d.Service]++
			if d.Status != event.DeploymentSuccess {
				failed[d.Service]++
			}
		}
	}
	lo, hi := 1.0, 0.0
	for svc, n := range total {
		if n < 100 {
			continue
		}
		r := float64(failed[svc]) / float64(n)
		lo, hi = min(lo, r), max(hi, r)
	}
	if lo > 0.06 || hi < 0.12 {
		t.Errorf("production failure rates of busy services range from %.2f to %.2f, want a spread within 2%% to 25%%", lo, hi)
	}
	var rates []float64
	for svc := range total {
		rates = append(rates, float64(total[svc])/180)
	}
	slices.Sort(rates)
	if rates[0] > 0.3 || rates[len(rates)-1] < 3 {
		t.Errorf("production deployments per day range from %.2f to %.2f, want weekly to several a day", rates[0], rates[len(rates)-1])
	}
}

func TestIncidents(t *testing.T) {
	s := index(run(t, Config{End: testEnd}))
	var caused, inferable, background, customer int
	sev := map[event.Severity]int{}
	for id, in := range s.opened {
		sev[in.Severity]++
		if in.DetectionSource == event.DetectedByCustomer {
			customer++
		}
		if in.Service == "" || in.Team == "" || in.Environment == "" || in.Severity == "" || in.DetectionSource == "" || in.ImpactStartedAt.IsZero() {
			t.Errorf("incident %s opened without service, team, environment, severity, source or impact: %+v", id, in)
		}
		if in.CauseDeployment != "" {
			caused++
			d, ok := s.deployments[in.CauseDeployment]
			switch {
			case !ok:
				t.Errorf("incident %s caused by deployment %s that was never emitted", id, in.CauseDeployment)
			case d.Service != in.Service || d.Environment != "production":
				t.Errorf("incident %s of %s caused by deployment %s of %s to %s", id, in.Service, d.ID, d.Service, d.Environment)
			case in.ImpactStartedAt.Before(d.StartedAt):
				t.Errorf("incident %s impact %v before its cause %s started %v", id, in.ImpactStartedAt, d.ID, d.StartedAt)
			}
			if in.CauseCommit != "" && !slices.Contains(d.Changes, in.CauseCommit) {
				t.Errorf("incident %s blames commit %s, not shipped by %s", id, in.CauseCommit, d.ID)
			}
			continue
		}
		// An incident without a cause whose impact starts during a failed
		// production deployment of its service is left for inference.
		found := false
		for _, d := range s.deployments {
			if d.Service == in.Service && d.Environment == "production" && d.Status != event.DeploymentSuccess &&
				!in.ImpactStartedAt.Before(d.StartedAt) && !in.ImpactStartedAt.After(d.FinishedAt) {
				found = true
				break
			}
		}
		if found {
			inferable++
		} else {
			background++
		}
	}
	t.Logf("%d incidents: %d with cause, %d inferable, %d background; severities %v; %d found by customers",
		len(s.opened), caused, inferable, background, sev, customer)
	if caused < 10 || inferable < 5 || background < 20 {
		t.Errorf("%d incidents with a cause deployment, %d inferable, %d background: want each kind", caused, inferable, background)
	}
	if sev[event.SeverityCritical] == 0 || sev[event.SeverityLow] < sev[event.SeverityCritical] {
		t.Errorf("severity mix %v: want few critical, more low", sev)
	}
	if customer == 0 || customer > len(s.opened)/2 {
		t.Errorf("%d of %d incidents detected by customers, want some but a minority", customer, len(s.opened))
	}
}

func TestIncidentLifecycle(t *testing.T) {
	// End on a Wednesday afternoon, when incidents are still open.
	evs, _ := run(t, Config{End: testEnd.Add(2*24*time.Hour + 15*time.Hour)})
	type life struct{ opened, acked, resolved *event.Event }
	lives := map[string]*life{}
	for _, ev := range evs {
		in := ev.Incident
		if in == nil {
			continue
		}
		l := lives[in.ID]
		if l == nil {
			l = &life{}
			lives[in.ID] = l
		}
		switch {
		case !in.DetectedAt.IsZero():
			l.opened = ev
		case !in.AcknowledgedAt.IsZero():
			if l.opened == nil {
				t.Fatalf("incident %s acknowledged before it was opened", in.ID)
			}
			if in.AcknowledgedAt.Before(l.opened.Incident.DetectedAt) {
				t.Errorf("incident %s acknowledged %v before detected %v", in.ID, in.AcknowledgedAt, l.opened.Incident.DetectedAt)
			}
			l.acked = ev
		default:
			if l.acked == nil {
				t.Fatalf("incident %s resolved before it was acknowledged", in.ID)
			}
			if in.MitigatedAt.Before(l.acked.Incident.AcknowledgedAt) {
				t.Errorf("incident %s mitigated %v before acknowledged %v", in.ID, in.MitigatedAt, l.acked.Incident.AcknowledgedAt)
			}
			l.resolved = ev
		}
	}
	var open, resolved int
	for _, l := range lives {
		if l.resolved != nil {
			resolved++
		} else {
			open++
		}
		if l.acked != nil && (l.opened.ID == l.acked.ID || (l.resolved != nil && l.resolved.ID == l.acked.ID)) {
			t.Errorf("incident %s messages share an event id", l.opened.Incident.ID)
		}
	}
	if resolved < 100 || open == 0 {
		t.Errorf("%d incidents resolved and %d still open at the end, want both", resolved, open)
	}
}

func TestReworkDeployments(t *testing.T) {
	s := index(run(t, Config{End: testEnd}))
	var rework int
	for id, d := range s.deployments {
		if !d.Unplanned {
			continue
		}
		rework++
		in, ok := s.opened[d.FixesIncident]
		switch {
		case !ok:
			t.Errorf("deployment %s fixes incident %s that was never opened", id, d.FixesIncident)
		case s.pos[in.ID] > s.pos[id]:
			t.Errorf("deployment %s emitted before the incident %s it fixes", id, in.ID)
		case d.Service != in.Service || d.Environment != "production":
			t.Errorf("deployment %s of %s to %s fixes incident %s of %s", id, d.Service, d.Environment, in.ID, in.Service)
		case d.StartedAt.Before(in.DetectedAt) || d.StartedAt.Sub(in.DetectedAt) > 2*24*time.Hour:
			t.Errorf("deployment %s started %v, want shortly after incident %s was detected %v", id, d.StartedAt, in.ID, in.DetectedAt)
		}
	}
	if rework < 20 {
		t.Errorf("%d rework deployments, want at least 20", rework)
	}
}

func TestPatchWaves(t *testing.T) {
	evs, st := run(t, Config{End: testEnd})
	type wave struct {
		sev              event.Severity
		targets, applied int
		latencies        []time.Duration
	}
	waves := map[string]*wave{}
	released := map[string]time.Time{}
	applied := map[string]bool{}
	outcomes := map[event.PatchOutcome]int{}
	types := map[event.TargetType]int{}
	for _, ev := range evs {
		p := ev.Patch
		if p == nil {
			continue
		}
		w := waves[p.ID]
		if w == nil {
			w = &wave{sev: p.Severity}
			waves[p.ID] = w
		}
		key := p.ID + "|" + p.Target
		if p.Outcome == "" {
			w.targets++
			types[p.TargetType]++
			released[key] = p.ReleasedAt
			continue
		}
		rel, ok := released[key]
		if !ok {
			t.Fatalf("patch %s applied before it was released", key)
		}
		if !rel.Equal(p.ReleasedAt) {
			t.Errorf("patch %s released at %v, applied message says %v", key, rel, p.ReleasedAt)
		}
		w.applied++
		applied[key] = true
		w.latencies = append(w.latencies, p.AppliedAt.Sub(p.ReleasedAt))
		outcomes[p.Outcome]++
	}
	if len(waves) < 20 {
		t.Errorf("%d advisories in 90 days, want one every few days", len(waves))
	}
	biggest := 0
	latency := map[event.Severity][]time.Duration{}
	for _, w := range waves {
		biggest = max(biggest, w.targets)
		latency[w.sev] = append(latency[w.sev], w.latencies...)
	}
	if biggest < 40 {
		t.Errorf("largest advisory hit %d targets, want waves of many", biggest)
	}
	// Of the targets released long enough before the end, a few never get
	// the patch.
	var old, open int
	for key, rel := range released {
		if rel.Before(testEnd.AddDate(0, 0, -60)) {
			old++
			if !applied[key] {
				open++
			}
		}
	}
	if open == 0 || open > old/8 {
		t.Errorf("%d of %d patch targets released 60 days before the end never applied, want a few", open, old)
	}
	if st.Patches != len(released) {
		t.Errorf("Stats.Patches = %d, want %d", st.Patches, len(released))
	}
	if outcomes[event.PatchFailed] == 0 || outcomes[event.PatchRolledBack] == 0 || outcomes[event.PatchApplied] < 10*outcomes[event.PatchFailed] {
		t.Errorf("outcomes %v, want mostly applied and a few failures and rollbacks", outcomes)
	}
	if len(types) != 3 {
		t.Errorf("target types %v, want hosts, images and services", types)
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	crit, low := median(latency[event.SeverityCritical]), median(latency[event.SeverityLow])
	t.Logf("median patch latency: critical %v, low %v", crit, low)
	if crit*5 > low {
		t.Errorf("median patch latency critical %v, low %v: want critical much faster", crit, low)
	}
}

func TestAnomalies(t *testing.T) {
	cfg := Config{End: testEnd, Anomalies: true}
	evs, st := run(t, cfg)
	if len(st.Anomalies) != 2 {
		t.Fatalf("Stats.Anomalies = %v, want a failure burst and a deployment stop", st.Anomalies)
	}
	var burst, stop Anomaly
	for _, a := range st.Anomalies {
		switch a.Kind {
		case AnomalyFailureBurst:
			burst = a
		case AnomalyDeploymentStop:
			stop = a
		}
		if !a.End.Equal(cfg.End) || !a.Start.Equal(cfg.End.AddDate(0, 0, -7)) {
			t.Errorf("anomaly %v, want the last seven days", a)
		}
	}
	if burst.Service == "" || stop.Service == "" || burst.Service == stop.Service {
		t.Fatalf("anomalies %v, want one of each kind in different services", st.Anomalies)
	}

	type counts struct{ deploys, failed, incidents int }
	var before, during map[string]*counts = map[string]*counts{}, map[string]*counts{}
	for _, ev := range evs {
		m := before
		if !ev.Time.Before(burst.Start) {
			m = during
		}
		var svc string
		switch {
		case ev.Deployment != nil:
			svc = ev.Deployment.Service
		case ev.Incident != nil && ev.Incident.Service != "":
			svc = ev.Incident.Service
		default:
			continue
		}
		c := m[svc]
		if c == nil {
			c = &counts{}
			m[svc] = c
		}
		if d := ev.Deployment; d != nil {
			if d.Environment == "production" && !d.Unplanned {
				c.deploys++
				if d.Status != event.DeploymentSuccess {
					c.failed++
				}
			}
		} else {
			c.incidents++
		}
	}
	weeksBefore := float64(83) / 7
	b, d := before[burst.Service], during[burst.Service]
	if d == nil || d.deploys == 0 {
		t.Fatalf("burst service %s: no deployments during the anomaly", burst.Service)
	}
	if rate := float64(d.failed) / float64(d.deploys); rate < 0.4 || float64(d.incidents) < 3*float64(b.incidents)/weeksBefore {
		t.Errorf("burst service %s: %d of %d deployments failed and %d incidents in the last week (%d in %.0f weeks before), want a burst",
			burst.Service, d.failed, d.deploys, d.incidents, b.incidents, weeksBefore)
	}
	// The new hire causes the burst: most of its failures are theirs, and
	// they deploy nowhere else and never before it.
	var byNewHire, failedByNewHire, failedDuring int
	for _, ev := range evs {
		d := ev.Deployment
		if d == nil || d.Environment != "production" || d.Unplanned {
			continue
		}
		during := !ev.Time.Before(burst.Start)
		if d.Actor == NewHire {
			byNewHire++
			if d.Service != burst.Service || !during {
				t.Errorf("the new hire deployed %s at %v", d.Service, ev.Time)
			}
		}
		if during && d.Service == burst.Service && d.Status != event.DeploymentSuccess {
			failedDuring++
			if d.Actor == NewHire {
				failedByNewHire++
			}
		}
	}
	if failedDuring == 0 || float64(failedByNewHire) < 0.8*float64(failedDuring) {
		t.Errorf("the new hire made %d of the burst's %d failed deployments (%d deployments), want most", failedByNewHire, failedDuring, byNewHire)
	}
	if c := during[stop.Service]; c != nil && c.deploys > 0 {
		t.Errorf("stopped service %s: %d production deployments during the anomaly", stop.Service, c.deploys)
	}
	for _, ev := range evs {
		if d := ev.Deployment; d != nil && d.Service == stop.Service && !d.StartedAt.Before(stop.Start) {
			t.Errorf("stopped service %s deployed %s at %v", stop.Service, d.ID, d.StartedAt)
		}
	}
	if c := before[stop.Service]; c == nil || float64(c.deploys)/weeksBefore < 7 {
		t.Errorf("stopped service %s deployed %v before the anomaly, want at least daily", stop.Service, c)
	}

	// Outside the last days the stream is the one without anomalies.
	plain, pst := run(t, Config{End: testEnd})
	if pst.Anomalies != nil {
		t.Errorf("anomalies %v without Config.Anomalies", pst.Anomalies)
	}
	cut := burst.Start.Add(-(maxBack + day) * time.Second)
	n := slices.IndexFunc(plain, func(ev *event.Event) bool { return !ev.Time.Before(cut) })
	if !bytes.Equal(encode(t, evs[:n]), encode(t, plain[:n])) {
		t.Errorf("the %d events before %v differ with and without anomalies", n, cut)
	}
}

func TestEmitError(t *testing.T) {
	stop := errors.New("broker gone")
	calls := 0
	st, err := Generate(Config{End: testEnd}, func(*event.Event) error {
		calls++
		if calls == 100 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "gen-1-99") {
		t.Errorf("Generate = %v, want the emit error wrapped with the event id", err)
	}
	if calls != 100 || st.Events != 100 {
		t.Errorf("emit called %d times and %d events counted after failing at the 100th, want 100", calls, st.Events)
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := Config{End: testEnd, Anomalies: true}
	b.ReportAllocs()
	var events int
	for b.Loop() {
		st, err := Generate(cfg, func(*event.Event) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		events += st.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// TestSeedsNeverShareIDs: streams of different seeds can share a store,
// since none of their events or entities have the same id.
func TestSeedsNeverShareIDs(t *testing.T) {
	ids := func(seed uint64) map[string]bool {
		out := map[string]bool{}
		_, err := Generate(Config{Services: 5, Days: 30, Seed: seed, End: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, func(e *event.Event) error {
			out["event "+e.ID] = true
			switch e.Kind {
			case event.KindDeployment:
				out["deployment "+e.Deployment.ID] = true
			case event.KindIncident:
				out["incident "+e.Incident.ID] = true
			case event.KindPatch:
				out["patch "+e.Patch.ID+"|"+e.Patch.Target] = true
			case event.KindChange:
				out["change "+e.Change.ID] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := ids(1), ids(2)
	kinds := map[string]int{}
	for id := range a {
		kinds[strings.SplitN(id, " ", 2)[0]]++
		if b[id] {
			t.Errorf("seeds 1 and 2 both have %s", id)
		}
	}
	for _, k := range []string{"event", "deployment", "incident", "patch", "change"} {
		if kinds[k] == 0 {
			t.Errorf("seed 1 has no %s ids", k)
		}
	}
}

// TestActorsAndPipelines: every deployment names who triggered it and its
// pipeline: an engineer of its team through the team's pipeline
// (unplanned fixes too), or the release bot through the release train; a
// release keeps its actor in every environment.
func TestActorsAndPipelines(t *testing.T) {
	evs, _ := run(t, Config{End: testEnd})
	byActor := map[string]int{}
	release := map[string]string{} // service|version → actor
	for _, ev := range evs {
		d := ev.Deployment
		if d == nil {
			continue
		}
		byActor[d.Actor]++
		want := "deploy-" + d.Team
		if d.Actor == ReleaseBot {
			want = "release-train"
		}
		if d.Pipeline != want {
			t.Errorf("deployment %s by %q (unplanned %v) in pipeline %q, want %q", d.ID, d.Actor, d.Unplanned, d.Pipeline, want)
		}
		if d.Actor == "" || d.Actor == NewHire {
			t.Errorf("deployment %s by %q without an anomaly", d.ID, d.Actor)
		}
		if k := d.Service + "|" + d.Version; !d.Unplanned {
			if a, ok := release[k]; ok && a != d.Actor {
				t.Errorf("release %s: deployed by %s and %s", k, a, d.Actor)
			}
			release[k] = d.Actor
		}
	}
	if n := byActor[ReleaseBot]; n == 0 || len(byActor) < 6 {
		t.Errorf("deployments by actor: %v, want the release bot and several engineers", byActor)
	}
}
