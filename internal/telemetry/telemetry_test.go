package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestProfileSecondsBounded: a CPU profile or trace longer than
// MaxProfileDuration, or with a seconds= that is not a number, is refused.
func TestProfileSecondsBounded(t *testing.T) {
	m, err := ListenMetrics("127.0.0.1:0", NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := m.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for _, c := range []struct {
		path string
		want int
	}{
		{"/debug/pprof/profile?seconds=3600", http.StatusBadRequest},
		{"/debug/pprof/profile?seconds=-1", http.StatusBadRequest},
		{"/debug/pprof/trace?seconds=1e9", http.StatusBadRequest},
		{"/debug/pprof/trace?seconds=" + strings.Repeat("9", 5000), http.StatusBadRequest},
		{"/debug/pprof/profile?seconds=1", http.StatusOK},
		{"/metrics", http.StatusOK},
	} {
		resp, err := http.Get("http://" + addr + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || (c.want == 400 && len(body) > 200) {
			t.Errorf("%.60s: %d (%d bytes), want %d", c.path, resp.StatusCode, len(body), c.want)
		}
	}
}
