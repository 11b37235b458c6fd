package generator

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Stats counts the events one Generate call emitted, by kind and message.
type Stats struct {
	Deployments      int // deployment messages, one per deployment
	IncidentMessages int // incident lifecycle messages: opened, acknowledged, resolved
	Incidents        int // incidents opened (their first message)
	Patches          int // patch releases, one per patch and target
	PatchMessages    int // patch messages: released and applied
	Changes          int // change messages, one per commit
	Events           int // all emitted events

	// Anomalies describes the anomalies injected when Config.Anomalies is
	// set, whether or not emission reached them.
	Anomalies []Anomaly
}

// AnomalyKind names a kind of injected anomaly.
type AnomalyKind string

// The injected anomalies.
const (
	// AnomalyFailureBurst is a service whose production deployments mostly
	// fail, many of them causing incidents, at a somewhat raised rate.
	AnomalyFailureBurst AnomalyKind = "failure_burst"
	// AnomalyDeploymentStop is a frequently deploying service that stops
	// deploying to any environment.
	AnomalyDeploymentStop AnomalyKind = "deployment_stop"
)

// Anomaly is one injected anomaly: what happens to which service, and when.
type Anomaly struct {
	Kind    AnomalyKind
	Service string
	Team    string
	Start   time.Time // inclusive
	End     time.Time // exclusive: Config.End
}

func (a Anomaly) String() string {
	return fmt.Sprintf("%s: service %s (team %s) from %s to %s", a.Kind, a.Service, a.Team,
		a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339))
}

// Generate emits the events cfg describes to emit, in non-decreasing
// Event.Time order, and returns how many of each it emitted. Each event is
// newly allocated and may be retained by emit. Generation stops at the first
// error emit returns, which Generate returns wrapped.
//
// Generate holds only the events of the next few days and the later
// messages (acknowledgements, resolutions, patch applications) of earlier
// ones, so its memory does not grow with the length of the range.
func Generate(cfg Config, emit func(*event.Event) error) (Stats, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return Stats{}, err
	}
	g := newGen(cfg, emit)
	for d := -1; d < g.days; d++ {
		for i := range g.services {
			g.serviceDay(&g.services[i], i, d)
		}
		if d >= 0 {
			g.patchDay(d)
		}
		if err := g.flush(g.dayStart(d+1) - maxBack); err != nil {
			return g.stats, err
		}
	}
	err = g.flush(math.MaxInt64)
	return g.stats, err
}

const (
	day = 86400 // seconds
	// maxMergeLead is the longest a change is merged before its release
	// starts.
	maxMergeLead = 3 * day
	// maxBack bounds how long before the local day being generated an event
	// can be: a change merged before the day's first release, which starts
	// at most a day's offset before the UTC day.
	maxBack = maxMergeLead + day
)

// Stream numbers of the generator's random sources. Each service draws from
// its own, so that an anomaly in one service leaves the others' streams, and
// everything before the anomaly, unchanged.
const (
	streamSetup   = 1
	streamPatches = 2
	streamService = 1 << 32 // + service index
	// streamActors + service index draws who releases each service, apart
	// from its own stream, so that streams of earlier versions keep their
	// events.
	streamActors = 2 << 32
)

// gen is the state of one Generate call.
type gen struct {
	cfg      Config
	start    int64 // unix seconds: the range is [start, end)
	end      int64
	firstDay int64 // UTC midnight of the first day of the range
	days     int   // UTC days overlapping the range
	prod     string
	preprod  []string // pre-production environments, in deployment order

	services []service
	hosts    []host
	patchRNG rng

	burst, stop int   // anomalous service indexes; -1 when none
	anomalyFrom int64 // start of the anomaly window

	deploys, incidents int // entity id counters
	advisoryYear       int
	advisories         int // within advisoryYear

	// Events wait in per-day buckets until no later generation can produce
	// an earlier one; bucket i holds times in [base+i*day, base+(i+1)*day).
	base    int64
	buckets [][]item
	flushed int // buckets before this one have been emitted
	seq     uint64

	emit     func(*event.Event) error
	idPrefix string
	// seedTag ("<seed>-") is in every entity id, so that streams of
	// different seeds never share an entity.
	seedTag string
	emitted uint64
	stats   Stats
}

