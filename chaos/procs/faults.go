package procs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	chaosfaults "github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/kit/errs"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// DefaultFaultTimeout bounds each call of a FaultFanout to a process's admin endpoint when
// NewFaultFanout is given no client.
const DefaultFaultTimeout = 5 * time.Second

// maxFaultAnswer bounds what a FaultFanout reads of a process's answer: room for the list
// of faults.MaxFaults faults.
const maxFaultAnswer = 8 << 20

// ReasonFaultsFailed is the reason of a fault API call that some process did not carry out
// (Unavailable): it could not be reached, answered what the fault API does not, or is
// paused. The metadata "procs" names the processes.
const ReasonFaultsFailed = "PROC_FAULTS_FAILED"

// FaultFanout serves the in-process fault API of chaos/faults for every process of a
// supervisor at once, by calling each process's own API on its admin address. It keeps no
// state: what a process holds is asked of the process.
//
// Only processes with an admin address serve the API. A running process is called. A
// paused one (SIGSTOP) cannot answer and keeps its faults, so it counts as failed without
// a call. A stopped or restarting one has no process, so no faults: reads and removals skip
// it, and a fault for it is refused (412) rather than lost when it starts again.
type FaultFanout struct {
	procs func() []Info
	token string
	hc    *http.Client
}

// NewFaultFanout returns a fan-out over the processes that procs lists (Supervisor.List in
// production) whose Info has an Admin address. token is the processes' admin bearer token
// ("" for none). hc makes the calls, each bounded by its timeout; nil is a client with
// DefaultFaultTimeout.
func NewFaultFanout(procs func() []Info, token string, hc *http.Client) *FaultFanout {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultFaultTimeout}
	}
	return &FaultFanout{procs: procs, token: token, hc: hc}
}

// ProcFault is a fault active in one process, as GET /chaos/faults lists it.
type ProcFault struct {
	chaosfaults.Fault
	// Proc names the process the fault is active in.
	Proc string `json:"proc"`
}

// Unreachable is a process that could not be asked, and why.
type Unreachable struct {
	Proc  string `json:"proc"`
	Error string `json:"error"`
}

// FaultList is the answer of GET /chaos/faults.
type FaultList struct {
	// Faults are every process's faults: processes in the supervisor's order, each one's
	// faults in its match order.
	Faults []ProcFault `json:"faults"`
	// Unreachable are the processes whose faults are missing from Faults.
	Unreachable []Unreachable `json:"unreachable"`
}

// AddedFault is the answer of POST /chaos/faults.
type AddedFault struct {
	// Fault is the fault as the first process (in the supervisor's order) took it.
	chaosfaults.Fault
	// Procs are the processes that took it, in the supervisor's order.
	Procs []string `json:"procs"`
}

// Removed is the answer of DELETE /chaos/faults/{id} and DELETE /chaos/faults.
type Removed struct {
	// Removed counts the faults removed, over every process.
	Removed int `json:"removed"`
	// Unreachable are the processes a DELETE /chaos/faults/{id} could not ask: the fault
	// may stay in them until it expires. (A DELETE /chaos/faults that misses a process
	// fails instead.)
	Unreachable []Unreachable `json:"unreachable,omitempty"`
}

// Register adds the fault API for every process to mux (the supervisor's admin server,
// behind its token):
//
//	GET    /chaos/faults       FaultList: {"faults": [{...Fault, "proc": "note"}], "unreachable": [{"proc", "error"}]}
//	POST   /chaos/faults       a faults.Spec; 201 AddedFault: {...Fault, "procs": ["note"]}
//	DELETE /chaos/faults/{id}  Removed: {"removed": N}; 404 when no process has it
//	DELETE /chaos/faults       Removed: {"removed": N}; 503 when a process was not cleared
//
// Errors are the errs JSON body of the kit's HTTP transport.
func (f *FaultFanout) Register(mux Mux) {
	mux.Handle("GET /chaos/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kithttp.WriteJSON(w, http.StatusOK, f.list(r.Context()))
	}))
	mux.Handle("POST /chaos/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		added, err := f.add(r.Context(), r.Body)
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusCreated, added)
	}))
	mux.Handle("DELETE /chaos/faults/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		removed, err := f.remove(r.Context(), r.PathValue("id"))
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, removed)
	}))
	mux.Handle("DELETE /chaos/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		removed, err := f.clear(r.Context())
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, removed)
	}))
}

