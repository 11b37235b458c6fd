package generator_test

import (
	"fmt"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
)

func ExampleGenerate() {
	cfg := generator.Config{
		Services:  20,
		Days:      90,
		Seed:      7,
		End:       time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), // fixed, for a reproducible stream
		Anomalies: true,
	}
	var last time.Time
	st, err := generator.Generate(cfg, func(ev *event.Event) error {
		// Send ev to Kafka, keyed by ev.EntityKey(), or straight to storage.
		last = ev.Time
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Events > 15000, last.Before(cfg.End))
	for _, a := range st.Anomalies {
		fmt.Println(a.Kind, a.Start.Format(time.DateOnly))
	}
	// Output:
	// true true
	// failure_burst 2026-02-22
	// deployment_stop 2026-02-22
}
