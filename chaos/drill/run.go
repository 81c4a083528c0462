package drill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/chaos/netfault"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/sre/slo"
	"github.com/redline-dev/redline/stress/load"
	"github.com/redline-dev/redline/stress/scenario"
)

// Env is where and how a drill runs.
type Env struct {
	// BFF and Admin are the base URLs of the BFF (the load's target) and the admin endpoint
	// (/metrics and /chaos/faults); each overrides the drill's target when set.
	BFF, Admin string
	// Procs is the supervisor's admin endpoint under `redline up --procs`: process faults
	// go there, and the audit; it overrides the drill's target.procs.
	Procs string
	// AdminToken is the admin endpoint's bearer token, also sent to the SRE API and the
	// supervisor.
	AdminToken string
	// SRE is the SRE API's base URL; when set, the drill is recorded on an incident.
	SRE string
	// Client sends every request: the load, the admin and SRE APIs, the scrapes. Default:
	// load.NewClient(10 s, 0).
	Client *http.Client
	// Header goes with every load request: for a drill in a lane, the lane token signed with
	// stress.key (meta.HeaderLaneToken).
	Header http.Header
	// Clock is the time source of the guard, the fault schedule and the load. Default:
	// load.Real{}.
	Clock load.Clock
	// Progress takes one line per guard sample, phase and fault; nil discards them.
	Progress io.Writer
	// RunID names the run (and is the scenario's {{.run_id}}); default "dr" and 10 random
	// characters.
	RunID string
}

// procStartWait is how long a process fault waits for its process to run (one back from
// an earlier fault may still be starting) before it gives up.
const procStartWait = 10 * time.Second

// blindLimit is how many failed scrapes in a row the armed guard tolerates before it
// aborts: a guard that cannot see must not let a fault run on.
const blindLimit = 3

// errAborted ends a phase the guard aborted.
var errAborted = errors.New("aborted by the guard")

// Run runs the drill d in env: the steady-state check, the rollback rehearsal, the
// experiment under the guard, and the check after it; see the package doc.
//
// A drill or an Env it refuses is an error wrapping ErrInvalid, returned before anything
// is sent. Once it has started, Run returns the report; when the drill could not go on
// (the admin API refused a fault, ctx ended) its verdict is Errored and the error is
// returned too. Every fault Run added is gone when it returns, or expires by itself within
// TTLMargin of its planned end.
func Run(ctx context.Context, d *Drill, env Env) (*Report, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: nil drill", ErrInvalid)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if err := d.loadScenario(); err != nil {
		return nil, err
	}
	bff, admin := cmp.Or(env.BFF, d.Target.BFF), cmp.Or(env.Admin, d.Target.Admin)
	for _, u := range []struct{ what, v string }{{"BFF", bff}, {"admin", admin}} {
		if !httpURL(u.v) {
			return nil, fmt.Errorf("%w: the %s URL %q is not an http(s) URL: set target.%s in the drill or pass one",
				ErrInvalid, u.what, u.v, strings.ToLower(u.what))
		}
	}
	procsURL := cmp.Or(env.Procs, d.Target.Procs)
	if procsURL != "" && !httpURL(procsURL) {
		return nil, fmt.Errorf("%w: the supervisor's URL %q is not an http(s) URL", ErrInvalid, procsURL)
	}
	if procsURL == "" && slices.ContainsFunc(d.Faults, func(f Fault) bool { return f.Proc != nil }) {
		return nil, fmt.Errorf("%w: process faults go to the supervisor of `redline up --procs`: "+
			"set target.procs in the drill or pass its admin URL (redline drill --procs http://127.0.0.1:9090)", ErrInvalid)
	}
	if env.SRE != "" && !httpURL(env.SRE) {
		return nil, fmt.Errorf("%w: the SRE API URL %q is not an http(s) URL", ErrInvalid, env.SRE)
	}
	if d.Load.Lane != "" && env.Header.Get(meta.HeaderLaneToken) == "" {
		return nil, fmt.Errorf("%w: load.lane %q needs a lane token signed with stress.key in the %s header",
			ErrInvalid, d.Load.Lane, meta.HeaderLaneToken)
	}
	if env.Client == nil {
		env.Client = load.NewClient(10*time.Second, 0)
	}
	if env.Clock == nil {
		env.Clock = load.Real{}
	}
	if env.Progress == nil {
		env.Progress = io.Discard
	}
	if env.RunID == "" {
		env.RunID = scenario.NewRunID("dr")
	}
	runner, err := d.Scenario.NewRunner(scenario.Env{BaseURL: bff, Client: env.Client, Header: env.Header, RunID: env.RunID})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	env.Procs = procsURL
	r := newRun(d, env, bff, admin, runner)
	return r.run(ctx)
}

