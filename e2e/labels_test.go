package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestHostileLabels sends, through Kafka, events whose service and team
// names are a 900 KB and a 500 KB string and hold NUL, ESC, CR and U+202E,
// ingests them and exports the KPI gauges: whether ingestion refuses such
// names or stores them, /metrics stays small, has no raw control or
// bidirectional character, and promtool accepts it.
func TestHostileLabels(t *testing.T) {
	h := testenv.NewPipeline(t, 1)
	now := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	hostile := []struct{ service, team string }{
		{strings.Repeat("S", 900<<10), "payments"},
		{"checkout", strings.Repeat("T", 500<<10)},
		{"nul\\u0000esc\\u001b[2Jcr\\rend", "rtl\\u202eevil"},
	}
	var msgs []kafka.Message
	for i, x := range hostile {
		msgs = append(msgs, kafka.Message{Topic: h.Topics.Deployments, Value: []byte(`{"kind":"deployment","event_id":"hl-` +
			string(rune('a'+i)) + `","deployment_id":"hl-` + string(rune('a'+i)) + `","service":"` + x.service + `","team":"` + x.team +
			`","environment":"production","status":"success","finished_at":"` + now + `"}`)})
	}
	msgs = append(msgs, kafka.Message{Topic: h.Topics.Deployments, Value: []byte(`{"kind":"deployment","event_id":"hl-ok",` +
		`"deployment_id":"hl-ok","service":"search","environment":"production","status":"success","finished_at":"` + now + `"}`)})
	h.ProduceLarge(msgs...)
	testenv.StartIngester(t, h, "labels", "--until-idle", "3s").Wait(t, 3*time.Minute)
	stored := testenv.Count(t, h.Store, "SELECT count() FROM deployments")
	refused := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters")
	if stored+refused != uint64(len(msgs)) || testenv.Count(t, h.Store, "SELECT count() FROM deployments WHERE service = 'search'") != 1 {
		t.Fatalf("%d stored and %d dead-lettered of %d messages, the plain one among them", stored, refused, len(msgs))
	}

	exp := metrics.NewExporter(h.Store.Conn(), metrics.Query{}, nil, testenv.Logger(t))
	if err := exp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	text := testenv.Exposition(t, exp)
	t.Logf("%d events stored, %d refused; /metrics is %d bytes", stored, refused, len(text))
	if len(text) > 64<<10 {
		t.Errorf("/metrics: %d bytes, want under 64 KiB", len(text))
	}
	if strings.ContainsAny(text, "\x00\x1b\r\u202e") || !utf8.ValidString(text) {
		t.Errorf("/metrics holds raw control or bidirectional characters")
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 2048 {
			t.Errorf("a /metrics line of %d bytes: %.100s", len(line), line)
		}
	}
	testenv.CheckMetrics(t, text)
}