// item is an event waiting to be emitted; seq breaks ties in time by
// generation order, which keeps one entity's messages in lifecycle order.
type item struct {
	t   int64
	seq uint64
	ev  *event.Event
}

type service struct {
	name, team   string
	teamIdx      int
	repo, image  string
	offset       int64   // the team's UTC offset in seconds
	rate         float64 // production releases per ordinary weekday
	failProb     float64 // probability that a production deployment fails
	incidentRate float64 // background incidents per day
	rng          rng
	actors       rng    // draws actor, apart from rng
	actor        string // who triggers the deployments being generated
	major        int
	builds       int
}

type host struct {
	name    string
	service int
	env     string
}

func newGen(cfg Config, emit func(*event.Event) error) *gen {
	g := &gen{
		cfg:      cfg,
		end:      cfg.End.Unix(),
		prod:     cfg.Environments[0],
		patchRNG: newRNG(cfg.Seed, streamPatches),
		burst:    -1,
		stop:     -1,
		emit:     emit,
		idPrefix: "gen-" + strconv.FormatUint(cfg.Seed, 10) + "-",
		seedTag:  strconv.FormatUint(cfg.Seed, 10) + "-",
	}
	if cfg.End.Nanosecond() != 0 {
		g.end++ // the whole second holding End is in range; times are whole seconds
	}
	g.start = cfg.End.Unix() - int64(cfg.Days)*day
	g.firstDay = floorDiv(g.start, day) * day
	g.days = int((floorDiv(g.end-1, day)*day-g.firstDay)/day) + 1
	for i := len(cfg.Environments) - 1; i >= 1; i-- {
		g.preprod = append(g.preprod, cfg.Environments[i])
	}

	setup := newRNG(cfg.Seed, streamSetup)
	// Stratify the deployment rates so that every organisation has both
	// services that deploy several times a day and ones that deploy weekly.
	strata := make([]int, cfg.Services)
	for i := range strata {
		strata[i] = i
	}
	for i := len(strata) - 1; i > 0; i-- {
		j := setup.intn(i + 1)
		strata[i], strata[j] = strata[j], strata[i]
	}
	const minRate, maxRate = 0.2, 10.0
	g.services = make([]service, cfg.Services)
	for i := range g.services {
		u := (float64(strata[i]) + setup.float()) / float64(cfg.Services)
		f := setup.float()
		t := i % cfg.Teams
		name := nthName(serviceNames, i)
		g.services[i] = service{
			name:         name,
			team:         nthName(teamNames, t),
			teamIdx:      t,
			repo:         "acme/" + name,
			image:        "registry.internal/" + name,
			offset:       int64(teamOffsets[t%len(teamOffsets)] / time.Second),
			rate:         minRate * math.Exp(u*math.Log(maxRate/minRate)),
			failProb:     0.02 + 0.23*f*f,
			incidentRate: setup.between(0.01, 0.06),
			rng:          newRNG(cfg.Seed, streamService+uint64(i)),
			actors:       newRNG(cfg.Seed, streamActors+uint64(i)),
			major:        1 + setup.intn(4),
		}
	}
	const hostsPerService = 8
	g.hosts = make([]host, cfg.Services*hostsPerService)
	for h := range g.hosts {
		env := g.prod
		if h%hostsPerService == hostsPerService-1 && len(cfg.Environments) > 1 {
			env = cfg.Environments[1]
		}
		g.hosts[h] = host{name: fmt.Sprintf("host-%03d", h+1), service: h % cfg.Services, env: env}
	}

	if cfg.Anomalies {
		g.anomalyFrom = g.end - anomalyDays*day
		byRate := make([]int, cfg.Services)
		for i := range byRate {
			byRate[i] = i
		}
		slices.SortStableFunc(byRate, func(a, b int) int {
			return -cmp.Compare(g.services[a].rate, g.services[b].rate)
		})
		g.stop, g.burst = byRate[0], byRate[1]
		from, to := time.Unix(g.anomalyFrom, 0).UTC(), cfg.End
		g.stats.Anomalies = []Anomaly{
			{Kind: AnomalyFailureBurst, Service: g.services[g.burst].name, Team: g.services[g.burst].team, Start: from, End: to},
			{Kind: AnomalyDeploymentStop, Service: g.services[g.stop].name, Team: g.services[g.stop].team, Start: from, End: to},
		}
	}

	g.base = g.firstDay - day - maxBack
	g.buckets = make([][]item, (g.end-g.base)/day+1)
	return g
}

