package anomaly

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The dimensions below a series that contributing factors rank, as the
// breakdown queries name them (metrics.DeploymentDimensions,
// IncidentDimensions, LeadTimeDimensions and PatchDimensions).
const (
	DimService         = "service"
	DimTeam            = "team"
	DimVersion         = "version"
	DimActor           = "actor"
	DimPipeline        = "pipeline"
	DimSeverity        = "severity"
	DimDetectionSource = "detection_source"
	DimEnvironment     = "environment"
	DimTarget          = "target"
)

// FactorRow is the rows of an interval that share one value of every
// dimension, with their figures.
type FactorRow struct {
	// Values are the row's values, one per FactorInput.Dimensions.
	Values []string `json:"values"`
	// Num is the rows' events: their count (counts); their successes
	// (rates: failed or unplanned deployments, patches applied in time);
	// or their durations beyond the threshold (durations: above the
	// band's upper end for an anomaly up).
	Num float64 `json:"num"`
	// Den is their trials (rates: deployments, patches due) or their
	// durations (durations); counts have none.
	Den float64 `json:"den,omitempty"`
}

// FactorInput is an anomalous interval (or window) of a series, its rows
// grouped by the dimensions below the series.
type FactorInput struct {
	Kind      baselines.Kind
	Direction string // of the anomaly: up or down
	// Expected is the baseline's expectation for the interval: a count's
	// expected total (Score.Expected), a rate's expected ratio, or for
	// durations the share of durations beyond the threshold at baseline
	// (the reference window's, or 0 when unknown).
	Expected   float64
	Dimensions []string
	Rows       []FactorRow
	// Reference is the same rows over a stretch of normal behaviour, such
	// as the baseline's training window. A count needs it: each value's
	// share of the reference is its share of the expected count, and a
	// value absent from the interval (a pipeline that stopped) is known
	// only from it. Rates and durations do not use it.
	Reference []FactorRow
	Words     FactorWords
}

// FactorWords name what a sentence counts, in the plural: Events the
// harmful events ("failed deployments", "incidents resolved in more than
// 4.0 h"), Trials what a rate's events are among ("deployments").
type FactorWords struct {
	Events, Trials string
}

// FactorOptions set when a value is a contributing factor.
type FactorOptions struct {
	// MinShare is the least share of its dimension's excess (default 0.3).
	MinShare float64
	// MaxTail is the largest probability of a value standing out this far
	// by chance, over all the values tested together (Bonferroni: each
	// value's tail times their number; default 0.01).
	MaxTail float64
	// Max is how many factors are sought (default 3).
	Max int
}

func (o FactorOptions) withDefaults() FactorOptions {
	if o.MinShare <= 0 {
		o.MinShare = 0.3
	}
	if o.MaxTail <= 0 {
		o.MaxTail = 0.01
	}
	if o.Max <= 0 {
		o.Max = 3
	}
	return o
}

// Factor is one value of a dimension, with its part in the anomaly.
type Factor struct {
	Dimension string `json:"dimension"`
	Value     string `json:"value"`
	// Observed is the value's harmful events: its count, its failures (a
	// rate down: its misses), its durations beyond the threshold.
	Observed float64 `json:"observed"`
	// Trials is its deployments, patches due or durations (rates and
	// durations).
	Trials float64 `json:"trials,omitempty"`
	// Expected is its events at the baseline: its trials times the
	// baseline ratio, or its reference share of the expected count.
	Expected float64 `json:"expected"`
	// Excess is Observed − Expected in the anomaly's direction (for a
	// count down, the shortfall).
	Excess float64 `json:"excess"`
	// Share is its part of its dimension's excess: its excess over the
	// sum of the positive excesses of the dimension's values.
	Share float64 `json:"share"`
	// Tail is the probability of a value standing out this far: the
	// larger of its tail at the baseline (binomial at the baseline ratio,
	// Poisson at its expected count) and its tail if every value had
	// behaved alike in the interval (hypergeometric among the interval's
	// events, binomial at its expected share of them for counts).
	Tail float64 `json:"tail"`
	// Of is the events Observed is counted among: the interval's for the
	// first factor, those the factors before left for the others (Share
	// is of their excess too).
	Of float64 `json:"of"`
}

