package drill

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/chaos/netfault"
	"github.com/redline-dev/redline/chaos/procs"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/sre/slo"
	"github.com/redline-dev/redline/stress/scenario"
)

// Defaults and bounds of a drill.
const (
	// DefaultGuardInterval is how often the guard samples when guard_interval is not set.
	DefaultGuardInterval = time.Second
	// MinGuardInterval is the shortest guard interval, also after Scale: the guard scrapes
	// the admin endpoint's /metrics once per interval.
	MinGuardInterval = 100 * time.Millisecond
	// AbortFactor is the default abort bound of an SLI: its own bound times this.
	AbortFactor = 5
	// TTLMargin is added to each fault's planned life to make its ttl: a fault outlives its
	// removal time by at most this when the drill process dies.
	TTLMargin = 10 * time.Second
	// MaxDuration bounds every span of a drill (window, load, a fault's life), so that each
	// fault's ttl stays within the fault registry's default MaxTTL.
	MaxDuration = faults.DefaultMaxTTL - TTLMargin
	// maxProcFor bounds how long a process fault keeps a process down: the supervisor's
	// own bounds on a restart delay and a pause.
	maxProcFor = procs.MaxRestartAfter
)

// Kinds of SLI.
const (
	// ErrorRatio is server errors ÷ requests over the window, as sre/slo counts them.
	ErrorRatio = "error_ratio"
	// P99 is the 99th percentile of server latency over the window, from the histogram.
	P99 = "p99"
)

// Kinds of expectation.
const (
	ExpectSLI     = "sli"
	ExpectMetric  = "metric"
	ExpectGoodput = "goodput"
	ExpectAudit   = "audit"
)

// Audits an audit expectation can ask for.
const (
	// AuditCheckout asks the admin endpoint's GET /chaos/audit/checkout: every order
	// consistent with its stock reservation and its payments, and every SKU's stock plus
	// reserved plus sold what it was before the drill.
	AuditCheckout = "checkout"
)

// DefaultSettle is how long an audit waits, after the drill's last load, for the shop to
// settle (no order being created, no payment pending) before it judges it.
const DefaultSettle = 30 * time.Second

// Process fault actions (a proc fault's action), through the supervisor of
// `redline up --procs` (chaos/procs). Both end by themselves, as every drill fault must.
const (
	// ProcKill sends SIGKILL; the supervisor starts the process again after the fault's for.
	ProcKill = "kill"
	// ProcPause sends SIGSTOP, and SIGCONT after the fault's for.
	ProcPause = "pause"
)

// Stretches an SLI expectation is judged over (its during).
const (
	DuringFaults     = "faults"     // from the first fault added to the last one removed
	DuringExperiment = "experiment" // the experiment's load, start to end
	DuringAfter      = "after"      // the steady-state check after the experiment
)

// Lane names of an SLI.
const (
	// LaneBaseline as an SLI's lane measures traffic without a lane, whatever the load's.
	LaneBaseline = "baseline"
)

// Drill is a game-day experiment: a steady-state hypothesis, the load that exercises it,
// the faults injected and what is expected of the system meanwhile. Parse reads one from
// YAML; see the package doc for the format.
type Drill struct {
	Name        string
	Description string
	// File is where the drill was read from ("" when built in Go); errors name it, and a
	// scenario path is relative to its directory.
	File   string
	Target Target
	// SteadyState is the hypothesis, checked before, during (the guard) and after.
	SteadyState SteadyState
	Load        LoadSpec
	Faults      []Fault
	Expect      []Expectation
	Abort       Abort
	// GuardInterval is how often the guard samples the SLIs; 0 is DefaultGuardInterval.
	GuardInterval time.Duration
	// RollbackCheck is how long the rollback rehearsal injects the faults, and how long
	// steady state then has to come back; 0 skips the rehearsal. Parse defaults it to the
	// steady-state window.
	RollbackCheck time.Duration
	// Scenario is the load's scenario, resolved by Load (or set by the caller); Run loads
	// Load.Scenario when it is nil.
	Scenario *scenario.Scenario
}

