package anomaly_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
)

// deployment is one row of a day's deployments, as the breakdown query
// groups them.
type deployment struct {
	service, team, version, actor, pipeline string
	failed                                  bool
}

var deploymentDims = []string{anomaly.DimService, anomaly.DimTeam, anomaly.DimVersion, anomaly.DimActor, anomaly.DimPipeline}

func (d deployment) value(dim string) string {
	return map[string]string{anomaly.DimService: d.service, anomaly.DimTeam: d.team, anomaly.DimVersion: d.version,
		anomaly.DimActor: d.actor, anomaly.DimPipeline: d.pipeline}[dim]
}

// failureRows groups deployments as metrics.DeploymentBreakdownSQL does:
// per combination of values, the failed ones of all.
func failureRows(ds []deployment) []anomaly.FactorRow {
	idx := map[string]int{}
	var out []anomaly.FactorRow
	for _, d := range ds {
		vals := make([]string, len(deploymentDims))
		for i, dim := range deploymentDims {
			vals[i] = d.value(dim)
		}
		key := strings.Join(vals, "\x00")
		i, ok := idx[key]
		if !ok {
			i = len(out)
			idx[key] = i
			out = append(out, anomaly.FactorRow{Values: vals})
		}
		out[i].Den++
		if d.failed {
			out[i].Num++
		}
	}
	return out
}

func failures(ds []deployment, p0 float64) anomaly.FactorInput {
	return anomaly.FactorInput{Kind: baselines.Rate, Direction: "up", Expected: p0, Dimensions: deploymentDims,
		Rows: failureRows(ds), Words: anomaly.FactorWordsFor("change_failure_rate", "up", 0)}
}

// deploymentsOfADay draws n deployments over 12 services of 4 teams, 6 versions, 10
// actors and 3 pipelines, each failing with probability fail(d).
func deploymentsOfADay(r *rand.Rand, n int, fail func(d deployment) float64) []deployment {
	out := make([]deployment, n)
	for i := range out {
		s := r.IntN(12)
		d := deployment{service: fmt.Sprintf("svc-%02d", s), team: fmt.Sprintf("team-%d", s%4),
			version: fmt.Sprintf("1.%d.0", r.IntN(6)), actor: fmt.Sprintf("dev-%d", r.IntN(10)),
			pipeline: []string{"ci-main", "ci-hotfix", "deploy-bot"}[r.IntN(3)]}
		d.failed = r.Float64() < fail(d)
		out[i] = d
	}
	return out
}

