package anomaly

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
)

// ReadSeries reads one series exported by a monitoring system, as rows in
// file order: CSV with a timestamp column and a value column (or num and
// den for rates), with or without a header; or the JSON of a Prometheus
// range query (/api/v1/query_range), of CloudWatch GetMetricData or
// GetMetricStatistics (aws cloudwatch … --output json), or of a Datadog
// metrics query (/api/v1/query). docs/baselines.md lists the columns and
// timestamp forms accepted.
//
// Rows may come in any order, repeat a timestamp, skip intervals, change
// their interval or lie off its grid: ScoreSeries deals with all of it. A
// row with an empty value, NaN, ±Inf or null has no value (Present false)
// and still gets an output row. ReadSeries fails, naming the line, only on
// what it cannot read: a timestamp or value that is not one, a CSV row
// with too few fields, a JSON document of none of the shapes above.
func ReadSeries(r io.Reader) ([]baselines.Point, bool, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(64)
	if t := bytes.TrimLeft(head, " \t\r\n\ufeff"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return readJSONSeries(br)
	}
	return readCSVSeries(br)
}

func readCSVSeries(r io.Reader) ([]baselines.Point, bool, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	first, err := cr.Read()
	if err != nil {
		return nil, false, fmt.Errorf("read header: %w", err)
	}
	ti, vi, ni, di := 0, 1, -1, -1
	var out []baselines.Point
	header := true
	if _, err := parseStamp(first[0]); err == nil && len(first) >= 2 {
		header = false // a bare timestamp,value export
	} else {
		ti, vi = -1, -1
		var others []int
		for i, h := range first {
			switch name := strings.ToLower(strings.Trim(strings.TrimSpace(h), `"'`)); {
			case ti < 0 && (name == "timestamp" || name == "timestamps" || name == "time" || name == "date" ||
				name == "datetime" || name == "ts" || strings.HasPrefix(name, "timestamp") || strings.HasPrefix(name, "time ")):
				ti = i
			case name == "value" || name == "values":
				vi = i
			case name == "num":
				ni = i
			case name == "den":
				di = i
			default:
				others = append(others, i)
			}
		}
		if vi < 0 && len(others) == 1 && (ni < 0 || di < 0) {
			vi = others[0] // the metric's own name, as Datadog and spreadsheets head it
		}
		if ti < 0 || (vi < 0 && (ni < 0 || di < 0)) {
			return nil, false, fmt.Errorf("line 1: header %q: want a timestamp column and a value column (or num and den for rates)",
				strings.Join(first, ","))
		}
	}
	rates := ni >= 0 && di >= 0
	need := max(ti, vi, ni, di)
	for {
		rec := first
		if header {
			if rec, err = cr.Read(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, false, err // csv.ParseError names the line
			}
		}
		header = true
		line, _ := cr.FieldPos(0)
		if len(rec) <= need {
			return nil, false, fmt.Errorf("line %d: %d fields, want at least %d", line, len(rec), need+1)
		}
		t, err := parseStamp(rec[ti])
		if err != nil {
			return nil, false, fmt.Errorf("line %d: timestamp: %w", line, err)
		}
		p := baselines.Point{Start: t}
		if rates {
			num, okN, err1 := parseValue(rec[ni])
			den, okD, err2 := parseValue(rec[di])
			switch {
			case err1 != nil || (okN && num < 0):
				return nil, false, fmt.Errorf("line %d: num %q is not a count", line, rec[ni])
			case err2 != nil || (okD && okN && den < num):
				return nil, false, fmt.Errorf("line %d: den %q is not a count >= num", line, rec[di])
			}
			if okN && okD && den > 0 {
				p.Num, p.Den, p.Value, p.Present = num, den, num/den, true
			}
		} else {
			v, ok, err := parseValue(rec[vi])
			if err != nil {
				return nil, false, fmt.Errorf("line %d: value %q is not a number", line, rec[vi])
			}
			p.Value, p.Present = v, ok
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, false, errors.New("no rows")
	}
	return out, rates, nil
}

// parseValue reads a number; empty, NaN, ±Inf, null and None are no value.
func parseValue(s string) (float64, bool, error) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	switch strings.ToLower(s) {
	case "", "nan", "null", "none", "-", "inf", "+inf", "-inf", "infinity", "-infinity":
		return 0, false, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, nil
	}
	return v, true, nil
}

// parseStamp reads RFC 3339 (any offset, any fraction), "2006-01-02
// 15:04:05" with an optional fraction, a date, or Unix seconds (with a
// fraction, as Prometheus writes them) or milliseconds (13 digits and
// more, as Datadog writes them). Times without an offset are UTC.
func parseStamp(s string) (time.Time, error) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		if math.Abs(f) >= 1e11 { // milliseconds: 1e11 s is the year 5138
			f /= 1000
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339, a date and time, or Unix seconds or milliseconds, got %q", s)
}

