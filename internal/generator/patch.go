package generator

import (
	"fmt"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Patch waves: the severity mix of advisories, and per severity the median
// time to apply in seconds and the probability that a target never gets the
// patch.
var (
	patchSeverityWeights = []float64{10, 25, 40, 25}
	applyMedian          = []float64{20 * 3600, 3 * day, 8 * day, 20 * day}
	neverApplied         = []float64{0.01, 0.03, 0.07, 0.15}
)

// Patch target populations, in the order of targetTypeWeights.
var (
	targetTypes       = []event.TargetType{event.TargetHost, event.TargetImage, event.TargetService}
	targetTypeWeights = []float64{55, 25, 20}
)

// patchDay releases the day's advisories, if any: about every other
// weekday, rarely at weekends.
func (g *gen) patchDay(d int) {
	r := g.patchRNG
	p := 0.5
	if wd := g.weekday(d); wd == time.Saturday || wd == time.Sunday {
		p = 0.1
	}
	n := 0
	if r.chance(p) {
		n = 1
		if r.chance(0.15) {
			n = 2
		}
	}
	for range n {
		released := g.dayStart(d) + int64(r.between(6*3600, 20*3600))
		if released < g.start {
			continue
		}
		g.advisory(released)
	}
}

// advisory releases one advisory at released for a share of the targets of
// one type, and applies it to most of them.
func (g *gen) advisory(released int64) {
	r := g.patchRNG
	if y := unix(released).Year(); y != g.advisoryYear {
		g.advisoryYear, g.advisories = y, 0
	}
	g.advisories++
	id := fmt.Sprintf("ADV-%s%d-%04d", g.seedTag, g.advisoryYear, g.advisories)
	sev := r.weighted(patchSeverityWeights)
	typ := targetTypes[r.weighted(targetTypeWeights)]
	share := r.between(0.15, 0.9)

	population := len(g.services)
	if typ == event.TargetHost {
		population = len(g.hosts)
	}
	for i := range population {
		if !r.chance(share) {
			continue
		}
		p := event.Patch{
			ID:          id,
			Severity:    severities[sev],
			TargetType:  typ,
			Environment: g.prod,
			ReleasedAt:  unix(released),
		}
		var s *service
		switch typ {
		case event.TargetHost:
			h := g.hosts[i]
			s = &g.services[h.service]
			p.Target, p.Environment = h.name, h.env
		case event.TargetImage:
			s = &g.services[i]
			p.Target = s.image
		default:
			s = &g.services[i]
			p.Target = s.name
		}
		p.Service, p.Team = s.name, s.team
		rel := p
		g.push(released, &event.Event{Kind: event.KindPatch, Patch: &rel})

		if r.chance(neverApplied[sev]) {
			continue
		}
		applied := released + seconds(r.lognormal(applyMedian[sev], 0.8), 10*60, 180*day)
		if severities[sev] != event.SeverityCritical {
			applied = workingTime(r, applied, s.offset)
		}
		p.AppliedAt = unix(applied)
		p.Outcome = event.PatchApplied
		if x := r.float(); x < 0.03 {
			p.Outcome = event.PatchFailed
		} else if x < 0.045 {
			p.Outcome = event.PatchRolledBack
		}
		g.push(applied, &event.Event{Kind: event.KindPatch, Patch: &p})
	}
}

// workingTime returns t if it falls in working hours (weekdays 08 to 18 at
// UTC offset off, in seconds), or else a time early in the next working
// day: non-critical patches wait for a maintenance window.
func workingTime(r rng, t, off int64) int64 {
	local := t + off
	midnight := floorDiv(local, day) * day
	tod := local - midnight
	if tod >= 18*3600 {
		midnight += day
	}
	for {
		wd := time.Weekday((floorDiv(midnight, day) + 4) % 7) // 1970-01-01 was a Thursday
		if wd != time.Saturday && wd != time.Sunday {
			break
		}
		midnight += day
	}
	if midnight == floorDiv(local, day)*day && tod >= 8*3600 && tod < 18*3600 {
		return t
	}
	return midnight + 8*3600 + int64(r.intn(2*3600)) - off
}