// TestFactorsFindTheInjectedCause injects a failure burst concentrated
// in one actor, one version or one service into a day of deployments
// that otherwise fail at the baseline's 5%, 100 times each (the
// deployments are our own draws): the right value must come first
// whenever a value is named, and be named nearly always. The figures of
// the first draw are checked against the deployments.
func TestFactorsFindTheInjectedCause(t *testing.T) {
	const p0 = 0.05 // the baseline's failure rate
	for _, tc := range []struct {
		name       string
		build      func(r *rand.Rand) []deployment
		dim, value string
		sentence   string // a part of the summary of the first draw
	}{
		{"a new actor", func(r *rand.Rand) []deployment {
			ds := deploymentsOfADay(r, 110, func(deployment) float64 { return p0 })
			for i := range 8 {
				ds[i].actor, ds[i].failed = "new-hire", i < 7
			}
			return ds
		}, anomaly.DimActor, "new-hire", " failed deployments were by actor new-hire, who made 8 deployments in total"},
		{"a bad version", func(r *rand.Rand) []deployment {
			return deploymentsOfADay(r, 120, func(d deployment) float64 {
				if d.version == "1.4.0" {
					return 0.6
				}
				return p0
			})
		}, anomaly.DimVersion, "1.4.0", " failed deployments were of version 1.4.0, which had "},
		{"a broken service", func(r *rand.Rand) []deployment {
			return deploymentsOfADay(r, 200, func(d deployment) float64 {
				if d.service == "svc-07" {
					return 0.8
				}
				return p0
			})
		}, anomaly.DimService, "svc-07", " failed deployments were on service svc-07, which had "},
		{"a service that deploys half", func(r *rand.Rand) []deployment {
			ds := deploymentsOfADay(r, 150, func(deployment) float64 { return p0 })
			for i := range 75 { // half the deployments, failing eight times as often
				ds[i].service, ds[i].team, ds[i].failed = "monolith", "core", r.Float64() < 0.4
			}
			return ds
		}, anomaly.DimService, "monolith", " failed deployments were on service monolith, which had 75 deployments in total"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			named := 0
			for seed := range uint64(100) {
				ds := tc.build(rand.New(rand.NewPCG(seed+1, 99)))
				f := anomaly.ContributingFactors(failures(ds, p0), anomaly.FactorOptions{})
				if len(f.Factors) == 0 {
					continue
				}
				named++
				top := f.Factors[0]
				if top.Dimension != tc.dim || top.Value != tc.value {
					t.Errorf("seed %d: %s %s first, want %s %s: %s", seed, top.Dimension, top.Value, tc.dim, tc.value, f.Summary)
					continue
				}
				if seed > 0 {
					continue
				}
				if !strings.Contains(f.Summary, tc.sentence) {
					t.Errorf("summary %q lacks %q", f.Summary, tc.sentence)
				}
				var failed, all float64
				for _, d := range ds {
					if d.value(tc.dim) == tc.value {
						all++
						if d.failed {
							failed++
						}
					}
				}
				if top.Observed != failed || top.Trials != all || top.Expected != all*p0 || top.Of != f.Observed {
					t.Errorf("top factor %+v; want %v failed of %v, %v expected, of %v", top, failed, all, all*p0, f.Observed)
				}
				// The team of the broken service, or the service of the
				// one-team monolith, is not named again for its failures.
				for _, other := range f.Factors[1:] {
					if other.Dimension == tc.dim || (tc.dim == anomaly.DimService && other.Dimension == anomaly.DimTeam) {
						t.Errorf("named again for the same failures: %+v (%s)", other, f.Summary)
					}
				}
			}
			if named < 90 {
				t.Errorf("named in %d of 100 draws, want at least 90", named)
			}
			t.Logf("named in %d of 100 draws", named)
		})
	}
}

// The text names the new hire with the figures: 7 of the 9
// failed deployments, 8 deployments in total.
func TestFactorsSentence(t *testing.T) {
	var ds []deployment
	for i := range 100 {
		d := deployment{service: fmt.Sprintf("svc-%d", i%5), team: fmt.Sprintf("team-%d", i%2), version: "2.0.0",
			actor: fmt.Sprintf("dev-%d", i%6), pipeline: "ci"}
		switch {
		case i < 8:
			d.actor, d.failed = "new-hire", i < 7
		case i == 50 || i == 77:
			d.failed = true
		}
		ds = append(ds, d)
	}
	f := anomaly.ContributingFactors(failures(ds, 0.03), anomaly.FactorOptions{})
	want := "7 of the 9 failed deployments were by actor new-hire, who made 8 deployments in total."
	if f.Summary != want {
		t.Errorf("summary %q\nwant    %q", f.Summary, want)
	}
	if f.Observed != 9 || f.Trials != 100 || f.Expected != 3 || f.Excess != 6 {
		t.Errorf("totals %v of %v, %v expected, excess %v; want 9 of 100, 3, 6", f.Observed, f.Trials, f.Expected, f.Excess)
	}
	for _, d := range f.Dimensions {
		if (d.Dimension == anomaly.DimVersion || d.Dimension == anomaly.DimPipeline) && len(d.Values) != 1 {
			t.Errorf("%s: %d values", d.Dimension, len(d.Values))
		}
	}
}

