package metrics

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
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

// column is a column of the table: its heading and its cell of a summary.
type column struct {
	name string
	cell func(*Summary) string
}

// columns are the DORA and incident figures of the table's first part.
var columns = []column{
	{"deploys", figure(PanelDeployments)},
	{"/day", perDay},
	{"CFR", figure(PanelChangeFailureRate)},
	{"rework", figure(PanelReworkRate)},
	{"lead", figure(PanelLeadTime)},
	{"unshipped", func(s *Summary) string { return strconv.FormatUint(s.ChangesNotDeployed, 10) }},
	{"incid", figure(PanelIncidents)},
	{"MTTD", figure(PanelMTTD)},
	{"MTTR", figure(PanelMTTR)},
}

// graded are the DORA metrics that have levels, with the figure each level
// is computed from.
var graded = []struct {
	kpi, name string
	value     func(*Summary) string
}{
	{"deployment_frequency", "deployment frequency", func(s *Summary) string { return perDay(s) + "/day" }},
	{"lead_time", "lead time (median)", figure(PanelLeadTime)},
	{"change_failure_rate", "change failure rate", figure(PanelChangeFailureRate)},
	{"recovery_time", "recovery time (median)", figure(PanelRecoveryTime)},
}

// patchColumns are the patch-management KPIs, in a table of their own.
var patchColumns = []column{
	{"patches", func(s *Summary) string { return strconv.FormatUint(s.PatchesReleased, 10) }},
	{"advisories", figure(KPIPatches)},
	{"latency", figure(PanelPatchLatency)},
	{"compliance", figure(PanelPatchCompliance)},
	{"failed", func(s *Summary) string { return human("ratio", s.PatchFailureRate) }},
	{"overdue", figure(PanelPatchesOverdue)},
}

// figure is the cell of the catalogue's KPI of that name: its Value in its
// unit (FormatValue), or "-".
func figure(name string) func(*Summary) string {
	k, _ := LookupKPI(name)
	value := ValueOf(name)
	return func(s *Summary) string {
		if v, ok := value(s); ok {
			return k.Format(v)
		}
		return "-"
	}
}

// The figures the comparison table shows the change of.
var cfr, leadTime, mttr = PointerOf(PanelChangeFailureRate), PointerOf(PanelLeadTime), PointerOf(PanelMTTR)

