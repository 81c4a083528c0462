package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
)

// Verdict is how a drill ended.
type Verdict string

// The verdicts. Only Passed is a success.
const (
	// Passed: steady state held before and after, the rollback worked, the guard never
	// tripped and every expectation held.
	Passed Verdict = "passed"
	// Failed: the experiment ran to its end but an expectation, or the steady state after
	// it, did not hold.
	Failed Verdict = "failed"
	// Aborted: the guard saw an SLI beyond its abort bound, stopped the load and cleared
	// every fault.
	Aborted Verdict = "aborted"
	// NotSteady: the steady state did not hold before anything was injected; nothing was.
	NotSteady Verdict = "not-steady"
	// RollbackFailed: the rehearsal's faults were removed but steady state did not come
	// back within rollback_check; the experiment did not run.
	RollbackFailed Verdict = "rollback-failed"
	// Errored: the drill could not go on (the admin API refused a fault, the run was
	// interrupted); every fault it added was removed.
	Errored Verdict = "error"
)

// Phase names.
const (
	PhaseSteady     = "steady-state"
	PhaseRehearsal  = "rollback-rehearsal"
	PhaseExperiment = "experiment"
	PhaseAfter      = "after"
)

// Report is what a drill did and found. Times are absolute; T fields are seconds from
// Started.
type Report struct {
	Drill       string  `json:"drill"`
	Description string  `json:"description,omitempty"`
	File        string  `json:"file,omitempty"`
	RunID       string  `json:"run_id"`
	BFF         string  `json:"bff"`
	Admin       string  `json:"admin"`
	Procs       string  `json:"procs,omitempty"`
	Lane        string  `json:"lane,omitempty"`
	Rate        float64 `json:"rate"`
	// Window is the steady-state window in seconds: every SLI value is over the window
	// before it.
	Window       float64       `json:"window"`
	Started      time.Time     `json:"started"`
	Ended        time.Time     `json:"ended"`
	Verdict      Verdict       `json:"verdict"`
	Reason       string        `json:"reason,omitempty"`
	Phases       []Phase       `json:"phases"`
	Faults       []FaultRecord `json:"faults"`
	Expectations []Outcome     `json:"expectations"`
	Guard        Guard         `json:"guard"`
	SLIs         []Series      `json:"slis"`
	// Load is the experiment's load, when the drill sent one.
	Load *LoadSummary `json:"load,omitempty"`
	// Incident is the id of the incident the drill was recorded on, when an SRE API was
	// given.
	Incident string   `json:"incident,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Passed reports whether the verdict is Passed.
func (r *Report) Passed() bool { return r.Verdict == Passed }

// Phase is one phase of the drill, with the SLI values it was judged by.
type Phase struct {
	Name    string     `json:"name"`
	Started time.Time  `json:"started"`
	Ended   time.Time  `json:"ended"`
	Pass    bool       `json:"pass"`
	Detail  string     `json:"detail"`
	SLIs    []SLIValue `json:"slis,omitempty"`
}

// SLIValue is an SLI over a stretch of the drill, against a bound.
type SLIValue struct {
	SLI   string  `json:"sli"`
	Kind  string  `json:"kind"`
	Value float64 `json:"value"`
	// NoData: no request in the stretch, so nothing could be judged (Pass is false).
	NoData   bool    `json:"no_data,omitempty"`
	Requests float64 `json:"requests"`
	Bound    float64 `json:"bound"`
	Pass     bool    `json:"pass"`
}

// FaultRecord is one fault as the drill added and removed it.
type FaultRecord struct {
	// Index is the fault's position in the drill's faults.
	Index int `json:"index"`
	// Phase is rollback-rehearsal or experiment.
	Phase string `json:"phase"`
	ID    string `json:"id,omitempty"`
	// What is the fault on one line, for people.
	What string `json:"what"`
	// Spec is an in-process fault's, Proc a process fault's.
	Spec faults.Spec `json:"spec,omitzero"`
	Proc *ProcFault  `json:"proc,omitempty"`
	Net  *NetFault   `json:"net,omitempty"`
	// At and For are the planned offset from the experiment's start and the life, in
	// seconds.
	At  float64 `json:"at"`
	For float64 `json:"for"`
	// TTL is the ttl it was added with: its life plus TTLMargin.
	TTL       string    `json:"ttl"`
	AddedAt   time.Time `json:"added_at,omitzero"`
	RemovedAt time.Time `json:"removed_at,omitzero"`
	// RemovedBy is schedule, guard (the abort cleared it) or cleanup (the drill ended early).
	RemovedBy string `json:"removed_by,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Outcome is one expectation's verdict.
type Outcome struct {
	Index    int     `json:"index"`
	Kind     string  `json:"kind"`
	Expect   string  `json:"expect"`
	Observed string  `json:"observed"`
	Value    float64 `json:"value"`
	Pass     bool    `json:"pass"`
}

// Guard is what the guard did: it sampled every Interval, judged Checks samples while
// armed (the rehearsal and the experiment), and Abort is set when it tripped.
type Guard struct {
	Interval  float64     `json:"interval"`
	Samples   int         `json:"samples"`
	Checks    int         `json:"checks"`
	Decisions []Decision  `json:"decisions"`
	Abort     *GuardAbort `json:"abort,omitempty"`
}

// Decision is one of the guard's decisions: armed, disarmed, blind (a failed scrape while
// armed) or abort.
type Decision struct {
	At     time.Time `json:"at"`
	T      float64   `json:"t"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// GuardAbort is the guard's abort: the sample that breached, and when the load was stopped
// and the faults cleared.
type GuardAbort struct {
	SLI      string  `json:"sli,omitempty"`
	Observed float64 `json:"observed"`
	Bound    float64 `json:"bound"`
	Reason   string  `json:"reason"`
	// LastOKAt is the last sample the guard judged within bounds (zero when none was).
	LastOKAt time.Time `json:"last_ok_at,omitzero"`
	// BreachAt is the sample that breached.
	BreachAt time.Time `json:"breach_at"`
	// ActedAt is when the load had been told to stop and every fault been cleared.
	ActedAt time.Time `json:"acted_at"`
	// Cleared is how many faults the guard removed: processes brought back, in-process
	// faults (DELETE /chaos/faults), toxics and outages (DELETE /chaos/net); ClearError is
	// what of that failed, each failure once.
	Cleared    int    `json:"cleared"`
	ClearError string `json:"clear_error,omitempty"`
}

// Series is one SLI over the drill, as the guard sampled it: each point is the value over
// the trailing window at T.
type Series struct {
	SLI        string  `json:"sli"`
	Kind       string  `json:"kind"`
	Bound      float64 `json:"bound"`
	AbortBound float64 `json:"abort_bound"`
	Points     []Point `json:"points"`
}

// Point is an SLI's value at T seconds from the start (a ratio, or seconds for a p99).
type Point struct {
	T float64 `json:"t"`
	V float64 `json:"v"`
}

// LoadSummary is the experiment's load as the client saw it.
type LoadSummary struct {
	Planned  int64   `json:"planned"`
	Started  uint64  `json:"started"`
	Requests uint64  `json:"requests"`
	OK       uint64  `json:"ok"`
	Errors   uint64  `json:"errors"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	Elapsed  float64 `json:"elapsed"`
	// Stopped says why the load ended early ("canceled" by the guard), "" when it ran out.
	Stopped string `json:"stopped,omitempty"`
	// Seconds are the requests that ended in each second, T from the drill's start.
	Seconds []LoadSecond `json:"seconds"`
}

// LoadSecond is one second of the experiment's load.
type LoadSecond struct {
	T      float64 `json:"t"`
	OK     uint64  `json:"ok"`
	Errors uint64  `json:"errors"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFiles writes drill.json and drill.html into dir, creating it.
func WriteFiles(dir string, r *Report) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath, htmlPath = filepath.Join(dir, "drill.json"), filepath.Join(dir, "drill.html")
	for _, f := range []struct {
		path  string
		write func(io.Writer, *Report) error
	}{{jsonPath, WriteJSON}, {htmlPath, WriteHTML}} {
		file, err := os.Create(f.path)
		if err != nil {
			return "", "", err
		}
		werr := f.write(file, r)
		if cerr := file.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, werr)
		}
	}
	return jsonPath, htmlPath, nil
}
