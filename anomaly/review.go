package anomaly

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// ReviewPeriod is what a review of the threshold rules covers: the last
// quarter, thirteen weeks.
const ReviewPeriod = 91 * 24 * time.Hour

// RulesReview is the review of every threshold rule over one period.
type RulesReview struct {
	From, To time.Time // [From, To): the period, whole windows of each rule ending at To
	Reviews  []Review  // by rule in their order, then slice
}

// ReviewRules reviews every rule on what each of its slices achieved over
// the ReviewPeriod before now (docs/targets.md): the rule's KPI over
// consecutive windows of the rule's length, the last ending at the start
// of now's day, each judged by ReviewTarget with the rule's set_at. A
// count of a slice with no row in a window is 0 there, once the slice has
// counted something (the zeros before had not started); a ratio without
// trials or a median without durations is absent.
func ReviewRules(ctx context.Context, conn driver.Conn, rules []ThresholdRule, production []string, now time.Time, opts ReviewOptions) (*RulesReview, error) {
	to := metrics.StepDay.Truncate(now)
	out := &RulesReview{From: to.Add(-ReviewPeriod), To: to}
	windows := make([]time.Duration, len(rules))
	sums := make([][][]*metrics.Summary, len(rules)) // by rule and window
	var (
		wg    sync.WaitGroup
		turns = make(chan struct{}, reviewQueries)
		mu    sync.Mutex
		errs  []error
	)
	for ri, r := range rules {
		w := r.Window
		if w <= 0 {
			w = 7 * 24 * time.Hour
		}
		windows[ri] = w
		n := int(ReviewPeriod / w)
		sums[ri] = make([][]*metrics.Summary, n)
		for i := range n {
			end := to.Add(-time.Duration(n-1-i) * w)
			q := metrics.Query{From: end.Add(-w), To: end, By: r.By, Services: r.Services, Teams: r.Teams,
				Environments: r.Environments, Production: production}
			wg.Add(1)
			go func() {
				defer wg.Done()
				turns <- struct{}{}
				defer func() { <-turns }()
				var err error
				if sums[ri][i], err = metrics.Summaries(ctx, conn, q); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("review threshold rule %s: %w", r.Name, err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for ri, r := range rules {
		w, n, unit := windows[ri], len(sums[ri]), ThresholdKPIs[r.KPI].unit
		bySlice := map[string]*Achieved{}
		for i, window := range sums[ri] {
			for _, s := range window {
				k := sliceName(s.Slice)
				a := bySlice[k]
				if a == nil {
					a = &Achieved{Slice: filtered(s.Slice, r), Points: make([]baselines.Point, n)}
					bySlice[k] = a
				}
				a.Points[i] = achievedPoint(r.KPI, s)
			}
		}
		keys := make([]string, 0, len(bySlice))
		for k := range bySlice {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := opts
		o.Step = w
		for _, k := range keys {
			a := bySlice[k]
			started := false
			for i := range a.Points {
				p := &a.Points[i]
				p.Start = to.Add(-time.Duration(n-i) * w)
				if unit == "count" {
					// Zeros before the first count are a slice that had not
					// started, as baselines.Fit has it; a window without a row
					// after it is a count of 0.
					started = started || p.Present && p.Value != 0
					p.Present = started
				}
			}
			out.Reviews = append(out.Reviews, ReviewTarget(TargetOf(r, r.SetAt), *a, o))
		}
	}
	return out, nil
}

// reviewQueries is how many window queries a review runs at once: the
// windows are independent, and one query at a time leaves ClickHouse's
// cores idle.
const reviewQueries = 4

// filtered is a summary's slice with the rule's filters on the dimensions
// it is not sliced by: "service checkout" rather than "all".
func filtered(slice map[metrics.Dimension]string, r ThresholdRule) map[metrics.Dimension]string {
	out := maps.Clone(slice)
	if out == nil {
		out = map[metrics.Dimension]string{}
	}
	for d, vals := range map[metrics.Dimension][]string{metrics.Service: r.Services, metrics.Team: r.Teams, metrics.Environment: r.Environments} {
		if out[d] == "" && len(vals) > 0 {
			out[d] = strings.Join(vals, ",")
		}
	}
	return out
}

// achievedPoint is the value of a rule's KPI in a window's summary: a
// ratio with its numerator and trials (patch_failure_rate's trials are not
// in the summary, so it is not reviewed), a median with the number of
// durations when the summary has it.
func achievedPoint(kpi string, s *metrics.Summary) baselines.Point {
	v := ThresholdKPIs[kpi].get(s)
	if v == nil {
		return baselines.Point{}
	}
	p := baselines.Point{Value: *v, Present: true}
	trials := map[string][2]uint64{
		"change_failure_rate": {s.FailedDeployments, s.Deployments},
		"rework_rate":         {s.ReworkDeployments, s.Deployments},
		"patch_compliance":    {s.PatchesCompliant, s.PatchesDue},
	}
	if t, ok := trials[kpi]; ok {
		p.Num, p.Den = float64(t[0]), float64(t[1])
	}
	for _, prefix := range []string{"mttr", "mttd", "lead_time", "patch_latency"} {
		if strings.HasPrefix(kpi, prefix+"_") {
			p.Den = float64(s.Samples[prefix])
		}
	}
	return p
}

// Flagged counts the reviews with each finding.
func (rr *RulesReview) Flagged() map[string]int {
	out := map[string]int{}
	for _, r := range rr.Reviews {
		for _, f := range r.Findings {
			out[f]++
		}
	}
	return out
}

// Brief is the review in one line: "12 targets reviewed over 2026-09-01
// to 2026-12-01: 2 stale, 1 never met, 1 shifted".
func (rr *RulesReview) Brief() string {
	f := rr.Flagged()
	return fmt.Sprintf("%d targets reviewed over %s to %s: %d stale, %d never met, %d shifted", len(rr.Reviews),
		rr.From.Format(time.DateOnly), rr.To.Format(time.DateOnly), f[TargetStale], f[TargetNeverMet], f[TargetShifted])
}

// WriteTable writes the review: a line of the period, a table of every
// rule on every slice, and the summary of each one flagged.
func (rr *RulesReview) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "targets review: %s to %s (end exclusive), time zone UTC\n\n", rr.From.Format("2006-01-02 15:04"),
		rr.To.Format("2006-01-02 15:04"))
	if len(rr.Reviews) == 0 {
		_, err := fmt.Fprintln(w, "no targets: configure alerting.thresholds (docs/alerting.md)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rule\tkpi\tslice\ttarget\tmet\tmedian\tworst\tfindings\tsuggested")
	for _, r := range rr.Reviews {
		l := r.Line()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Rule, l.KPI, l.Slice, l.Target, l.Met, l.Median, l.Worst,
			l.Findings, l.Suggested)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range rr.Reviews {
		if len(r.Findings) > 0 {
			fmt.Fprintf(w, "- %s\n", r.Summary)
		}
	}
	_, err := fmt.Fprintln(w, rr.Brief())
	return err
}

// ReviewLine is a review in words, as the table and the ops-review
// report show it: values in the KPI's unit, "-" where there is none.
type ReviewLine struct {
	Rule, KPI, Slice, Target, Met, Median, Worst string
	// Findings are the findings, comma-separated, or "holds", or "too
	// few values"; Suggested is the suggested target of a flagged one.
	Findings, Suggested, Summary string
}

// Line is r in words.
func (r Review) Line() ReviewLine {
	t := r.Target
	l := ReviewLine{Rule: t.Name, KPI: t.KPI, Slice: sliceName(r.Slice), Target: bounds(t.Unit, t.Above, t.Below),
		Met: fmt.Sprintf("%d of %d", r.Met, r.Points), Median: "-", Worst: "-", Findings: strings.Join(r.Findings, ","),
		Suggested: "-", Summary: r.Summary}
	switch {
	case r.SuggestedAbove == nil && r.SuggestedBelow == nil: // ReviewTarget had too few values
		l.Findings, l.Met = "too few values", fmt.Sprintf("%d values", r.Points)
	case len(r.Findings) == 0:
		l.Findings = "holds"
		fallthrough
	default:
		l.Median, l.Worst = reviewFormat(t.Unit, r.Median), reviewFormat(t.Unit, r.Worst)
	}
	if len(r.Findings) > 0 {
		l.Suggested = bounds(t.Unit, r.SuggestedAbove, r.SuggestedBelow)
	}
	return l
}

func bounds(unit string, above, below *float64) string {
	var parts []string
	if above != nil {
		parts = append(parts, "above "+reviewFormat(unit, *above))
	}
	if below != nil {
		parts = append(parts, "below "+reviewFormat(unit, *below))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " or ")
}