// Target is where the drill runs; Env overrides it. Procs is the supervisor's admin
// endpoint of `redline up --procs`, which process faults go to (and the audit, when set);
// in that mode Admin is the admin endpoint of the process whose metrics the SLIs read
// (the BFF's), and the CLI finds it from Procs.
type Target struct {
	BFF, Admin, Procs string
}

// SteadyState is the hypothesis: every SLI within its bound over the trailing Window.
type SteadyState struct {
	Window time.Duration
	SLIs   []SLI
}

// SLI is one service level indicator of the hypothesis, read from the RED metrics the
// services keep (redline_{http,grpc}_server_*). It has exactly one bound: MaxErrorRatio or
// MaxP99.
type SLI struct {
	Name      string
	Service   string
	Transport slo.Transport
	// Routes are route labels ("GET /v1/notes/{id}"); empty means every route.
	Routes []string
	// Lane is the lane measured: "" the load's lane, "baseline" traffic without a lane.
	Lane          string
	MaxErrorRatio float64
	MaxP99        time.Duration
}

// Kind is ErrorRatio or P99.
func (s SLI) Kind() string {
	if s.MaxP99 > 0 {
		return P99
	}
	return ErrorRatio
}

// Bound is the SLI's own bound: a ratio, or seconds for a P99.
func (s SLI) Bound() float64 {
	if s.Kind() == P99 {
		return s.MaxP99.Seconds()
	}
	return s.MaxErrorRatio
}

// LoadSpec is the traffic of the drill: Rate journeys a second of Scenario (a built-in name or
// a file) for Duration, in Lane ("" is the baseline). Rate 0 sends nothing: the SLIs are
// then read from whatever traffic the system has.
type LoadSpec struct {
	Scenario string
	Rate     float64
	Duration time.Duration
	Lane     string
}

// Fault is one fault of the experiment, added At after the load's start and removed For
// later: Spec, an in-process fault (chaos/faults) added through the admin API; Proc, a
// process fault through the supervisor; or Net, an L4 fault on a chaos.net proxy through
// the admin API.
type Fault struct {
	At, For time.Duration
	Spec    faults.Spec
	Proc    *ProcFault
	Net     *NetFault
}

// NetFault is an L4 fault on the chaos.net proxy named Proxy (chaos/netfault): with
// Outage, the proxy is disabled, so its dependency is gone (POST
// /chaos/net/proxies/{proxy}/disable); else Toxic is added to it (POST /chaos/net/toxics;
// its Proxy, TTL and Reason are the drill's to set).
type NetFault struct {
	Proxy  string              `json:"proxy"`
	Outage bool                `json:"outage,omitempty"`
	Toxic  *netfault.ToxicSpec `json:"toxic,omitempty"`
}

// ProcFault is a process fault: Action (ProcKill or ProcPause) on the process Name of the
// supervisor. The process is down (killed, or paused) for the fault's For and comes back
// by itself: removing the fault early starts (or resumes) it.
type ProcFault struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}

// Describe is the fault on one line, for people.
func (f Fault) Describe() string {
	switch {
	case f.Proc != nil:
		return describeProc(*f.Proc, f.For)
	case f.Net != nil:
		return describeNet(*f.Net)
	}
	return describe(f.Spec)
}

