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
	Bucket     Bucket      `json:"bucket"`
	TimeZone   string      `json:"time_zone,omitempty"`
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

// graded are the DORA metrics that have levels, with the figure each level
// is computed from.
var graded = []struct {
	kpi, name string
	value     func(*Summary) string
}{
	{"deployment_frequency", "deployment frequency", func(s *Summary) string {
		return strconv.FormatFloat(s.DeploymentsPerDay, 'f', 2, 64) + "/day"
	}},
	{"lead_time", "lead time (median)", func(s *Summary) string { return human(s.LeadTimeMedianSeconds) }},
	{"change_failure_rate", "change failure rate", func(s *Summary) string { return percent(s.ChangeFailureRate) }},
	{"recovery_time", "recovery time (median)", func(s *Summary) string { return human(s.RecoveryMedianSeconds) }},
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
	// The DORA levels, each beside the figure it grades.
	fmt.Fprintln(w)
	head = append(r.sliceHeader(), "DORA metric", "value", "level (DORA "+r.LevelTable+")")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, s := range r.Summaries {
		for _, g := range graded {
			l := LevelLabel(s.Levels[g.kpi])
			if l == "" {
				l = "-"
			}
			fmt.Fprintln(tw, strings.Join(append(r.sliceCells(s), g.name, g.value(s), l), "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Summaries) == 0 || r.Summaries[0].Previous == nil {
		return nil
	}
	fmt.Fprintln(w)
	head = append(r.sliceHeader(), "deploys Δ", "CFR Δ", "lead Δ", "MTTR Δ")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t(change from the previous period)")
	for _, s := range r.Summaries {
		p := s.Previous
		row := append(r.sliceCells(s),
			fmt.Sprintf("%+d", int64(s.Deployments)-int64(p.Deployments)),
			delta(s.ChangeFailureRate, p.ChangeFailureRate, func(d float64) string { return fmt.Sprintf("%+.1fpp", d*100) }),
			delta(s.LeadTimeMedianSeconds, p.LeadTimeMedianSeconds, signedHuman),
			delta(s.MTTRMedianSeconds, p.MTTRMedianSeconds, signedHuman))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// delta formats now - before, or "-" when either is absent.
func delta(now, before *float64, f func(float64) string) string {
	if now == nil || before == nil {
		return "-"
	}
	return f(*now - *before)
}

func signedHuman(d float64) string {
	if d < 0 {
		return "-" + human(ptr(-d))
	}
	return "+" + human(&d)
}

// WriteCSV writes r as CSV: rates as ratios, durations in seconds, absent
// values empty, then the median recovery time and the DORA levels
// (LevelLabel).
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := r.sliceHeader()
	for _, c := range columns {
		head = append(head, c.csvName)
	}
	// The recovery time the recovery level grades, and the levels as
	// LevelLabel writes them.
	head = append(head, "recovery_median_seconds")
	for _, g := range graded {
		head = append(head, g.kpi+"_level")
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
		row = append(row, num(s.RecoveryMedianSeconds))
		for _, g := range graded {
			row = append(row, LevelLabel(s.Levels[g.kpi]))
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

func (r *Report) sliceHeader() []string {
	var h []string
	if r.Bucket != Whole {
		h = append(h, string(r.Bucket))
	}
	if len(r.By) == 0 && r.Bucket == Whole {
		return []string{"scope"}
	}
	for _, d := range r.By {
		h = append(h, string(d))
	}
	return h
}

func (r *Report) sliceCells(s *Summary) []string {
	var c []string
	if r.Bucket != Whole && s.Bucket != nil {
		loc := time.UTC
		if l, err := time.LoadLocation(r.TimeZone); err == nil && r.TimeZone != "" {
			loc = l
		}
		c = append(c, s.Bucket.In(loc).Format(time.DateOnly))
	}
	if len(r.By) == 0 && r.Bucket == Whole {
		return []string{"all"}
	}
	return append(c, sliceKey(s, r.By)...)
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
