// Package procs supervises child processes and injects process faults into them: kill -9
// with a restart, stop until started again, pause (SIGSTOP) with a mandatory expiry, and a
// graceful restart. `redline up --procs` runs each service as a `redline serve` child of a
// Supervisor and serves its admin API.
//
// A Supervisor starts every Proc in New and keeps it running: a process that exits when
// nobody asked it to is a crash, restarted after a backoff that doubles from 100 ms to 5 s
// (WithBackoff) and starts again from the bottom once a process has run for a minute.
// Each child's stdout and stderr go, line by line, to one writer (WithOutput), every line
// prefixed with the child's name.
//
// # Faults
//
//   - Kill(name, after): SIGKILL; the supervisor starts the process again after `after`
//     (0: at once; at most MaxRestartAfter).
//   - Stop(name): SIGKILL; no restart until Start(name).
//   - Start(name): starts a stopped process (or one waiting for its restart) now.
//   - Pause(name, d): SIGSTOP, and SIGCONT after d (0: DefaultPause; at most MaxPause). A
//     pause always ends by itself, so a forgotten drill cannot freeze a service for good.
//   - Resume(name): SIGCONT now.
//   - Restart(name): SIGTERM, SIGKILL if the process still runs after the stop timeout
//     (WithStopTimeout, default 10 s), then a new start.
//
// Fault methods return at once with the process's Info; what follows a signal (the exit,
// the new start) happens in the background and shows in List. Asking for the state a
// process is already in (stop a stopped process, start or resume a running one) changes
// nothing. Asking what cannot be done (kill or pause a process that is not running) is a
// FailedPrecondition error; an unknown name is NotFound; a bad duration is InvalidArgument
// naming the field (restart_after, for).
//
// Pause expiries, restart delays, backoffs and the stop timeout of Restart are judged by
// the clock (WithClock), checked every 100 ms, so tests drive them with a fake clock.
// Close stops every child: SIGTERM, then SIGKILL for those still running after the stop
// timeout on the real clock; it returns once every child is reaped and every goroutine of
// the supervisor has ended.
//
// On Linux a child gets SIGKILL when the supervisor dies (PR_SET_PDEATHSIG), and children
// run in their own process group, so a Ctrl-C at the terminal reaches only the supervisor,
// which stops them in order.
//
// # Admin API
//
// Register adds, to the admin server:
//
//	GET  /chaos/procs                   {"procs": [Info...]}, in start order
//	POST /chaos/procs/{name}/kill       optional {"restart_after": "2s"}
//	POST /chaos/procs/{name}/stop
//	POST /chaos/procs/{name}/start
//	POST /chaos/procs/{name}/pause      optional {"for": "10s"} (default 30s, at most 10m)
//	POST /chaos/procs/{name}/resume
//	POST /chaos/procs/{name}/restart
//
// A process's Info carries its admin address ("admin") when its Proc gives one, so a drill
// can go from the supervisor to the process it hurt. Each POST answers 200 with the
// process's Info. Bodies are optional; an unknown field or
// a bad duration is 400 naming the field, an unknown process or action 404, and a fault
// the process's state does not allow 412. Errors are the errs JSON body of the kit's HTTP
// transport.
//
// A FaultFanout adds chaos/faults' API for every process at once, calling each process's
// own on its admin address with the admin token, concurrently, each call within 5 s:
//
//	GET    /chaos/faults       {"faults": [{...Fault, "proc": "note"}], "unreachable": [{"proc": "order", "error": "..."}]}
//	POST   /chaos/faults       a Spec, checked as a process checks it, with an id given if it has none; it
//	                           goes to the process named by its service, or to every process when
//	                           service is empty: 201 {...Fault, "procs": ["note"]}
//	DELETE /chaos/faults/{id}  {"removed": N} (with "unreachable" when some did not answer); 404 if none has it
//	DELETE /chaos/faults       {"removed": N}; 503 if any process was not cleared
//
// A POST is all or nothing: when a process refuses the fault, its error is the answer (its
// own 4xx, or 503 PROC_FAULTS_FAILED when it could not be reached) and the processes that
// took the fault lose it again. A service that names no process is 400 naming the field;
// a target that does not run is 412, since the fault would be missing when it starts.
// DELETE /chaos/faults, the big red button, clears every process it reaches even when some
// fail, and then answers 503 naming those (metadata "procs", and "removed" for what it
// removed elsewhere): a partial clear is not a clear. Stopped and restarting processes have
// no faults and are left out; a paused one keeps its faults and counts as not answering.
//
// # Metrics
//
// redline_chaos_proc_faults_total{proc,action} counts the faults asked for, and
// redline_chaos_proc_restarts_total{proc,cause} the starts after the first, by cause:
// crash (an unexpected exit) or fault.
package procs