// run is the state of one drill.
type run struct {
	d      *Drill
	env    Env
	clk    load.Clock
	admin  *api
	procs  *api // the supervisor's admin endpoint; nil without process faults or an audit there
	tl     *timeline
	smp    *sampler
	runner *scenario.Runner
	bounds []float64 // abort bound per SLI
	start  time.Time

	// abortCtx ends when the guard trips (or the run's ctx ends); the load and the fault
	// schedule run under it.
	abortCtx context.Context
	abort    context.CancelFunc
	cleared  chan struct{} // closed once the guard's abort has cleared the faults
	armed    atomic.Bool
	blind    int       // failed scrapes in a row; the guard goroutine's own
	lastOK   time.Time // the guard goroutine's own

	outMu sync.Mutex

	// mu guards the fields below and the report; it is never held across a call to the
	// admin API, so a slow call cannot keep the guard from judging a sample.
	//
	// The guard's trip and the schedule's addFault race without another lock: trip sets
	// aborted under mu and then sends DELETE /chaos/faults; addFault registers a fault it
	// posted only if, under mu after the POST, aborted is still unset, and otherwise removes
	// that fault itself. A fault registered that way was added before aborted was set, so
	// before the DELETE was sent, which removes it; every other one its adder removes. So
	// no fault outlives an abort, and trip never waits for a POST in flight.
	mu      sync.Mutex
	rep     *Report
	active  map[string]int // id → index in rep.Faults of the faults added and not removed
	aborted bool
	res     *load.Result // the experiment's load
	seq     int          // numbers process faults' ids

	// The checkout audits before the drill and after it, when an expectation asks.
	auditBefore, auditAfter *checkoutAudit
	auditErr                string
}

func newRun(d *Drill, env Env, bff, admin string, runner *scenario.Runner) *run {
	r := &run{d: d, env: env, clk: env.Clock, runner: runner, active: map[string]int{}, cleared: make(chan struct{}),
		admin: &api{base: strings.TrimSuffix(admin, "/"), token: env.AdminToken, hc: env.Client}}
	if env.Procs != "" {
		r.procs = &api{base: strings.TrimSuffix(env.Procs, "/"), token: env.AdminToken, hc: env.Client}
	}
	r.rep = &Report{Drill: d.Name, Description: d.Description, File: d.File, RunID: env.RunID, BFF: bff, Admin: admin, Procs: env.Procs,
		Lane: d.Load.Lane, Rate: d.Load.Rate, Window: d.SteadyState.Window.Seconds(), Guard: Guard{Interval: d.interval().Seconds()}}
	// The scrapes time out within the guard's pace, so a slow endpoint costs a sample, not
	// the schedule.
	scrape := &http.Client{Transport: env.Client.Transport, Timeout: max(d.interval(), 2*time.Second)}
	r.smp = &sampler{g: slo.Scrape([]string{r.admin.base + "/metrics"}, env.AdminToken, scrape), clk: env.Clock,
		slis: d.SteadyState.SLIs, expect: d.Expect}
	for _, s := range d.SteadyState.SLIs {
		lane := s.Lane
		switch lane {
		case "":
			lane = d.Load.Lane
		case LaneBaseline:
			lane = ""
		}
		r.smp.lanes = append(r.smp.lanes, lane)
		r.bounds = append(r.bounds, d.AbortBound(s))
		r.rep.SLIs = append(r.rep.SLIs, Series{SLI: s.Name, Kind: s.Kind(), Bound: s.Bound(), AbortBound: d.AbortBound(s), Points: []Point{}})
	}
	if env.SRE != "" {
		r.tl = &timeline{api: &api{base: strings.TrimSuffix(env.SRE, "/"), token: env.AdminToken, hc: env.Client}, warn: r.warn}
	}
	return r
}

func (r *run) run(ctx context.Context) (*Report, error) {
	r.start = r.clk.Now()
	r.rep.Started = r.start
	r.abortCtx, r.abort = context.WithCancel(ctx)
	defer r.abort()
	keep := context.WithoutCancel(ctx) // for what must happen even after an interrupt

	d := r.d
	r.say(r.start, "drill %s, run %s: BFF %s, admin %s, load %s at %g/s for %v, guard every %v",
		d.Name, r.rep.RunID, r.rep.BFF, r.rep.Admin, d.Scenario.Name, d.Load.Rate, d.Load.Duration, d.interval())
	r.tl.open(keep, d, r.rep.RunID, d.SteadyState.SLIs[0].Service)
	r.rep.Incident = r.tlID()

	guardCtx, stopGuard := context.WithCancel(keep)
	guardDone := make(chan struct{})
	go r.guard(guardCtx, guardDone)

	err := r.phases(ctx)

	// Whatever happened, no fault of this drill outlives it.
	r.cleanup(keep)
	stopGuard()
	<-guardDone
	r.rep.Ended = r.clk.Now()
	r.verdict(ctx, err)
	r.say(r.rep.Ended, "%s: %s", strings.ToUpper(string(r.rep.Verdict)), r.rep.Reason)
	r.tl.note(keep, fmt.Sprintf("verdict %s: %s", r.rep.Verdict, r.rep.Reason))
	r.tl.resolve(keep, "drill "+d.Name+" "+string(r.rep.Verdict))
	if r.rep.Verdict == Errored {
		return r.rep, fmt.Errorf("drill %s: %s", d.Name, r.rep.Reason)
	}
	return r.rep, nil
}

