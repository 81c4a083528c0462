// Package slo provides service level objectives over Redline's own RED metrics: a YAML
// spec format that is a subset of OpenSLO v1, a Go API to declare an SLO next to a route,
// default SLOs for the demo services, and an in-process Evaluator of error budgets and
// multiwindow multi-burn-rate alerts on an injectable clock. Package sre/rules turns the
// same SLOs into Prometheus rules.
//
// # Usage
//
//	slos, err := slo.ParseFiles("slos/note.yaml")          // or slo.Defaults(), or in code:
//	s := slo.AvailabilitySLO("note", "/note.v1.Note/GetNote", 0.999, 30*slo.Day)
//	l := slo.LatencySLO("bff", "GET /v1/notes/{id}", 250*time.Millisecond, 0.99, 30*slo.Day)
//
//	e, err := slo.NewEvaluator(append(slos, s, l), slo.WithClock(clock.Real{}),
//		slo.WithNotify(func(a slo.Alert) { ... }))
//	// every 5 s, from the goroutine that owns e:
//	err = e.Sample(metric.Registry)
//	st, err := e.Status("note-get-availability") // windows, budget remaining, firing alerts
//
// The caller owns the sampling loop; the Evaluator starts no goroutine. Sample every 5 s
// (the fine bucket): sampling less often delays detection by up to one interval.
//
// A process that watches other processes samples their metrics pages, and keeps its
// budgets across its own restarts with a snapshot:
//
//	g := slo.Scrape([]string{"http://note:9090/metrics"}, adminToken, &http.Client{Timeout: 4 * time.Second})
//	if data, err := os.ReadFile(path); err == nil {
//		err = e.Restore(data)       // before the first Sample
//	}
//	err = e.Sample(g)               // an error: this sample is skipped, nothing recorded
//	data, err := e.Snapshot()       // now and then, and on shutdown
//	spent, err := e.Spent("note-get-availability", incident.Start, incident.End)
//
// # YAML format
//
// A file holds YAML documents of the kinds Service, SLI, AlertPolicy and SLO, all with
// apiVersion openslo/v1 and a metadata.name that is a DNS label. References resolve across
// the files given to ParseFiles. Fields outside this subset are errors, and every error
// names the file, the line, the field path and the reason:
//
//	invalid SLO spec: slos/note.yaml:64: spec.objectives[0].target: "high" is not a number
//
// Example (testdata/note.yaml has every variant):
//
//	apiVersion: openslo/v1
//	kind: Service
//	metadata: {name: note}
//	---
//	apiVersion: openslo/v1
//	kind: SLI
//	metadata: {name: note-get-errors}
//	spec:
//	  ratioMetric:
//	    counter: true
//	    bad:   {metricSource: {type: redline, spec: {outcome: server_error}}}
//	    total: {metricSource: {type: redline, spec: {transport: grpc, service: note,
//	            routes: ["/note.v1.Note/GetNote"]}}}
//	---
//	apiVersion: openslo/v1
//	kind: SLO
//	metadata:
//	  name: note-get-availability
//	  annotations: {redline/min-requests: "20"}   # the minimum-traffic guard (default 10)
//	spec:
//	  service: note
//	  indicatorRef: note-get-errors               # or an inline indicator: {metadata, spec}
//	  timeWindow: [{duration: 30d, isRolling: true}]
//	  budgetingMethod: Occurrences                # or Timeslices
//	  objectives: [{target: 0.999}]
//	  alertPolicies: [{alertPolicyRef: fast-burn}] # none: the workbook's four
//
// Mapping to OpenSLO v1:
//
//   - Data source: metricSource.type is always "redline" (our RED families, so no
//     DataSource object). Its spec: transport (http or grpc: the family
//     redline_<transport>_server_*), service (the service label), routes (route labels;
//     empty means every route), and only the baseline lane counts (lane="").
//   - SLI ratioMetric (counter: true): total is every request; bad with
//     outcome: server_error makes an availability SLI (HTTP 5xx, gRPC Internal,
//     Unavailable, DeadlineExceeded, Unknown, DataLoss, Unimplemented); good with
//     le: <seconds> makes a latency SLI, "requests that took at most le". good and bad may
//     leave out transport, service and routes, which then come from total.
//   - SLI thresholdMetric: the request durations of a metricSource; the SLO's objective then
//     says op: lte and value: <seconds>, read as the latency SLI with that le.
//   - le and value must be one of kit/metric.Buckets: the histogram has no other bound.
//   - SLO: exactly one objective and one timeWindow. A rolling window is a duration from
//     3d to 400d (units s m h d w); a calendar window (isRolling: false) is 1w (from Monday)
//     or 1M, in UTC (calendar.timeZone may only say UTC; startTime is not supported).
//     budgetingMethod Occurrences or Timeslices (timeSliceTarget, and timeSliceWindow
//     dividing 1h); RatioTimeslices is not supported.
//   - AlertPolicy: alertWhenBreaching only, exactly one condition of kind AlertCondition
//     whose spec has severity (page or ticket) and condition {kind: burnrate, op: gte,
//     threshold: <burn rate>, lookbackWindow: <long window>, alertAfter: <for>}. The short
//     window is lookbackWindow / 12, as in the workbook. notificationTargets are left to
//     the alert routing, not the spec.
//
// # The math
//
// The error budget is 1 − objective. A window's error ratio is Σbad ÷ Σtotal over the
// window: weighted by traffic, never a mean of per-bucket ratios. Its burn rate is the
// error ratio ÷ budget; 1 spends exactly the budget over the period. The budget remaining
// is 1 − (period error ratio ÷ budget): 1 (100%) with no traffic or no errors, 0 when spent.
// With Timeslices, the period ratio is bad slices ÷ slices with traffic, a slice being bad
// when its own good ratio is below timeSliceTarget.
//
// Alerts follow the SRE workbook (ch. 5): a condition fires when the error ratio over both
// its long and short window is at least factor × budget and the short window holds at
// least the minimum traffic; it resolves when that stops being true, so after a recovery
// it resets within the short window. The default conditions (Workbook) are page 1h/5m and
// 6h/30m, ticket 1d/2h and 3d/6h, with factor = budget share × period ÷ long window: 14.4,
// 6, 3 and 1 for 30 days (2%, 5%, 10%, 10% of the budget), 13.44, 5.6, 2.8 and 0.93 for 28.
//
// Detection time of a steady error ratio r is factor × budget ÷ r × long window: a full
// outage (r = 1) against 99.9% over 30 days pages when the 1h window reaches 1.44%, after
// 14.4 × 0.001 × 3600 s = 51.84 s (the 5m window is past 1.44% at once). A 2× burn never
// pages (2 < 6) nor opens the 1d ticket (2 < 3); the 3d/6h ticket fires once the 3-day
// ratio reaches 1 × budget, after 1.5 days.
//
// Memory: the evaluator keeps, per SLO, a 2 h ring of 5 s buckets (the 5m to 2h windows,
// fine enough for the 52 s page within 10%), a 3 d ring of 5 min buckets (6h, 1d, 3d) and
// a ring over the period of 1 h buckets (or timeslice-sized ones): about 70 KiB per SLO,
// where one flat 5 s ring over 30 days would take 12 MiB. A window sums the whole buckets
// that end it, so it is exact at bucket edges and up to one bucket long otherwise.
//
// The first sample of an SLO only sets its baseline; a counter that goes down is a process
// restart and its new value is the delta.
//
// # Budget spent by an incident
//
// Spent(name, from, to) is the share of the current period's budget that the bad events
// between from and to spent: bad events in [from, to] ÷ (budget × the period's events so
// far, as Status.Period counts them). 0.1 is a tenth of the budget; Spent over the whole
// period is 1 − BudgetRemaining. to is clamped to now and from to the period's start; with
// no traffic in the period it is 0. With Timeslices it is bad slices in [from, to] ÷
// (budget × slices with traffic in the period), complete slices only.
//
// It reads the finest ring that still holds from: the 5 s ring within the last 2 h, the
// 5 min ring within 3 d, else the period ring. A sample at t holds the events of the 5 s
// before it, so on the 5 s ring [from, to] is exact at sample times and a 10-minute
// incident an hour ago is measured to the sample; on a coarser ring Spent takes every
// bucket [from, to] touches, so it may include up to one bucket of events on either side.
// For example, against 99.9% over 30 days, 2 h of 1000 requests per 5 s and then 10
// minutes at 1% errors: the incident spent 1200 ÷ (0.001 × 1,560,000) = 77% of the budget.
//
// # Persistence
//
// Snapshot encodes the evaluator's state at now as JSON with "version": 1: per SLO its
// rings (only live buckets with traffic, delta-coded: about 17 KB per SLO after a day of
// 5 s samples), its last counts and whether it has one, and the state of each condition
// that is true or firing; alert history (Events) is not kept. Restore loads it into a new
// Evaluator before its first Sample or Record (it returns an error afterwards), by SLO
// name: SLOs the snapshot lacks start fresh, entries of SLOs the evaluator lacks are
// ignored. When an SLO changed, what would be misread is dropped: the period ring when the
// period, calendar, budgeting method or timeslice window changed; any ring whose bucket
// width changed; a condition's state unless the condition is unchanged; the last counts
// when the indicator changed (the next sample then sets the baseline). A firing alert keeps
// its FiredAt and resolves as usual. Restore checks all the data before it changes
// anything: on bad or corrupt data it returns an error and leaves the evaluator as it was.
//
// The first sample after Restore counts what came since the snapshot, its counts minus the
// snapshot's, including the events of the time the process was down; a count lower than
// the snapshot's reads as a restart of the process being watched, as always.
//
// # Scraping other processes
//
// Scrape returns a prometheus.Gatherer over metrics pages in the Prometheus text format
// (a service's admin /metrics, with "Authorization: Bearer <token>"), merging families of
// the same name across URLs so that several processes of a service add up. Each request
// is bounded by the http.Client's Timeout (5 s without one) and a page by 32 MiB. If any
// URL fails, Gather returns an error naming it and no families, so Sample skips that
// sample: a partial gather would read the missing processes' counters as a drop to zero,
// that is as a restart, and their next values as new events. The next sample that succeeds
// counts everything since the last one.
//
// FamilySet.CountsLane reads an indicator's counts in another lane (a stress or canary
// lane), for comparing it with the baseline that Counts reads.
package slo
