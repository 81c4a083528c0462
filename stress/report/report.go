// Package report writes the outcome of `redline stress` as a JSON document with a stable,
// versioned schema (result.json) and a self-contained HTML page (report.html: inline CSS
// and SVG plots, nothing loaded from anywhere).
//
//	doc := report.New(report.Meta{RunID: id, Scenario: "rednote", Target: url}, res, nil, checks)
//	jsonPath, htmlPath, err := report.WriteFiles(dir, doc)
//
// # The JSON schema (schema "redline.stress/v1")
//
// Durations are milliseconds (fields ending _ms) or seconds (_s), as floats; rates are per
// second. Fields are only ever added within a schema version.
//
//   - schema, run_id, scenario, target, lane (omitted for baseline), started_at (RFC 3339),
//     passed (every threshold held and every check passed), aborted (the threshold that
//     stopped the run, or "canceled"; omitted when it went to the end).
//   - run (a load run; omitted for a capacity search):
//   - duration_s (the schedule), elapsed_s, target_rate, actual_rate (iterations started
//     per second), planned, started, delayed, dropped, canceled, max_in_flight,
//     requests, ok, errors, error_rate (dropped iterations count as failures).
//   - latency (from the intended send time: coordinated omission corrected), service
//     (from the actual send), lag (start minus intended): count, min_ms, mean_ms, p50_ms,
//     p90_ms, p95_ms, p99_ms, p999_ms, p9999_ms, max_ms.
//   - spectrum, service_spectrum: [{percentile, ms}], the percentile spectra.
//   - steps: [{name, requests, ok, errors, statuses: {"200": n, ...}, latency, service}].
//   - error_kinds: [{step, kind, status, class ("4xx", "5xx" or ""), reason, count,
//     example}]; kind is status, timeout, transport, extract, dropped or other.
//   - series: [{t_s, started, ok, errors, p50_ms, p90_ms, p99_ms, p999_ms}], per second by
//     completion time.
//   - thresholds: [{name, observed, pass, at_s}].
//   - capacity (a capacity search; omitted for a run): max_sustainable_rate, knee_rate (0:
//     none), stopped_by, bottleneck, bottleneck_why, steps: [{rate, actual_rate, pass,
//     why, requests, error_rate, p50_ms, p99_ms, services: [{service, requests, errors,
//     shed, p99_ms}]}].
//   - checks: [{name, pass, detail}], filled by the caller (leak checks, baseline checks).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redline-dev/redline/stress/capacity"
	"github.com/redline-dev/redline/stress/load"
)

// Schema names the JSON schema version.
const Schema = "redline.stress/v1"

// Meta says what was run where.
type Meta struct {
	RunID    string
	Scenario string
	Target   string
	Lane     string
	Started  time.Time
}

