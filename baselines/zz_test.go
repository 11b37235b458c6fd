package baselines
import ("testing";"fmt";"time")
func TestZZDrift(t *testing.T) {
	for _, slope := range []float64{0.1, 0.15, 0.25, 0.5} {
	const drift = 3 * 288
	ts, ys := denseRows(4*288, 4, func(i int, t time.Time) float64 {
		v := 50.0
		if i >= drift && i < drift+48 {
			v += slope * float64(i-drift+1)
		}
		return v
	})
	s := run(NewDense(DenseOptions{Step: 5 * time.Minute}), ts, ys)
	for i := drift; i < drift+48; i++ { if s[i].Anomaly { fmt.Println(slope, "flagged at", i-drift, s[i].Test, s[i].Tail); break } }
	}
}
