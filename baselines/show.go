package baselines

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// String says what a learn made, for people.
func (r Result) String() string {
	return fmt.Sprintf("generation %d: %d series, %d ready, %d learning", r.Generation, r.Series, r.Ready, r.Series-r.Ready)
}

// ShowFilter selects the baselines WriteCurrent lists; empty fields select
// everything.
type ShowFilter struct {
	KPI, Service, Team string
	Status             string // ready or learning
}

// WriteCurrent lists the current baselines cur (Current) that f selects,
// one a line: the series, its status (learning ones never alert), its model,
// and the expected value and band of the slot of now.
func WriteCurrent(w io.Writer, cur []Stored, f ShowFilter, now time.Time) error {
	if len(cur) == 0 {
		_, err := fmt.Fprintln(w, "no baselines yet: run opsmetrics baselines learn")
		return err
	}
	fmt.Fprintf(w, "generation %d, trained %s\n\n", cur[0].Generation, cur[0].TrainedAt.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KPI\tSTEP\tSLICE\tSTATUS\tMODEL\tSAMPLES\tNOW EXPECTED\tBAND")
	for _, c := range cur {
		s, m := c.Series, c.Model
		if (f.KPI != "" && s.KPI != f.KPI) || (f.Service != "" && s.Service != f.Service) || (f.Team != "" && s.Team != f.Team) ||
			(f.Status != "" && string(m.Status) != f.Status) {
			continue
		}
		k, _ := LookupKPI(s.KPI)
		e, lo, hi := m.Band(m.Slot(now))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s–%s\n", s.KPI, s.Step, s.Slice(), m.Status, m.Family, m.Samples,
			k.Format(e), k.Format(lo), k.Format(hi))
	}
	return tw.Flush()
}
