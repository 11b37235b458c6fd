package anomaly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

var breakdownDay = time.Date(2026, 5, 12, 0, 0, 0, 0, time.UTC)

// TestBreakdownExplainsAFailureBurst runs the chain an alert will run: a
// day in which a new hire's deployments fail, read back by
// DeploymentBreakdown, explained by anomaly.ContributingFactors.
func TestBreakdownExplainsAFailureBurst(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 7))
	var ds []testenv.RawDeployment
	for i := range 100 {
		s := r.IntN(8)
		d := testenv.RawDeployment{EventID: fmt.Sprintf("e-%d", i), ID: fmt.Sprintf("d-%d", i), Service: fmt.Sprintf("svc-%d", s),
			Team: fmt.Sprintf("team-%d", s%4), Env: "production", Status: "success", Version: fmt.Sprintf("5.%d.0", r.IntN(3)),
			Actor: fmt.Sprintf("dev-%d", r.IntN(6)), Pipeline: "main", Finished: breakdownDay.Add(time.Duration(r.IntN(24*60)) * time.Minute)}
		if i < 8 {
			d.Actor = "new-hire"
			if i < 7 {
				d.Status = "failure"
			}
		} else if i == 40 || i == 41 {
			d.Status = "failure"
		}
		d.EventTime = d.Finished
		ds = append(ds, d)
	}
	testenv.InsertRawDeployments(t, st, ds)
	rows, err := metrics.DeploymentBreakdown(context.Background(), st.Conn(), metrics.Query{From: breakdownDay, To: breakdownDay.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	in := anomaly.FactorInput{Kind: baselines.Rate, Direction: "up", Expected: 0.03, Dimensions: metrics.DeploymentDimensions,
		Words: anomaly.FactorWordsFor("change_failure_rate", "up", 0)}
	for _, row := range rows {
		in.Rows = append(in.Rows, anomaly.FactorRow{Values: row.Values, Num: float64(row.Failed), Den: float64(row.Deployments)})
	}
	f := anomaly.ContributingFactors(in, anomaly.FactorOptions{})
	if want := "7 of the 9 failed deployments were by actor new-hire, who made 8 deployments in total."; f.Summary != want {
		t.Errorf("summary %q\nwant    %q", f.Summary, want)
	}
	dims := make([]string, len(f.Dimensions))
	for i, d := range f.Dimensions {
		dims[i] = d.Dimension
	}
	if !reflect.DeepEqual(dims, metrics.DeploymentDimensions) {
		t.Errorf("dimensions %v", dims)
	}
}
