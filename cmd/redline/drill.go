package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/chaos/drill"
	"github.com/redline-dev/redline/chaos/procs"
	"github.com/redline-dev/redline/kit/meta"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/stress/lane"
	"github.com/redline-dev/redline/stress/load"
)

// exitDrillFailed is the exit status of a drill whose expectations failed, whose guard
// aborted it, or that did not start (not in steady state, rollback rehearsal failed): as
// a stress run's broken thresholds.
const exitDrillFailed = exitThresholds

// drillFlags are the flags of `redline drill`.
type drillFlags struct {
	bff, admin, procs, adminToken, sre, out, config string
	scale                                           float64
	timeout                                         time.Duration
	list                                            bool
	show                                            string
}

func newDrill() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill FILE|NAME",
		Short: "Run a game-day drill: check the steady state, rehearse the rollback, inject faults under a guard, report",
		Long: `drill runs the game-day experiment described in FILE (YAML; the format is in the package
doc: go doc github.com/redline-dev/redline/chaos/drill), or the built-in drill NAME, against a
running redline:

  1. steady state: the drill's load runs for steady_state.window and every SLI (error ratio
     or p99 of a service's routes, from the admin endpoint's /metrics) must be within its
     bound. If not, the drill stops: nothing is injected.
  2. rollback rehearsal (unless rollback_check is 0): every fault is added through the
     admin API (POST /chaos/faults) for rollback_check, removed, and the steady state must
     be back within rollback_check.
  3. experiment: the load runs for load.duration and each fault is added at its at and
     removed at at+for. A guard samples the SLIs every guard_interval; when one is beyond
     its abort bound (abort.*, default 5 × its own bound) it stops the load and removes
     every fault at once (DELETE /chaos/faults).
  4. after: the load runs for the window again and the steady state must hold.

A fault is an in-process fault (spec:, through the admin API), an L4 fault on a chaos.net
proxy (net: a toxic, or outage: true; through the admin API's /chaos/net) or a process
fault (proc: kill or pause, through the supervisor of ` + "`redline up --procs`" + `). Every fault
gets a ttl of its life plus 10s, and a killed or paused process comes back after the
fault's for, so everything ends by itself if this process dies.
The file is checked before anything is sent: a bad one exits 2 with the file, line and
field named. Progress is printed on stderr, the verdict on stdout, and drill.json and a
self-contained drill.html (SLIs over time, faults shaded) are written to --out.

Built-in drills, the demo's game days (--list names them, --show NAME prints one to copy):

  redis-down          every cache call fails; reads fall through to the database, the SLO holds
  note-slow-instance  one of two note instances is slow; P2C steers away (up --note.replicas 2)
  order-kill          order killed twice, inventory once, mid-checkout; no order lost, no
                      stock oversold (up --procs)
  quota-down          the quota service fails; the BFF holds, then falls back, and keeps the
                      global rate
  payment-slow        the payment provider is 3s slow; the breaker opens, the shop holds, and
                      pending payments are charged afterwards

  redline up --seed &
  redline drill redis-down
  redline drill note-slow.yaml
  redline drill note-slow.yaml --duration-scale 0.1     # a quick rehearsal of the drill itself
  redline drill note-slow.yaml --sre http://127.0.0.1:9200   # recorded on a SEV4 incident

--duration-scale multiplies every span of time in the drill (window, load duration, the
faults' at and for, expect within, guard_interval, rollback_check) by its value, so 0.1
runs a 60s drill in 6s; latency bounds (max_p99) and fault delays are left as they are.
The guard interval stays at least 100ms.

--bff and --admin override the drill's target, which defaults to the config's addresses.
A drill with process faults (or --procs) talks to the supervisor of ` + "`redline up --procs`" + `
(--procs, default http://<admin.addr>) for the faults and the checkout audit, and reads
its SLIs from the BFF process's admin endpoint, which the supervisor names (or --admin).
With load.lane, the load carries a lane token signed with stress.key (--config or
REDLINE_STRESS__KEY). With --sre, the drill is recorded on an incident of the SRE API
(severity SEV4, no escalation policy, so nobody is paged) with an entry per phase, fault
and guard decision, resolved at the end.

Exit status: 0 the drill passed; 99 it failed (an expectation, the steady state before or
after, the rollback rehearsal) or the guard aborted it; 2 a bad file or flag; 1 the drill
could not run (an API refused a fault, the run was interrupted; its faults are removed).`,
		Args: func(cmd *cobra.Command, args []string) error {
			list, _ := cmd.Flags().GetBool("list")
			show, _ := cmd.Flags().GetString("show")
			if list || show != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
	}
	var f drillFlags
	fs := cmd.Flags()
	fs.StringVar(&f.bff, "bff", "", "the BFF's base URL (default: the drill's target.bff, else http://<bff.addr> from the config)")
	fs.StringVar(&f.admin, "admin", "", "the admin endpoint (default: the drill's target.admin, else http://<admin.addr> from the config)")
	fs.StringVar(&f.procs, "procs", "", "the supervisor of `redline up --procs` (default: the drill's target.procs, else http://<admin.addr> when the drill has process faults)")
	fs.BoolVar(&f.list, "list", false, "list the built-in drills and exit")
	fs.StringVar(&f.show, "show", "", "print the built-in drill NAME's YAML and exit (to copy and edit)")
	fs.StringVar(&f.adminToken, "admin-token", "", "the admin endpoint's bearer token, also sent to the SRE API (default admin.token from the config)")
	fs.StringVar(&f.sre, "sre", "", "the SRE API (e.g. http://127.0.0.1:9200): record the drill on an incident's timeline (default: not recorded)")
	fs.StringVar(&f.out, "out", "", "directory for drill.json and drill.html (default ./drill-report-<name>-<time>)")
	fs.Float64Var(&f.scale, "duration-scale", 1, "multiply every span of time in the drill by this, e.g. 0.1 for a quick run (latency bounds and fault delays unchanged)")
	fs.StringVar(&f.config, "config", "", "YAML config file (admin.addr, admin.token, bff.addr, stress.key)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "each load request's deadline")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case f.list:
			return listDrills(cmd.OutOrStdout())
		case f.show != "":
			b, err := drill.BuiltinSource(f.show)
			if err != nil {
				return usageError{err}
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		}
		return runDrill(cmd, args[0], &f)
	}
	return cmd
}