// list asks every process for its faults.
func (f *FaultFanout) list(ctx context.Context) FaultList {
	procs := f.served()
	answers := f.fanout(ctx, procs, http.MethodGet, "/chaos/faults", nil)
	out := FaultList{Faults: []ProcFault{}, Unreachable: []Unreachable{}}
	for i, a := range answers {
		if a.skip {
			continue
		}
		var l struct {
			Faults []chaosfaults.Fault `json:"faults"`
		}
		if err := a.expect(http.StatusOK, &l); err != nil {
			out.Unreachable = append(out.Unreachable, Unreachable{Proc: procs[i].Name, Error: errs.From(err).Message})
			continue
		}
		for _, ft := range l.Faults {
			out.Faults = append(out.Faults, ProcFault{Fault: ft, Proc: procs[i].Name})
		}
	}
	return out
}

// add checks the spec in body as a process would, gives it an id when it has none, and
// adds it to its targets: all or none.
func (f *FaultFanout) add(ctx context.Context, body io.Reader) (AddedFault, error) {
	var spec chaosfaults.Spec
	if err := kithttp.DecodeJSON(body, chaosfaults.MaxBody, &spec); err != nil {
		return AddedFault{}, err
	}
	if err := spec.Validate(); err != nil {
		return AddedFault{}, err
	}
	targets, err := f.addTargets(spec.Service)
	if err != nil {
		return AddedFault{}, err
	}
	if spec.ID == "" {
		spec.ID = chaosfaults.NewID()
	}

	answers := f.fanout(ctx, targets, http.MethodPost, "/chaos/faults", spec)
	var first error
	added := AddedFault{Procs: []string{}}
	var undo []Info // every target that took the fault, or may have: its answer was lost
	for i, a := range answers {
		var ft chaosfaults.Fault
		err := a.expect(http.StatusCreated, &ft)
		if err == nil {
			if len(added.Procs) == 0 {
				added.Fault = ft
			}
			added.Procs = append(added.Procs, targets[i].Name)
		}
		if err == nil || a.err != nil || a.status == http.StatusCreated {
			undo = append(undo, targets[i])
		}
		if err != nil && first == nil {
			first = named(targets[i].Name, err)
		}
	}
	if first == nil {
		return added, nil
	}
	return AddedFault{}, f.undo(ctx, spec.ID, undo, first)
}

// addTargets returns the processes a fault for service goes to: that one, or every one
// when service is empty. Each must run, or the fault would be missing from it.
func (f *FaultFanout) addTargets(service string) ([]Info, error) {
	all := f.served()
	if len(all) == 0 {
		return nil, errs.New(codes.Unavailable, ReasonFaultsFailed, "no process serves the fault API: none has an admin address")
	}
	targets := all
	if service != "" {
		targets = nil
		for _, in := range all {
			if in.Name == service {
				targets = []Info{in}
			}
		}
		if targets == nil {
			names := make([]string, len(all))
			for i, in := range all {
				names[i] = in.Name
			}
			return nil, errs.InvalidArgument(chaosfaults.ReasonBadFault,
				"fault: service: %q is not a process of this supervisor; the processes are %s (or leave service empty for all)",
				service, strings.Join(names, ", ")).WithMetadata("field", "service")
		}
	}
	for _, in := range targets {
		if in.State == Running {
			continue
		}
		if service == "" {
			return nil, errs.Newf(codes.FailedPrecondition, ReasonState, "fault not added: %s is %s, and a fault without service goes to every "+
				"process; add it once %s runs, or name a service", in.Name, stateText(in), in.Name).WithMetadata("procs", in.Name)
		}
		return nil, errs.Newf(codes.FailedPrecondition, ReasonState, "fault not added: %s is %s; add it once it runs", in.Name, stateText(in)).
			WithMetadata("procs", in.Name)
	}
	return targets, nil
}

