package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestCountsMatchSummaries holds Counts to the deployment and incident
// counts of the raw-row summaries, on the oracle's disordered stream with
// duplicates, a replay and late lifecycle messages: every slice and bucket
// with either count, no other, for hourly and daily steps, ranges cut
// inside an hour, every slicing, two production environments and a
// service filter.
func TestCountsMatchSummaries(t *testing.T) {
	ctx := context.Background()
	end := time.Now().UTC().Truncate(24 * time.Hour)
	st := testenv.Store(t, testenv.Database(t))
	stream := oracleStream(t, 13, end, 4)
	for i, b := range stream {
		writeEvents(t, st, b)
		if i == 2 {
			writeEvents(t, st, stream[1])
		}
	}
	from, to := end.AddDate(0, 0, -20).Add(7*time.Hour+13*time.Minute), end.Add(-5*time.Hour-59*time.Second)
	all := []metrics.Dimension{metrics.Service, metrics.Team, metrics.Environment}
	cases := map[string]metrics.Query{
		"hourly, whole":     {From: from, To: to, Step: metrics.StepHour},
		"hourly, by all":    {From: from, To: to, Step: metrics.StepHour, By: all},
		"hourly, by team":   {From: from, To: to, Step: metrics.StepHour, By: []metrics.Dimension{metrics.Team}},
		"hourly, two prods": {From: from, To: to, Step: metrics.StepHour, By: []metrics.Dimension{metrics.Environment}, Production: []string{"production", "staging"}},
		"hourly, filtered":  {From: from, To: to, Step: metrics.StepHour, By: all, Services: []string{"checkout", "search"}},
		"daily, by all":     {From: end.AddDate(0, 0, -40), To: end, Step: metrics.StepDay, By: all},
		"no step, by team":  {From: from, To: to, By: []metrics.Dimension{metrics.Team}},
	}
	key := func(s *metrics.Summary, by []metrics.Dimension) string {
		var k []string
		for _, d := range by {
			k = append(k, s.Slice[d])
		}
		if s.Bucket != nil {
			k = append(k, s.Bucket.Format(time.DateTime))
		}
		return strings.Join(k, "|")
	}
	for name, q := range cases {
		q.RollupMaxAge = -1
		raw, err := metrics.Summaries(ctx, st.Conn(), q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := map[string]string{}
		var deployments, incidents uint64
		for _, s := range raw {
			if s.Deployments > 0 || s.Incidents > 0 {
				want[key(s, q.By)] = fmt.Sprint(s.Deployments, s.Incidents)
				deployments, incidents = deployments+s.Deployments, incidents+s.Incidents
			}
		}
		if deployments == 0 || incidents == 0 {
			t.Fatalf("%s: %d deployments and %d incidents: the case checks too little", name, deployments, incidents)
		}
		counts, err := metrics.Counts(ctx, st.Conn(), q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := map[string]string{}
		for _, s := range counts {
			got[key(s, q.By)] = fmt.Sprint(s.Deployments, s.Incidents)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s, %s: counts %q, summaries %q (deployments, incidents)", name, k, got[k], w)
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s, %s: counts %q, and no summary with either", name, k, g)
			}
		}
	}
}
