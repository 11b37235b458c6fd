package ingest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// component is a Backstage catalog-info.yaml of one Component.
func component(name, owner string) string {
	return fmt.Sprintf(`apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: service
  lifecycle: production
  owner: group:default/%s
`, name, owner)
}

// TestOwnersFromCatalog sends events with and without a team, in the
// native format, CloudEvents and CDEvents, through
// Kafka and the ingester, with a Backstage catalog that a watcher reloads
// between two runs: events without a team take their service's owner of
// the day, those that name another team keep it and are counted as
// mismatches, and services the catalog does not know keep what they sent.
func TestOwnersFromCatalog(t *testing.T) {
	h := newHarness(t, 1)
	topics := publish.TopicsFrom(h.Topics)
	dir := t.TempDir()
	file := filepath.Join(dir, "catalog-info.yaml")
	if err := os.WriteFile(file, []byte(component("checkout", "payments")+"---\n"+component("search", "discovery")), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := catalog.NewWatcher(catalog.Config{Path: file}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.Catalog = w.Catalog

	deployment := func(tag, service, team string) *event.Event {
		e := sample(event.KindDeployment, tag)
		e.Deployment.Service, e.Deployment.Team = service, team
		return e
	}
	message := func(e *event.Event, enc string) kafka.Message {
		t.Helper()
		var value []byte
		var hs []event.Header
		var err error
		switch enc {
		case "native":
			value, err = event.MarshalNative(e)
		case "ce-binary":
			hs, value, err = event.CloudEventBinary(e, "/test/owners")
		case "cdevents":
			value, err = event.MarshalCDEvent(e, "/test/owners", "0.5")
			hs = []event.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
		}
		if err != nil {
			t.Fatalf("encode %s: %v", enc, err)
		}
		return kafka.Message{Topic: topics[e.Kind], Key: []byte(e.EntityKey()), Value: value, Headers: headers(hs)}
	}
	incident := sample(event.KindIncident, "owners")
	incident.Incident.Service, incident.Incident.Team = "search", ""
	h.Produce(
		message(deployment("none", "checkout", ""), "native"),
		message(deployment("cdevent", "Checkout", ""), "cdevents"), // the catalog ignores case
		message(deployment("same", "checkout", "PAYMENTS"), "native"),
		message(deployment("other", "checkout", "web"), "native"),
		message(deployment("orphan", "legacy-batch", ""), "native"),
		message(incident, "ce-binary"),
	)
	reg := h.ingestUntilIdle("owners")

	team := func(id string) string {
		t.Helper()
		rows := testenv.Rows(t, h.Store, "SELECT team FROM deployments WHERE deployment_id = ?", id)
		if len(rows) != 1 {
			t.Fatalf("deployment %s: %d rows, want 1", id, len(rows))
		}
		return rows[0]
	}
	for _, c := range []struct{ id, want string }{
		{"dep-none", "payments"}, {"dep-cdevent", "payments"}, {"dep-same", "PAYMENTS"}, {"dep-other", "web"}, {"dep-orphan", ""},
	} {
		if got := team(c.id); got != c.want {
			t.Errorf("%s: team %q, want %q", c.id, got, c.want)
		}
	}
	if got := testenv.Rows(t, h.Store, "SELECT team FROM incidents WHERE incident_id = ?", incident.Incident.ID); fmt.Sprint(got) != "[discovery]" {
		t.Errorf("incident on search: team %v, want [discovery]", got)
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_team_mismatch_total", map[string]string{"service": "checkout", "catalog_owner": "payments"}); got != 1 {
		t.Errorf("team mismatches of checkout = %v, want 1", got)
	}
	if got := testenv.SumCounter(t, reg, "opsmetrics_ingest_team_mismatch_total"); got != 1 {
		t.Errorf("team mismatches = %v, want 1", got)
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_team_from_catalog_total", map[string]string{"kind": "deployment"}); got != 2 {
		t.Errorf("deployments given the catalog's team = %v, want 2", got)
	}

	// The catalog changes hands: the next events take the new owner, and
	// the stored ones keep theirs.
	if err := os.WriteFile(file, []byte(component("checkout", "platform")+"---\n"+component("search", "discovery")+"\n# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed %v, %v", changed, err)
	}
	h.Produce(message(deployment("later", "checkout", ""), "native"), message(deployment("web", "checkout", "payments"), "native"))
	reg = h.ingestUntilIdle("owners")
	if got := team("dep-later"); got != "platform" {
		t.Errorf("after the reload: team %q, want platform", got)
	}
	if got := team("dep-none"); got != "payments" {
		t.Errorf("stored before the reload: team %q, want payments", got)
	}
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_team_mismatch_total", map[string]string{"service": "checkout", "catalog_owner": "platform"}); got != 1 {
		t.Errorf("team mismatches of checkout after the reload = %v, want 1", got)
	}
	if n := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters"); n != 0 {
		t.Errorf("dead letters: %d, want 0", n)
	}
}
