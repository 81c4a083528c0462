package drill

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// verdict judges the drill once every phase is over: err is what stopped the phases.
func (r *run) verdict(ctx context.Context, err error) {
	rep := r.rep
	r.evaluate()
	steady, rehearsal, after := r.phase(PhaseSteady), r.phase(PhaseRehearsal), r.phase(PhaseAfter)
	var failed []string
	for _, o := range rep.Expectations {
		if !o.Pass {
			failed = append(failed, fmt.Sprintf("expect[%d] %s: observed %s", o.Index, o.Expect, o.Observed))
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		rep.Verdict, rep.Reason = Errored, "interrupted: "+context.Cause(ctx).Error()+"; every fault of the drill was removed"
	case err != nil:
		rep.Verdict, rep.Reason = Errored, err.Error()+"; every fault of the drill was removed"
	case rep.Guard.Abort != nil:
		rep.Verdict, rep.Reason = Aborted, "the guard aborted the drill: "+rep.Guard.Abort.Reason
	case steady == nil || !steady.Pass:
		rep.Verdict, rep.Reason = NotSteady, "nothing was injected: "+phaseDetail(steady)
	case rehearsal != nil && !rehearsal.Pass:
		rep.Verdict, rep.Reason = RollbackFailed, "the experiment did not run: "+phaseDetail(rehearsal)
	case after == nil || !after.Pass:
		rep.Verdict, rep.Reason = Failed, "after the experiment: "+phaseDetail(after)
		if len(failed) > 0 {
			rep.Reason += "; " + strings.Join(failed, "; ")
		}
	case len(failed) > 0:
		rep.Verdict, rep.Reason = Failed, strings.Join(failed, "; ")
	default:
		rep.Verdict = Passed
		rep.Reason = fmt.Sprintf("steady state held before and after, %d expectations held", len(rep.Expectations))
	}
}

func phaseDetail(p *Phase) string {
	if p == nil {
		return "the phase did not run"
	}
	return p.Detail
}

func (r *run) phase(name string) *Phase {
	for i := range r.rep.Phases {
		if r.rep.Phases[i].Name == name {
			return &r.rep.Phases[i]
		}
	}
	return nil
}

// faultSpan is from the first experiment fault added to the last one removed (or to the
// experiment's end for one never removed); ok is false when none was added.
func (r *run) faultSpan(exp *Phase) (from, to time.Time, ok bool) {
	for _, f := range r.rep.Faults {
		if f.Phase != PhaseExperiment || f.AddedAt.IsZero() {
			continue
		}
		end := f.RemovedAt
		if end.IsZero() {
			end = exp.Ended
		}
		if !ok || f.AddedAt.Before(from) {
			from = f.AddedAt
		}
		if !ok || end.After(to) {
			to = end
		}
		ok = true
	}
	return from, to, ok
}

// evaluate judges every expectation.
func (r *run) evaluate() {
	exp := r.phase(PhaseExperiment)
	var ffrom, fto time.Time
	var fok bool
	if exp != nil {
		ffrom, fto, fok = r.faultSpan(exp)
	}
	for i, e := range r.d.Expect {
		o := Outcome{Index: i, Kind: e.Kind(), Expect: expectText(r.d, e)}
		switch {
		case exp == nil:
			o.Observed = "nothing: the experiment did not run"
		case e.Kind() == ExpectSLI:
			r.evalSLI(&o, e, exp, ffrom, fto, fok)
		case e.Kind() == ExpectAudit:
			r.evalAudit(&o)
		case !fok:
			o.Observed = "nothing: no fault was added"
		case e.Kind() == ExpectMetric:
			to := fto
			if e.Within > 0 {
				to = ffrom.Add(e.Within)
			}
			// A rise counts from just before the first fault, so what its adding does (a
			// toxic counted) is seen. A bound, or a "stays put", counts from the first
			// sample once the fault is in: a request in flight as it was added is not the
			// fault's doing.
			start, ok := ffrom, true
			if !e.Increases || e.MaxRate > 0 || e.MaxShare > 0 {
				var first sample
				first, ok = r.smp.after(ffrom)
				start = first.at
			}
			var a, b sample
			if ok {
				a, b, ok = r.smp.window(start, to)
			}
			if !ok {
				o.Observed = "no metrics sampled around the first fault"
				break
			}
			rise := b.metrics[i] - a.metrics[i]
			stretch := fmt.Sprintf("from %.1fs to %.1fs", r.t(a.at), r.t(b.at))
			switch {
			case e.MaxRate > 0:
				secs := b.at.Sub(a.at).Seconds()
				o.Value = rise / secs
				o.Pass = o.Value <= e.MaxRate
				o.Observed = fmt.Sprintf("%.3g/s (%+g over %.1fs) %s", o.Value, rise, secs, stretch)
			case e.MaxShare > 0:
				whole := b.of[i] - a.of[i]
				if !b.found[i] {
					o.Observed = fmt.Sprintf("no series matches %s %s: is there such an instance or label?", labelText(e.Metric, e.Labels), stretch)
					break
				}
				if whole <= 0 {
					o.Observed = fmt.Sprintf("the whole (%s) did not rise %s: no share to judge", labelText(e.Metric, e.Of), stretch)
					break
				}
				o.Value = rise / whole
				o.Pass = o.Value <= e.MaxShare
				o.Observed = fmt.Sprintf("%.2f%% (%g of %g) %s", 100*o.Value, rise, whole, stretch)
			default:
				o.Value = rise
				o.Pass = o.Value > 0 == e.Increases
				o.Observed = fmt.Sprintf("%g → %g (%+g) %s", a.metrics[i], b.metrics[i], o.Value, stretch)
			}
		case e.Kind() == ExpectGoodput:
			ok, total := r.goodput(ffrom, fto)
			if total == 0 {
				o.Observed = "no requests ended during the faults"
				break
			}
			o.Value = float64(ok) / float64(total)
			o.Pass = o.Value >= e.Goodput
			o.Observed = fmt.Sprintf("%.2f%% (%d ok of %d)", 100*o.Value, ok, total)
		}
		r.rep.Expectations = append(r.rep.Expectations, o)
	}
}

func (r *run) evalSLI(o *Outcome, e Expectation, exp *Phase, ffrom, fto time.Time, fok bool) {
	var from, to time.Time
	switch e.During {
	case "", DuringFaults:
		if !fok {
			o.Observed = "nothing: no fault was added"
			return
		}
		from, to = ffrom, fto
	case DuringExperiment:
		from, to = exp.Started, exp.Ended
	case DuringAfter:
		p := r.phase(PhaseAfter)
		if p == nil {
			o.Observed = "nothing: the check after the experiment did not run"
			return
		}
		from, to = p.Started, p.Ended
	}
	s, _ := r.d.sli(e.SLI)
	idx := 0
	for i, x := range r.d.SteadyState.SLIs {
		if x.Name == e.SLI {
			idx = i
		}
	}
	bound := expectBound(s, e)
	a, b, ok := r.smp.window(from, to)
	if !ok {
		o.Observed = "no metrics sampled in the stretch"
		return
	}
	v := over(s, a.slis[idx], b.slis[idx])
	if !v.OK {
		o.Observed = fmt.Sprintf("no requests from %.1fs to %.1fs", r.t(a.at), r.t(b.at))
		return
	}
	o.Value, o.Pass = v.V, v.V <= bound
	o.Observed = fmt.Sprintf("%s over %.0f requests, %.1fs to %.1fs", format(s.Kind(), v.V), v.Requests, r.t(a.at), r.t(b.at))
}

// goodput counts the experiment load's requests that ended in the seconds overlapping
// [from, to], and those that succeeded.
func (r *run) goodput(from, to time.Time) (ok, total uint64) {
	if r.res == nil {
		return 0, 0
	}
	f, t := from.Sub(r.res.Start), to.Sub(r.res.Start)
	for _, s := range r.res.Series {
		if s.At < t && s.At+time.Second > f {
			ok += s.OK
			total += s.OK + s.Errors
		}
	}
	return ok, total
}

func expectBound(s SLI, e Expectation) float64 {
	switch {
	case e.MaxErrorRatio > 0:
		return e.MaxErrorRatio
	case e.MaxP99 > 0:
		return e.MaxP99.Seconds()
	}
	return s.Bound()
}

// expectText is an expectation for people: "bff-errors ≤ 5.00% during the faults".
func expectText(d *Drill, e Expectation) string {
	switch e.Kind() {
	case ExpectAudit:
		return "the shop settles, consistent: every order paid, closed or pending with its stock and payments, stock conserved"
	case ExpectMetric:
		m := labelText(e.Metric, e.Labels)
		var span string
		if e.Within > 0 {
			span = fmt.Sprintf("within %v of the first fault", e.Within)
		} else {
			span = "while the faults last"
		}
		switch {
		case e.MaxRate > 0:
			return fmt.Sprintf("%s rises by at most %g/s %s", m, e.MaxRate, span)
		case e.MaxShare > 0:
			return fmt.Sprintf("%s is at most %.0f%% of %s %s", m, 100*e.MaxShare, labelText(e.Metric, e.Of), span)
		}
		verb := "rises"
		if !e.Increases {
			verb = "does not rise"
		}
		if e.Within > 0 {
			return fmt.Sprintf("%s %s within %v of the first fault", m, verb, e.Within)
		}
		return fmt.Sprintf("%s %s while the faults last", m, verb)
	case ExpectGoodput:
		return fmt.Sprintf("goodput ≥ %.2f%% during the faults", 100*e.Goodput)
	}
	s, _ := d.sli(e.SLI)
	during := e.During
	if during == "" {
		during = DuringFaults
	}
	return fmt.Sprintf("%s ≤ %s during the %s", e.SLI, format(s.Kind(), expectBound(s, e)), during)
}

// labelText is a metric with its label matchers: name{a="1",b="2"}.
func labelText(metric string, labels map[string]string) string {
	if len(labels) == 0 {
		return metric
	}
	var ls []string
	for k, v := range labels {
		ls = append(ls, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(ls)
	return metric + "{" + strings.Join(ls, ",") + "}"
}
