package generator

import (
	"slices"
	"strconv"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// weekdayFactor scales a service's release rate by local day of the week:
// hardly anyone deploys at weekends, and fewer on Fridays.
var weekdayFactor = [7]float64{
	time.Sunday: 0.05, time.Monday: 0.9, time.Tuesday: 1.05, time.Wednesday: 1.1,
	time.Thursday: 1.05, time.Friday: 0.75, time.Saturday: 0.05,
}

// workHourWeights weight the local hours 08 to 17 in which most releases
// start, with a dip at lunch.
var workHourWeights = []float64{0.6, 1.0, 1.2, 1.1, 0.7, 0.9, 1.1, 1.1, 0.9, 0.5}

// severities lists the severities in the order of the weight tables below.
var severities = []event.Severity{event.SeverityCritical, event.SeverityHigh, event.SeverityMedium, event.SeverityLow}

// Severity mixes of incidents caused by deployments and of the others, and
// the per-severity medians, in seconds, of the time to acknowledge and of
// the time from acknowledgement to mitigation.
var (
	causedSeverityWeights     = []float64{10, 30, 40, 20}
	backgroundSeverityWeights = []float64{3, 15, 42, 40}
	ackMedian                 = []float64{3 * 60, 7 * 60, 20 * 60, 75 * 60}
	mitigateMedian            = []float64{45 * 60, 2 * 3600, 5 * 3600, 18 * 3600}
)

// serviceDay generates local day d of service s, the i-th: its releases, through the
// pre-production environments to production, and its background incidents.
func (g *gen) serviceDay(s *service, i, d int) {
	r := s.rng
	midnight := g.dayStart(d) - s.offset
	wd := g.weekday(d)

	lambda := s.rate * weekdayFactor[wd]
	if i == g.burst && midnight+day > g.anomalyFrom {
		lambda *= 1.5
	}
	var buf [16]int64
	starts := buf[:0]
	for range r.poisson(lambda) {
		starts = append(starts, midnight+timeOfDay(r))
	}
	slices.Sort(starts)
	for _, t0 := range starts {
		if t0 < g.start || g.stopped(s, t0) {
			continue
		}
		g.release(s, t0, g.cfg.Anomalies && t0 >= g.anomalyFrom && i == g.burst)
	}

	busy := 1.15
	if wd == time.Saturday || wd == time.Sunday {
		busy = 0.6
	}
	for range r.poisson(s.incidentRate * busy) {
		impact := midnight + int64(r.float()*day)
		if r.chance(0.5) {
			impact = midnight + timeOfDay(r)
		}
		if impact < g.start {
			continue
		}
		sp := incidentSpec{
			impact:   impact,
			severity: r.weighted(backgroundSeverityWeights),
			env:      g.prod,
			source:   event.DetectedByMonitoring,
			rework:   0.2,
		}
		if r.chance(0.25) {
			sp.source = event.DetectedByCustomer
		}
		if len(g.preprod) > 0 && r.chance(0.04) {
			sp.env = g.preprod[r.intn(len(g.preprod))]
		}
		g.incident(s, sp)
	}
}

// timeOfDay returns when in a local day a release starts, in seconds after
// midnight: mostly in working hours, sometimes at any time.
func timeOfDay(r rng) int64 {
	if r.chance(0.9) {
		h := 8 + r.weighted(workHourWeights)
		return int64(h)*3600 + int64(r.intn(3600))
	}
	return int64(r.intn(day))
}

// release ships 1–6 new changes of s: to each pre-production environment
// (retrying a failed deployment there), then to production, where a failed
// deployment may cause an incident. An engineer of the team triggers it,
// or a quarter of the time the release bot. In the failure-burst anomaly,
// a new hire triggers most releases of the service, and theirs fail and
// cause incidents far more often.
func (g *gen) release(s *service, t0 int64, burst bool) {
	r := s.rng
	s.actor = author(s.teamIdx, s.actors.intn(authorsPerTeam))
	switch {
	case burst && s.actors.chance(0.6):
		s.actor = NewHire
	case s.actors.chance(0.25):
		s.actor = ReleaseBot
	}
	burst = burst && s.actor == NewHire
	version := s.nextVersion()
	changes := make([]string, 1+r.intn(6))
	for i := range changes {
		merged := t0 - seconds(r.lognormal(3*3600, 1.0), 120, maxMergeLead)
		authored := merged - seconds(r.lognormal(8*3600, 1.1), 300, 14*day)
		changes[i] = g.change(s, authored, merged)
	}

	t := t0
	for _, env := range g.preprod {
		dep := g.deploy(s, env, t, version, changes, r.chance(min(0.4, 1.5*s.failProb)), "")
		t = dep.FinishedAt.Unix()
		if dep.Status != event.DeploymentSuccess {
			dep = g.deploy(s, env, t+seconds(r.lognormal(20*60, 0.7), 120, 4*3600), version, changes, false, "")
			t = dep.FinishedAt.Unix()
		}
		t += seconds(r.lognormal(40*60, 0.8), 120, 8*3600)
	}

	failProb, incidentProb := s.failProb, 0.3
	if burst {
		failProb, incidentProb = 0.85, 0.8
	}
	dep := g.deploy(s, g.prod, t, version, changes, r.chance(failProb), "")
	switch {
	case dep.Status != event.DeploymentSuccess && r.chance(incidentProb):
		g.deploymentIncident(s, dep, false)
	case dep.Status == event.DeploymentSuccess && r.chance(0.01):
		g.deploymentIncident(s, dep, true)
	}
}

// nextVersion returns the version of s's next build.
func (s *service) nextVersion() string {
	s.builds++
	return strconv.Itoa(s.major) + "." + strconv.Itoa(s.builds/25) + "." + strconv.Itoa(s.builds%25)
}

// change emits a change of s authored and merged at the given times and
// returns its id.
func (g *gen) change(s *service, authored, merged int64) string {
	r := s.rng
	c := &event.Change{
		ID:         r.sha(),
		Service:    s.name,
		Team:       s.team,
		Repository: s.repo,
		Author:     author(s.teamIdx, r.intn(authorsPerTeam)),
		AuthoredAt: unix(authored),
		MergedAt:   unix(merged),
	}
	g.push(merged, &event.Event{Kind: event.KindChange, Change: c})
	return c.ID
}

// deploy emits a deployment of s to env starting at start, failed or not,
// and returns it. A non-empty fixes makes it an unplanned deployment that
// fixes that incident.
func (g *gen) deploy(s *service, env string, start int64, version string, changes []string, failed bool, fixes string) *event.Deployment {
	r := s.rng
	dur := seconds(r.lognormal(6*60, 0.55), 30, 3*3600)
	if r.chance(0.06) {
		dur = seconds(float64(dur)*r.between(3, 10), 30, 3*3600) // the heavy tail: slow rollouts
	}
	status := event.DeploymentSuccess
	if failed {
		status = event.DeploymentFailure
		if r.chance(0.45) {
			status = event.DeploymentRolledBack
			dur += seconds(r.lognormal(4*60, 0.6), 60, 3600)
		}
	}
	g.deploys++
	dep := &event.Deployment{
		ID:            "deploy-" + g.seedTag + strconv.Itoa(g.deploys),
		Service:       s.name,
		Team:          s.team,
		Environment:   env,
		StartedAt:     unix(start),
		FinishedAt:    unix(start + dur),
		Status:        status,
		Version:       version,
		Artifact:      s.image + ":" + version,
		Unplanned:     fixes != "",
		FixesIncident: fixes,
		Changes:       slices.Clone(changes),
		Actor:         s.actor,
		Pipeline:      pipeline(s),
	}
	g.push(start+dur, &event.Event{Kind: event.KindDeployment, Deployment: dep})
	return dep
}

// incidentSpec is what the cause of an incident decides about it.
type incidentSpec struct {
	impact      int64 // unix seconds
	severity    int   // index into severities
	env         string
	source      event.DetectionSource
	causeDeploy string
	causeCommit string
	rework      float64 // probability of an unplanned deployment fixing it
}

// deploymentIncident emits an incident caused by production deployment dep:
// during the deployment when it failed, or later when it succeeded but
// shipped a bug (latent). Some name their cause; the others are left for
// attribution to infer.
func (g *gen) deploymentIncident(s *service, dep *event.Deployment, latent bool) {
	r := s.rng
	start, finish := dep.StartedAt.Unix(), dep.FinishedAt.Unix()
	impact := start + int64(r.between(0.3, 1)*float64(finish-start))
	if latent {
		impact = finish + seconds(r.lognormal(2*3600, 1.0), 60, 2*day)
	}
	sp := incidentSpec{
		impact:   impact,
		severity: r.weighted(causedSeverityWeights),
		env:      dep.Environment,
		source:   event.DetectedByMonitoring,
	}
	if r.chance(0.1) {
		sp.source = event.DetectedByCustomer
	}
	// The incident tool names the cause of most, as long as the deployment
	// itself is in the stream.
	if r.chance(0.6) && finish < g.end {
		sp.causeDeploy = dep.ID
		if r.chance(0.3) {
			sp.causeCommit = dep.Changes[r.intn(len(dep.Changes))]
		}
	}
	switch dep.Status {
	case event.DeploymentFailure:
		sp.rework = 0.7
	case event.DeploymentRolledBack:
		sp.rework = 0.2 // the rollback itself mitigated it, mostly
	default:
		sp.rework = 0.6
	}
	g.incident(s, sp)
}

// incident emits an incident of s as three messages (opened, acknowledged,
// resolved), with a rework deployment fixing it when sp.rework comes up.
func (g *gen) incident(s *service, sp incidentSpec) {
	r := s.rng
	g.incidents++
	id := "INC-" + g.seedTag + strconv.Itoa(g.incidents)

	mttd := r.lognormal(4*60, 0.8)
	if sp.source == event.DetectedByCustomer {
		mttd = r.lognormal(40*60, 0.9)
	}
	detected := sp.impact + seconds(mttd, 30, 2*day)
	acked := detected + seconds(r.lognormal(ackMedian[sp.severity], 0.9), 15, day)

	var mitigated int64
	if sp.env == g.prod && r.chance(sp.rework) {
		mitigated = g.rework(s, id, detected, acked)
	}
	if mitigated == 0 {
		mitigated = acked + seconds(r.lognormal(mitigateMedian[sp.severity], 1.0), 60, 21*day)
	}
	resolved := mitigated
	if r.chance(0.8) {
		resolved += seconds(r.lognormal(40*60, 1.0), 60, 3*day)
	}

	g.push(detected, &event.Event{Kind: event.KindIncident, Incident: &event.Incident{
		ID:              id,
		Title:           s.name + ": " + incidentTitles[r.intn(len(incidentTitles))],
		Service:         s.name,
		Team:            s.team,
		Environment:     sp.env,
		Severity:        severities[sp.severity],
		DetectionSource: sp.source,
		ImpactStartedAt: unix(sp.impact),
		DetectedAt:      unix(detected),
		CauseDeployment: sp.causeDeploy,
		CauseCommit:     sp.causeCommit,
	}})
	g.push(acked, &event.Event{Kind: event.KindIncident, Incident: &event.Incident{
		ID:             id,
		AcknowledgedAt: unix(acked),
	}})
	g.push(resolved, &event.Event{Kind: event.KindIncident, Incident: &event.Incident{
		ID:          id,
		MitigatedAt: unix(mitigated),
		ResolvedAt:  unix(resolved),
	}})
}

// rework emits an unplanned deployment of s that fixes incident id, shipping
// one or two hotfix commits written after its detection, and returns when it
// mitigated the incident, or 0 if it did not.
func (g *gen) rework(s *service, id string, detected, acked int64) (mitigated int64) {
	r := s.rng
	start := acked + seconds(r.lognormal(35*60, 0.6), 5*60, 6*3600)
	if g.stopped(s, start) {
		return 0 // not even a fix gets out: the incident is mitigated by hand
	}
	s.actor = author(s.teamIdx, s.actors.intn(authorsPerTeam)) // whoever is on call
	changes := make([]string, 1+r.intn(2))
	for i := range changes {
		authored := detected + int64(r.between(0.05, 0.6)*float64(start-detected))
		merged := authored + int64(r.between(0.3, 0.95)*float64(start-authored))
		changes[i] = g.change(s, authored, merged)
	}
	dep := g.deploy(s, g.prod, start, s.nextVersion(), changes, r.chance(0.08), id)
	if dep.Status != event.DeploymentSuccess {
		return 0
	}
	return dep.FinishedAt.Unix()
}

// stopped reports whether s is the service whose deployments stop in the
// deployment-stop anomaly, and t is in the anomaly.
func (g *gen) stopped(s *service, t int64) bool {
	return g.stop >= 0 && s == &g.services[g.stop] && t >= g.anomalyFrom
}

// The actors the generator names besides the teams' engineers.
const (
	// ReleaseBot triggers scheduled releases, through the shared pipeline
	// release-train.
	ReleaseBot = "release-bot"
	// NewHire triggers most releases of the failure-burst service, and
	// theirs fail.
	NewHire = "new-hire"
)

// pipeline is the pipeline a deployment of s runs in: release-train for
// the release bot's, else its team's deploy-<team>, unplanned fixes too.
func pipeline(s *service) string {
	if s.actor == ReleaseBot {
		return "release-train"
	}
	return "deploy-" + s.team
}
