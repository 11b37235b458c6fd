package metrics_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestReportFormats(t *testing.T) {
	cfr, mttr := 0.25, 5400.0
	r := &metrics.Report{From: t0, To: t0.Add(24 * time.Hour), By: []metrics.Dimension{metrics.Team, metrics.Environment},
		Summaries: []*metrics.Summary{
			{Slice: map[metrics.Dimension]string{metrics.Team: "fulfillment", metrics.Environment: "production-eu"},
				Deployments: 4, ChangeFailureRate: &cfr, MTTRMedianSeconds: &mttr},
			{Slice: map[metrics.Dimension]string{metrics.Team: "identity", metrics.Environment: "production"}},
		}}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(table.String()), "\n") {
		if len(line) > 100 {
			t.Errorf("table line of %d columns, want at most 100: %q", len(line), line)
		}
	}
	if !strings.Contains(table.String(), "25.0%") || !strings.Contains(table.String(), "1.5h") {
		t.Errorf("table lacks human units:\n%s", table.String())
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summaries []map[string]any `json:"summaries"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if v, ok := doc.Summaries[1]["change_failure_rate"]; !ok || v != nil {
		t.Errorf("absent rate in JSON = %v (present %v), want null", v, ok)
	}
	if doc.Summaries[0]["change_failure_rate"] != 0.25 {
		t.Errorf("rate in JSON = %v, want 0.25", doc.Summaries[0]["change_failure_rate"])
	}

	var c bytes.Buffer
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("csv: %v, %d records", err, len(recs))
	}
	if recs[0][0] != "team" || recs[1][4] != "0.25" || recs[2][4] != "" {
		t.Errorf("csv rows %q", recs)
	}
}