// Expectation is one thing the drill expects; Kind says which fields apply.
type Expectation struct {
	// SLI, During and one bound (or none: the SLI's own) for an ExpectSLI.
	SLI           string
	During        string
	MaxErrorRatio float64
	MaxP99        time.Duration
	// Metric, Labels, Increases and Within for an ExpectMetric: the metric (summed over
	// the series whose labels include Labels) rises, or does not, within Within of the
	// first fault (0: by the end of the faults).
	Metric    string
	Labels    map[string]string
	Increases bool
	Within    time.Duration
	// MaxRate, for an ExpectMetric instead of Increases: the metric rises by at most this
	// much a second over the faults (or within Within of the first).
	MaxRate float64
	// MaxShare and Of, for an ExpectMetric instead of Increases: the rise of the series
	// matching Labels is at most MaxShare of the rise of those matching Of.
	MaxShare float64
	Of       map[string]string
	// Goodput for an ExpectGoodput: ok responses ÷ requests during the faults, at least.
	Goodput float64
	// Audit for an ExpectAudit (AuditCheckout): the shop, audited before the drill and once
	// settled after it (waiting at most Settle, default DefaultSettle), is consistent and
	// conserves its stock.
	Audit  string
	Settle time.Duration
}

// Kind is ExpectSLI, ExpectMetric or ExpectGoodput.
func (e Expectation) Kind() string {
	switch {
	case e.Metric != "":
		return ExpectMetric
	case e.Audit != "":
		return ExpectAudit
	case e.Goodput > 0:
		return ExpectGoodput
	}
	return ExpectSLI
}

// Abort sets the guard's bounds; zero fields default to each SLI's own bound times
// AbortFactor.
type Abort struct {
	MaxErrorRatio float64
	MaxP99        time.Duration
}

// AbortBound is the bound beyond which the guard aborts the drill for s: a ratio, or
// seconds for a P99.
func (d *Drill) AbortBound(s SLI) float64 {
	if s.Kind() == P99 {
		if d.Abort.MaxP99 > 0 {
			return d.Abort.MaxP99.Seconds()
		}
		return AbortFactor * s.MaxP99.Seconds()
	}
	if d.Abort.MaxErrorRatio > 0 {
		return d.Abort.MaxErrorRatio
	}
	return AbortFactor * s.MaxErrorRatio
}

// interval is the guard interval: GuardInterval, or DefaultGuardInterval when it is 0.
func (d *Drill) interval() time.Duration {
	if d.GuardInterval == 0 {
		return DefaultGuardInterval
	}
	return d.GuardInterval
}

// sli returns the SLI named name.
func (d *Drill) sli(name string) (SLI, bool) {
	for _, s := range d.SteadyState.SLIs {
		if s.Name == name {
			return s, true
		}
	}
	return SLI{}, false
}

// Scale multiplies every time span of the drill by f (window, load duration, fault
// offsets and lives, expectation windows, guard interval, rollback check) for a quick run;
// latency bounds and fault delays are left alone, as they are what the drill is about. The
// guard interval stays at least MinGuardInterval and at most the window. It returns
// Validate's verdict on the result.
func (d *Drill) Scale(f float64) error {
	if !(f > 0) || math.IsInf(f, 0) {
		return fmt.Errorf("%w: scale %v: want a positive factor such as 0.1", ErrInvalid, f)
	}
	sc := func(v time.Duration) time.Duration { return time.Duration(math.Round(float64(v) * f)) }
	d.SteadyState.Window = sc(d.SteadyState.Window)
	d.Load.Duration = sc(d.Load.Duration)
	for i := range d.Faults {
		d.Faults[i].At, d.Faults[i].For = sc(d.Faults[i].At), sc(d.Faults[i].For)
	}
	for i := range d.Expect {
		d.Expect[i].Within = sc(d.Expect[i].Within)
	}
	// Settle is left alone: the shop settles at its own pace.
	d.RollbackCheck = sc(d.RollbackCheck)
	d.GuardInterval = min(max(sc(d.interval()), MinGuardInterval), max(d.SteadyState.Window, MinGuardInterval))
	return d.Validate()
}

// FieldError is one problem in a drill: the file, the line (0 when unknown), the field path
// ("faults[0].spec.delay") and the reason. It is sre/slo's, whose specs report alike.
type FieldError = slo.FieldError

