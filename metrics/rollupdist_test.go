package metrics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestRollupDistMatchesQuantile holds rollupDist's statistics, selected by
// quantileExact over sentinels or picked from the sorted sample, to Go's
// quantile and mean of the same sample on the real ClickHouse: samples of
// every size to 40 and some large ones, with ties, negative values and
// huge ones, in random order. The statistics must be equal to the bit.
func TestRollupDistMatchesQuantile(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	rng := rand.New(rand.NewPCG(7, 12))
	var samples [][]float64
	for n := range 41 {
		samples = append(samples, make([]float64, n))
	}
	for _, n := range []int{99, 100, 101, 1000, 4321} {
		samples = append(samples, make([]float64, n))
	}
	for i, xs := range samples {
		for j := range xs {
			switch i % 3 {
			case 0: // many ties
				xs[j] = float64(rng.IntN(4))
			case 1: // seconds over years, some negative (skewed clocks)
				xs[j] = float64(rng.IntN(100_000_000) - 1_000_000)
			default: // huge values, whose sums are still exact in float64
				xs[j] = float64(rng.Int64N(1e12))
			}
		}
	}
	for _, selected := range []bool{true, false} {
		for _, xs := range samples {
			lit := make([]string, len(xs))
			for j, x := range xs {
				lit[j] = strconv.FormatFloat(x, 'g', -1, 64)
			}
			// Materialized, as the rollup's arrays are: 18.16 indexes a
			// constant array's sort wrongly (0) by an Int64 expression.
			s := "materialize(CAST([" + strings.Join(lit, ", ") + "] AS Array(Float64)))"
			var got distStats
			dests := make([]any, len(got))
			for i := range got {
				dests[i] = &got[i]
			}
			if err := st.Conn().QueryRow(ctx, "SELECT "+rollupDist("s", "v", selected)+" FROM (SELECT "+s+" AS s)").Scan(dests...); err != nil {
				t.Fatal(err)
			}
			d := got.dist()
			show := func(p *float64) string {
				if p == nil {
					return "nil"
				}
				return fmt.Sprint(*p)
			}
			for _, p := range []float64{0.5, 0.9} {
				if g, w := show(d.quantile(p)), show(quantile(xs, p)); g != w {
					t.Errorf("selected %v, n %d: quantile %v %s, want %s", selected, len(xs), p, g, w)
				}
			}
			if g, w := show(d.mean()), show(mean(xs)); g != w {
				t.Errorf("selected %v, n %d: mean %s, want %s", selected, len(xs), g, w)
			}
			if d.len() != len(xs) {
				t.Errorf("selected %v: size %d, want %d", selected, d.len(), len(xs))
			}
		}
	}
}