// When the failure rate rose everywhere, no value explains it, and the
// text says so instead of naming the biggest. Each value is tested at
// the 1% level over all the values together, so a draw of 150 may name
// one by chance now and then: at most 2 of 100 may.
func TestFactorsNoConcentratedCause(t *testing.T) {
	named := 0
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed+1, 5))
		ds := deploymentsOfADay(r, 150, func(deployment) float64 { return 0.25 })
		f := anomaly.ContributingFactors(failures(ds, 0.05), anomaly.FactorOptions{})
		if len(f.Factors) != 0 {
			named++
			t.Logf("seed %d names %+v", seed, f.Factors)
			continue
		}
		if !strings.HasPrefix(f.Summary, "No single service, team, version, actor or pipeline explains the ") ||
			!strings.Contains(f.Summary, "failed deployments against 7.5 expected: the excess is spread (the largest share, ") {
			t.Errorf("seed %d: summary %q", seed, f.Summary)
		}
	}
	if named > 2 {
		t.Errorf("a rise everywhere named a value in %d of 100 draws, want at most 2", named)
	}
}

// byOne is rows of one dimension.
func byOne(counts map[string][2]float64) []anomaly.FactorRow {
	var out []anomaly.FactorRow
	for v, c := range counts {
		out = append(out, anomaly.FactorRow{Values: []string{v}, Num: c[0], Den: c[1]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Values[0] < out[j].Values[0] })
	return out
}

func counts(m map[string]float64) []anomaly.FactorRow {
	c := map[string][2]float64{}
	for v, n := range m {
		c[v] = [2]float64{n, 0}
	}
	return byOne(c)
}

func TestFactorsCounts(t *testing.T) {
	// Eight weeks of incidents: about 10 per service.
	reference := counts(map[string]float64{"checkout": 9, "search": 12, "ledger": 10, "mail": 11, "auth": 8, "cart": 10})
	incidents := func(rows, ref []anomaly.FactorRow) anomaly.FactorInput {
		return anomaly.FactorInput{Kind: baselines.Count, Direction: "up", Expected: 2, Dimensions: []string{anomaly.DimService},
			Rows: rows, Reference: ref, Words: anomaly.FactorWordsFor("incidents", "up", 0)}
	}
	for _, tc := range []struct {
		name      string
		in        anomaly.FactorInput
		factor    string // the first factor's value, or none
		summary   string
		reference bool
	}{
		{"a burst on one service", incidents(counts(map[string]float64{"checkout": 9, "search": 1, "auth": 1}), reference),
			"checkout", "9 of the 11 incidents were on service checkout, where 0.3 were expected.", true},
		{"a burst on a service never seen", incidents(counts(map[string]float64{"payroll": 6, "mail": 1}), reference),
			"payroll", "6 of the 7 incidents were on service payroll, where 0.0 were expected.", true},
		{"a burst everywhere", incidents(counts(map[string]float64{"checkout": 2, "search": 3, "ledger": 2, "mail": 3, "auth": 1, "cart": 2}), reference),
			"", "No single service explains the 13 incidents against 2 expected: the excess is spread (the largest share, service ", true},
		{"no reference", incidents(counts(map[string]float64{"checkout": 9, "search": 1}), nil),
			"", "10 incidents against 2 expected; without a breakdown of a normal period to compare with, no value can be singled out.", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := anomaly.ContributingFactors(tc.in, anomaly.FactorOptions{})
			switch {
			case tc.factor == "" && len(f.Factors) != 0:
				t.Errorf("factors %+v, want none", f.Factors)
			case tc.factor != "" && (len(f.Factors) == 0 || f.Factors[0].Value != tc.factor):
				t.Errorf("factors %+v, want %s first", f.Factors, tc.factor)
			}
			if !strings.HasPrefix(f.Summary, tc.summary) || f.NoReference == tc.reference {
				t.Errorf("summary %q (no reference %v)\nwant %q…", f.Summary, f.NoReference, tc.summary)
			}
		})
	}
}