// phases runs the phases in order until one fails.
func (r *run) phases(ctx context.Context) error {
	if n := r.runner.Users(); n > 0 && r.d.Load.Rate > 0 {
		r.say(r.clk.Now(), "logging in %d users of scenario %s", n, r.d.Scenario.Name)
		if err := r.runner.Setup(ctx, 2); err != nil {
			return fmt.Errorf("log in the scenario's users at %s: %w", r.rep.BFF, err)
		}
	}
	if r.audits() {
		if err := r.auditNow(ctx, "before", &r.auditBefore); err != nil {
			return err
		}
	}
	ph := r.hypothesis(ctx, PhaseSteady)
	if !ph.Pass || ctx.Err() != nil {
		return ctx.Err()
	}
	if r.d.RollbackCheck > 0 {
		ph, err := r.rehearse(ctx)
		if err != nil || !ph.Pass {
			return err
		}
	}
	if err := r.experiment(ctx); err != nil && !errors.Is(err, errAborted) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.hypothesis(ctx, PhaseAfter)
	if ctx.Err() == nil && r.audits() {
		r.auditSettled(ctx)
	}
	return ctx.Err()
}

// hypothesis runs the load for the steady-state window and judges the SLIs over it.
func (r *run) hypothesis(ctx context.Context, name string) Phase {
	w := r.d.SteadyState.Window
	ph := Phase{Name: name, Started: r.clk.Now()}
	r.say(ph.Started, "phase %s: %v of load; the steady state holds when every SLI is within its bound", name, w)
	a := r.smp.take()
	tr := r.traffic(ctx, w)
	slept := r.clk.SleepUntil(ctx, a.at.Add(w))
	b := r.smp.take()
	if slept != nil {
		tr.stop()
	} else {
		tr.wait()
	}
	ph.SLIs, ph.Pass = r.judge(a.at, b.at)
	ph.Ended = r.clk.Now()
	ph.Detail = "steady state holds: " + sliText(ph.SLIs)
	if !ph.Pass {
		ph.Detail = "not in steady state: " + sliText(ph.SLIs)
	}
	r.addPhase(ph)
	return ph
}

// rehearse injects every fault for RollbackCheck, removes them, and requires the steady
// state back within RollbackCheck of the removal.
func (r *run) rehearse(ctx context.Context) (Phase, error) {
	rc, iv, w := r.d.RollbackCheck, r.d.interval(), r.d.SteadyState.Window
	ph := Phase{Name: PhaseRehearsal, Started: r.clk.Now()}
	r.say(ph.Started, "phase %s: every fault for %v, then steady state back within %v of removing them", PhaseRehearsal, rc, rc)
	tr := r.traffic(r.abortCtx, 2*rc+2*iv)
	defer tr.stop()
	r.arm(PhaseRehearsal)
	defer r.disarm(PhaseRehearsal)
	var ids []string
	fail := func(err error) (Phase, error) {
		ph.Ended, ph.Detail = r.clk.Now(), err.Error()
		r.addPhase(ph)
		if errors.Is(err, errAborted) {
			return ph, nil
		}
		return ph, err
	}
	procs := map[string]bool{}
	for i, f := range r.d.Faults {
		// A process is killed or paused, a proxy disabled, once: a second fault on it
		// rehearses nothing more.
		key := ""
		switch {
		case f.Proc != nil:
			key = "proc " + f.Proc.Name
		case f.Net != nil && f.Net.Outage:
			key = "outage " + f.Net.Proxy
		}
		if key != "" {
			if procs[key] {
				continue
			}
			procs[key] = true
		}
		id, err := r.addFault(ctx, i, PhaseRehearsal, rc)
		if err != nil {
			return fail(err)
		}
		ids = append(ids, id)
	}
	if r.clk.SleepUntil(r.abortCtx, r.clk.Now().Add(rc)) != nil {
		return fail(r.stopped(ctx))
	}
	for _, id := range ids {
		if err := r.removeFault(ctx, id, "schedule"); err != nil {
			return fail(err)
		}
	}
	removed := r.smp.take().at
	deadline := removed.Add(rc)
	for k := 1; ; k++ {
		t := removed.Add(time.Duration(k) * iv)
		if t.After(deadline) {
			t = deadline
		}
		if r.clk.SleepUntil(r.abortCtx, t) != nil {
			return fail(r.stopped(ctx))
		}
		s := r.smp.take()
		vals, pass := r.judge(maxTime(removed, s.at.Add(-w)), s.at)
		if pass {
			ph.Pass, ph.SLIs = true, vals
			ph.Detail = fmt.Sprintf("faults injected for %v and removed; steady state back %.1fs later: %s", rc, s.at.Sub(removed).Seconds(), sliText(vals))
			break
		}
		if !s.at.Before(deadline) {
			ph.SLIs = vals
			ph.Detail = fmt.Sprintf("steady state not back within %v of removing the faults: %s", rc, sliText(vals))
			break
		}
	}
	ph.Ended = r.clk.Now()
	r.addPhase(ph)
	return ph, nil
}

