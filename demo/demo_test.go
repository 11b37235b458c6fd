package demo_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/demo"
	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestDemo runs the demo on a small stream, with its own ClickHouse and
// embedded Kafka, as `make demo` does, and checks its summary.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own servers")
	}
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{
		Ingest: ingest.Config{Group: "demo-test"}, Services: 4, Days: 21, Seed: 2, End: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Dir: t.TempDir(), Out: &out, Log: testenv.Logger(t), UntilIdle: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"what landed in ClickHouse", "dead letters", "time_order: incident INC-DEMO", "invalid_value: deployment d-demo", "KPIs per team", "unshipped", "DORA 2024 levels"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	// Every view has rows, and in every encoding column of deployments.
	m := regexp.MustCompile(`deployments\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no deployments row in the summary:\n%s", s)
	}
	for i, col := range []string{"rows", "native", "cloudevents", "cdevents"} {
		if m[i+1] == "0" {
			t.Errorf("deployments %s is 0:\n%s", col, s)
		}
	}
	if n := strings.Count(s, "\n  ops."); n != 5 {
		t.Errorf("%d dead letters listed, want the 5 malformed messages:\n%s", n, s)
	}
}