// A count that dropped is explained by the value that went quiet, which
// only the reference knows.
func TestFactorsCountDrop(t *testing.T) {
	f := anomaly.ContributingFactors(anomaly.FactorInput{Kind: baselines.Count, Direction: "down", Expected: 18,
		Dimensions: []string{anomaly.DimPipeline}, Rows: counts(map[string]float64{"actions": 7}),
		Reference: counts(map[string]float64{"jenkins": 600, "actions": 400}), Words: anomaly.FactorWordsFor("deployments", "down", 0)},
		anomaly.FactorOptions{})
	if len(f.Factors) != 1 || f.Factors[0].Value != "jenkins" || f.Factors[0].Observed != 0 {
		t.Fatalf("factors %+v, want jenkins with 0", f.Factors)
	}
	want := "7 deployments against 18 expected: pipeline jenkins had 0 against 10.8 expected."
	if f.Summary != want {
		t.Errorf("summary %q\nwant    %q", f.Summary, want)
	}
}

// A rate whose harm is down counts misses: patches applied late.
func TestFactorsRateDown(t *testing.T) {
	f := anomaly.ContributingFactors(anomaly.FactorInput{Kind: baselines.Rate, Direction: "down", Expected: 0.95,
		Dimensions: []string{anomaly.DimTeam}, Rows: byOne(map[string][2]float64{"payments": {38, 40}, "search": {12, 40}, "growth": {39, 40}}),
		Words: anomaly.FactorWordsFor("patch_compliance", "down", 0)}, anomaly.FactorOptions{})
	want := "28 of the 31 patches applied late were of team search, which had 40 patches due in total."
	if len(f.Factors) != 1 || f.Factors[0].Value != "search" || f.Summary != want {
		t.Errorf("factors %+v\nsummary %q\nwant    %q", f.Factors, f.Summary, want)
	}
}

// Durations count those beyond the threshold among all.
func TestFactorsDurations(t *testing.T) {
	f := anomaly.ContributingFactors(anomaly.FactorInput{Kind: baselines.Duration, Direction: "up", Expected: 0.1,
		Dimensions: []string{anomaly.DimDetectionSource}, Rows: byOne(map[string][2]float64{"customer": {6, 7}, "monitoring": {1, 14}}),
		Words: anomaly.FactorWordsFor("mttr", "up", 4*3600)}, anomaly.FactorOptions{})
	want := "6 of the 7 incidents resolved in more than 4.0 h were detected by customer, which detected 7 incidents in total."
	if len(f.Factors) != 1 || f.Summary != want {
		t.Errorf("factors %+v\nsummary %q\nwant    %q", f.Factors, f.Summary, want)
	}
}

// Two causes at once: the second is found among the failures the first
// leaves, and the sentence counts it among those.
func TestFactorsTwoCauses(t *testing.T) {
	var ds []deployment
	for i := range 120 {
		d := deployment{service: fmt.Sprintf("svc-%d", i%6), team: fmt.Sprintf("team-%d", i%3), version: fmt.Sprintf("3.%d.0", i%4),
			actor: fmt.Sprintf("dev-%d", i%5), pipeline: "ci"}
		switch {
		case i < 8:
			d.actor, d.version, d.failed = "new-hire", "3.0.0", i < 7
		case i%4 == 1 && i < 60: // 13 of version 3.1.0's 28 deployments
			d.failed = true
		case i == 100:
			d.failed = true
		}
		ds = append(ds, d)
	}
	f := anomaly.ContributingFactors(failures(ds, 0.05), anomaly.FactorOptions{})
	want := "7 of the 21 failed deployments were by actor new-hire, who made 8 deployments in total; " +
		"13 of the other 14 were of version 3.1.0, which had 28 deployments in total."
	if f.Summary != want || len(f.Factors) != 2 || f.Factors[1].Of != 14 {
		t.Errorf("factors %+v\nsummary %q\nwant    %q", f.Factors, f.Summary, want)
	}
}
