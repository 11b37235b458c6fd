package baselines

import (
	"context"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestLoadHourlyMatchesSummaries holds the hourly series, which Load reads
// through metrics.Counts once and adds up per slicing, to the raw-row
// summaries of every slicing at an hourly step: the same series, each
// point the summary's count of its hour (0 where there is none), over a
// range cut inside an hour, with two production environments.
func TestLoadHourlyMatchesSummaries(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Now().UTC().Truncate(time.Hour)
	testenv.StoreGenerated(t, st, generator.Config{Services: 8, Teams: 3, Days: 15, Seed: 5, End: end}, 5000)
	from, to := end.AddDate(0, 0, -12).Add(3*time.Hour), end.Add(-2*time.Hour)
	prod := []string{"production", "staging"}
	got, err := Load(ctx, st.Conn(), LoadOptions{From: from, To: to, Step: metrics.StepHour, Production: prod})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Series]map[time.Time]float64{}
	for _, by := range slicings {
		sums, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to, By: by, Step: metrics.StepHour,
			Production: prod, RollupMaxAge: -1})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sums {
			if (s.Deployments == 0 && s.Incidents == 0) || emptyDimension(s, by) {
				continue
			}
			for kpi, v := range map[string]uint64{metrics.PanelDeployments: s.Deployments, metrics.PanelIncidents: s.Incidents} {
				k := Series{KPI: kpi, Step: metrics.StepHour, Service: s.Slice[metrics.Service], Team: s.Slice[metrics.Team],
					Environment: s.Slice[metrics.Environment]}
				if want[k] == nil {
					want[k] = map[time.Time]float64{}
				}
				want[k][*s.Bucket] = float64(v)
			}
		}
	}
	if len(want) < 20 {
		t.Fatalf("%d series in the summaries: the test checks too little", len(want))
	}
	for k, pts := range got {
		w, ok := want[k]
		if !ok {
			t.Errorf("%s: loaded, and no summary has it", k.Key())
			continue
		}
		n := 0
		for _, p := range pts {
			if !p.Present || p.Value != w[p.Start] {
				t.Errorf("%s at %s: %v, want %v", k.Key(), p.Start.Format(time.DateTime), p, w[p.Start])
			}
			if p.Value > 0 {
				n++
			}
		}
		if extra := len(pts) - int(to.Sub(from)/time.Hour); extra != 0 {
			t.Errorf("%s: %d points too many", k.Key(), extra)
		}
		nonzero := 0
		for _, v := range w {
			if v > 0 {
				nonzero++
			}
		}
		if n != nonzero {
			t.Errorf("%s: %d hours with a count, want %d", k.Key(), n, nonzero)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("%s: in the summaries, not loaded", k.Key())
		}
	}
}
