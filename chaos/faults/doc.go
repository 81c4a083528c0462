// Package faults decides the faults of kit/fault: a Registry holds rules ("faults") set at
// run time through the admin API or the config, and as the process's fault.Injector makes
// the calls they match slow, fail, hang, drop their connection or lose their message.
//
// Wire it up once per process:
//
//	reg := faults.New(faults.WithLogger(logger))
//	restore := fault.Install(reg)
//	reg.Register(adminServer)        // the admin API below
//	err := reg.SetConfig(cfg.Chaos.Faults) // on start and on every reload
//
// # Spec
//
// A fault is a Spec, in JSON for the admin API and in YAML under chaos.faults in the config.
// Field names are the same in both. Durations are strings such as "250ms" or "5m".
//
// The scope fields pick the calls. An empty field matches any value:
//
//   - service: the service the call runs in.
//   - instance: the server instance the call runs in, for a service served by several
//     servers (`redline up` with note.replicas: 2 runs "note" and "note-2"). Only server
//     calls of http and grpc run in an instance: a fault with an instance never matches a
//     client or data call, and one with side: client or a data kind is refused. The name is
//     a DNS label: 1 to 63 of [a-z0-9-], starting and ending with a letter or digit. A
//     drill slows one replica this way and watches the balancer steer around it.
//   - kind: http, grpc, sql, cache or queue.
//   - side: server or client. Data clients (sql, cache, queue) have only a client side.
//   - target: the service that a client calls (http and grpc clients only).
//   - op: the operation, matched exactly ("GET /v1/notes/{id}", "/note.v1.Note/GetNote", "query")
//     or by prefix when it ends in "*" ("GET /v1/*", "/note.v1.Note/*").
//   - lane: "" for all traffic; "baseline" for requests that carry no lane; otherwise only
//     requests in that lane (kit/meta's lane names: 1 to 32 of [a-z0-9-], starting with a
//     letter). A lane-scoped fault never touches baseline traffic, so a drill can break a
//     stress lane while real users see nothing.
//   - percent: the share of matching calls hit, in (0, 100]. Omitted or 0 means 100.
//
// The type field is the action:
//
//   - delay: the call waits delay (> 0), plus a uniform extra in [0, jitter] when jitter is
//     set, then goes on. It fails with the context's error if the context ends first.
//   - error: the call fails with an *errs.Error with reason FAULT_INJECTED. code is a gRPC
//     code name ("Unavailable", also "UNAVAILABLE") or an HTTP status. A status maps to the
//     gRPC code that the transport answers with it, the inverse of errs.HTTPStatus: 503 is
//     Unavailable, 500 Internal, 504 DeadlineExceeded, 429 ResourceExhausted, 404 NotFound.
//     Statuses that no code answers with, such as 502, are refused. message is optional.
//   - abort: the connection drops. The error satisfies errors.Is(err, fault.ErrAbort) and
//     is an *errs.Error with code Unavailable. HTTP servers drop the connection, and other
//     transports fail with Unavailable.
//   - timeout: the call hangs until its context is done, then fails with DeadlineExceeded
//     (or Canceled, if the caller gave up). If the context has no deadline, the call waits
//     at most max_wait (default 30s).
//   - drop: a queue message is silently lost (fault.ErrDrop). Only kind: queue may drop.
//
// Some fields are refused outside their type: delay and jitter are for delay, code and
// message for error, max_wait for timeout. Delays and waits are capped at MaxDelay (1h).
//
// Each fault expires, so a forgotten drill cannot outlive its hour. Give either ttl or
// until, not both:
//
//   - ttl: the fault's life, at most MaxTTL (1h by default; see WithMaxTTL).
//   - until: an RFC 3339 time. For an API fault it must be in the future and no further
//     ahead than MaxTTL.
//   - With neither, the fault gets DefaultTTL (5m).
//
// An expired fault never matches. The clock is checked on every matching call, and
// expired faults are removed and logged lazily.
//
// reason is free text saying who set the fault and why. id names the fault
// ([a-z0-9-]{1,40}). If id is empty, an API fault gets a random one and a config fault
// gets one derived from its content ("cfg-…").
//
// Examples, as JSON bodies of POST /chaos/faults:
//
//	{"type": "delay", "service": "note", "kind": "http", "side": "server", "op": "GET /v1/notes/*", "delay": "300ms", "jitter": "100ms", "percent": 50, "ttl": "10m", "reason": "drill 12: slow notes"}
//	{"type": "error", "service": "feed", "kind": "grpc", "side": "client", "target": "note", "code": 503, "message": "note is down", "lane": "red"}
//	{"type": "delay", "service": "note", "instance": "note-2", "kind": "grpc", "side": "server", "op": "/note.v1.Note/GetNote", "delay": "150ms", "reason": "one slow replica"}
//	{"type": "abort", "service": "gateway", "kind": "http", "side": "server", "percent": 5}
//	{"type": "timeout", "service": "order", "kind": "sql", "op": "exec", "max_wait": "5s", "lane": "baseline"}
//	{"type": "drop", "service": "search", "kind": "queue", "op": "note.*", "until": "2026-11-25T20:00:00Z"}
//
// and in the config:
//
//	chaos:
//	  faults:
//	    - type: error
//	      service: payment
//	      kind: http
//	      side: client
//	      code: Unavailable
//	      percent: 10
//	      ttl: 30m
//	      reason: game day, payment provider outage
//
// Spec.Validate checks a spec on its own, and ParseSpec decodes and validates JSON
// strictly. Errors are InvalidArgument with reason BAD_FAULT. The message names the field
// (`fault: delay: "abc" is not a duration such as 250ms`), and so does the metadata
// "field".
//
// # Matching
//
// Faults are tried in order: API faults in the order they were added, then config faults
// in config order. The first fault whose scope matches, that has not expired, whose lane
// fits and that wins its percent draw acts on the call. A fault that loses its draw lets
// the next one try. When no fault's scope matches, Inject allocates nothing.
//
// # Config
//
// SetConfig replaces the config faults as a whole: every spec is checked first, and
// nothing changes on any error. A config fault's ttl counts from the first time its exact
// content appeared in the config, so a reload does not extend it. A changed spec is a new
// fault with a fresh ttl. A config fault that expired, was removed or was cleared stays
// gone while its spec stays in the config unchanged. A spec that leaves the config ends
// its fault. This state lives in memory, so a restart starts every ttl afresh.
//
// # Admin API
//
// Register adds, to the admin server:
//
//	GET    /chaos/faults       the active faults: {"faults": [...]}
//	POST   /chaos/faults       add one (a Spec, at most 64 KiB): 201 with the Fault; 400 naming the field
//	DELETE /chaos/faults/{id}  remove one: {"removed": 1}; 404 if it is not active
//	DELETE /chaos/faults       remove all, the big red button: {"removed": N}
//	GET    /chaos/events       added, removed, expired and cleared, oldest first: {"events": [...]}
//
// Events (the last MaxEvents) carry a time, the fault id and a one-line description, so a
// drill report can mark faults on its time axis.
//
// # Metrics
//
// redline_chaos_fault_injections_total{service,kind,type} counts the calls hit, and
// redline_chaos_faults_active is the number of faults active now.
package faults
