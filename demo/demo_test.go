package demo_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

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
	var out testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{
			Ingest: ingest.Config{Group: "demo-test"}, Services: 4, Days: 21, Seed: 2, End: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
			Dir: t.TempDir(), Out: &out, Log: testenv.Logger(t), UntilIdle: 2 * time.Second, Keep: true,
		})
	}()
	// --keep: every server the demo started answers where it says, until
	// the context ends.
	var kept string
	testenv.Eventually(t, 5*time.Minute, "the demo keeps its servers", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("demo ended before keeping its servers: %v\n%s", err, out.String())
		default:
		}
		_, kept, _ = strings.Cut(out.String(), "servers kept running until Ctrl-C, which stops them all:\n")
		return kept != "", out.String()
	})
	reach := regexp.MustCompile(`(?m)^  (ClickHouse|Kafka \(kfake\)|Alertmanager)\s+--(\S+) (\S+)`).FindAllStringSubmatch(kept, -1)
	if len(reach) != 3 {
		t.Fatalf("kept servers: %q, want ClickHouse, Kafka and Alertmanager", kept)
	}
	addr := map[string]string{}
	for _, m := range reach {
		addr[m[2]] = m[3]
	}
	if n := testenv.Count(t, testenv.Store(t, addr["clickhouse"]), "SELECT count() FROM deployments"); n == 0 {
		t.Errorf("the kept ClickHouse holds no deployments")
	}
	if conn, err := kafka.Dial("tcp", addr["brokers"]); err != nil {
		t.Errorf("the kept Kafka: %v", err)
	} else {
		conn.Close()
	}
	resp, err := http.Get(addr["alertmanager"] + "/api/v2/alerts")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the kept Alertmanager: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if _, err := http.Get(addr["alertmanager"] + "/api/v2/alerts"); err == nil {
		t.Errorf("Alertmanager still answers after the demo ended")
	}
	s := out.String()
	for _, want := range []string{"what landed in ClickHouse", "dead letters", "time_order: incident INC-DEMO", "invalid_value: deployment d-demo", "KPIs per team", "unshipped", "level (DORA 2024)",
		"90% band", "3 targets reviewed over", "service catalog of the 4 services written to", "KPIs per tier of the service catalog",
		"tier-1, owner ", "teams stored that are not their service's owner in the catalog (opsmetrics catalog check; docs/catalog.md): ",
		"sent team", "the catalog's owner is sre"} {
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