// DimensionFactors is every value of one dimension, by share.
type DimensionFactors struct {
	Dimension string   `json:"dimension"`
	Values    []Factor `json:"values"`
}

// Factors is what explains an anomalous interval.
type Factors struct {
	Kind      baselines.Kind `json:"kind"`
	Direction string         `json:"direction"`
	// Observed, Trials and Expected are the interval's totals: its
	// harmful events, their trials, and the events expected at the
	// baseline; Excess their difference in the anomaly's direction.
	Observed float64 `json:"observed"`
	Trials   float64 `json:"trials,omitempty"`
	Expected float64 `json:"expected"`
	Excess   float64 `json:"excess"`
	// Factors are the contributing factors, in the order they were found:
	// none when the excess is spread.
	Factors []Factor `json:"factors"`
	// Dimensions rank every value of every dimension of the whole
	// interval by share.
	Dimensions []DimensionFactors `json:"dimensions"`
	// NoReference is set for a count without a reference: no value can be
	// singled out.
	NoReference bool   `json:"no_reference,omitempty"`
	Summary     string `json:"summary"`
}

// ContributingFactors ranks the values of each dimension of an anomalous
// interval by their share of the excess over the baseline, and finds the
// values that explain it (docs/alerting.md):
//
//   - rates (failures of deployments) and durations (durations beyond
//     the threshold): a value's expected events are its trials times the
//     baseline ratio, so a value that deployed more is expected to fail
//     more; a rate whose harm is down (patch compliance) counts misses;
//   - counts: a value's expected events are its share of the reference
//     (smoothed by half an event per value, so that a value never seen
//     has a small share) times the expected total; for an anomaly down,
//     its excess is its shortfall.
//
// A value's share is its excess over the sum of the positive excesses of
// its dimension's values. A value is a contributing factor when it holds
// at least MinShare of its dimension's excess and stands out both from
// the baseline and from the rest of the interval (Tail, corrected for the
// number of values tested, at most MaxTail): a failure rate that rose
// everywhere names nobody, although the service that deploys most fails
// most. The most improbable such value comes first; its rows are then
// set aside and the search repeats on the others, so that the team of a
// broken service, or a second dimension of the same rows, is not named
// again for the same failures.
func ContributingFactors(in FactorInput, opts FactorOptions) Factors {
	o := opts.withDefaults()
	out := Factors{Kind: in.Kind, Direction: in.Direction}
	if in.Kind == baselines.Count && len(in.Reference) == 0 {
		out.NoReference = true
	}
	s := newFactorSet(in)
	out.Observed, out.Trials, out.Expected = s.totals()
	out.Excess = out.Observed - out.Expected
	if in.Kind == baselines.Count && in.Direction == "down" {
		out.Excess = -out.Excess
	}
	tested := 0
	for d := range in.Dimensions {
		cells := s.marginal(d)
		out.Dimensions = append(out.Dimensions, DimensionFactors{Dimension: in.Dimensions[d], Values: cells})
		tested += len(cells)
	}
	for len(out.Factors) < o.Max && !out.NoReference {
		var best *Factor
		bestDim := -1
		for d := range in.Dimensions {
			cells := s.marginal(d)
			if len(cells) < 2 {
				continue
			}
			for i, c := range cells {
				if c.Share >= o.MinShare && c.Excess > 0 && c.Tail*float64(tested) <= o.MaxTail && (best == nil || c.Tail < best.Tail) {
					best, bestDim = &cells[i], d
				}
			}
		}
		if best == nil {
			break
		}
		f := *best
		f.Of, _, _ = s.totals()
		out.Factors = append(out.Factors, f)
		s = s.without(bestDim, f.Value)
	}
	out.Summary = summarize(in, out)
	return out
}

