package ingest

import (
	"errors"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// skip reports whether a decode error is a valid CDEvent of a type
// opsmetrics does not store, and counts it. Such a message is neither stored
// nor dead-lettered; its offset is committed with its batch. With
// Config.DeadLetterUnused the decoder rejects it instead, so it never gets
// here.
func (in *Ingester) skip(err error) bool {
	var s *event.Skipped
	if !errors.As(err, &s) {
		return false
	}
	in.metrics.skipped.WithLabelValues(s.Type).Inc()
	return true
}

// countDecoded counts what the metrics say about a decoded event besides
// its kind: a deployment stored under the placeholder environment.
func (in *Ingester) countDecoded(e *event.Event) {
	if e.Kind == event.KindDeployment && e.Deployment.Environment == event.UnknownEnvironment {
		in.metrics.unknownEnv.Inc()
	}
}
