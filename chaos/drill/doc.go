// Package drill runs game-day drills: a steady-state hypothesis checked before, during
// and after faults injected into a running Redline through its admin API (chaos/faults),
// under load (stress/load, stress/scenario), with a guard that stops everything when the
// system strays too far. `redline drill FILE` is its CLI.
//
//	d, err := drill.Load("note-slow.yaml") // or a built-in name: "redis-down"; nothing sent
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
//	                                   # (procs: the supervisor of `up --procs`, for proc faults)
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
//	  - {at: 45s, for: 5s, proc: {name: order, action: kill}}   # under `up --procs` only
//	  - {at: 20s, for: 10s, net: {proxy: redis, outage: true}}  # with chaos.net.enabled
//	expect:
//	  - {sli: bff-errors, during: faults, max_error_ratio: 0.05}
//	  - {metric: redline_ha_breaker_decisions_total, labels: {result: reject}, increases: true, within: 2s}
//	  - {goodput: 0.9}
//	  - {metric: redline_ha_balancer_picks_total, labels: {instance: note-2}, max_share: 0.2, of: {service: note}}
//	  - {metric: redline_ha_quota_decisions_total, labels: {decision: admit}, max_rate: 55}
//	  - {audit: checkout, settle: 60s}
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
// A fault is one of spec, proc and net. A fault's spec is a chaos/faults Spec, checked by
// Spec.Validate. ttl and until are
// refused: the drill gives each fault a ttl of its life plus TTLMargin (10s), so a fault
// expires by itself if the drill's process dies. Mind what sits above a fault: the BFF
// serves its last good response for a GET whose handler fails with Unavailable
// (ha/degrade), so an error fault meant to show at the BFF uses code Internal (500).
//
// A proc fault is a process fault through the supervisor of `redline up --procs`
// (chaos/procs, POST /chaos/procs/{name}/{action} at target.procs or Env.Procs): action kill
// (SIGKILL; the supervisor starts the process again after for) or pause (SIGSTOP for for).
// Two proc faults on one process may not overlap; one whose process is still starting
// from an earlier fault waits for it, up to 10s. Both actions end by themselves, as a ttl
// ends an in-process fault; removing one early (the
// schedule, the guard, the cleanup) starts or resumes the process at once. Under --procs
// the SLIs are read from Env.Admin, which is then one process's admin endpoint (the CLI
// takes the BFF's from the supervisor's process list), and in-process faults go to the
// supervisor's /chaos/faults, which adds each to the process of its service (every
// process when it names none) and whose DELETE clears every process; the guard brings
// the processes back before it clears, as a paused one cannot answer.
//
// An expectation is exactly one of:
//
//   - sli: the SLI over a stretch, within max_error_ratio or max_p99 (default: the SLI's own
//     bound). during is faults (the default: from the first fault added to the last one
//     removed), experiment (the experiment's load, start to end) or after (the check after).
//   - metric: the metric (a counter's, gauge's or untyped value, a histogram's or
//     summary's count, summed over the series whose labels include labels) rises
//     (increases: true, from just before the first fault is added) or stays put (false,
//     from the first sample once it is in) until within after it (default: to the end of
//     the faults).
//     Instead of increases, max_rate bounds the rise a second (admitted requests stay
//     within a rate limit), and max_share with of bounds the rise of the series matching
//     labels as a share of the rise of those matching of (an instance's share of the
//     picks), both from the first sample once the fault is in; a max_share whose whole did
//     not rise, or whose part matches no series at all (no such instance), fails rather
//     than pass on nothing.
//   - goodput: the experiment load's ok responses ÷ requests, over the seconds that overlap
//     the faults, at least this. It needs load.rate > 0.
//   - audit: checkout asks GET /chaos/audit/checkout (services/stack's CheckoutAudit, at
//     the supervisor under --procs, else the admin endpoint) before the steady-state check
//     and, after the check after the experiment, every second until the shop has settled
//     (no order being created, no payment pending; at most settle, default 30s). It holds
//     when the audit after finds no inconsistency (a paid order without its confirmed
//     stock or its payment, a closed one with stock still held or a payment taken, a
//     payment or reservation without its order) and every SKU's stock plus reserved plus
//     sold is what it was before.
//
// abort sets the guard's bounds: max_error_ratio for every error-ratio SLI, max_p99 for
// every p99 SLI; each defaults to the SLI's own bound × AbortFactor (5), and may not be
// below it.
//
// Drill.Scale multiplies every span of time (window, load duration, at, for, within,
// guard_interval, rollback_check) for a quick run (`redline drill --duration-scale 0.1`);
// latency bounds and fault delays stay as they are.
//
// A net fault is an L4 fault on a proxy of chaos.net (chaos/netfault; `redline up` with
// chaos.net.enabled), through the admin endpoint's /chaos/net: {proxy: redis, outage: true}
// disables the proxy, so the dependency is gone, and enabling it is the removal; a toxic,
// {proxy: note, type: latency, attributes: {latency: 100ms}} (with stream, toxicity and the
// type's attributes as chaos/netfault takes them), is added and deleted by id. Its ttl, and
// an outage's, is the fault's life plus TTLMargin. When the guard trips on a drill with net
// faults it also calls DELETE /chaos/net, which removes every toxic and enables every proxy.
//
// # Built-in drills
//
// Builtin names the demo's game days, embedded in the binary (Load takes a name when no
// file has it; `redline drill --show NAME` prints one to copy). Each states in its comment
// how to start the stack it needs.
//
//   - redis-down: every cache call fails; note reads fall through to the database
//     (redline_note_reads_total{source="db"} rises, cache hits stop) and the read SLO holds.
//   - note-slow-instance: instance note-2 of `up --note.replicas 2` answers 30ms late;
//     P2C gives it at most 20% of the picks (redline_ha_balancer_picks_total) and the read
//     SLO holds.
//   - order-kill: under `up --procs`, order is killed twice and inventory once during
//     checkouts; the checkout audit finds every order consistent and the stock conserved.
//   - quota-down: every call to the quota service fails; the BFF's quota client falls back
//     (transitions to fallback) and admits notes_create at most at the global 50/s.
//   - payment-slow: the payment provider is 3s slow; the provider's breaker rejects, order
//     creation and the pay route's latency hold, and once the shop settles every payment
//     left pending has been charged by the retry loop (the audit).
//
// # Phases
//
//  1. steady-state: the load runs for window; every SLI over it must be within its bound.
//     If not, the drill ends, not-steady, and nothing is injected.
//  2. rollback-rehearsal (when rollback_check > 0): under load, every fault is added at
//     once (POST /chaos/faults, ttl rollback_check + 10s; a process named by several proc
//     faults only by its first), held for rollback_check, removed
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