// undo removes fault id from the processes in took after the add failed with failure (an
// *errs.Error of named), so that no process keeps half a write, and returns failure saying
// what it undid.
func (f *FaultFanout) undo(ctx context.Context, id string, took []Info, failure error) error {
	e := errs.From(failure)
	if len(took) == 0 {
		return e
	}
	// The fault must go even when the caller has gone.
	answers := f.fanout(context.WithoutCancel(ctx), took, http.MethodDelete, "/chaos/faults/"+url.PathEscape(id), nil)
	var gone, stuck []string
	for i, a := range answers {
		if err := a.expect(http.StatusOK, nil); err == nil || a.notFound() {
			gone = append(gone, took[i].Name)
		} else {
			stuck = append(stuck, took[i].Name+" ("+errs.From(err).Message+")")
		}
	}
	e.Message += "; fault " + id + " not added"
	if len(gone) > 0 {
		e.Message += ", removed again from " + strings.Join(gone, ", ")
	}
	if len(stuck) > 0 {
		e.Message += "; NOT removed from " + strings.Join(stuck, ", ") + ", which may hold it until it expires"
	}
	return e
}

// remove removes fault id from every process that has it.
func (f *FaultFanout) remove(ctx context.Context, id string) (Removed, error) {
	procs := f.served()
	answers := f.fanout(context.WithoutCancel(ctx), procs, http.MethodDelete, "/chaos/faults/"+url.PathEscape(id), nil)
	var out Removed
	var failed []string
	for i, a := range answers {
		if a.skip || a.notFound() {
			continue
		}
		var r Removed
		if err := a.expect(http.StatusOK, &r); err != nil {
			out.Unreachable = append(out.Unreachable, Unreachable{Proc: procs[i].Name, Error: errs.From(err).Message})
			failed = append(failed, procs[i].Name)
			continue
		}
		out.Removed += r.Removed
	}
	switch {
	case out.Removed > 0:
		return out, nil
	case len(failed) > 0:
		return Removed{}, errs.Newf(codes.Unavailable, ReasonFaultsFailed, "fault %q: no process that answered has it, but %s did not answer",
			id, unreachableText(out.Unreachable)).WithMetadata("procs", strings.Join(failed, ","))
	}
	return Removed{}, errs.NotFound(chaosfaults.ReasonFaultNotFound, "no process has an active fault %q", id)
}

// clear removes every fault of every process. A process it could not clear makes it fail,
// after clearing the others: a partial clear is not a clear.
func (f *FaultFanout) clear(ctx context.Context) (Removed, error) {
	procs := f.served()
	// The big red button must finish even when the caller has gone.
	answers := f.fanout(context.WithoutCancel(ctx), procs, http.MethodDelete, "/chaos/faults", nil)
	var out Removed
	var missed []Unreachable
	var failed []string
	for i, a := range answers {
		if a.skip {
			continue
		}
		var r Removed
		if err := a.expect(http.StatusOK, &r); err != nil {
			missed = append(missed, Unreachable{Proc: procs[i].Name, Error: errs.From(err).Message})
			failed = append(failed, procs[i].Name)
			continue
		}
		out.Removed += r.Removed
	}
	if len(failed) > 0 {
		return Removed{}, errs.Newf(codes.Unavailable, ReasonFaultsFailed,
			"faults NOT cleared in %s; %d removed in the other processes; clear again when they answer",
			unreachableText(missed), out.Removed).
			WithMetadata("procs", strings.Join(failed, ",")).WithMetadata("removed", strconv.Itoa(out.Removed))
	}
	return out, nil
}