// dayStart returns the UTC midnight starting day d of the range.
func (g *gen) dayStart(d int) int64 { return g.firstDay + int64(d)*day }

// weekday returns the weekday of day d of the range.
func (g *gen) weekday(d int) time.Weekday {
	// 1970-01-01 was a Thursday.
	return time.Weekday((floorDiv(g.firstDay, day) + int64(d) + 4) % 7)
}

// push queues ev to be emitted at t, dropping it when t is past the range.
func (g *gen) push(t int64, ev *event.Event) {
	if t >= g.end {
		return
	}
	ev.Time = unix(t)
	ev.Encoding = event.EncodingNative
	i := max(int(floorDiv(t-g.base, day)), 0)
	if i < g.flushed {
		panic(fmt.Sprintf("generator: internal error: event at %s queued after its day was emitted", ev.Time.Format(time.RFC3339)))
	}
	g.seq++
	g.buckets[i] = append(g.buckets[i], item{t: t, seq: g.seq, ev: ev})
}

// flush emits, in order, every bucket that ends at or before before.
func (g *gen) flush(before int64) error {
	for g.flushed < len(g.buckets) && (before == math.MaxInt64 || g.base+int64(g.flushed+1)*day <= before) {
		b := g.buckets[g.flushed]
		g.buckets[g.flushed] = nil
		g.flushed++
		slices.SortFunc(b, func(x, y item) int {
			if x.t != y.t {
				return cmp.Compare(x.t, y.t)
			}
			return cmp.Compare(x.seq, y.seq)
		})
		for _, it := range b {
			if err := g.send(it.ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// send gives ev its event id, counts it and emits it.
func (g *gen) send(ev *event.Event) error {
	ev.ID = g.idPrefix + strconv.FormatUint(g.emitted, 10)
	if g.cfg.UUIDs {
		ev.ID = eventUUID(g.cfg.Seed, g.emitted)
	}
	g.emitted++
	switch ev.Kind {
	case event.KindDeployment:
		g.stats.Deployments++
	case event.KindIncident:
		g.stats.IncidentMessages++
		if !ev.Incident.DetectedAt.IsZero() {
			g.stats.Incidents++
		}
	case event.KindPatch:
		g.stats.PatchMessages++
		if ev.Patch.Outcome == "" {
			g.stats.Patches++
		}
	case event.KindChange:
		g.stats.Changes++
	}
	g.stats.Events++
	if err := g.emit(ev); err != nil {
		return fmt.Errorf("generator: emit event %s: %w", ev.ID, err)
	}
	return nil
}

func unix(t int64) time.Time { return time.Unix(t, 0).UTC() }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Service is one service the generator deploys, with its team.
type Service struct {
	Name, Team string
	// PerDay is its production releases per ordinary weekday.
	PerDay float64
}

// Services are the services Generate emits events for under cfg, in the
// generator's order.
func Services(cfg Config) ([]Service, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	g := newGen(cfg, nil)
	out := make([]Service, len(g.services))
	for i, s := range g.services {
		out[i] = Service{Name: s.name, Team: s.team, PerDay: s.rate}
	}
	return out, nil
}

// eventUUID is the n-th event id of a stream of seed as a UUID: 16 bytes of
// SHA-256 of both, with the version 4 and variant bits set.
func eventUUID(seed, n uint64) string {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], seed)
	binary.BigEndian.PutUint64(in[8:], n)
	sum := sha256.Sum256(in[:])
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
