package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/stress/capacity"
	"github.com/redline-dev/redline/stress/lane"
	"github.com/redline-dev/redline/stress/load"
	"github.com/redline-dev/redline/stress/report"
	"github.com/redline-dev/redline/stress/scenario"
)

// exitThresholds is the exit status of a run whose thresholds broke, as k6 uses.
const exitThresholds = 99

// runContext is what a run's before and after checks (stress_checks.go) need.
type runContext struct {
	// Target is the BFF base URL the traffic goes to.
	Target string
	// Admin is the admin endpoint's URL and AdminToken its bearer token ("" for none).
	Admin, AdminToken string
	// Lane is the lane the traffic runs in; "" is baseline.
	Lane string
	// RunID is the run's sentinel id ("rl" and 10 of a-z0-9): scenarios embed it in what
	// they create ({{.run_id}}), so it can be searched for afterwards.
	RunID string
	// ConfigPath is --config ("" when none); Config is the stack configuration loaded from
	// it and REDLINE_* (stress.key, data_dir, databases, cache, queue).
	ConfigPath string
	Config     *stack.Config
	// Stderr takes notes for the person running the test.
	Stderr io.Writer
	// Header goes with every request (the lane token); QuietBaseline says nothing else
	// writes to the baseline during the run (--quiet-baseline).
	Header        http.Header
	QuietBaseline bool
}

// stressFlags are the flags of `redline stress`.
type stressFlags struct {
	scenario, target, ramp, lane, out, config, admin, adminToken  string
	rate, maxErrorRate, stepFactor, maxRate, baselineMaxErrorRate float64
	duration, p99, timeout, warmup, stepDuration                  time.Duration
	maxInFlight                                                   int
	findCapacity, quietBaseline                                   bool
}

// addStressRun makes cmd (`redline stress`) run a load test.
func addStressRun(cmd *cobra.Command) {
	cmd.Long = `stress runs an open-model load test against the RedNote BFF: iterations of a scenario's
weighted journeys start at a constant rate (--rate) or on linear ramps (--ramp), each at its
own time whether or not earlier ones have finished, and latency is measured from the time each
request was meant to be sent, so a stalling server is charged for every request it delays.

  redline up --seed &
  redline stress --scenario rednote --rate 100 --duration 1m
  REDLINE_STRESS__KEY=... redline stress --rate 500 --duration 60s --lane stress-1 --p99 500ms
  redline stress --find-capacity --rate 50 --p99 250ms --max-error-rate 0.01

--scenario is a built-in scenario (` + strings.Join(scenario.Builtin(), ", ") + `) or a YAML file; the file, its
routes (against the BFF's route table) and the flags are checked before any traffic.
Progress is shown once a second on stderr; at the end a summary, and result.json and
report.html in --out. --lane signs a lane token with stress.key (--config or
REDLINE_STRESS__KEY) and sends it as X-Redline-Lane on every request.

Thresholds (--p99, --max-error-rate) are checked once a second after --warmup and at the
end; a broken one aborts the run and the exit status is 99. A failed after-run check exits 1.
--find-capacity steps the rate up by --step-factor from --rate, --step-duration each, until a
threshold breaks (default --p99 500ms, --max-error-rate 0.01) or --max-rate, and reports the
maximum sustainable rate, the knee and the bottleneck service (from --admin's /metrics).`
	cmd.Args = cobra.NoArgs
	var f stressFlags
	fs := cmd.Flags()
	fs.StringVar(&f.scenario, "scenario", "rednote", "a built-in scenario ("+strings.Join(scenario.Builtin(), ", ")+") or a scenario YAML file")
	fs.StringVar(&f.target, "target", "http://127.0.0.1:8080", "the BFF's base URL (overrides the scenario's base_url)")
	fs.Float64Var(&f.rate, "rate", 50, "iterations (journeys) started per second; with --ramp, where the ramp starts (0 unless given)")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "how long to run at --rate")
	fs.StringVar(&f.ramp, "ramp", "", "linear stages instead of --duration, e.g. 30s:100,2m:500,30s:0 (each: duration:target rate)")
	fs.StringVar(&f.lane, "lane", "", "run in this lane: sign a token with stress.key and send it on every request")
	fs.DurationVar(&f.p99, "p99", 0, "abort when the p99 latency exceeds this (0: no threshold)")
	fs.Float64Var(&f.maxErrorRate, "max-error-rate", 0, "abort when the share of failed requests exceeds this, 0 to 1 (unset: no threshold)")
	fs.BoolVar(&f.quietBaseline, "quiet-baseline", true, "lane runs: nothing else writes to the baseline during the run (the demo), so baseline table or business-counter changes fail the run; false on a live system, where they are reported only")
	fs.Float64Var(&f.baselineMaxErrorRate, "baseline-max-error-rate", 0.01, "lane runs: abort when more than this share of baseline (real users') BFF requests fail, 0 to 1")
	fs.DurationVar(&f.warmup, "warmup", 5*time.Second, "how long thresholds wait before their first live check")
	fs.StringVar(&f.out, "out", "", "directory for result.json and report.html (default ./stress-report-<time>)")
	fs.StringVar(&f.config, "config", "", "YAML config file (stress.key, admin.token)")
	fs.IntVar(&f.maxInFlight, "max-inflight", 10000, "most iterations in flight at once; more wait, counted as delayed or dropped")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "each request's deadline")
	fs.BoolVar(&f.findCapacity, "find-capacity", false, "step the rate up until a threshold breaks; report the capacity, knee and bottleneck")
	fs.Float64Var(&f.stepFactor, "step-factor", 1.15, "capacity search: each step's rate over the last one's")
	fs.DurationVar(&f.stepDuration, "step-duration", 30*time.Second, "capacity search: how long each step runs")
	fs.Float64Var(&f.maxRate, "max-rate", 0, "capacity search: the highest rate to try (default 100 × --rate)")
	fs.StringVar(&f.admin, "admin", "", "the admin endpoint: capacity search reads the services' metrics there, a lane run checks for leaks there (default http://<admin.addr> from the config)")
	fs.StringVar(&f.adminToken, "admin-token", "", "the admin endpoint's bearer token (default admin.token from the config)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		code, err := runStress(cmd, &f)
		if err == nil && code != 0 {
			return exitError{code: code, msg: fmt.Sprintf("thresholds broken: exit status %d", code)}
		}
		return err
	}
}