// factorSet is the rows still to explain, with the baseline that applies
// to them.
type factorSet struct {
	in        FactorInput
	rows, ref []FactorRow
	expected  float64 // counts: the expected total of rows; rates: the baseline ratio of harmful events
	misses    bool    // a rate whose harm is down: its events are Den − Num
}

func newFactorSet(in FactorInput) factorSet {
	s := factorSet{in: in, rows: in.Rows, ref: in.Reference, expected: in.Expected}
	if in.Kind == baselines.Rate && in.Direction == "down" {
		s.misses, s.expected = true, 1-in.Expected
	}
	return s
}

func (s factorSet) events(r FactorRow) float64 {
	if s.misses {
		return r.Den - r.Num
	}
	return r.Num
}

func (s factorSet) totals() (observed, trials, expected float64) {
	for _, r := range s.rows {
		observed += s.events(r)
		trials += r.Den
	}
	if s.in.Kind == baselines.Count {
		return observed, 0, s.expected
	}
	return observed, trials, trials * s.expected
}

// without sets aside the rows with value v of dimension d. A count's
// expected total loses that value's share of it.
func (s factorSet) without(d int, v string) factorSet {
	keep := func(rows []FactorRow) []FactorRow {
		var out []FactorRow
		for _, r := range rows {
			if r.Values[d] != v {
				out = append(out, r)
			}
		}
		return out
	}
	if s.in.Kind == baselines.Count {
		for _, c := range s.marginal(d) {
			if c.Value == v {
				s.expected -= c.Expected
			}
		}
	}
	s.rows, s.ref = keep(s.rows), keep(s.ref)
	return s
}

// marginal is every value of dimension d with its figures, by share.
func (s factorSet) marginal(d int) []Factor {
	type sums struct{ num, den, ref float64 }
	by := map[string]*sums{}
	var order []string
	add := func(v string) *sums {
		if by[v] == nil {
			by[v] = &sums{}
			order = append(order, v)
		}
		return by[v]
	}
	var k, n, refTotal float64
	for _, r := range s.rows {
		c := add(r.Values[d])
		c.num += s.events(r)
		c.den += r.Den
		k, n = k+s.events(r), n+r.Den
	}
	isCount := s.in.Kind == baselines.Count
	if isCount {
		for _, r := range s.ref {
			add(r.Values[d]).ref += r.Num
			refTotal += r.Num
		}
	}
	down := isCount && s.in.Direction == "down"
	cells := make([]Factor, 0, len(order))
	pos := 0.0
	for _, v := range order {
		c := by[v]
		f := Factor{Dimension: s.in.Dimensions[d], Value: v, Observed: c.num}
		if isCount {
			share := c.num / math.Max(k, 1e-300) // no reference: the value's own share, so nothing stands out
			if len(s.ref) > 0 {
				share = (c.ref + 0.5) / (refTotal + 0.5*float64(len(order)))
			}
			f.Expected = s.expected * share
			if down {
				f.Excess = f.Expected - f.Observed
				f.Tail = math.Max(poissonLower(f.Observed, f.Expected), binomialLower(f.Observed, k, share))
			} else {
				f.Excess = f.Observed - f.Expected
				f.Tail = math.Max(poissonUpper(f.Observed, f.Expected), binomialUpper(f.Observed, k, share))
			}
		} else {
			f.Trials, f.Expected = c.den, c.den*s.expected
			f.Excess = f.Observed - f.Expected
			f.Tail = math.Max(binomialUpper(f.Observed, f.Trials, s.expected), hypergeometricUpper(f.Observed, n, k, f.Trials))
		}
		pos += math.Max(0, f.Excess)
		cells = append(cells, f)
	}
	for i := range cells {
		if pos > 0 {
			cells[i].Share = math.Max(0, cells[i].Excess) / pos
		}
	}
	slices.SortStableFunc(cells, func(a, b Factor) int {
		if c := cmp.Compare(b.Share, a.Share); c != 0 {
			return c
		}
		return cmp.Compare(a.Tail, b.Tail)
	})
	return cells
}