// perDay is the deployment frequency with two decimals.
func perDay(s *Summary) string {
	v, _ := ValueOf(PanelDeploymentFrequency)(s)
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// WriteRange writes the line that heads every table of figures over
// [from, to), in loc, and a blank line: "2026-03-04 00:00 to 2026-03-17
// 00:00 (end exclusive), time zone Europe/Berlin".
func WriteRange(w io.Writer, from, to time.Time, loc *time.Location) {
	fmt.Fprint(w, rangeLine(from, to, loc)+"\n")
}

func rangeLine(from, to time.Time, loc *time.Location) string {
	return fmt.Sprintf("%s to %s (end exclusive), time zone %s\n",
		from.In(loc).Format("2006-01-02 15:04"), to.In(loc).Format("2006-01-02 15:04"), loc)
}

// windowColumns are the change calendar's figures, in a table of their
// own when a calendar is configured.
var windowColumns = []column{
	{"outside window", func(s *Summary) string { return strconv.FormatUint(s.DeploymentsOutsideWindow, 10) }},
	{"share", func(s *Summary) string { return human("ratio", s.OutsideWindowShare) }},
	{"in freeze", func(s *Summary) string { return strconv.FormatUint(s.DeploymentsInFreeze, 10) }},
	{"unplanned fixes", func(s *Summary) string { return strconv.FormatUint(s.UnplannedFixesOutsideWindow, 10) }},
}

// WriteTable writes r as aligned tables that fit 100 columns for up to two
// slicing dimensions of ordinary names, under a line that gives the range
// and its time zone: the DORA and incident figures, the DORA levels, the
// patch KPIs, the change calendar's figures (when a calendar judged them) and, when r compares, the changes. Durations are medians and
// rates percentages (FormatValue); absent values show as "-". A partial
// bucket (clipped by the range) is marked with a *.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprint(w, rangeLine(r.From, r.To, r.location()))
	if t := r.AsOf(); t != nil {
		fmt.Fprintf(w, "from the KPI rollup built %s: events stored later are not counted yet\n\n", t.In(r.location()).Format("2006-01-02 15:04:05"))
	} else {
		fmt.Fprintf(w, "from the stored events as of now\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if err := r.writeColumns(tw, columns, ""); err != nil {
		return err
	}
	if slices.ContainsFunc(r.Summaries, func(s *Summary) bool { return s.Partial }) {
		fmt.Fprintf(w, "* partial %s: the range covers only part of it\n", r.Bucket)
	}
	// The DORA levels, each beside the figure it grades.
	fmt.Fprintln(w)
	head := append(r.sliceHeader(), "DORA metric", "value", "level (DORA "+r.LevelTable+")")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, s := range r.Summaries {
		for _, g := range graded {
			l := LevelLabel(s.Levels[g.kpi])
			if l == "" {
				l = "-"
			}
			fmt.Fprintln(tw, strings.Join(append(r.sliceCells(s, true), g.name, g.value(s), l), "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := r.writeColumns(tw, patchColumns, "\t(patches)"); err != nil {
		return err
	}
	if slices.ContainsFunc(r.Summaries, func(s *Summary) bool { return s.OutsideWindowShare != nil }) {
		fmt.Fprintln(w)
		if err := r.writeColumns(tw, windowColumns, "\t(change calendar)"); err != nil {
			return err
		}
	}
	if len(r.Summaries) == 0 || r.Summaries[0].Previous == nil {
		return nil
	}
	fmt.Fprintln(w)
	head = append(r.sliceHeader(), "deploys Δ", "CFR Δ", "lead Δ", "MTTR Δ")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t(change from the previous period)")
	for _, s := range r.Summaries {
		p := s.Previous
		row := append(r.sliceCells(s, true),
			fmt.Sprintf("%+d", int64(s.Deployments)-int64(p.Deployments)),
			delta(cfr(s), cfr(p), func(d float64) string { return fmt.Sprintf("%+.1fpp", d*100) }),
			delta(leadTime(s), leadTime(p), signedHuman),
			delta(mttr(s), mttr(p), signedHuman))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// writeColumns writes a table of cols, one row per summary, its heading
// followed by note.
func (r *Report) writeColumns(tw *tabwriter.Writer, cols []column, note string) error {
	head := r.sliceHeader()
	for _, c := range cols {
		head = append(head, c.name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+note)
	for _, s := range r.Summaries {
		row := r.sliceCells(s, true)
		for _, c := range cols {
			row = append(row, c.cell(s))
		}
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
		return "-" + FormatValue("seconds", -d)
	}
	return "+" + FormatValue("seconds", d)
}

// WriteCSV writes r as CSV, one row per summary: the slice (and bucket)
// columns of the table, then every figure of the JSON document under its
// JSON name, maps and the previous period flattened with dots
// (dora_levels.lead_time, previous.deployments). Rates are ratios,
// durations seconds, times RFC 3339 in the report's time zone, absent
// values empty.
func (r *Report) WriteCSV(w io.Writer) error {
	loc := r.location()
	var rows [][]field
	for _, s := range r.Summaries {
		rows = append(rows, flatten("", reflect.ValueOf(s).Elem(), loc))
	}
	// The header: each row's names in order, the keys of maps (which rows
	// may lack) merged in where they first appear.
	var names []string
	for _, row := range rows {
		at := 0
		for _, f := range row {
			if i := slices.Index(names, f.name); i >= 0 {
				at = i + 1
				continue
			}
			names = slices.Insert(names, at, f.name)
			at++
		}
	}
	cw := csv.NewWriter(w)
	cw.Write(append(r.sliceHeader(), names...))
	for i, s := range r.Summaries {
		vals := map[string]string{}
		for _, f := range rows[i] {
			vals[f.name] = f.value
		}
		row := r.sliceCells(s, false)
		for _, n := range names {
			row = append(row, vals[n])
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

type field struct{ name, value string }

// flatten lists the JSON fields of the struct v as CSV fields, less the
// slice and the bucket start, which lead each row.
func flatten(prefix string, v reflect.Value, loc *time.Location) []field {
	var out []field
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "-" || name == "" || name == "slice" || (prefix == "" && name == "bucket") {
			continue
		}
		out = append(out, flattenValue(prefix+name, v.Field(i), loc)...)
	}
	return out
}

func flattenValue(name string, v reflect.Value, loc *time.Location) []field {
	switch x := v.Interface().(type) {
	case *time.Time:
		if x == nil {
			return []field{{name, ""}}
		}
		return []field{{name, x.In(loc).Format(time.RFC3339)}}
	case *float64:
		return []field{{name, num(x)}}
	case *Summary:
		if x == nil {
			return nil
		}
		return flatten(name+".", reflect.ValueOf(x).Elem(), loc)
	}
	switch v.Kind() {
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		var out []field
		for _, k := range keys {
			out = append(out, flattenValue(name+"."+k, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), loc)...)
		}
		return out
	case reflect.Float64:
		return []field{{name, strconv.FormatFloat(v.Float(), 'f', -1, 64)}}
	}
	return []field{{name, fmt.Sprint(v.Interface())}}
}

func (r *Report) location() *time.Location {
	if l, err := time.LoadLocation(r.TimeZone); err == nil {
		return l
	}
	return time.UTC
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

// sliceCells are the bucket (marked * when partial and mark is set) and
// the slice of s.
func (r *Report) sliceCells(s *Summary, mark bool) []string {
	var c []string
	if r.Bucket != Whole && s.Bucket != nil {
		b := s.Bucket.In(r.location()).Format(time.DateOnly)
		if s.Partial && mark {
			b += "*"
		}
		c = append(c, b)
	}
	if len(r.By) == 0 && r.Bucket == Whole {
		return []string{"all"}
	}
	return append(c, sliceKey(s, r.By)...)
}

func num(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// human writes v in unit with FormatValue, or "-" when absent.
func human(unit string, v *float64) string {
	if v == nil {
		return "-"
	}
	return FormatValue(unit, *v)
}

// AsOf is the oldest build time of the KPI rollups r was read from, or nil
// when every figure was computed from the raw rows.
func (r *Report) AsOf() *time.Time {
	var t *time.Time
	for _, s := range r.Summaries {
		for _, x := range []*Summary{s, s.Previous} {
			if x != nil && x.AsOf != nil && (t == nil || x.AsOf.Before(*t)) {
				t = x.AsOf
			}
		}
	}
	return t
}