// The JSON shapes read: only the fields used.
type (
	promRange struct {
		Status string `json:"status"`
		Data   *struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	cloudWatchData struct {
		MetricDataResults []struct {
			Label      string            `json:"Label"`
			Timestamps []json.RawMessage `json:"Timestamps"`
			Values     []json.RawMessage `json:"Values"`
		} `json:"MetricDataResults"`
	}
	cloudWatchStats struct {
		Label      string                       `json:"Label"`
		Datapoints []map[string]json.RawMessage `json:"Datapoints"`
	}
	datadogQuery struct {
		Series []struct {
			Metric    string               `json:"metric"`
			Scope     string               `json:"scope"`
			Pointlist [][2]json.RawMessage `json:"pointlist"`
		} `json:"series"`
	}
)

func readJSONSeries(r io.Reader) ([]baselines.Point, bool, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, false, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, false, jsonError(data, err)
	}
	pair := func(t, v json.RawMessage) (baselines.Point, error) {
		ts, err := parseStamp(string(t))
		if err != nil {
			return baselines.Point{}, fmt.Errorf("timestamp: %w", err)
		}
		p := baselines.Point{Start: ts}
		if s := string(v); s != "null" {
			x, ok, err := parseValue(s)
			if err != nil {
				return p, fmt.Errorf("value %s is not a number", s)
			}
			p.Value, p.Present = x, ok
		}
		return p, nil
	}
	one := func(n int, what string) error {
		if n != 1 {
			return fmt.Errorf("%s: %d series in the file; export one", what, n)
		}
		return nil
	}
	var out []baselines.Point
	add := func(i int, t, v json.RawMessage) error {
		p, err := pair(t, v)
		if err != nil {
			return fmt.Errorf("point %d: %w", i+1, err)
		}
		out = append(out, p)
		return nil
	}
	switch {
	case probe["data"] != nil: // Prometheus
		var pr promRange
		if err := json.Unmarshal(data, &pr); err != nil || pr.Data == nil {
			return nil, false, fmt.Errorf("prometheus range query: %w", jsonError(data, err))
		}
		if pr.Data.ResultType != "matrix" {
			return nil, false, fmt.Errorf("prometheus: resultType %q, want matrix (a range query)", pr.Data.ResultType)
		}
		if err := one(len(pr.Data.Result), "prometheus"); err != nil {
			return nil, false, err
		}
		for i, v := range pr.Data.Result[0].Values {
			if err := add(i, v[0], v[1]); err != nil {
				return nil, false, fmt.Errorf("prometheus: %w", err)
			}
		}
	case probe["MetricDataResults"] != nil:
		var cw cloudWatchData
		if err := json.Unmarshal(data, &cw); err != nil {
			return nil, false, fmt.Errorf("cloudwatch: %w", jsonError(data, err))
		}
		if err := one(len(cw.MetricDataResults), "cloudwatch"); err != nil {
			return nil, false, err
		}
		res := cw.MetricDataResults[0]
		if len(res.Timestamps) != len(res.Values) {
			return nil, false, fmt.Errorf("cloudwatch: %d timestamps and %d values", len(res.Timestamps), len(res.Values))
		}
		for i := range res.Timestamps {
			if err := add(i, res.Timestamps[i], res.Values[i]); err != nil {
				return nil, false, fmt.Errorf("cloudwatch: %w", err)
			}
		}
	case probe["Datapoints"] != nil:
		var cw cloudWatchStats
		if err := json.Unmarshal(data, &cw); err != nil {
			return nil, false, fmt.Errorf("cloudwatch: %w", jsonError(data, err))
		}
		// One statistic per datapoint: the first present of these.
		for i, dp := range cw.Datapoints {
			var v json.RawMessage
			for _, k := range []string{"Average", "Sum", "Maximum", "Minimum", "SampleCount"} {
				if dp[k] != nil {
					v = dp[k]
					break
				}
			}
			if v == nil {
				v = json.RawMessage("null")
			}
			if err := add(i, dp["Timestamp"], v); err != nil {
				return nil, false, fmt.Errorf("cloudwatch: %w", err)
			}
		}
	case probe["series"] != nil: // Datadog
		var dd datadogQuery
		if err := json.Unmarshal(data, &dd); err != nil {
			return nil, false, fmt.Errorf("datadog: %w", jsonError(data, err))
		}
		if err := one(len(dd.Series), "datadog"); err != nil {
			return nil, false, err
		}
		for i, p := range dd.Series[0].Pointlist {
			if err := add(i, p[0], p[1]); err != nil {
				return nil, false, fmt.Errorf("datadog: %w", err)
			}
		}
	default:
		return nil, false, errors.New("JSON of no known export: want a Prometheus range query, CloudWatch GetMetricData or GetMetricStatistics, or a Datadog query")
	}
	if len(out) == 0 {
		return nil, false, errors.New("no rows")
	}
	return out, false, nil
}

// jsonError names the line of a JSON syntax or type error.
func jsonError(data []byte, err error) error {
	if err == nil {
		return errors.New("unexpected shape")
	}
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	return fmt.Errorf("line %d: %w", 1+bytes.Count(data[:off], []byte("\n")), err)
}