// experiment runs the load and the fault schedule under the armed guard.
func (r *run) experiment(ctx context.Context) error {
	d := r.d
	ph := Phase{Name: PhaseExperiment, Started: r.clk.Now()}
	r.say(ph.Started, "phase %s: load for %v, %s on schedule, guard armed", PhaseExperiment, d.Load.Duration, plural(len(d.Faults), "fault"))
	r.smp.take()
	tr := r.traffic(r.abortCtx, d.Load.Duration)
	t0 := tr.start
	r.arm(PhaseExperiment)

	type event struct {
		off  time.Duration
		kind int // 0 remove, 1 add, 2 sample
		i    int
	}
	var evs []event
	for i, f := range d.Faults {
		evs = append(evs, event{f.At, 1, i}, event{f.At + f.For, 0, i})
	}
	first := slices.MinFunc(d.Faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) }).At
	for _, e := range d.Expect {
		if e.Kind() == ExpectMetric && e.Within > 0 {
			evs = append(evs, event{first + e.Within, 2, -1})
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int { return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(a.kind, b.kind)) })

	ids := make([]string, len(d.Faults))
	var err error
	for _, ev := range evs {
		if r.clk.SleepUntil(r.abortCtx, t0.Add(ev.off)) != nil {
			err = r.stopped(ctx)
			break
		}
		switch ev.kind {
		case 1:
			r.smp.take()
			ids[ev.i], err = r.addFault(ctx, ev.i, PhaseExperiment, d.Faults[ev.i].For)
			r.smp.take() // where metric expectations start (evaluate)
		case 0:
			err = r.removeFault(ctx, ids[ev.i], "schedule")
			r.smp.take()
		case 2:
			r.smp.take()
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		tr.stop()
	} else {
		tr.wait()
	}
	// Only a trip disarms the guard besides this, so when this cannot, the guard tripped:
	// in the wait for the load after the schedule, if not before.
	if !r.disarm(PhaseExperiment) && err == nil {
		err = r.stopped(ctx)
	}
	r.smp.take()
	ph.Ended = r.clk.Now()
	ph.Pass = err == nil
	switch {
	case errors.Is(err, errAborted):
		ph.Detail = "aborted by the guard: " + r.abortReason()
	case err != nil:
		ph.Detail = err.Error()
	default:
		ph.Detail = fmt.Sprintf("the load ran for %v and every fault was added and removed on schedule", d.Load.Duration)
	}
	if tr.res != nil {
		r.rep.Load = r.summarize(tr.res)
		r.res = tr.res
	}
	r.addPhase(ph)
	return err
}

// stopped says why a wait under abortCtx ended: ctx, or the guard, once it has cleared
// the faults (so that nothing after the abort meets them).
func (r *run) stopped(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	<-r.cleared
	return errAborted
}

// traffic is one load run in the background.
type traffic struct {
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}
	res    *load.Result
}

// traffic starts the drill's load for d under ctx; with rate 0 it sends nothing.
func (r *run) traffic(ctx context.Context, d time.Duration) *traffic {
	ctx, cancel := context.WithCancel(ctx)
	t := &traffic{start: r.clk.Now(), cancel: cancel, done: make(chan struct{})}
	if r.d.Load.Rate == 0 {
		close(t.done)
		return t
	}
	sched, err := load.Constant(r.d.Load.Rate, d)
	if err != nil {
		r.warn("load not started: " + err.Error())
		close(t.done)
		return t
	}
	go func() {
		defer close(t.done)
		var err error
		if t.res, err = load.Run(ctx, sched, r.runner, load.WithClock(r.clk), load.WithDrain(10*time.Second)); err != nil {
			r.warn("load not started: " + err.Error())
		}
	}()
	return t
}

// wait lets the load run out.
func (t *traffic) wait() { <-t.done; t.cancel() }

// stop cancels the load and waits for it.
func (t *traffic) stop() { t.cancel(); <-t.done }

// guard samples every guard interval from the start until ctx ends; while armed, it judges
// each sample and trips on the first SLI beyond its abort bound.
func (r *run) guard(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	iv := r.d.interval()
	for k := 1; ; k++ {
		if r.clk.SleepUntil(ctx, r.start.Add(time.Duration(k)*iv)) != nil {
			return
		}
		r.check(r.smp.take())
	}
}

