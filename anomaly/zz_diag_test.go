package anomaly_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/chserver"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestZZDiag(t *testing.T) {
	if os.Getenv("DIAG") == "" {
		t.Skip()
	}
	ctx := context.Background()
	srv, err := chserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	dsn := srv.DSN("bench")
	store.Migrate(ctx, dsn, testenv.Logger(t))
	st, _ := store.Open(ctx, dsn)
	end := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	cfg := generator.Config{Services: 40, Teams: 8, Days: qualityDays, Seed: 11, End: end}
	var batch []store.Record
	generator.Generate(cfg, func(e *event.Event) error {
		batch = append(batch, store.Record{Event: e, Topic: "bench", Offset: int64(len(batch))})
		return nil
	})
	st.Write(ctx, batch, nil)
	all, _ := baselines.Load(ctx, st.Conn(), baselines.LoadOptions{From: end.AddDate(0, 0, -qualityDays), To: end, Step: metrics.StepDay})
	kinds := map[string]baselines.Kind{}
	for _, k := range baselines.KPIs {
		kinds[k.Name] = k.Kind
	}
	seen := map[string]bool{}
	want := os.Getenv("DIAG")
	for i, key := range baselines.SortedSeries(all) {
		kind := kinds[key.KPI]
		if !qualityHasSignal(kind, all[key]) {
			continue
		}
		sig := qualitySignature(key.KPI, all[key])
		if seen[sig] {
			continue
		}
		seen[sig] = true
		r := rand.New(rand.NewPCG(qualitySeed, uint64(i)))
		s := qualityInject(key, kind, all[key], r)
		if len(s.events) == 0 || string(kind) != want {
			continue
		}
		pts := s.points
		opts := baselines.Options{Step: 24 * time.Hour, Origin: pts[0].Start, Period: 7}
		flagged := map[time.Time]bool{}
		opts.Exclude = func(t time.Time) bool { return flagged[t] }
		for i := qualityWarmup; i < len(pts); i++ {
			m := baselines.Fit(kind, pts[max(0, i-56):i], opts)
			sc := m.ScoreRecent(pts[max(0, i-2) : i+1])
			if sc.Anomaly && os.Getenv("XEXD") != "" {
				flagged[pts[i].Start] = true
			}
			single := m.Score(pts[i])
			lab := s.labels[i]
			if sc.Anomaly && !lab {
				p := pts[i]
				for _, e := range s.events {
					if i > e.last && i <= e.last+3 {
						fmt.Print("SPILL ")
					}
				}
				z := 0.0
				if p.Value > 0 {
					z = math.Log(p.Value / sc.Expected)
				}
				fmt.Printf("FP %-40s %s %s v=%.0f e=%.0f n=%.0f logratio=%.2f tail=%.2g single=%v scale=%v fam=%s rho=%.3g ns=%v\n", key.Key(), p.Start.Format("2006-01-02"), p.Start.Weekday().String()[:3],
					p.Value, sc.Expected, p.Den, z, sc.Tail, single.Anomaly, m.Scale, m.Family, m.Dispersion, []float64{pts[i-2].Den, pts[i-1].Den, p.Num})
			}
			if !lab && kind == baselines.Duration && pts[i].Present && pts[i].Value > 0 && m.Status == baselines.Ready {
				p := pts[i]
				u := math.Log(p.Value/sc.Expected) / math.Sqrt(m.Scale[0]*m.Scale[0]+m.Scale[1]*m.Scale[1]/math.Max(p.Den, 1))
				fmt.Printf("U %.0f %.3f %s %d %s\n", p.Den, u, key.KPI, i, key.Key())
			}
			if lab && (i == 0 || !s.labels[i-1]) && kind == baselines.Duration {
				p := pts[i]
				sd := math.Sqrt(m.Scale[0]*m.Scale[0] + m.Scale[1]*m.Scale[1]/math.Max(p.Den, 1))
				ev := ""
				for _, e := range s.events {
					if e.first == i {
						ev = e.kind
					}
				}
				fmt.Printf("EV %v n=%.0f ratio=%.2f tail=%.2g sd=%.2f z=%.1f %s %s dof=%v\n", sc.Anomaly, p.Den, p.Value/sc.Expected, sc.Tail, sd, math.Log(p.Value/sc.Expected)/sd, ev, key.KPI, 0.0)
			}
			if lab && !sc.Anomaly && kind == baselines.Rate {
				p := pts[i]
				fmt.Printf("FN %-40s %s v=%.0f/%.0f e=%.3f tail=%.2g status=%s fam=%s rho=%.3g\n", key.Key(), p.Start.Format("2006-01-02"), p.Num, p.Den, sc.Expected, sc.Tail, m.Status, m.Family, m.Dispersion)
			}
		}
	}
}
