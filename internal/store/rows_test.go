package store

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// TestContentHashStable pins the content hashes of a few events to the
// values the release that introduced event_ids (migration 5) computed:
// claims stored then must keep matching the same content. eventHash, from
// the fields, and contentHash, from the values as stored or read back, must
// both give them.
func TestContentHashStable(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		e    *event.Event
		want string
	}{
		{"deployment with every field", &event.Event{Kind: event.KindDeployment, ID: "e-1", Time: at, Encoding: event.EncodingNative,
			Deployment: &event.Deployment{ID: "d-1", Service: "checkout", Team: "pay", Environment: "production", StartedAt: at.Add(-time.Minute),
				FinishedAt: at, Status: "success", Version: "1.2.3", Artifact: "img:1", Unplanned: true, FixesIncident: "INC-1", Changes: []string{"c1", "c2"}}},
			"559dc4327dd092ee787a9803881076f8"},
		{"deployment with unset times and no changes", &event.Event{Kind: event.KindDeployment, ID: "e-2", Time: at, Encoding: event.EncodingCDEvents,
			Deployment: &event.Deployment{ID: "d-2", Service: "checkout", Environment: "staging", Status: "failure"}},
			"95ad4f010029e94a9c35ae0b3b29de58"},
		{"incident", &event.Event{Kind: event.KindIncident, ID: "e-3", Time: at, Encoding: event.EncodingCloudEvents,
			Incident: &event.Incident{ID: "INC-1", Title: "down", Service: "checkout", Severity: "high", DetectedAt: at, ResolvedAt: at.Add(time.Hour), CauseDeployment: "d-1"}},
			"acd1b4235514b078003dca684856676b"},
		{"patch", &event.Event{Kind: event.KindPatch, ID: "e-4", Time: at, Encoding: event.EncodingNative,
			Patch: &event.Patch{ID: "p-1", Target: "host-1", TargetType: "host", Severity: "critical", ReleasedAt: at, Outcome: "applied"}},
			"394135955192cef7ba05a060493e4b8d"},
		{"change", &event.Event{Kind: event.KindChange, ID: "e-5", Time: at, Encoding: event.EncodingNative,
			Change: &event.Change{ID: "c1", Service: "checkout", Repository: "r", Author: "a", AuthoredAt: at.Add(-time.Hour), MergedAt: at}},
			"b4b726836ab095455ff120a22da83a73"},
	}
	// actor and pipeline came with migration 7: empty, they leave the hash
	// of every event stored before as it was (the cases above); set, they
	// are content like any other field.
	d := *cases[0].e
	dep := *d.Deployment
	dep.Actor = "new-hire"
	d.Deployment = &dep
	withActor, _ := eventHash(&d, nil)
	if got := hex.EncodeToString(withActor[:]); got == cases[0].want {
		t.Errorf("a deployment's actor does not change its content hash")
	}
	if fromValues, _ := contentHash(d.Kind, content(&d), nil); fromValues != withActor {
		t.Errorf("with an actor, contentHash of content and eventHash disagree")
	}
	for _, c := range cases {
		fromFields, _ := eventHash(c.e, nil)
		fromValues, _ := contentHash(c.e.Kind, content(c.e), []byte("scratch left over"))
		if got := hex.EncodeToString(fromFields[:]); got != c.want {
			t.Errorf("%s: eventHash = %s, want %s", c.name, got, c.want)
		}
		if got := hex.EncodeToString(fromValues[:]); got != c.want {
			t.Errorf("%s: contentHash of content = %s, want %s", c.name, got, c.want)
		}
	}
}