// check is the guard's look at one sample.
func (r *run) check(s sample) {
	armed := r.armed.Load()
	r.mu.Lock()
	r.rep.Guard.Samples++
	if armed {
		r.rep.Guard.Checks++
	}
	r.mu.Unlock()
	if s.err != nil {
		r.say(s.at, "metrics: %v", s.err)
		if !armed {
			return
		}
		r.blind++
		r.decide(s.at, "blind", fmt.Sprintf("scrape %d of %d failed: %v", r.blind, blindLimit, s.err))
		if r.blind >= blindLimit {
			r.trip(s, "", 0, 0, fmt.Sprintf("the guard could not read the metrics %d times in a row: %v", r.blind, s.err))
		}
		return
	}
	r.blind = 0
	a, b, ok := r.smp.window(s.at.Add(-r.d.SteadyState.Window), s.at)
	if !ok {
		return
	}
	var line []string
	breach := -1
	var vals []value
	r.mu.Lock()
	for i, sli := range r.d.SteadyState.SLIs {
		v := over(sli, a.slis[i], b.slis[i])
		vals = append(vals, v)
		if !v.OK {
			line = append(line, sli.Name+" no data")
			continue
		}
		r.rep.SLIs[i].Points = append(r.rep.SLIs[i].Points, Point{T: r.t(s.at), V: v.V})
		line = append(line, fmt.Sprintf("%s %s", sli.Name, format(sli.Kind(), v.V)))
		if breach < 0 && v.V > r.bounds[i] {
			breach = i
		}
	}
	r.mu.Unlock()
	r.say(s.at, "%s", strings.Join(line, "  "))
	if !armed {
		return
	}
	if breach >= 0 {
		sli := r.d.SteadyState.SLIs[breach]
		r.trip(s, sli.Name, vals[breach].V, r.bounds[breach], fmt.Sprintf("%s %s over the last %v is beyond its abort bound %s",
			sli.Name, format(sli.Kind(), vals[breach].V), r.d.SteadyState.Window, format(sli.Kind(), r.bounds[breach])))
		return
	}
	r.lastOK = s.at
}

// trip aborts the drill: the load is canceled and every fault cleared, at once.
func (r *run) trip(s sample, sli string, observed, bound float64, reason string) {
	if !r.armed.CompareAndSwap(true, false) {
		return
	}
	r.abort() // the load and the schedule stop
	ctx := context.Background()
	r.mu.Lock()
	r.aborted = true // from here addFault registers nothing: see run.mu
	r.mu.Unlock()
	// Processes the drill holds down come back at once, first: a paused process cannot
	// answer the supervisor's clear of every process's faults.
	n := 0
	r.mu.Lock()
	var down []FaultRecord
	for _, i := range r.active {
		if r.rep.Faults[i].Proc != nil {
			down = append(down, r.rep.Faults[i])
		}
	}
	r.mu.Unlock()
	var steps, failed []string // what the guard did; what of it failed
	back := map[string]bool{}
	if len(down) > 0 {
		steps = append(steps, "bringing back the processes")
	}
	for _, rec := range down {
		if perr := r.del(ctx, rec); perr != nil {
			failed = append(failed, perr.Error())
		} else {
			back[rec.ID] = true
			n++
		}
	}
	steps = append(steps, "DELETE /chaos/faults")
	removed, err := r.faultsAPI().clearFaults(ctx)
	n += removed
	if r.hasNet() {
		// Every toxic goes and every proxy comes back.
		steps = append(steps, "DELETE /chaos/net")
		var net struct{ Removed, Enabled int }
		nerr := r.admin.do(ctx, http.MethodDelete, "/chaos/net", nil, &net)
		err = errors.Join(err, nerr)
		n += net.Removed + net.Enabled
	}
	if err != nil {
		failed = append(failed, err.Error())
	}
	acted := r.clk.Now()
	ab := &GuardAbort{SLI: sli, Observed: observed, Bound: bound, Reason: reason, LastOKAt: r.lastOK, BreachAt: s.at, ActedAt: acted,
		Cleared: n, ClearError: strings.Join(failed, "; ")}
	r.mu.Lock()
	for id, i := range r.active {
		if f := &r.rep.Faults[i]; f.Proc == nil && err == nil || back[id] {
			f.RemovedAt, f.RemovedBy = acted, "guard"
			delete(r.active, id)
		}
	}
	r.rep.Guard.Abort = ab
	r.mu.Unlock()
	close(r.cleared)
	detail := fmt.Sprintf("%s; load stopped; %s removed %d", reason, strings.Join(steps, ", "), n)
	if len(failed) > 0 {
		detail = fmt.Sprintf("%s; load stopped; clearing the faults FAILED: %s (the faults expire by their ttl, processes come back after their for)",
			reason, ab.ClearError)
	}
	r.decide(acted, "abort", detail)
	r.say(acted, "GUARD ABORT: %s", detail)
	r.tl.note(ctx, "guard abort: "+detail)
}

func (r *run) abortReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ab := r.rep.Guard.Abort; ab != nil {
		return ab.Reason
	}
	return ""
}

func (r *run) arm(phase string) {
	r.armed.Store(true)
	r.decide(r.clk.Now(), "armed", "for the "+phase)
}

// disarm disarms the guard and reports whether it was armed: false once it has tripped.
func (r *run) disarm(phase string) bool {
	if !r.armed.CompareAndSwap(true, false) {
		return false
	}
	r.decide(r.clk.Now(), "disarmed", "the "+phase+" is over")
	return true
}

func (r *run) decide(at time.Time, action, detail string) {
	r.mu.Lock()
	r.rep.Guard.Decisions = append(r.rep.Guard.Decisions, Decision{At: at, T: r.t(at), Action: action, Detail: detail})
	r.mu.Unlock()
}