// Check is one after-run check: a leak scan, a baseline comparison.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Document is the JSON document; see the package doc for its fields.
type Document struct {
	Schema    string    `json:"schema"`
	RunID     string    `json:"run_id"`
	Scenario  string    `json:"scenario"`
	Target    string    `json:"target"`
	Lane      string    `json:"lane,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Passed    bool      `json:"passed"`
	Aborted   string    `json:"aborted,omitempty"`
	Run       *Run      `json:"run,omitempty"`
	Capacity  *Capacity `json:"capacity,omitempty"`
	Checks    []Check   `json:"checks"`
	// Budget is the error budget the run spent (baseline) or would have spent (a lane), per
	// SLO it touched; empty when the SLIs could not be read.
	Budget []BudgetSpend `json:"budget,omitempty"`
}

// BudgetSpend is what one run did to one SLO's error budget.
type BudgetSpend struct {
	SLO     string `json:"slo"`
	Service string `json:"service"`
	// Events and Bad are the run's requests the SLO counts, and the bad ones among them.
	Events float64 `json:"events"`
	Bad    float64 `json:"bad"`
	// ErrorRatio is Bad ÷ Events; BurnRate is ErrorRatio ÷ (1 − objective).
	ErrorRatio float64 `json:"error_ratio"`
	BurnRate   float64 `json:"burn_rate"`
	// PeriodEvents are the events of the SLO's period with the run's counted in (from the
	// SRE API; 0 when it was not reachable); Spent is Bad ÷ (budget × PeriodEvents), the
	// share of the period's budget, and is 0 when PeriodEvents is unknown.
	PeriodEvents float64 `json:"period_events"`
	Spent        float64 `json:"spent"`
}

// Run is a load run's numbers.
type Run struct {
	DurationS   float64      `json:"duration_s"`
	ElapsedS    float64      `json:"elapsed_s"`
	TargetRate  float64      `json:"target_rate"`
	ActualRate  float64      `json:"actual_rate"`
	Planned     int64        `json:"planned"`
	Started     uint64       `json:"started"`
	Delayed     uint64       `json:"delayed"`
	Dropped     uint64       `json:"dropped"`
	Canceled    uint64       `json:"canceled"`
	MaxInFlight int64        `json:"max_in_flight"`
	Requests    uint64       `json:"requests"`
	OK          uint64       `json:"ok"`
	Errors      uint64       `json:"errors"`
	ErrorRate   float64      `json:"error_rate"`
	Latency     Latency      `json:"latency"`
	Service     Latency      `json:"service"`
	Lag         Latency      `json:"lag"`
	Spectrum    []Percentile `json:"spectrum"`
	ServiceSpec []Percentile `json:"service_spectrum"`
	Steps       []Step       `json:"steps"`
	ErrorKinds  []Error      `json:"error_kinds"`
	Series      []Second     `json:"series"`
	Thresholds  []Threshold  `json:"thresholds"`
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	P9999 float64 `json:"p9999_ms"`
	Max   float64 `json:"max_ms"`
}

// Percentile is one point of a percentile spectrum.
type Percentile struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// Step is one step's numbers.
type Step struct {
	Name     string            `json:"name"`
	Requests uint64            `json:"requests"`
	OK       uint64            `json:"ok"`
	Errors   uint64            `json:"errors"`
	Statuses map[string]uint64 `json:"statuses"`
	Latency  Latency           `json:"latency"`
	Service  Latency           `json:"service"`
}

// Error is one row of the errors table.
type Error struct {
	Step    string `json:"step"`
	Kind    string `json:"kind"`
	Status  int    `json:"status"`
	Class   string `json:"class"`
	Reason  string `json:"reason"`
	Count   uint64 `json:"count"`
	Example string `json:"example"`
}

// Second is one second of the run.
type Second struct {
	T       float64 `json:"t_s"`
	Started uint64  `json:"started"`
	OK      uint64  `json:"ok"`
	Errors  uint64  `json:"errors"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
}

// Threshold is a threshold's verdict.
type Threshold struct {
	Name     string  `json:"name"`
	Observed string  `json:"observed"`
	Pass     bool    `json:"pass"`
	At       float64 `json:"at_s"`
}

// Capacity is a capacity search's findings.
type Capacity struct {
	MaxSustainable float64        `json:"max_sustainable_rate"`
	Knee           float64        `json:"knee_rate"`
	StoppedBy      string         `json:"stopped_by"`
	Bottleneck     string         `json:"bottleneck"`
	BottleneckWhy  string         `json:"bottleneck_why"`
	Steps          []CapacityStep `json:"steps"`
}

// CapacityStep is one rate step of a capacity search.
type CapacityStep struct {
	Rate       float64   `json:"rate"`
	ActualRate float64   `json:"actual_rate"`
	Pass       bool      `json:"pass"`
	Why        string    `json:"why"`
	Requests   uint64    `json:"requests"`
	ErrorRate  float64   `json:"error_rate"`
	P50        float64   `json:"p50_ms"`
	P99        float64   `json:"p99_ms"`
	Services   []Service `json:"services"`
}

// Service is one service's server-side numbers in a capacity step.
type Service struct {
	Service  string  `json:"service"`
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	Shed     float64 `json:"shed"`
	P99      float64 `json:"p99_ms"`
}

// New builds the document of a run (res) or of a capacity search (capRep), with the
// caller's checks. Passed is false when a threshold broke, the run was aborted, or a check
// failed.
func New(m Meta, res *load.Result, capRep *capacity.Report, checks []Check) *Document {
	d := &Document{Schema: Schema, RunID: m.RunID, Scenario: m.Scenario, Target: m.Target, Lane: m.Lane,
		StartedAt: m.Started.UTC(), Passed: true, Checks: checks}
	if d.Checks == nil {
		d.Checks = []Check{}
	}
	if res != nil {
		d.Run = fromResult(res)
		d.Aborted = res.Aborted
		d.Passed = res.Passed()
	}
	if capRep != nil {
		d.Capacity = fromCapacity(capRep)
	}
	for _, c := range d.Checks {
		d.Passed = d.Passed && c.Pass
	}
	return d
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func latency(s load.Summary) Latency {
	return Latency{Count: s.Count, Min: ms(s.Min), Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90), P95: ms(s.P95),
		P99: ms(s.P99), P999: ms(s.P999), P9999: ms(s.P9999), Max: ms(s.Max)}
}