// lchoose is log C(n, k).
func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

func binomialPMF(i, n int, p float64) float64 {
	return math.Exp(lchoose(n, i) + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
}

// binomialUpper is P(X >= k) for X ~ Binomial(n, p).
func binomialUpper(k, n, p float64) float64 {
	ki, ni := int(math.Round(k)), int(math.Round(n))
	switch {
	case ki <= 0:
		return 1
	case ki > ni || p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	sum := 0.0
	for i := ki; i <= ni; i++ {
		sum += binomialPMF(i, ni, p)
	}
	return math.Min(1, sum)
}

// binomialLower is P(X <= k) for X ~ Binomial(n, p).
func binomialLower(k, n, p float64) float64 {
	ki, ni := int(math.Round(k)), int(math.Round(n))
	switch {
	case ki >= ni || p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	sum := 0.0
	for i := 0; i <= ki; i++ {
		sum += binomialPMF(i, ni, p)
	}
	return math.Min(1, sum)
}

// hypergeometricUpper is P(X >= k) for the successes X among n draws
// without replacement from a population of size total holding succ
// successes: Fisher's exact test of one value against the others.
func hypergeometricUpper(k, total, succ, n float64) float64 {
	ki, N, K, ni := int(math.Round(k)), int(math.Round(total)), int(math.Round(succ)), int(math.Round(n))
	if ki <= max(0, ni+K-N) {
		return 1
	}
	den := lchoose(N, ni)
	sum := 0.0
	for i := ki; i <= min(ni, K); i++ {
		sum += math.Exp(lchoose(K, i) + lchoose(N-K, ni-i) - den)
	}
	return math.Min(1, sum)
}

func poissonPMF(i int, mu float64) float64 {
	lg, _ := math.Lgamma(float64(i) + 1)
	return math.Exp(float64(i)*math.Log(mu) - mu - lg)
}

// poissonUpper is P(X >= k) for X ~ Poisson(mu).
func poissonUpper(k, mu float64) float64 {
	ki := int(math.Round(k))
	if ki <= 0 {
		return 1
	}
	if mu <= 0 {
		return 0
	}
	below := 0.0
	for i := 0; i < ki; i++ {
		below += poissonPMF(i, mu)
	}
	return math.Max(0, 1-below)
}

// poissonLower is P(X <= k) for X ~ Poisson(mu).
func poissonLower(k, mu float64) float64 {
	if mu <= 0 {
		return 1
	}
	sum := 0.0
	for i := 0; i <= int(math.Round(k)); i++ {
		sum += poissonPMF(i, mu)
	}
	return math.Min(1, sum)
}

// The words of a factor, per dimension: how its value is introduced and
// the clause that gives its total ("7 of the 9 failed deployments were by
// actor new-hire, who made 8 deployments in total").
var dimensionWords = map[string]struct{ lead, rel string }{
	DimService:         {"were on service %s", "which had"},
	DimTeam:            {"were of team %s", "which had"},
	DimVersion:         {"were of version %s", "which had"},
	DimActor:           {"were by actor %s", "who made"},
	DimPipeline:        {"ran in pipeline %s", "which ran"},
	DimSeverity:        {"were of severity %s", "which had"},
	DimDetectionSource: {"were detected by %s", "which detected"},
	DimEnvironment:     {"were in environment %s", "which had"},
	DimTarget:          {"were on target %s", "which had"},
}

func factorWords(dim string) (lead, rel string) {
	if w, ok := dimensionWords[dim]; ok {
		return w.lead, w.rel
	}
	return "had " + dimName(dim) + " %s", "which had"
}

func dimName(dim string) string { return strings.ReplaceAll(dim, "_", " ") }

func valueName(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// figure formats an event count: whole numbers bare, others to one
// decimal.
func figure(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// summarize words the factors, or says that none stands out.
func summarize(in FactorInput, f Factors) string {
	w := in.Words
	if w.Events == "" {
		w.Events = "events"
	}
	if w.Trials == "" {
		w.Trials = "trials"
	}
	if f.NoReference {
		return fmt.Sprintf("%s %s against %s expected; without a breakdown of a normal period to compare with, no value can be singled out.",
			figure(f.Observed), w.Events, figure(f.Expected))
	}
	if len(f.Factors) == 0 {
		var dims []string
		var best *Factor
		for i, d := range f.Dimensions {
			if len(d.Values) < 2 {
				continue
			}
			dims = append(dims, dimName(d.Dimension))
			if v := d.Values[0]; v.Share > 0 && (best == nil || v.Share > best.Share) {
				best = &f.Dimensions[i].Values[0]
			}
		}
		if len(dims) == 0 {
			return fmt.Sprintf("%s %s against %s expected; no dimension has more than one value.", figure(f.Observed), w.Events, figure(f.Expected))
		}
		s := fmt.Sprintf("No single %s explains the %s %s against %s expected: the excess is spread", orList(dims), figure(f.Observed), w.Events, figure(f.Expected))
		if best != nil {
			s += fmt.Sprintf(" (the largest share, %s %s's, is %.0f%%)", dimName(best.Dimension), valueName(best.Value), 100*best.Share)
		}
		return s + "."
	}
	var parts []string
	for i, c := range f.Factors {
		lead, rel := factorWords(c.Dimension)
		lead = fmt.Sprintf(lead, valueName(c.Value))
		of := fmt.Sprintf("of the %s %s", figure(c.Of), w.Events)
		if i > 0 {
			of = fmt.Sprintf("of the other %s", figure(c.Of))
		}
		switch {
		case in.Kind == baselines.Count && in.Direction == "down":
			parts = append(parts, fmt.Sprintf("%s %s had %s against %s expected", dimName(c.Dimension), valueName(c.Value),
				figure(c.Observed), figure(c.Expected)))
		case in.Kind == baselines.Count:
			parts = append(parts, fmt.Sprintf("%s %s %s, where %s were expected", figure(c.Observed), of, lead, figure(c.Expected)))
		default:
			parts = append(parts, fmt.Sprintf("%s %s %s, %s %s %s in total", figure(c.Observed), of, lead, rel, figure(c.Trials), w.Trials))
		}
	}
	if in.Kind == baselines.Count && in.Direction == "down" {
		return fmt.Sprintf("%s %s against %s expected: %s.", figure(f.Observed), w.Events, figure(f.Expected), strings.Join(parts, "; "))
	}
	return strings.Join(parts, "; ") + "."
}

func orList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// FactorWordsFor are the words of a baselined KPI's factors; for a
// duration, the events are those beyond threshold (in seconds): above it
// when dir is up.
func FactorWordsFor(kpi, dir string, threshold float64) FactorWords {
	than := "more"
	if dir == "down" {
		than = "less"
	}
	d := metrics.FormatValue("seconds", threshold)
	switch kpi {
	case "deployments":
		return FactorWords{Events: "deployments"}
	case "incidents":
		return FactorWords{Events: "incidents"}
	case "patches":
		return FactorWords{Events: "patch advisories"}
	case "change_failure_rate":
		return FactorWords{Events: "failed deployments", Trials: "deployments"}
	case "rework_rate":
		return FactorWords{Events: "unplanned deployments", Trials: "deployments"}
	case "patch_compliance":
		return FactorWords{Events: "patches applied late", Trials: "patches due"}
	case "mttr":
		return FactorWords{Events: fmt.Sprintf("incidents resolved in %s than %s", than, d), Trials: "incidents"}
	case "mttd":
		return FactorWords{Events: fmt.Sprintf("incidents detected in %s than %s", than, d), Trials: "incidents"}
	case "lead_time":
		return FactorWords{Events: fmt.Sprintf("changes that took %s than %s to reach production", than, d), Trials: "changes"}
	case "patch_latency":
		return FactorWords{Events: fmt.Sprintf("patches applied in %s than %s", than, d), Trials: "patches"}
	}
	return FactorWords{Events: "events", Trials: "trials"}
}