// addFault adds fault i for life (its ttl: life + TTLMargin) and returns its id. Once the
// guard has tripped it adds nothing, and removes a fault whose POST was in flight at the
// trip; it then returns errAborted after the guard has cleared the faults.
func (r *run) addFault(ctx context.Context, i int, phase string, life time.Duration) (string, error) {
	f := r.d.Faults[i]
	f.For = life
	rec := FaultRecord{Index: i, Phase: phase, At: f.At.Seconds(), For: life.Seconds(), What: f.Describe(), Proc: f.Proc, Net: f.Net}
	if f.Net != nil {
		rec.TTL = (life + TTLMargin).String()
	}
	if f.Proc == nil && f.Net == nil {
		f.Spec.TTL = (life + TTLMargin).String()
		if f.Spec.Reason == "" {
			f.Spec.Reason = fmt.Sprintf("drill %s run %s: faults[%d]", r.d.Name, r.rep.RunID, i)
		}
		rec.Spec, rec.TTL = f.Spec, f.Spec.TTL
	}
	if phase == PhaseRehearsal {
		rec.At = 0
	}
	r.mu.Lock()
	aborted := r.aborted
	r.mu.Unlock()
	if aborted {
		<-r.cleared
		return "", errAborted
	}
	id, err := r.post(context.WithoutCancel(ctx), f)
	now := r.clk.Now()
	r.mu.Lock()
	aborted = r.aborted
	if err != nil {
		rec.Error = err.Error()
	} else {
		rec.ID, rec.AddedAt = id, now
	}
	if err == nil && !aborted {
		r.active[id] = len(r.rep.Faults)
	}
	r.rep.Faults = append(r.rep.Faults, rec)
	k := len(r.rep.Faults) - 1
	r.mu.Unlock()
	if aborted {
		// The guard tripped during the POST; its DELETE may have gone first, so this fault
		// is this call's to remove.
		if err == nil {
			r.dropLate(ctx, k, rec)
		}
		<-r.cleared
		return "", errAborted
	}
	if err != nil {
		return "", fmt.Errorf("add faults[%d]: %w", i, err)
	}
	r.say(now, "fault %d added (%s): %s", i, id, rec.What)
	r.tl.note(ctx, fmt.Sprintf("%s: fault %s added: %s", phase, id, rec.What))
	return id, nil
}

// post adds f (For is its life) where its kind goes and returns its id: an in-process
// fault through the admin API's POST /chaos/faults, a process fault through the
// supervisor's POST /chaos/procs/{name}/{kill|pause}.
func (r *run) post(ctx context.Context, f Fault) (string, error) {
	reason := fmt.Sprintf("drill %s run %s", r.d.Name, r.rep.RunID)
	ttl := (f.For + TTLMargin).String()
	switch {
	case f.Net != nil && f.Net.Outage:
		path := "/chaos/net/proxies/" + url.PathEscape(f.Net.Proxy) + "/disable"
		if err := r.admin.do(ctx, http.MethodPost, path, netfault.OutageSpec{TTL: ttl, Reason: reason}, nil); err != nil {
			return "", err
		}
		return r.localID("net-" + f.Net.Proxy), nil
	case f.Net != nil:
		t := *f.Net.Toxic
		t.Proxy, t.TTL, t.Reason = f.Net.Proxy, ttl, reason
		var got netfault.Toxic
		err := r.admin.do(ctx, http.MethodPost, "/chaos/net/toxics", t, &got)
		return got.ID, err
	case f.Proc == nil:
		got, err := r.faultsAPI().addFault(ctx, f.Spec)
		return got.ID, err
	}
	body := map[string]string{"for": f.For.String()}
	if f.Proc.Action == ProcKill {
		body = map[string]string{"restart_after": f.For.String()}
	}
	path := "/chaos/procs/" + url.PathEscape(f.Proc.Name) + "/" + f.Proc.Action
	// A process back from an earlier fault may still be starting: the supervisor refuses
	// (412) until it runs, so wait for it a little.
	deadline := r.clk.Now().Add(procStartWait)
	for {
		err := r.procs.do(ctx, http.MethodPost, path, body, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, errPrecondition) || !r.clk.Now().Before(deadline) {
			return "", err
		}
		if r.clk.SleepUntil(ctx, r.clk.Now().Add(250*time.Millisecond)) != nil {
			return "", err
		}
	}
	return r.localID("proc-" + f.Proc.Name), nil
}

// localID numbers a fault whose API gives it no id: process faults and outages.
func (r *run) localID(prefix string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return fmt.Sprintf("%s-%d", prefix, r.seq)
}

