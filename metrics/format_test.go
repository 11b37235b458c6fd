package metrics_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestReportFormats(t *testing.T) {
	cfr, mttr, recovery := 0.25, 5400.0, 9000.0
	r := &metrics.Report{From: t0, To: t0.Add(24 * time.Hour), By: []metrics.Dimension{metrics.Team, metrics.Environment}, LevelTable: "2024",
		Summaries: []*metrics.Summary{
			{Slice: map[metrics.Dimension]string{metrics.Team: "fulfillment", metrics.Environment: "production-eu"},
				Deployments: 4, ChangeFailureRate: &cfr, MTTRMedianSeconds: &mttr, RecoveryMedianSeconds: &recovery,
				Levels: map[string]string{"change_failure_rate": "medium", "recovery_time": "high"}},
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
	// Each level sits on the line of the figure it grades: the recovery
	// level beside the recovery time (2.5h), not the MTTR (1.5h).
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^fulfillment +production-eu +recovery time \(median\) +2\.5h +high \(2nd of 4\)$`),
		regexp.MustCompile(`(?m)^fulfillment +production-eu +change failure rate +25\.0% +medium \(3rd of 4\)$`),
		regexp.MustCompile(`(?m)^identity +production +recovery time \(median\) +- +-$`),
	} {
		if !want.MatchString(table.String()) {
			t.Errorf("table has no line matching %s:\n%s", want, table.String())
		}
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
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range []struct{ col, want string }{
		{"recovery_median_seconds", "9000"}, {"recovery_time_level", "high (2nd of 4)"},
		{"change_failure_rate_level", "medium (3rd of 4)"}, {"lead_time_level", ""},
	} {
		if i, ok := col[c.col]; !ok || recs[1][i] != c.want {
			t.Errorf("csv column %s = %q (present %v), want %q", c.col, recs[1][min(i, len(recs[1])-1)], ok, c.want)
		}
	}
}
