package baselines

import (
	"math"
	"sort"
)

// MinDurations is the least number of durations whose median is judged
// on its own: a median of one or two changes is one change's lead time, a
// hotfix's minutes or a Friday merge's weekend, within its own noise.
const MinDurations = 3

// TailDOF is the degrees of freedom of Student's t tail of one duration
// on the log scale. Operations durations are mixtures (a hotfix ships in
// minutes, a change merged on Friday waits for Monday), so one change's
// lead time is far more often far from the median than a normal allows:
// in make bench-anomaly's lead times, 1.4% of the days with one change lie
// beyond 8 robust standard deviations, where a normal puts 10⁻¹⁵. The
// median of n durations is dominated by such strays only when half of
// them are, which gets rarer geometrically with n: it has
// TailDOF·2^((n−1)/2) degrees of freedom, t₅ for 3 durations, t₂₀ for 7,
// and a normal tail for dozens. 2.5 was the best of 1, 1.5, 2, 2.5, 3, 4
// and a value fitted per series by likelihood (make bench-anomaly,
// docs/benchmarks.md).
const TailDOF = 2.5

// dof is the degrees of freedom of the median of n durations; a value
// whose n is unknown (0) has a normal tail.
func dof(n float64) float64 {
	if n <= 0 {
		return math.Inf(1)
	}
	return TailDOF * math.Pow(2, (n-1)/2)
}

// fitDurations fits the location per slot, the spread tau² + b/n and the
// tail of log medians logs of dens durations (0: unknown) in slots slotOf.
//
// Location per slot is a weighted median, shrunk towards the overall one
// by four pseudo-observations so that eight noisy weeks do not invent a
// season. Spread: an interval's value is the median of n durations, so its
// variance on the log scale is tau² (day-to-day) + b/n (sampling): a
// weekend median of three changes wanders far more than a weekday's of
// forty. tau² and b come from the robust variance of each band of n (see
// durationSpread), leaving out the medians of fewer than MinDurations,
// which are never judged alone, unless fewer than minBand intervals would
// be left (a sparse series: its spread from two or three intervals would
// be any number at all). The first pass weighs every interval
// alike; the second weighs each by the inverse of its variance, so that
// a median of forty counts for more than a median of three.
func fitDurations(logs, dens []float64, slotOf []int, slots int) (loc []float64, tau2, b float64) {
	w := make([]float64, len(logs))
	for i := range w {
		w[i] = 1
	}
	loc = make([]float64, slots)
	for pass := 0; pass < 2; pass++ {
		bySlot := make([][]weighted, slots)
		all := make([]weighted, len(logs))
		for i, x := range logs {
			all[i] = weighted{x, w[i]}
			bySlot[slotOf[i]] = append(bySlot[slotOf[i]], weighted{x, w[i]})
		}
		g := weightedMedian(all)
		for s := range loc {
			loc[s] = g
			if n := float64(len(bySlot[s])); n > 0 {
				loc[s] = (n*weightedMedian(bySlot[s]) + 4*g) / (n + 4)
			}
		}
		var res, ns []float64
		for i, x := range logs {
			if dens[i] <= 0 || dens[i] >= MinDurations {
				res, ns = append(res, x-loc[slotOf[i]]), append(ns, math.Max(dens[i], 1))
			}
		}
		if len(res) < minBand {
			res, ns = res[:0], ns[:0]
			for i, x := range logs {
				res, ns = append(res, x-loc[slotOf[i]]), append(ns, math.Max(dens[i], 1))
			}
		}
		tau2, b = durationSpread(res, ns)
		tau2 = math.Max(tau2, 0.05*0.05)
		for i := range w {
			w[i] = 1 / (tau2 + b/math.Max(dens[i], 1))
		}
	}
	return loc, tau2, b
}

// minBand is the least number of intervals whose residuals give one
// robust variance of the duration spread (durationSpread).
const minBand = 8

type weighted struct{ x, w float64 }

// weightedMedian is the value below which half the weight lies.
func weightedMedian(xs []weighted) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].x < xs[j].x })
	total := 0.0
	for _, x := range xs {
		total += x.w
	}
	acc := 0.0
	for i, x := range xs {
		acc += x.w
		if acc >= total/2 {
			if acc == total/2 && i+1 < len(xs) {
				return (x.x + xs[i+1].x) / 2
			}
			return x.x
		}
	}
	return xs[len(xs)-1].x
}

// durationSpread fits tau² and b of the log-scale variance tau² + b/n of a
// median of n durations to the residuals res of intervals of ns durations:
// least squares of each band's robust variance on its mean 1/n, weighted
// by the band's size. Intervals are banded by n, bands holding at least
// minBand intervals, so that a band's median absolute residual is not one
// past anomaly among three.
func durationSpread(res, ns []float64) (tau2, b float64) {
	order := make([]int, len(res))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return ns[order[i]] < ns[order[j]] })
	type band struct{ abs, inv []float64 }
	var bands []band
	cur := band{}
	for k, i := range order {
		cur.abs = append(cur.abs, math.Abs(res[i]))
		cur.inv = append(cur.inv, 1/ns[i])
		// A band closes when it is big enough and the next n differs, or
		// at the end; a last band too small joins the one before.
		last := k == len(order)-1
		if last || (len(cur.abs) >= minBand && ns[order[k+1]] != ns[i]) {
			if len(cur.abs) < minBand && len(bands) > 0 {
				bands[len(bands)-1].abs = append(bands[len(bands)-1].abs, cur.abs...)
				bands[len(bands)-1].inv = append(bands[len(bands)-1].inv, cur.inv...)
			} else {
				bands = append(bands, cur)
			}
			cur = band{}
		}
	}
	robustVar := func(abs []float64) float64 {
		sort.Float64s(abs)
		s := 1.4826 * mid(abs)
		return s * s
	}
	if len(bands) == 0 {
		return 0, 0
	}
	if len(bands) == 1 {
		return robustVar(bands[0].abs), 0
	}
	var sw, sx, sy, sxx, sxy float64
	for _, bd := range bands {
		inv := 0.0
		for _, v := range bd.inv {
			inv += v
		}
		w, x, y := float64(len(bd.abs)), inv/float64(len(bd.inv)), robustVar(bd.abs)
		sw, sx, sy, sxx, sxy = sw+w, sx+w*x, sy+w*y, sxx+w*x*x, sxy+w*x*y
	}
	den := sw*sxx - sx*sx
	if den <= 1e-12*sw*sw {
		return sy / sw, 0
	}
	b = (sw*sxy - sx*sy) / den
	tau2 = (sy - b*sx) / sw
	switch {
	case b < 0:
		return sy / sw, 0
	case tau2 < 0:
		return 0, sxy / sxx
	}
	return tau2, b
}

// durationTails are P(U <= z) and P(U >= z) for the standardized log
// residual z of a median of n durations.
func durationTails(z, n float64) (lower, upper float64) {
	nu := dof(n)
	return studentUpper(-z, nu), studentUpper(z, nu)
}

// durationQuantile is the standardized log residual of a median of n
// durations at the two-sided level alpha: the half-width of its band in
// units of durationScale(n).
func (m *Model) durationQuantile(n float64) float64 {
	return studentQuantile(1-m.Alpha/2, dof(n))
}
