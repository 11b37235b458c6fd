package metrics_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

func generatorEvents(t *testing.T, fn func(*event.Event)) {
	t.Helper()
	if _, err := generator.Generate(generator.Config{Services: 6, Days: 40, Seed: 4, End: t0}, func(e *event.Event) error {
		fn(e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