func runDrill(cmd *cobra.Command, path string, f *drillFlags) error {
	d, env, err := planDrill(cmd, path, f)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := load.NewClient(f.timeout, 0)
	defer client.CloseIdleConnections()
	env.Client, env.Progress = client, cmd.ErrOrStderr()
	if env.Procs != "" && env.Admin == "" {
		if env.Admin, err = procAdmin(ctx, client, env.Procs, env.AdminToken, "bff"); err != nil {
			return err
		}
	}
	started := time.Now()
	rep, runErr := drill.Run(ctx, d, env)
	if rep == nil {
		if errors.Is(runErr, drill.ErrInvalid) {
			return usageError{runErr}
		}
		return runErr
	}
	out := cmp.Or(f.out, "drill-report-"+d.Name+"-"+started.Format("20060102-150405"))
	jsonPath, htmlPath, err := drill.WriteFiles(out, rep)
	if err != nil {
		return errors.Join(runErr, err)
	}
	printDrill(cmd.OutOrStdout(), rep)
	fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n        %s\n", htmlPath, jsonPath)
	switch {
	case runErr != nil:
		return runErr
	case !rep.Passed():
		return exitError{code: exitDrillFailed, msg: fmt.Sprintf("drill %s: %s: exit status %d", d.Name, rep.Verdict, exitDrillFailed)}
	}
	return nil
}

