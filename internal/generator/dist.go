package generator

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
)

// rng draws the generator's random values. It uses only the raw output of a
// PCG source, whose algorithm math/rand/v2 fixes, and its own distributions,
// so a Config's stream does not change when the standard library changes the
// algorithms behind rand.Rand's methods.
type rng struct {
	src *rand.PCG
}

func newRNG(seed, stream uint64) rng {
	return rng{src: rand.NewPCG(seed, splitmix(stream))}
}

// splitmix scrambles a small stream number into a well-mixed seed word.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// float returns a uniform value in [0, 1).
func (r rng) float() float64 {
	return float64(r.src.Uint64()>>11) / (1 << 53)
}

// between returns a uniform value in [lo, hi).
func (r rng) between(lo, hi float64) float64 {
	return lo + (hi-lo)*r.float()
}

// intn returns a uniform value in [0, n); n must be > 0.
func (r rng) intn(n int) int {
	return int(r.float() * float64(n))
}

// chance reports true with probability p.
func (r rng) chance(p float64) bool {
	return r.float() < p
}

// normal returns a standard normal value (Box–Muller).
func (r rng) normal() float64 {
	u := 1 - r.float() // (0, 1]
	v := r.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*v)
}

// lognormal returns a log-normally distributed value with the given median
// and log-scale standard deviation: a heavy right tail.
func (r rng) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*r.normal())
}

// poisson returns a Poisson-distributed count with mean lambda.
func (r rng) poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		n := int(math.Round(lambda + math.Sqrt(lambda)*r.normal()))
		return max(n, 0)
	}
	limit, p, n := math.Exp(-lambda), 1.0, 0
	for {
		p *= r.float()
		if p <= limit {
			return n
		}
		n++
	}
}

// weighted returns an index into weights with probability proportional to
// its weight.
func (r rng) weighted(weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	x := r.float() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// sha returns 40 hexadecimal digits, shaped like a Git commit SHA.
func (r rng) sha() string {
	var b [20]byte
	binary.BigEndian.PutUint64(b[0:], r.src.Uint64())
	binary.BigEndian.PutUint64(b[8:], r.src.Uint64())
	binary.BigEndian.PutUint32(b[16:], uint32(r.src.Uint64()))
	return hex.EncodeToString(b[:])
}

// seconds converts a duration in seconds to whole seconds, at least lo and
// at most hi.
func seconds(s float64, lo, hi int64) int64 {
	return min(max(int64(s), lo), hi)
}
