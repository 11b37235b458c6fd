package anomaly

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
)

// CheckOptions are one run of detection and the threshold rules, as
// `opsmetrics anomaly detect` makes it.
type CheckOptions struct {
	Detect   Config
	Alerting AlertingConfig
	// Catalog is the service catalog the alerts' owner and tier labels
	// come from, loaded once; an empty path means none.
	Catalog catalog.Config
	Now     time.Time
	Out     io.Writer // what fires, as a table
	Log     *slog.Logger
}

// Check evaluates once as of o.Now, writes what fires to o.Out, and
// delivers the alerts to Alertmanager when one is configured. Alerts last
// four evaluation intervals unless re-sent, so a scheduled check keeps
// them alive.
func Check(ctx context.Context, conn driver.Conn, o CheckOptions) error {
	alerts := o.Alerting.AlertConfig
	if o.Catalog.Enabled() {
		w, err := catalog.NewWatcher(o.Catalog, o.Log)
		if err != nil {
			return err
		}
		alerts.Catalog = w
	}
	ev, err := Evaluate(ctx, conn, o.Detect, o.Alerting.Thresholds, alerts, o.Now, o.Log)
	if err != nil {
		return err
	}
	if err := ev.WriteTable(o.Out); err != nil {
		return err
	}
	if o.Alerting.Alertmanager == "" {
		if len(ev.Fire) > 0 {
			o.Log.Warn("alerts not sent: no Alertmanager configured (--alertmanager)", "firing", len(ev.Fire))
		}
		return nil
	}
	n, err := NewNotifier(NotifierConfig{URL: o.Alerting.Alertmanager, ResendInterval: o.Detect.EvaluationInterval}, nil, o.Log)
	if err != nil {
		return err
	}
	for _, a := range ev.Fire {
		n.Fire(a)
	}
	for _, a := range ev.Resolve {
		n.ResolveFromHistory(a)
	}
	if err := n.Flush(ctx); err != nil {
		return fmt.Errorf("send %d alerts to Alertmanager: %w", len(ev.Fire)+len(ev.Resolve), err)
	}
	return nil
}

// WriteTable writes the alerts that fire, one a line, and how many series
// were judged.
func (ev *Evaluated) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tKPI\tSLICE\tSEVERITY\tSUMMARY")
	for _, a := range ev.Fire {
		var slice []string
		for _, k := range []string{"step", "service", "team", "environment"} {
			if v := a.Labels[k]; v != "" {
				slice = append(slice, k+"="+v)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Labels["alertname"], a.Labels["kpi"], strings.Join(slice, " "),
			a.Labels["severity"], a.Annotations["summary"])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	judged, learning := 0, 0
	for _, e := range ev.Series {
		if e.Model.Status == baselines.Learning {
			learning++
		} else {
			judged++
		}
	}
	_, err := fmt.Fprintf(w, "\n%d series judged, %d learning; %d alerts firing, %d resolved\n", judged, learning, len(ev.Fire), len(ev.Resolve))
	return err
}

// WriteSummary writes what scoring found, and what was wrong with the
// series, for people.
func (r ScoreReport) WriteSummary(w io.Writer, rows []Scored) {
	n := 0
	for _, row := range rows {
		if row.Anomaly {
			n++
		}
	}
	fmt.Fprintf(w, "scored %d rows as %s, step %v, season %d intervals: %d anomalies\n", len(rows), r.Kind, r.Step, r.Season, n)
	if r.Missing+r.Repeated+r.OutOfOrder+r.OffGrid+r.Gaps > 0 {
		fmt.Fprintf(w, "  %d rows without a value, %d repeated timestamps, %d out of order, %d off the %v grid; %d intervals missing\n",
			r.Missing, r.Repeated, r.OutOfOrder, r.OffGrid, r.Step, r.Gaps)
	}
}