// loadStackConfig loads the stack configuration as the services do: defaults, then the
// file at path (if any), then REDLINE_* variables.
func loadStackConfig(path string) (*stack.Config, error) {
	cfg := stack.Default()
	var opts []conf.Option
	if path != "" {
		opts = append(opts, conf.WithFile(path))
	}
	loaded, err := conf.Load(cfg, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	_ = loaded.Close()
	return cfg, nil
}

// laneToken signs a lane token for name with cfg's stress key, valid for ttl.
func laneToken(cfg *stack.Config, name string, ttl time.Duration) (string, error) {
	if cfg.Stress.Key == "" {
		return "", usageError{errors.New("stress.key is not set: export REDLINE_STRESS__KEY=<at least 16 random bytes>, the same for the BFF")}
	}
	signer, err := lane.NewSigner(cfg.Stress.Key, nil)
	if err != nil {
		return "", usageError{err}
	}
	tok, err := signer.Sign(name, ttl)
	if err != nil {
		return "", usageError{err}
	}
	return tok, nil
}

// parseRamp reads "30s:100,2m:500" into stages.
func parseRamp(s string) ([]load.Stage, error) {
	var out []load.Stage
	for _, part := range strings.Split(s, ",") {
		d, r, ok := strings.Cut(strings.TrimSpace(part), ":")
		dur, err1 := time.ParseDuration(d)
		rate, err2 := strconv.ParseFloat(r, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--ramp %q: each stage is duration:rate, e.g. 30s:100,2m:500", s)
		}
		out = append(out, load.Stage{Duration: dur, Target: rate})
	}
	return out, nil
}

func validURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("--%s %q is not an http(s) URL such as http://127.0.0.1:8080", flag, s)}
	}
	return nil
}

// plan is a validated run: everything checked, nothing sent yet.
type plan struct {
	sched      load.Schedule // a run's schedule (not for a capacity search)
	thresholds []load.Threshold
	scenario   *scenario.Scenario
	cfg        *stack.Config
	header     http.Header
	target     string
	admin      string
	adminToken string
	total      time.Duration // how long the traffic lasts at most
}