// ErrInvalid is wrapped by every error about a drill's content.
var ErrInvalid = errors.New("invalid drill")

// Validate checks the drill as a whole and returns every problem, joined, each a
// *FieldError wrapping ErrInvalid.
func (d *Drill) Validate() error { return joinErrors(d.check(nil)) }

// joinErrors joins problems into one error, each wrapping ErrInvalid; nil when none.
func joinErrors(fes []*FieldError) error {
	if len(fes) == 0 {
		return nil
	}
	out := make([]error, len(fes))
	for i, fe := range fes {
		out[i] = fmt.Errorf("%w: %w", ErrInvalid, fe)
	}
	return errors.Join(out...)
}

var (
	dnsName    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// check returns the problems of d; lines maps field paths to their line in the file, when
// parsed.
func (d *Drill) check(lines map[string]int) []*FieldError {
	var out []*FieldError
	bad := func(field, format string, args ...any) {
		line := 0
		for f := field; f != "" && line == 0; f = parent(f) {
			line = lines[f]
		}
		out = append(out, &FieldError{File: d.File, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	span := func(field string, v time.Duration, zeroOK bool) {
		switch {
		case v < 0 || v == 0 && !zeroOK:
			bad(field, "%v: want a positive duration such as 10s", v)
		case v > MaxDuration:
			bad(field, "%v is longer than %v, the most a fault may live less the ttl margin", v, MaxDuration)
		}
	}
	switch {
	case d.Name == "":
		bad("name", "required")
	case !dnsName.MatchString(d.Name):
		bad("name", "%q is not a DNS label (lowercase letters, digits and '-', at most 63)", d.Name)
	}
	if len(d.Description) > 1024 {
		bad("description", "longer than 1024 bytes")
	}
	for _, u := range []struct{ field, v string }{{"target.bff", d.Target.BFF}, {"target.admin", d.Target.Admin}, {"target.procs", d.Target.Procs}} {
		if u.v != "" && !httpURL(u.v) {
			bad(u.field, "%q is not an http(s) URL such as http://127.0.0.1:8080", u.v)
		}
	}

	ss := d.SteadyState
	if ss.Window == 0 && len(ss.SLIs) == 0 {
		bad("steady_state", "required: a drill needs a hypothesis to check (a window and its SLIs)")
	} else {
		span("steady_state.window", ss.Window, false)
		if len(ss.SLIs) == 0 {
			bad("steady_state.slis", "required: at least one SLI")
		}
	}
	names := map[string]bool{}
	for i, s := range ss.SLIs {
		at := fmt.Sprintf("steady_state.slis[%d]", i)
		switch {
		case s.Name == "":
			bad(at+".name", "required")
		case !dnsName.MatchString(s.Name):
			bad(at+".name", "%q is not a DNS label (lowercase letters, digits and '-')", s.Name)
		case names[s.Name]:
			bad(at+".name", "%q is declared twice", s.Name)
		}
		names[s.Name] = true
		if s.Service == "" {
			bad(at+".service", "required")
		}
		if s.Transport != slo.HTTP && s.Transport != slo.GRPC {
			bad(at+".transport", "%q is neither http nor grpc", s.Transport)
		}
		for j, r := range s.Routes {
			if strings.TrimSpace(r) == "" {
				bad(fmt.Sprintf("%s.routes[%d]", at, j), "empty route")
			}
		}
		if s.Lane != "" && s.Lane != LaneBaseline && !meta.ValidLane(s.Lane) {
			bad(at+".lane", "%q is not a lane name (1 to 32 of [a-z0-9-], starting with a letter) or baseline", s.Lane)
		}
		switch {
		case s.MaxErrorRatio != 0 && s.MaxP99 != 0:
			bad(at, "give max_error_ratio or max_p99, not both: one bound per SLI")
		case s.MaxErrorRatio == 0 && s.MaxP99 == 0:
			bad(at, "needs a bound: max_error_ratio (0 to 1) or max_p99 (a duration)")
		case s.MaxErrorRatio != 0 && !(s.MaxErrorRatio > 0 && s.MaxErrorRatio < 1):
			bad(at+".max_error_ratio", "%v is not a ratio in (0, 1); 0.01 is 1%%", s.MaxErrorRatio)
		case s.MaxP99 < 0:
			bad(at+".max_p99", "%v is not a positive duration", s.MaxP99)
		}
	}

	l := d.Load
	if l == (LoadSpec{}) {
		bad("load", "required: a drill needs traffic (scenario, rate, duration)")
	} else {
		if l.Scenario == "" {
			bad("load.scenario", "required: a built-in scenario (%s) or a scenario file", strings.Join(scenario.Builtin(), ", "))
		}
		if !(l.Rate >= 0) || math.IsInf(l.Rate, 0) || l.Rate > 100000 {
			bad("load.rate", "%v is not a rate in [0, 100000] journeys per second", l.Rate)
		}
		span("load.duration", l.Duration, false)
		if l.Lane != "" && !meta.ValidLane(l.Lane) {
			bad("load.lane", "%q is not a lane name (1 to 32 of [a-z0-9-], starting with a letter)", l.Lane)
		}
	}

	if len(d.Faults) == 0 {
		bad("faults", "required: at least one fault (a drill without faults is a load test)")
	}
	ids := map[string]int{}
	for i, f := range d.Faults {
		at := fmt.Sprintf("faults[%d]", i)
		span(at+".at", f.At, true)
		span(at+".for", f.For, false)
		if l.Duration > 0 && f.At >= 0 && f.For > 0 && f.At+f.For > l.Duration {
			bad(at, "at %v + for %v ends after the load's duration %v: faults must end while the load runs", f.At, f.For, l.Duration)
		}
		if kinds := btoi(f.Spec != (faults.Spec{})) + btoi(f.Proc != nil) + btoi(f.Net != nil); kinds > 1 {
			bad(at, "give one of spec (an in-process fault), proc (a process fault) and net (an L4 fault), not several")
			continue
		}
		if n := f.Net; n != nil {
			switch {
			case n.Proxy == "":
				bad(at+".net.proxy", "required: the chaos.net proxy, as GET /chaos/net names it (note, redis, postgres, ...)")
			case !dnsName.MatchString(n.Proxy):
				bad(at+".net.proxy", "%q is not a proxy name (lowercase letters, digits and '-')", n.Proxy)
			}
			switch {
			case n.Outage && n.Toxic != nil:
				bad(at+".net", "give outage: true (the dependency goes away) or a toxic's type, not both")
			case !n.Outage && n.Toxic == nil:
				bad(at+".net", "needs outage: true or a toxic's type (latency, bandwidth, reset_peer, timeout, slicer, limit_data)")
			case n.Toxic != nil:
				t := *n.Toxic
				t.Proxy = cmp.Or(n.Proxy, "p")
				if err := t.Validate(); err != nil {
					field, reason := specField(err)
					bad(at+".net"+field, "%s", reason)
				}
			}
			continue
		}
		if f.Proc != nil {
			switch p := f.Proc; {
			case p.Name == "":
				bad(at+".proc.name", "required: the process, as `redline proc list` names it (order, inventory, ...)")
			case !dnsName.MatchString(p.Name):
				bad(at+".proc.name", "%q is not a process name (lowercase letters, digits and '-')", p.Name)
			}
			switch f.Proc.Action {
			case ProcKill, ProcPause:
			case "":
				bad(at+".proc.action", "required: kill (SIGKILL, restarted after for) or pause (SIGSTOP for for)")
			default:
				bad(at+".proc.action", "%q is neither kill nor pause (a process fault must end by itself)", f.Proc.Action)
			}
			if f.For > maxProcFor {
				bad(at+".for", "%v: a process stays down at most %v", f.For, maxProcFor)
			}
			for j, g := range d.Faults[:i] {
				if g.Proc != nil && g.Proc.Name == f.Proc.Name && f.At < g.At+g.For && g.At < f.At+f.For {
					bad(at, "overlaps faults[%d] on process %s: a process can be down for one fault at a time", j, f.Proc.Name)
				}
			}
			continue
		}
		if f.Spec.TTL != "" || f.Spec.Until != "" {
			bad(at+".spec.ttl", "the drill sets each fault's ttl (for + %v, so it expires by itself): leave ttl and until out", TTLMargin)
			continue
		}
		if err := f.Spec.Validate(); err != nil {
			field, reason := specField(err)
			bad(at+".spec"+field, "%s", reason)
		}
		if id := f.Spec.ID; id != "" {
			if j, dup := ids[id]; dup {
				bad(at+".spec.id", "%q is also the id of faults[%d]", id, j)
			}
			ids[id] = i
		}
	}

	for i, e := range d.Expect {
		at := fmt.Sprintf("expect[%d]", i)
		set := 0
		for _, b := range []bool{e.SLI != "", e.Metric != "", e.Goodput != 0, e.Audit != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			bad(at, "give exactly one of sli, metric, goodput and audit")
			continue
		}
		if e.Kind() != ExpectMetric && (e.MaxRate != 0 || e.MaxShare != 0 || e.Of != nil) {
			bad(at, "max_rate, max_share and of bound a metric expectation")
		}
		if e.Kind() != ExpectAudit && e.Settle != 0 {
			bad(at+".settle", "only an audit expectation takes settle")
		}
		switch {
		case e.SLI != "":
			s, ok := d.sli(e.SLI)
			if !ok {
				bad(at+".sli", "no SLI %q in steady_state.slis", e.SLI)
			}
			switch e.During {
			case "", DuringFaults, DuringExperiment, DuringAfter:
			default:
				bad(at+".during", "%q is not faults, experiment or after", e.During)
			}
			switch {
			case e.MaxErrorRatio != 0 && e.MaxP99 != 0:
				bad(at, "give max_error_ratio or max_p99, not both")
			case e.MaxErrorRatio != 0 && !(e.MaxErrorRatio > 0 && e.MaxErrorRatio <= 1):
				bad(at+".max_error_ratio", "%v is not a ratio in (0, 1]", e.MaxErrorRatio)
			case e.MaxP99 < 0:
				bad(at+".max_p99", "%v is not a positive duration", e.MaxP99)
			case ok && e.MaxErrorRatio != 0 && s.Kind() != ErrorRatio:
				bad(at+".max_error_ratio", "SLI %q is a p99: bound it with max_p99", e.SLI)
			case ok && e.MaxP99 != 0 && s.Kind() != P99:
				bad(at+".max_p99", "SLI %q is an error ratio: bound it with max_error_ratio", e.SLI)
			}
			if e.Metric != "" || e.Labels != nil || e.Within != 0 || e.Goodput != 0 {
				bad(at, "an sli expectation takes during and a bound only")
			}
		case e.Metric != "":
			if !metricName.MatchString(e.Metric) {
				bad(at+".metric", "%q is not a Prometheus metric name", e.Metric)
			}
			for k := range e.Labels {
				if !labelName.MatchString(k) {
					bad(at+".labels."+k, "%q is not a label name", k)
				}
			}
			for k := range e.Of {
				if !labelName.MatchString(k) {
					bad(at+".of."+k, "%q is not a label name", k)
				}
			}
			span(at+".within", e.Within, true)
			if e.During != "" || e.MaxErrorRatio != 0 || e.MaxP99 != 0 {
				bad(at, "a metric expectation takes labels, increases (or max_rate, or max_share and of) and within only")
			}
			switch {
			case e.MaxRate != 0 && e.MaxShare != 0:
				bad(at, "give max_rate or max_share, not both")
			case e.MaxRate != 0 && (!(e.MaxRate > 0) || math.IsInf(e.MaxRate, 0)):
				bad(at+".max_rate", "%v is not a positive rate a second", e.MaxRate)
			case e.MaxShare != 0 && !(e.MaxShare > 0 && e.MaxShare <= 1):
				bad(at+".max_share", "%v is not a share in (0, 1]", e.MaxShare)
			case e.MaxShare != 0 && len(e.Of) == 0:
				bad(at+".of", "required with max_share: the labels of the whole the share is of (for example {service: note})")
			case e.MaxShare == 0 && e.Of != nil:
				bad(at+".of", "of goes with max_share")
			}
		case e.Audit != "":
			if e.Audit != AuditCheckout {
				bad(at+".audit", "%q is not an audit: the one there is is checkout", e.Audit)
			}
			if e.Settle < 0 || e.Settle > MaxDuration {
				bad(at+".settle", "%v: want a duration up to %v such as 30s", e.Settle, MaxDuration)
			}
			if e.During != "" || e.MaxErrorRatio != 0 || e.MaxP99 != 0 || e.Labels != nil || e.Within != 0 {
				bad(at, "an audit expectation takes audit and settle only")
			}
		default:
			if !(e.Goodput > 0 && e.Goodput <= 1) {
				bad(at+".goodput", "%v is not a ratio in (0, 1]", e.Goodput)
			}
			if l.Rate == 0 && l != (LoadSpec{}) {
				bad(at+".goodput", "goodput is measured on the drill's own load: set load.rate")
			}
			if e.During != "" || e.MaxErrorRatio != 0 || e.MaxP99 != 0 || e.Labels != nil || e.Within != 0 {
				bad(at, "a goodput expectation takes only goodput")
			}
		}
	}

	if a := d.Abort.MaxErrorRatio; a != 0 {
		if !(a > 0 && a <= 1) {
			bad("abort.max_error_ratio", "%v is not a ratio in (0, 1]", a)
		}
		for _, s := range ss.SLIs {
			if s.Kind() == ErrorRatio && s.MaxErrorRatio > 0 && a < s.MaxErrorRatio {
				bad("abort.max_error_ratio", "%v is below SLI %q's own bound %v: the guard would abort a system in steady state", a, s.Name, s.MaxErrorRatio)
			}
		}
	}
	if a := d.Abort.MaxP99; a != 0 {
		if a < 0 {
			bad("abort.max_p99", "%v is not a positive duration", a)
		}
		for _, s := range ss.SLIs {
			if s.Kind() == P99 && s.MaxP99 > 0 && a < s.MaxP99 {
				bad("abort.max_p99", "%v is below SLI %q's own bound %v: the guard would abort a system in steady state", a, s.Name, s.MaxP99)
			}
		}
	}
	switch gi := d.interval(); {
	case gi < MinGuardInterval:
		bad("guard_interval", "%v: want at least %v", gi, MinGuardInterval)
	case ss.Window > 0 && gi > ss.Window:
		bad("guard_interval", "%v is longer than the steady-state window %v: the guard would judge stale windows", gi, ss.Window)
	}
	span("rollback_check", d.RollbackCheck, true)
	return out
}

// parent returns the field path above field: "a.b[2].c" → "a.b[2]" → "a.b" → "a" → "".
func parent(field string) string {
	if i := strings.LastIndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return ""
}

// specField splits a faults.Spec.Validate error into ".field" and the reason.
func specField(err error) (field, reason string) {
	reason = err.Error()
	var e *errs.Error
	if errors.As(err, &e) {
		reason = e.Message
		if f := e.Metadata["field"]; f != "" {
			field = "." + f
			// "fault: delay: ..." (chaos/faults), "netfault: attributes.latency: ..."
			if _, rest, ok := strings.Cut(reason, f+": "); ok {
				reason = rest
			}
		}
	}
	return field, reason
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