// planDrill reads and checks the drill and the flags: nothing is sent yet.
func planDrill(cmd *cobra.Command, path string, f *drillFlags) (*drill.Drill, drill.Env, error) {
	var env drill.Env
	if !(f.scale > 0) || math.IsInf(f.scale, 0) {
		return nil, env, usageError{fmt.Errorf("--duration-scale must be a positive factor such as 0.1, got %v", f.scale)}
	}
	if f.timeout <= 0 {
		return nil, env, usageError{fmt.Errorf("--timeout must be positive, got %v", f.timeout)}
	}
	d, err := drill.Load(path)
	if err != nil {
		return nil, env, usageError{err}
	}
	if f.scale != 1 {
		if err := d.Scale(f.scale); err != nil {
			return nil, env, usageError{fmt.Errorf("--duration-scale %v: %w", f.scale, err)}
		}
	}
	cfg, err := loadStackConfig(f.config)
	if err != nil {
		return nil, env, err
	}
	env.BFF = cmp.Or(f.bff, d.Target.BFF, "http://"+cfg.BFF.Addr)
	env.Admin = cmp.Or(f.admin, d.Target.Admin, "http://"+cfg.Admin.Addr)
	if f.procs != "" || d.Target.Procs != "" || slices.ContainsFunc(d.Faults, func(f drill.Fault) bool { return f.Proc != nil }) {
		// Under --procs the admin address is the supervisor's; the SLIs read the BFF
		// process's, which runDrill asks the supervisor for unless given.
		env.Procs = cmp.Or(f.procs, d.Target.Procs, "http://"+cfg.Admin.Addr)
		env.Admin = cmp.Or(f.admin, d.Target.Admin)
	}
	env.AdminToken = cmp.Or(f.adminToken, cfg.Admin.Token)
	env.SRE = strings.TrimSuffix(f.sre, "/")
	for _, u := range []struct{ flag, v string }{{"bff", env.BFF}, {"admin", env.Admin}, {"procs", env.Procs}, {"sre", env.SRE}} {
		if u.v != "" {
			if err := validURL(u.flag, u.v); err != nil {
				return nil, env, err
			}
		}
	}
	if d.Load.Lane != "" {
		total := d.SteadyState.Window*2 + 2*d.RollbackCheck + d.Load.Duration
		tok, err := laneToken(cfg, d.Load.Lane, min(total+15*time.Minute, lane.MaxTTL))
		if err != nil {
			return nil, env, err
		}
		env.Header = http.Header{}
		env.Header.Set(meta.HeaderLaneToken, tok)
	}
	return d, env, nil
}

// printDrill writes the verdict, the phases and the expectations.
func printDrill(w io.Writer, r *drill.Report) {
	fmt.Fprintf(w, "drill %s, run %s: %s\n  %s\n", r.Drill, r.RunID, strings.ToUpper(string(r.Verdict)), r.Reason)
	for _, p := range r.Phases {
		verdict := "ok"
		if !p.Pass {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  phase %-18s %-6s %s\n", p.Name, verdict, p.Detail)
	}
	for _, o := range r.Expectations {
		verdict := "held"
		if !o.Pass {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  expect[%d] %s: %s (observed %s)\n", o.Index, o.Expect, verdict, o.Observed)
	}
	if a := r.Guard.Abort; a != nil {
		fmt.Fprintf(w, "  guard: aborted %.2fs in: %s; %d faults cleared\n", a.ActedAt.Sub(r.Started).Seconds(), a.Reason, a.Cleared)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}

// listDrills prints the built-in drills with their descriptions.
func listDrills(w io.Writer) error {
	for _, name := range drill.Builtin() {
		d, err := drill.Load(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-20s %s\n", name, d.Description)
	}
	fmt.Fprintf(w, "\nrun one: redline drill NAME; print it: redline drill --show NAME\n")
	return nil
}

// procAdmin asks the supervisor at procsURL (GET /chaos/procs) for the admin endpoint of
// the process name.
func procAdmin(ctx context.Context, hc *http.Client, procsURL, token, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, raw, err := kithttp.CallJSON(ctx, hc, http.MethodGet, strings.TrimSuffix(procsURL, "/")+"/chaos/procs", token, nil, 1<<20)
	if err != nil {
		return "", fmt.Errorf("ask the supervisor at %s for the %s process's admin endpoint: %w "+
			"(is `redline up --procs` running? or pass --admin)", procsURL, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/chaos/procs: %s: %s (chaos off? a wrong --admin-token?)", procsURL, resp.Status, strings.TrimSpace(string(raw)))
	}
	var list struct{ Procs []procs.Info }
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("GET %s/chaos/procs: %w", procsURL, err)
	}
	for _, p := range list.Procs {
		if p.Name == name && p.Admin != "" {
			return "http://" + p.Admin, nil
		}
	}
	return "", fmt.Errorf("the supervisor at %s runs no %s process with an admin endpoint: pass --admin", procsURL, name)
}
