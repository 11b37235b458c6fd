package baselines

import "math"

// The distributions below are the few the models need, written out with
// math.Lgamma rather than pulling in a statistics library: every tail is a
// finite sum of a probability mass function, or the normal's erfc.

// poissonPMF is P(Y = k) for Y ~ Poisson(mu).
func poissonPMF(k int, mu float64) float64 {
	if mu <= 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	lg, _ := math.Lgamma(float64(k) + 1)
	return math.Exp(float64(k)*math.Log(mu) - mu - lg)
}

// negbinPMF is P(Y = k) for a negative binomial with mean mu and
// variance phi*mu (phi > 1), that is size r = mu/(phi-1).
func negbinPMF(k int, mu, phi float64) float64 {
	if phi <= 1 {
		return poissonPMF(k, mu)
	}
	if mu <= 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	r := mu / (phi - 1)
	p := r / (r + mu)
	a, _ := math.Lgamma(float64(k) + r)
	b, _ := math.Lgamma(r)
	c, _ := math.Lgamma(float64(k) + 1)
	return math.Exp(a - b - c + r*math.Log(p) + float64(k)*math.Log1p(-p))
}

// betabinPMF is P(X = k) for X ~ BetaBinomial(n, a, b); b == 0 means a
// plain binomial with p = a.
func betabinPMF(k, n int, a, b float64) float64 {
	if k < 0 || k > n {
		return 0
	}
	lc := lchoose(n, k)
	if b == 0 {
		p := a
		switch {
		case p <= 0:
			if k == 0 {
				return 1
			}
			return 0
		case p >= 1:
			if k == n {
				return 1
			}
			return 0
		}
		return math.Exp(lc + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	return math.Exp(lc + lbeta(float64(k)+a, float64(n-k)+b) - lbeta(a, b))
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

func lbeta(a, b float64) float64 {
	x, _ := math.Lgamma(a)
	y, _ := math.Lgamma(b)
	z, _ := math.Lgamma(a + b)
	return x + y - z
}

// discrete is a distribution on 0, 1, 2, … given by its mass function,
// with n the upper end of its support (-1 when unbounded).
type discrete struct {
	pmf func(int) float64
	n   int
}

// tails returns P(Y <= k) and P(Y >= k).
func (d discrete) tails(k int) (lower, upper float64) {
	if k < 0 {
		return 0, 1
	}
	for i := 0; i <= k; i++ {
		lower += d.pmf(i)
	}
	lower = math.Min(lower, 1)
	upper = 1 - lower + d.pmf(k)
	return lower, math.Max(0, math.Min(upper, 1))
}

// quantile is the smallest k with P(Y <= k) >= q.
func (d discrete) quantile(q float64) int {
	cum := 0.0
	for k := 0; ; k++ {
		cum += d.pmf(k)
		if cum >= q || (d.n >= 0 && k >= d.n) || k > 1_000_000 {
			return k
		}
	}
}

// normalUpper is P(Z >= z) for a standard normal Z.
func normalUpper(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normalQuantile is the q-quantile of a standard normal, by bisection on
// normalUpper: accurate to 1e-9, which is plenty for a band.
func normalQuantile(q float64) float64 {
	lo, hi := -40.0, 40.0
	for hi-lo > 1e-9 {
		mid := (lo + hi) / 2
		if 1-normalUpper(mid) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// studentUpper is P(T >= t) for Student's t with nu degrees of freedom,
// from the regularized incomplete beta function.
func studentUpper(t, nu float64) float64 {
	if math.IsInf(nu, 1) || nu > 1e6 {
		return normalUpper(t)
	}
	p := 0.5 * incBeta(nu/2, 0.5, nu/(nu+t*t))
	if t < 0 {
		return 1 - p
	}
	return p
}

// studentQuantile is the q-quantile of Student's t with nu degrees of
// freedom, by bisection on studentUpper.
func studentQuantile(q, nu float64) float64 {
	lo, hi := -1e4, 1e4
	for hi-lo > 1e-9*math.Max(1, math.Abs(lo)) {
		mid := (lo + hi) / 2
		if 1-studentUpper(mid, nu) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// incBeta is the regularized incomplete beta function I_x(a, b), by its
// continued fraction (Lentz's method, as in Numerical Recipes §6.4).
func incBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	if x > (a+1)/(a+b+2) {
		return 1 - incBeta(b, a, 1-x)
	}
	front := math.Exp(math.Log(x)*a+math.Log1p(-x)*b-lbeta(a, b)) / a
	const tiny = 1e-300
	f, c, d := 1.0, 1.0, 0.0
	for i := 0; i <= 300; i++ {
		m := float64(i / 2)
		var num float64
		switch {
		case i == 0:
			num = 1
		case i%2 == 0:
			num = m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		default:
			num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		}
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		d = 1 / d
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		cd := c * d
		f *= cd
		if math.Abs(1-cd) < 1e-14 {
			break
		}
	}
	return front * (f - 1)
}