// served returns the processes that serve the fault API: those with an admin address.
func (f *FaultFanout) served() []Info {
	var out []Info
	for _, in := range f.procs() {
		if in.Admin != "" {
			out = append(out, in)
		}
	}
	return out
}

// answer is what one process answered a call.
type answer struct {
	// skip: there is no process to ask (stopped or restarting), hence no faults.
	skip   bool
	status int
	body   []byte
	// err is why there is no answer: a transport failure, or a paused process.
	err error
}

// fanout sends method path with body (nil for none) to every running process in procs at
// once and returns their answers, in the order of procs.
func (f *FaultFanout) fanout(ctx context.Context, procs []Info, method, path string, body any) []answer {
	out := make([]answer, len(procs))
	var wg sync.WaitGroup
	for i, in := range procs {
		switch in.State {
		case Running:
			wg.Go(func() { out[i] = f.call(ctx, in, method, path, body) })
		case Paused:
			out[i].err = fmt.Errorf("%s: it cannot answer, and keeps its faults until it resumes", stateText(in))
		default:
			out[i].skip = true
		}
	}
	wg.Wait()
	return out
}

func (f *FaultFanout) call(ctx context.Context, in Info, method, path string, body any) answer {
	resp, raw, err := kithttp.CallJSON(ctx, f.hc, method, "http://"+in.Admin+path, f.token, body, maxFaultAnswer+1)
	if err != nil {
		return answer{err: err}
	}
	if len(raw) > maxFaultAnswer {
		return answer{err: fmt.Errorf("%s http://%s%s: the answer is larger than %d bytes", method, in.Admin, path, maxFaultAnswer)}
	}
	return answer{status: resp.StatusCode, body: raw}
}

// expect decodes the answer into dst (nil: no decoding) when the process answered status
// want. Otherwise the error is the process's own errs body, with its status; or, for no
// answer, a refused token or an answer that is not the fault API's, Unavailable.
func (a answer) expect(want int, dst any) error {
	switch {
	case a.err != nil:
		return errs.New(codes.Unavailable, ReasonFaultsFailed, a.err.Error())
	case a.status == want:
		if dst == nil || json.Unmarshal(a.body, dst) == nil {
			return nil
		}
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		// Passed on, it would tell the caller that its own token is wrong.
		return errs.Newf(codes.Unavailable, ReasonFaultsFailed, "refused the supervisor's admin token (%d): "+
			"give every process the supervisor's admin.token", a.status)
	default:
		var b errs.Body
		if json.Unmarshal(a.body, &b) == nil && b.Error.Reason != "" {
			return errs.FromBody(a.status, b)
		}
	}
	body := strings.TrimSpace(string(a.body))
	if len(body) > 200 {
		body = body[:200] + "..."
	}
	return errs.Newf(codes.Unavailable, ReasonFaultsFailed, "answered %d %q, not what the fault API answers", a.status, body)
}

// notFound reports whether the process answered that it has no such fault.
func (a answer) notFound() bool {
	var b errs.Body
	return a.err == nil && a.status == http.StatusNotFound && json.Unmarshal(a.body, &b) == nil &&
		b.Error.Reason == chaosfaults.ReasonFaultNotFound
}

// named returns err with its message prefixed by the process's name, and the name in the
// metadata "procs".
func named(name string, err error) error {
	e := errs.From(err).WithMetadata("procs", name)
	e.Message = name + ": " + e.Message
	return e
}

// unreachableText renders "a (why), b (why)".
func unreachableText(us []Unreachable) string {
	parts := make([]string, len(us))
	for i, u := range us {
		parts[i] = u.Proc + " (" + u.Error + ")"
	}
	return strings.Join(parts, ", ")
}

// stateText says what a process that does not run is: "paused until 15:04:05", "stopped".
func stateText(in Info) string {
	if in.State == Paused && in.PausedUntil != nil {
		return "paused until " + in.PausedUntil.UTC().Format(time.RFC3339)
	}
	return string(in.State)
}