// del removes the fault of rec: an in-process one by id, which is errNotFound when it is
// already gone; a process fault by starting (after a kill) or resuming (after a pause) the
// process now, which changes nothing when it is back already.
func (r *run) del(ctx context.Context, rec FaultRecord) error {
	switch {
	case rec.Net != nil && rec.Net.Outage:
		return r.admin.do(ctx, http.MethodPost, "/chaos/net/proxies/"+url.PathEscape(rec.Net.Proxy)+"/enable", nil, nil)
	case rec.Net != nil:
		return r.admin.do(ctx, http.MethodDelete, "/chaos/net/toxics/"+url.PathEscape(rec.ID), nil, nil)
	case rec.Proc == nil:
		return r.faultsAPI().removeFault(ctx, rec.ID)
	}
	action := "start"
	if rec.Proc.Action == ProcPause {
		action = "resume"
	}
	if err := r.procs.do(ctx, http.MethodPost, "/chaos/procs/"+url.PathEscape(rec.Proc.Name)+"/"+action, nil, nil); err != nil {
		return fmt.Errorf("%s: %w", rec.ID, err)
	}
	return nil
}

// dropLate removes the fault of rec, record k, added while the guard tripped.
func (r *run) dropLate(ctx context.Context, k int, rec FaultRecord) {
	id := rec.ID
	err := r.del(context.WithoutCancel(ctx), rec)
	now := r.clk.Now()
	if errors.Is(err, errNotFound) { // the guard's DELETE /chaos/faults came after the POST
		err = nil
	}
	r.mu.Lock()
	fr := &r.rep.Faults[k]
	if err == nil {
		fr.RemovedAt, fr.RemovedBy = now, "guard"
	} else {
		fr.Error = err.Error()
	}
	index := fr.Index
	r.mu.Unlock()
	if err != nil {
		r.warn(fmt.Sprintf("fault %s, added as the guard tripped, not removed: %v: it expires by its ttl", id, err))
		return
	}
	r.say(now, "fault %d removed (%s, added as the guard tripped)", index, id)
}

// removeFault removes fault id if it is still active; one already gone is noted.
func (r *run) removeFault(ctx context.Context, id, by string) error {
	r.mu.Lock()
	k, ok := r.active[id]
	var fr FaultRecord
	if ok {
		fr = r.rep.Faults[k]
	}
	r.mu.Unlock()
	if !ok {
		return nil
	}
	err := r.del(context.WithoutCancel(ctx), fr)
	now := r.clk.Now()
	r.mu.Lock()
	i, ok := r.active[id]
	if !ok { // the guard's clear, meanwhile, removed it and recorded so
		r.mu.Unlock()
		return nil
	}
	rec := &r.rep.Faults[i]
	switch {
	case errors.Is(err, errNotFound) && r.aborted:
		rec.RemovedBy, err = "guard", nil
	case errors.Is(err, errNotFound):
		rec.Error, err = "already gone when removed (expired, or removed by someone else)", nil
	case err != nil:
		rec.Error = err.Error()
	}
	if err == nil {
		rec.RemovedAt, rec.RemovedBy = now, cmp.Or(rec.RemovedBy, by)
		delete(r.active, id)
	}
	index, phase := rec.Index, rec.Phase
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove fault %s: %w", id, err)
	}
	r.say(now, "fault %d removed (%s, %s)", index, id, by)
	r.tl.note(ctx, fmt.Sprintf("%s: fault %s removed (%s)", phase, id, by))
	return nil
}

// cleanup removes every fault still active, by id.
func (r *run) cleanup(ctx context.Context) {
	r.mu.Lock()
	ids := make([]string, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if err := r.removeFault(ctx, id, "cleanup"); err != nil {
			r.warn(fmt.Sprintf("%v: it expires by its ttl", err))
		}
	}
}

// judge computes every SLI over [from, to] against its own bound.
func (r *run) judge(from, to time.Time) ([]SLIValue, bool) {
	a, b, ok := r.smp.window(from, to)
	pass := true
	var out []SLIValue
	for i, s := range r.d.SteadyState.SLIs {
		var v value
		if ok {
			v = over(s, a.slis[i], b.slis[i])
		}
		sv := SLIValue{SLI: s.Name, Kind: s.Kind(), Value: v.V, NoData: !v.OK, Requests: v.Requests, Bound: s.Bound(),
			Pass: v.OK && v.V <= s.Bound()}
		pass = pass && sv.Pass
		out = append(out, sv)
	}
	return out, pass
}

func (r *run) addPhase(ph Phase) {
	r.mu.Lock()
	r.rep.Phases = append(r.rep.Phases, ph)
	r.mu.Unlock()
	verdict := "ok"
	if !ph.Pass {
		verdict = "FAILED"
	}
	r.say(ph.Ended, "phase %s %s: %s", ph.Name, verdict, ph.Detail)
	r.tl.note(context.Background(), fmt.Sprintf("phase %s %s: %s", ph.Name, verdict, ph.Detail))
}

func (r *run) warn(msg string) {
	r.mu.Lock()
	r.rep.Warnings = append(r.rep.Warnings, msg)
	r.mu.Unlock()
	r.say(r.clk.Now(), "warning: %s", msg)
}

func (r *run) tlID() string {
	if r.tl == nil {
		return ""
	}
	return r.tl.id
}

// t is at in seconds from the start.
func (r *run) t(at time.Time) float64 { return math.Round(at.Sub(r.start).Seconds()*1000) / 1000 }

