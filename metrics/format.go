package metrics

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the stable JSON document of `opsmetrics kpi --format json`.
type Report struct {
	From       time.Time   `json:"from"`
	To         time.Time   `json:"to"`
	By         []Dimension `json:"by"`
	LevelTable string      `json:"dora_level_table"`
	Summaries  []*Summary  `json:"summaries"`
}

// WriteJSON writes r as indented JSON. Absent values are null.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var columns = []struct {
	name, csvName string
	cell          func(*Summary) string
	csv           func(*Summary) string
}{
	{"deploys", "deployments", func(s *Summary) string { return strconv.FormatUint(s.Deployments, 10) }, nil},
	{"/day", "deployments_per_day", func(s *Summary) string { return strconv.FormatFloat(s.DeploymentsPerDay, 'f', 2, 64) }, nil},
	{"CFR", "change_failure_rate", func(s *Summary) string { return percent(s.ChangeFailureRate) }, func(s *Summary) string { return num(s.ChangeFailureRate) }},
	{"rework", "rework_rate", func(s *Summary) string { return percent(s.ReworkRate) }, func(s *Summary) string { return num(s.ReworkRate) }},
	{"lead", "lead_time_median_seconds", func(s *Summary) string { return human(s.LeadTimeMedianSeconds) }, func(s *Summary) string { return num(s.LeadTimeMedianSeconds) }},
	{"unshipped", "changes_not_deployed", func(s *Summary) string { return strconv.FormatUint(s.ChangesNotDeployed, 10) }, nil},
	{"incid", "incidents", func(s *Summary) string { return strconv.FormatUint(s.Incidents, 10) }, nil},
	{"MTTD", "mttd_median_seconds", func(s *Summary) string { return human(s.MTTDMedianSeconds) }, func(s *Summary) string { return num(s.MTTDMedianSeconds) }},
	{"MTTR", "mttr_median_seconds", func(s *Summary) string { return human(s.MTTRMedianSeconds) }, func(s *Summary) string { return num(s.MTTRMedianSeconds) }},
}

// WriteTable writes r as an aligned table that fits 100 columns for up to
// two slicing dimensions of ordinary names. Durations are medians in human
// units, rates percentages; absent values show as "-".
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := r.sliceHeader()
	for _, c := range columns {
		head = append(head, c.name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, s := range r.Summaries {
		row := r.sliceCells(s)
		for _, c := range columns {
			row = append(row, c.cell(s))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The DORA levels, in a second table of their own.
	fmt.Fprintln(w)
	head = append(r.sliceHeader(), "frequency", "lead time", "failure rate", "recovery")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t(DORA "+r.LevelTable+" levels)")
	for _, s := range r.Summaries {
		row := r.sliceCells(s)
		for _, k := range []string{"deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"} {
			l := s.Levels[k]
			if l == "" {
				l = "-"
			}
			row = append(row, l)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// WriteCSV writes r as CSV: rates as ratios, durations in seconds, absent
// values empty.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := r.sliceHeader()
	for _, c := range columns {
		head = append(head, c.csvName)
	}
	cw.Write(head)
	for _, s := range r.Summaries {
		row := r.sliceCells(s)
		for _, c := range columns {
			f := c.cell
			if c.csv != nil {
				f = c.csv
			}
			row = append(row, f(s))
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

func (r *Report) sliceHeader() []string {
	if len(r.By) == 0 {
		return []string{"scope"}
	}
	h := make([]string, len(r.By))
	for i, d := range r.By {
		h[i] = string(d)
	}
	return h
}

func (r *Report) sliceCells(s *Summary) []string {
	if len(r.By) == 0 {
		return []string{"all"}
	}
	return sliceKey(s, r.By)
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func num(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// human writes a duration in seconds in the largest fitting unit.
func human(v *float64) string {
	if v == nil {
		return "-"
	}
	d := time.Duration(*v * float64(time.Second))
	switch {
	case d >= 48*time.Hour:
		return strconv.FormatFloat(d.Hours()/24, 'f', 1, 64) + "d"
	case d >= time.Hour:
		return strconv.FormatFloat(d.Hours(), 'f', 1, 64) + "h"
	default:
		return strconv.FormatFloat(d.Minutes(), 'f', 0, 64) + "m"
	}
}
