// Package drill runs game-day drills: a steady-state hypothesis checked before, during
// and after faults injected into a running Redline through its admin API (chaos/faults),
// under load (stress/load, stress/scenario), with a guard that stops everything when the
// system strays too far. `redline drill FILE` is its CLI.
//
//	d, err := drill.Load("note-slow.yaml") // parsed, validated, scenario resolved: nothing sent
//	rep, err := drill.Run(ctx, d, drill.Env{AdminToken: token, SRE: "http://127.0.0.1:9200", Progress: os.Stderr})
//	_, _, err = drill.WriteFiles("out", rep) // drill.json and a self-contained drill.html
//	// rep.Verdict: passed, failed, aborted, not-steady, rollback-failed or error
//
// # Format
//
// A drill is one YAML document. Unknown fields are errors, and every error names the file,
// the line, the field path and the reason ("note-slow.yaml:13: faults[0].spec.delay: "slow"
// is not a duration such as 250ms"). Durations are Go durations: 250ms, 10s, 2m.
//
//	name: note-slow                    # required, a DNS label
//	description: One slow note path; the BFF degrades and the SLO holds.
//	target: {bff: http://127.0.0.1:8080, admin: http://127.0.0.1:9090}   # defaults; Env and the CLI override
//	steady_state:                      # required: the hypothesis
//	  window: 10s                      # every SLI is computed over the trailing window
//	  slis:                            # at least one; each with exactly one bound
//	    - {name: bff-errors, service: bff, transport: http, routes: ["GET /v1/notes/{id}"], max_error_ratio: 0.01}
//	    - {name: bff-p99, service: bff, max_p99: 250ms}
//	load: {scenario: rednote, rate: 50, duration: 60s, lane: ""}    # required
//	faults:                            # at least one
//	  - at: 10s                        # from the experiment's load start
//	    for: 30s                       # removed at at+for, which must be within load.duration
//	    spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}
//	expect:
//	  - {sli: bff-errors, during: faults, max_error_ratio: 0.05}
//	  - {metric: redline_ha_breaker_decisions_total, labels: {result: reject}, increases: true, within: 2s}
//	  - {goodput: 0.9}
//	abort: {max_error_ratio: 0.5, max_p99: 2s}
//	guard_interval: 1s                 # default 1s, at least 100ms, at most the window
//	rollback_check: 10s                # default: the window; 0s skips the rehearsal
//
// An SLI reads the RED metrics every service keeps, from the admin endpoint's /metrics
// (sre/slo's Scrape): the requests of service on transport (http, the default, or grpc),
// on routes (their route labels; none means every route), in lane ("" is the load's lane,
// "baseline" traffic without a lane). max_error_ratio bounds server errors ÷ requests, a
// server error being what sre/slo counts against availability (HTTP 5xx; gRPC Internal,
// Unavailable, DeadlineExceeded, Unknown, DataLoss, Unimplemented). max_p99 bounds the 99th
// percentile of the server's duration histogram, interpolated in its bucket as Prometheus'
// histogram_quantile does. Both are computed by differencing the cumulative counters of
// two samples: a window without requests has no value, which fails a steady-state check and
// never trips the guard.
//
// load runs the scenario (a built-in name such as rednote, or a scenario file relative
// to the drill's directory, checked against the BFF's routes) at rate journeys a second.
// Each phase runs its own stretch of it. rate 0 sends nothing, and the SLIs then read
// whatever traffic the system has. A lane needs a lane token in Env.Header (the CLI signs
// one with stress.key).
//
// A fault's spec is a chaos/faults Spec, checked by Spec.Validate. ttl and until are
// refused: the drill gives each fault a ttl of its life plus TTLMargin (10s), so a fault
// expires by itself if the drill's process dies. Mind what sits above a fault: the BFF
// serves its last good response for a GET whose handler fails with Unavailable
// (ha/degrade), so an error fault meant to show at the BFF uses code Internal (500).
//
// An expectation is exactly one of:
//
//   - sli: the SLI over a stretch, within max_error_ratio or max_p99 (default: the SLI's own
//     bound). during is faults (the default: from the first fault added to the last one
//     removed), experiment (the experiment's load, start to end) or after (the check after).
//   - metric: the metric (a counter's, gauge's or untyped value, a histogram's or
//     summary's count, summed over the series whose labels include labels) rises
//     (increases: true) or stays put (false), from just before the first fault to within
//     after it (default: to the end of the faults).
//   - goodput: the experiment load's ok responses ÷ requests, over the seconds that overlap
//     the faults, at least this. It needs load.rate > 0.
//
// abort sets the guard's bounds: max_error_ratio for every error-ratio SLI, max_p99 for
// every p99 SLI; each defaults to the SLI's own bound × AbortFactor (5), and may not be
// below it.
//
// Drill.Scale multiplies every span of time (window, load duration, at, for, within,
// guard_interval, rollback_check) for a quick run (`redline drill --duration-scale 0.1`);
// latency bounds and fault delays stay as they are.
//
// # Phases
//
//  1. steady-state: the load runs for window; every SLI over it must be within its bound.
//     If not, the drill ends, not-steady, and nothing is injected.
//  2. rollback-rehearsal (when rollback_check > 0): under load, every fault is added at
//     once (POST /chaos/faults, ttl rollback_check + 10s), held for rollback_check, removed
//     (DELETE /chaos/faults/{id}), and then, sampling every guard interval, the SLIs over
//     the time since the removal (at most window) must be within their bounds by
//     rollback_check after it. If not, the drill ends, rollback-failed: a fault the system
//     does not recover from is not one to run an experiment with.
//  3. experiment: the load runs for load.duration; each fault is added at at and removed
//     at at+for from the load's start; the guard is armed.
//  4. after: the load runs for window again and the steady state must hold, also after an
//     abort: a system that recovered is worth knowing about.
//
// Then the expectations are judged and the verdict given: error when the drill could not
// go on (an API refused a fault, ctx ended), aborted when the guard tripped, not-steady,
// rollback-failed, failed when an expectation or the check after failed, else passed.
// Whatever the verdict, every fault the drill added and did not remove is removed by id
// before Run returns.
//
// # The guard
//
// One goroutine samples the metrics every guard_interval from the drill's start to its
// end, and computes each SLI over the trailing window; the samples are the plots' points.
// While armed (the rehearsal and the experiment), it judges each sample: the first one with
// an SLI beyond its abort bound trips it. Tripping cancels the load and the fault schedule
// and then calls DELETE /chaos/faults, which removes every fault of the process, not only
// the drill's: it is the big red button. The guard acts on the sample that breached,
// before it takes another, so it acts within one interval of the breach: the SLI crossed
// its bound between the last sample within bounds and the one that breached, and the
// report records both (GuardAbort.LastOKAt, BreachAt) and when the faults were cleared
// (ActedAt). A guard that cannot read the metrics three times in a row while armed trips
// too: a drill must not run blind. A fault being added when the guard trips is removed by
// the same DELETE, and no fault is added after it.
//
// # Incident timeline
//
// With Env.SRE set, the drill is recorded on an incident of the SRE API: opened (POST
// /v1/incidents) with title "drill NAME", the first SLI's service, severity SEV4 and no
// escalation policy, so nobody is paged; a "drill" timeline entry for each phase, fault,
// guard abort and the verdict; resolved at the end. A failure there is a warning in the
// report: the record is not what keeps the drill safe.
//
// # Report
//
// Report is the verdict and its reason, each phase with the SLI values it was judged by,
// each fault as added and removed (and by whom: schedule, guard or cleanup), each
// expectation with the observed value, the guard's decisions (armed, disarmed, blind,
// abort) and each SLI's points over time. WriteHTML renders it as one self-contained page
// whose plots shade the faults on the time axis and mark the phases and the abort.
package drill