// validate checks the flags, the scenario and the config before any traffic.
func validate(cmd *cobra.Command, f *stressFlags) (*plan, error) {
	fs := cmd.Flags()
	p := &plan{}
	var err error
	switch {
	case f.findCapacity && f.ramp != "":
		return nil, usageError{errors.New("--find-capacity steps the rate itself: drop --ramp")}
	case f.ramp != "" && fs.Changed("duration"):
		return nil, usageError{errors.New("give --duration or --ramp, not both")}
	case f.maxInFlight < 1:
		return nil, usageError{fmt.Errorf("--max-inflight must be at least 1, got %d", f.maxInFlight)}
	case f.p99 < 0:
		return nil, usageError{fmt.Errorf("--p99 must be positive, got %v", f.p99)}
	case fs.Changed("max-error-rate") && !(f.maxErrorRate >= 0 && f.maxErrorRate <= 1):
		return nil, usageError{fmt.Errorf("--max-error-rate is a share from 0 to 1 (0.01 is 1%%), got %v", f.maxErrorRate)}
	case !(f.baselineMaxErrorRate >= 0 && f.baselineMaxErrorRate <= 1):
		return nil, usageError{fmt.Errorf("--baseline-max-error-rate is a share from 0 to 1 (0.01 is 1%%), got %v", f.baselineMaxErrorRate)}
	case f.timeout <= 0:
		return nil, usageError{fmt.Errorf("--timeout must be positive, got %v", f.timeout)}
	case f.warmup < 0:
		return nil, usageError{fmt.Errorf("--warmup must not be negative, got %v", f.warmup)}
	}
	switch {
	case f.findCapacity:
		if !(f.rate > 0) || math.IsInf(f.rate, 0) {
			return nil, usageError{fmt.Errorf("--rate must be a positive number of iterations per second, got %v", f.rate)}
		}
		if !(f.stepFactor > 1) || f.stepDuration <= 0 || f.maxRate < 0 || (f.maxRate > 0 && f.maxRate < f.rate) {
			return nil, usageError{fmt.Errorf("capacity search: want --step-factor > 1 (got %v), --step-duration > 0 (got %v) and --max-rate 0 or at least --rate (got %v)",
				f.stepFactor, f.stepDuration, f.maxRate)}
		}
		maxRate := f.maxRate
		if maxRate == 0 {
			maxRate = 100 * f.rate
		}
		steps := math.Ceil(math.Log(maxRate/f.rate)/math.Log(f.stepFactor)) + 1
		p.total = time.Duration(steps) * f.stepDuration
	case f.ramp != "":
		stages, err := parseRamp(f.ramp)
		if err != nil {
			return nil, usageError{err}
		}
		start := 0.0
		if fs.Changed("rate") {
			start = f.rate
		}
		if p.sched, err = load.Ramp(start, stages...); err != nil {
			return nil, usageError{fmt.Errorf("--ramp: %w", err)}
		}
		p.total = p.sched.Duration()
	default:
		if p.sched, err = load.Constant(f.rate, f.duration); err != nil {
			return nil, usageError{fmt.Errorf("--rate %v for --duration %v: %w", f.rate, f.duration, err)}
		}
		p.total = p.sched.Duration()
	}

	if f.p99 > 0 || (f.findCapacity && !fs.Changed("p99")) {
		limit := f.p99
		if limit == 0 {
			limit = 500 * time.Millisecond
		}
		p.thresholds = append(p.thresholds, load.LatencyBelow(99, limit))
	}
	if fs.Changed("max-error-rate") || f.findCapacity {
		limit := f.maxErrorRate
		if !fs.Changed("max-error-rate") {
			limit = 0.01
		}
		p.thresholds = append(p.thresholds, load.ErrorRateBelow(limit))
	}

	if p.scenario, err = scenario.Load(f.scenario, scenario.Routes(scenario.RedNoteRoutes)); err != nil {
		return nil, usageError{err}
	}
	p.target = f.target
	if !fs.Changed("target") && p.scenario.BaseURL != "" {
		p.target = p.scenario.BaseURL
	}
	if err := validURL("target", p.target); err != nil {
		return nil, err
	}
	if p.cfg, err = loadStackConfig(f.config); err != nil {
		return nil, err
	}
	p.header = http.Header{}
	if f.lane != "" {
		ttl := min(p.total+15*time.Minute, lane.MaxTTL)
		tok, err := laneToken(p.cfg, f.lane, ttl)
		if err != nil {
			return nil, err
		}
		p.header.Set(meta.HeaderLaneToken, tok)
	}
	p.admin, p.adminToken = f.admin, f.adminToken
	if p.admin == "" {
		p.admin = "http://" + p.cfg.Admin.Addr
	}
	if p.adminToken == "" {
		p.adminToken = p.cfg.Admin.Token
	}
	if f.findCapacity {
		if err := validURL("admin", p.admin); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// runStress runs the test and returns exitThresholds when thresholds broke.
func runStress(cmd *cobra.Command, f *stressFlags) (int, error) {
	p, err := validate(cmd, f)
	if err != nil {
		return 0, err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	rc := runContext{Target: p.target, Admin: p.admin, AdminToken: p.adminToken, Lane: f.lane, RunID: scenario.NewRunID("rl"),
		ConfigPath: f.config, Config: p.cfg, Stderr: stderr, Header: p.header, QuietBaseline: f.quietBaseline}
	started := time.Now()
	out := f.out
	if out == "" {
		out = "stress-report-" + started.Format("20060102-150405")
	}

	laneName := f.lane
	if laneName == "" {
		laneName = "baseline"
	}
	fmt.Fprintf(stderr, "redline stress: run %s, scenario %s, target %s, lane %s\n", rc.RunID, p.scenario.Name, p.target, laneName)
	after, err := beforeRun(ctx, rc)
	if err != nil {
		return 0, fmt.Errorf("before the run: %w", err)
	}
	budget := budgetBefore(ctx, rc)
	client := load.NewClient(f.timeout, 0)
	defer client.CloseIdleConnections()
	runner, err := p.scenario.NewRunner(scenario.Env{BaseURL: p.target, Client: client, Header: p.header, RunID: rc.RunID})
	if err != nil {
		return 0, usageError{err}
	}
	if n := runner.Users(); n > 0 {
		fmt.Fprintf(stderr, "logging in %d users...\n", n)
		if err := runner.Setup(ctx, 2); err != nil {
			return 0, fmt.Errorf("log in the scenario's users at %s: %w (is `redline up --seed` serving there?)", p.target, err)
		}
	}

	progress := newProgress(stderr)
	thresholds := p.thresholds
	if f.lane != "" {
		// The baseline's health: a stress test must never be what hurts real users.
		a := adminClient{base: strings.TrimSuffix(p.admin, "/"), token: p.adminToken, hc: &http.Client{Timeout: 5 * time.Second}}
		thresholds = append(thresholds, load.Check(fmt.Sprintf("baseline error rate <= %g%%", 100*f.baselineMaxErrorRate),
			baselineHealth(a, f.baselineMaxErrorRate)))
	}
	opts := []load.Option{load.WithMaxInFlight(f.maxInFlight), load.WithThresholds(thresholds...), load.WithWarmup(f.warmup)}
	var res *load.Result
	var capRep *capacity.Report
	if f.findCapacity {
		httpc := &http.Client{Timeout: 5 * time.Second}
		capRep, err = capacity.Search(ctx, capacity.Config{
			Start: f.rate, Factor: f.stepFactor, MaxRate: f.maxRate,
			Step: func(ctx context.Context, rate float64) (*load.Result, error) {
				s, err := load.Constant(rate, f.stepDuration)
				if err != nil {
					return nil, err
				}
				progress.prefix = fmt.Sprintf("[%.0f/s] ", rate)
				return load.Run(ctx, s, runner, append(opts, load.WithProgress(progress.show))...)
			},
			Observe: func(ctx context.Context) (capacity.Metrics, error) {
				return capacity.FetchMetrics(ctx, httpc, p.admin, p.adminToken)
			},
			OnStep: func(s capacity.Step) {
				progress.done()
				verdict := "pass"
				if !s.Pass {
					verdict = "FAIL: " + s.Why
				}
				fmt.Fprintf(stderr, "step %8.1f/s: p99 %v, errors %.3f%%: %s\n", s.Rate, s.Result.Latency.P99.Round(10*time.Microsecond),
					100*s.Result.ErrorRate(), verdict)
			},
		})
		if err != nil {
			return 0, err
		}
	} else {
		res, err = load.Run(ctx, p.sched, runner, append(opts, load.WithProgress(progress.show))...)
		if err != nil {
			return 0, usageError{err}
		}
		progress.done()
	}

	checks := after(context.WithoutCancel(ctx))
	doc := report.New(report.Meta{RunID: rc.RunID, Scenario: p.scenario.Name, Target: p.target, Lane: f.lane, Started: started},
		res, capRep, checks)
	doc.Budget = budget(context.WithoutCancel(ctx))
	jsonPath, htmlPath, err := report.WriteFiles(out, doc)
	if err != nil {
		return 0, err
	}
	printSummary(stdout, doc)
	printBudget(stdout, f.lane, doc.Budget)
	fmt.Fprintf(stdout, "report: %s\n        %s\n", htmlPath, jsonPath)

	var failed []string
	for _, c := range checks {
		if !c.Pass {
			failed = append(failed, c.Name)
		}
	}
	switch {
	case res != nil && !res.Passed() && res.Aborted != "canceled":
		return exitThresholds, nil
	case len(failed) > 0:
		return 0, fmt.Errorf("checks failed: %s", strings.Join(failed, ", "))
	case ctx.Err() != nil:
		return 0, errors.New("interrupted: the report covers the run up to the interruption")
	}
	return 0, nil
}

// printSummary writes the run's headline numbers.
func printSummary(w io.Writer, d *report.Document) {
	ms := func(v float64) string {
		return (time.Duration(v * float64(time.Millisecond))).Round(10 * time.Microsecond).String()
	}
	if r := d.Run; r != nil {
		fmt.Fprintf(w, "run %s: %s at %s/s target, %.1f/s started; %d of %d iterations\n", d.RunID, d.Scenario,
			strconv.FormatFloat(r.TargetRate, 'f', -1, 64), r.ActualRate, r.Started, r.Planned)
		fmt.Fprintf(w, "  requests %d  ok %d  errors %d (%.3f%%)  dropped %d\n", r.Requests, r.OK, r.Errors, 100*r.ErrorRate, r.Dropped)
		fmt.Fprintf(w, "  latency  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s   (service time p99 %s)\n",
			ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max), ms(r.Service.P99))
		for i, e := range r.ErrorKinds {
			if i == 5 {
				fmt.Fprintf(w, "  ... %d more kinds of error in the report\n", len(r.ErrorKinds)-5)
				break
			}
			fmt.Fprintf(w, "  error %-8s %4d %-22s %6d × %s: %s\n", e.Kind, e.Status, e.Reason, e.Count, e.Step, e.Example)
		}
		for _, t := range r.Thresholds {
			verdict := "held"
			if !t.Pass {
				verdict = "BROKEN"
			}
			fmt.Fprintf(w, "  threshold %s: %s (%s)\n", t.Name, verdict, t.Observed)
		}
	}
	if c := d.Capacity; c != nil {
		knee := "not reached"
		if c.Knee > 0 {
			knee = strconv.FormatFloat(c.Knee, 'f', 1, 64) + "/s"
		}
		fmt.Fprintf(w, "capacity: max sustainable %.1f/s, knee %s\n  stopped: %s\n  bottleneck: %s", c.MaxSustainable, knee, c.StoppedBy, c.Bottleneck)
		if c.BottleneckWhy != "" {
			fmt.Fprintf(w, ": %s", c.BottleneckWhy)
		}
		fmt.Fprintln(w)
	}
	for _, c := range d.Checks {
		verdict := "pass"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  check %s: %s %s\n", c.Name, verdict, c.Detail)
	}
	switch {
	case d.Passed:
		fmt.Fprintln(w, "PASSED")
	case d.Aborted != "":
		fmt.Fprintf(w, "FAILED: aborted (%s)\n", d.Aborted)
	default:
		fmt.Fprintln(w, "FAILED")
	}
}

// progress renders load.Snapshots: one line rewritten in place on a terminal, one line a
// second otherwise.
type progress struct {
	w      io.Writer
	tty    bool
	prefix string
	shown  bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(s load.Snapshot) {
	line := fmt.Sprintf("%s%4ds  rate %.1f/%.1f/s  in flight %d  ok %d  errors %d  p50 %v  p99 %v", p.prefix,
		int(s.Elapsed.Seconds()), s.ActualRate, s.TargetRate, s.InFlight, s.OK, s.Errors+s.Dropped,
		s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// done ends the in-place line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}