func spectrum(ps []load.Point) []Percentile {
	out := make([]Percentile, len(ps))
	for i, p := range ps {
		out[i] = Percentile{Percentile: p.Percentile, Ms: ms(p.Value)}
	}
	return out
}

func fromResult(r *load.Result) *Run {
	run := &Run{
		ElapsedS: r.Elapsed.Seconds(), TargetRate: r.TargetRate, ActualRate: r.ActualRate,
		Planned: r.Planned, Started: r.Started, Delayed: r.Delayed, Dropped: r.Dropped, Canceled: r.Canceled,
		MaxInFlight: r.MaxActive, Requests: r.Requests, OK: r.OK, Errors: r.Errors, ErrorRate: r.ErrorRate(),
		Latency: latency(r.Latency), Service: latency(r.Service), Lag: latency(r.Lag),
		Spectrum: spectrum(r.Spectrum), ServiceSpec: spectrum(r.ServiceSpectrum),
		Steps: []Step{}, ErrorKinds: []Error{}, Series: []Second{}, Thresholds: []Threshold{},
	}
	if r.TargetRate > 0 {
		run.DurationS = float64(r.Planned) / r.TargetRate
	}
	for _, s := range r.Steps {
		st := Step{Name: s.Name, Requests: s.Requests, OK: s.OK, Errors: s.Errors, Statuses: map[string]uint64{},
			Latency: latency(s.Latency), Service: latency(s.Service)}
		for code, n := range s.Statuses {
			st.Statuses[strconv.Itoa(code)] = n
		}
		run.Steps = append(run.Steps, st)
	}
	for _, e := range r.ErrorKinds {
		class := ""
		if e.Status >= 100 {
			class = strconv.Itoa(e.Status/100) + "xx"
		}
		run.ErrorKinds = append(run.ErrorKinds, Error{Step: e.Step, Kind: e.Kind, Status: e.Status, Class: class, Reason: e.Reason,
			Count: e.Count, Example: e.Example})
	}
	for _, s := range r.Series {
		run.Series = append(run.Series, Second{T: s.At.Seconds(), Started: s.Started, OK: s.OK, Errors: s.Errors,
			P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), P999: ms(s.P999)})
	}
	for _, t := range r.Thresholds {
		run.Thresholds = append(run.Thresholds, Threshold{Name: t.Name, Observed: t.Observed, Pass: t.Pass, At: t.At.Seconds()})
	}
	return run
}

func fromCapacity(r *capacity.Report) *Capacity {
	c := &Capacity{MaxSustainable: r.MaxSustainable, Knee: r.Knee, StoppedBy: r.StoppedBy, Bottleneck: r.Bottleneck,
		BottleneckWhy: r.BottleneckWhy, Steps: []CapacityStep{}}
	for _, s := range r.Steps {
		cs := CapacityStep{Rate: s.Rate, Pass: s.Pass, Why: s.Why, Services: []Service{}}
		if s.Result != nil {
			cs.ActualRate, cs.Requests, cs.ErrorRate = s.Result.ActualRate, s.Result.Requests, s.Result.ErrorRate()
			cs.P50, cs.P99 = ms(s.Result.Latency.P50), ms(s.Result.Latency.P99)
		}
		for _, sv := range s.Services {
			cs.Services = append(cs.Services, Service{Service: sv.Service, Requests: sv.Requests, Errors: sv.Errors,
				Shed: sv.Shed, P99: ms(sv.P99)})
		}
		c.Steps = append(c.Steps, cs)
	}
	return c
}

// WriteJSON writes d as indented JSON.
func WriteJSON(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// ReadJSON reads a document written by WriteJSON; it refuses another schema.
func ReadJSON(r io.Reader) (*Document, error) {
	var d Document
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if d.Schema != Schema {
		return nil, fmt.Errorf("report: schema %q, want %q", d.Schema, Schema)
	}
	return &d, nil
}

// WriteFiles writes result.json and report.html into dir, creating it.
func WriteFiles(dir string, d *Document) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath, htmlPath = filepath.Join(dir, "result.json"), filepath.Join(dir, "report.html")
	for path, write := range map[string]func(io.Writer, *Document) error{jsonPath: WriteJSON, htmlPath: WriteHTML} {
		f, err := os.Create(path)
		if err != nil {
			return "", "", err
		}
		err = write(f, d)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", "", fmt.Errorf("report: write %s: %w", path, err)
		}
	}
	return jsonPath, htmlPath, nil
}