func (r *run) say(at time.Time, format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.env.Progress, "[%7.1fs] %s\n", at.Sub(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// sliText renders SLI values for people: "bff-errors 0.20% ≤ 1%, bff-p99 12ms ≤ 250ms".
func sliText(vs []SLIValue) string {
	var out []string
	for _, v := range vs {
		switch {
		case v.NoData:
			out = append(out, v.SLI+" no requests to judge by")
		case v.Pass:
			out = append(out, fmt.Sprintf("%s %s ≤ %s", v.SLI, format(v.Kind, v.Value), format(v.Kind, v.Bound)))
		default:
			out = append(out, fmt.Sprintf("%s %s > %s", v.SLI, format(v.Kind, v.Value), format(v.Kind, v.Bound)))
		}
	}
	return strings.Join(out, ", ")
}

// format renders an SLI value: a ratio as a percentage, a p99 as a duration.
func format(kind string, v float64) string {
	if kind == P99 {
		return time.Duration(v * float64(time.Second)).Round(10 * time.Microsecond).String()
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}

// describe is a fault spec on one line: "delay 300ms: note grpc server /note.v1.Note/GetNote".
func describe(s faults.Spec) string {
	what := s.Type
	switch s.Type {
	case faults.TypeDelay:
		what += " " + s.Delay
		if s.Jitter != "" {
			what += " (+ up to " + s.Jitter + ")"
		}
	case faults.TypeError:
		what += " " + string(s.Code)
	}
	var scope []string
	for _, v := range []string{s.Service, s.Kind, s.Side} {
		if v != "" {
			scope = append(scope, v)
		}
	}
	if s.Instance != "" {
		scope = append(scope, "instance "+s.Instance)
	}
	if s.Target != "" {
		scope = append(scope, "to "+s.Target)
	}
	if s.Op != "" {
		scope = append(scope, s.Op)
	}
	if s.Lane != "" {
		scope = append(scope, "lane "+s.Lane)
	}
	if s.Percent > 0 && s.Percent < 100 {
		scope = append(scope, fmt.Sprintf("%g%% of calls", s.Percent))
	}
	if len(scope) == 0 {
		scope = append(scope, "every call")
	}
	return what + ": " + strings.Join(scope, " ")
}

// faultsAPI is where in-process faults go: the supervisor under --procs, which adds each
// to the process of its service (every process when it names none) and clears them in
// every process; else the admin endpoint.
func (r *run) faultsAPI() *api {
	if r.procs != nil {
		return r.procs
	}
	return r.admin
}

// hasNet reports whether the drill has net faults.
func (r *run) hasNet() bool {
	return slices.ContainsFunc(r.d.Faults, func(f Fault) bool { return f.Net != nil })
}

// describeNet is a net fault on one line: "outage: redis (proxy disabled)", "latency
// toxic on note (latency 100ms)".
func describeNet(n NetFault) string {
	if n.Outage {
		return "outage: " + n.Proxy + " (proxy disabled)"
	}
	t := n.Toxic
	var attrs []string
	for _, kv := range []struct{ k, v string }{{"latency", t.Attributes.Latency}, {"jitter", t.Attributes.Jitter},
		{"timeout", t.Attributes.Timeout}, {"delay", t.Attributes.Delay}} {
		if kv.v != "" {
			attrs = append(attrs, kv.k+" "+kv.v)
		}
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"rate", t.Attributes.Rate}, {"bytes", t.Attributes.Bytes}, {"average_size", int64(t.Attributes.AverageSize)},
		{"size_variation", int64(t.Attributes.SizeVariation)}} {
		if kv.v != 0 {
			attrs = append(attrs, fmt.Sprintf("%s %d", kv.k, kv.v))
		}
	}
	if t.Stream != "" {
		attrs = append(attrs, t.Stream)
	}
	if t.Toxicity != nil {
		attrs = append(attrs, fmt.Sprintf("toxicity %g", *t.Toxicity))
	}
	return fmt.Sprintf("%s toxic on %s (%s)", t.Type, n.Proxy, strings.Join(attrs, ", "))
}

// describeProc is a process fault on one line: "kill order (restarted after 5s)".
func describeProc(p ProcFault, life time.Duration) string {
	if p.Action == ProcKill {
		return fmt.Sprintf("kill -9 %s (restarted after %v)", p.Name, life)
	}
	return fmt.Sprintf("%s %s for %v", p.Action, p.Name, life)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (r *run) summarize(res *load.Result) *LoadSummary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := &LoadSummary{Planned: res.Planned, Started: res.Started, Requests: res.Requests, OK: res.OK, Errors: res.Errors,
		P50Ms: ms(res.Latency.P50), P99Ms: ms(res.Latency.P99), Elapsed: res.Elapsed.Seconds(), Stopped: res.Aborted,
		Seconds: []LoadSecond{}}
	for _, s := range res.Series {
		out.Seconds = append(out.Seconds, LoadSecond{T: r.t(res.Start.Add(s.At)), OK: s.OK, Errors: s.Errors})
	}
	return out
}
