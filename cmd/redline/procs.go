package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/redline-dev/redline/chaos/procs"
	"github.com/redline-dev/redline/kit/admin"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/stack"
)

// procsPlan is what `up --procs` runs: one `redline serve` per service, and the addresses
// it gave them.
type procsPlan struct {
	procs  []procs.Proc
	admins map[string]string // service: its admin address
}

// runProcs is `redline up --procs`: every service in its own `redline serve` process under
// a supervisor (chaos/procs) that restarts what dies and injects process faults; the
// supervisor's admin endpoint (admin.addr) serves /chaos/procs, /chaos/faults for every
// process at once (procs.FaultFanout), the checkout audit (/chaos/audit/checkout, read-only
// from the services' databases) and a /readyz that is ready when every process is.
func runProcs(cmd *cobra.Command, path string, seed bool) error {
	if seed {
		return usageError{errors.New("--seed does not work with --procs yet: seed the data dir once with " +
			"`redline up --seed` (same --data-dir), stop it, then start `redline up --procs`")}
	}
	cfg := stack.Default()
	opts := []conf.Option{conf.WithFlags(cmd.Flags())}
	if path != "" {
		opts = append(opts, conf.WithFile(path))
	}
	loaded, err := conf.Load(cfg, opts...)
	if err != nil {
		return usageError{err}
	}
	// Each child loads (and watches) the file itself; the supervisor needs it once.
	_ = loaded.Close()
	logger, _ := log.New(os.Stderr, cfg.Log)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--procs runs this binary once per service: %w", err)
	}
	plan, err := planProcs(cfg, self, path, cmd.Flags())
	if err != nil {
		return usageError{err}
	}

	adm := admin.New(admin.Address(cfg.Admin.Addr), admin.Token(cfg.Admin.Token))
	// No child serves the audit: it needs the order, inventory and payment databases at
	// once, which only the supervisor can open beside them.
	auditor := stack.NewCheckoutAuditor(cfg)
	if cfg.Chaos.Enabled {
		auditor.Register(adm)
	}
	audit := app.Hook("checkout audit", nil, func(context.Context) error { return auditor.Close() })
	var sup *procs.Supervisor
	for _, p := range plan.procs {
		adm.AddCheck(p.Name, func(ctx context.Context) error { return sup.Ready(ctx, p.Name) })
	}
	supervisor := app.Hook("processes", func(context.Context) error {
		s, err := procs.New(plan.procs, procs.WithOutput(cmd.ErrOrStderr()), procs.WithLogger(logger),
			procs.WithStopTimeout(cfg.StopTimeout))
		if err != nil {
			return err
		}
		sup = s
		if cfg.Chaos.Enabled {
			sup.Register(adm)
			// The supervisor has no fault registry of its own: /chaos/faults here reaches
			// every process's, so a drill's big red button clears them all.
			procs.NewFaultFanout(sup.List, cfg.Admin.Token, nil).Register(adm)
		}
		adm.AddState("procs", func() any { return sup.List() })
		return nil
	}, func(context.Context) error { return sup.Close() })
	banner := app.Hook("banner", func(context.Context) error {
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "redline is up: one process per service (--procs)\n  BFF (public API)  http://%s/v1\n"+
			"  admin             http://%s  (/readyz: every process ready; /chaos/procs; /chaos/faults of every process; /chaos/audit/checkout)\n"+
			"  faults            redline proc list | kill | stop | start | pause | resume | restart NAME\n  processes (admin address):\n",
			cfg.BFF.Addr, adm.Endpoint())
		for _, p := range plan.procs {
			fmt.Fprintf(w, "    %-12s %s\n", p.Name, plan.admins[p.Name])
		}
		fmt.Fprintf(w, "  stop with Ctrl-C\n")
		return nil
	}, nil)
	// The children stop within stop_timeout (then get SIGKILL); the admin endpoint before
	// them, and the audit's databases after both.
	a := app.New(app.Name("redline"), app.Components(audit, supervisor, adm, banner), app.Drainers(adm), app.Logger(logger),
		app.StopTimeout(cfg.StopTimeout+5*time.Second))
	return a.Run(cmd.Context())
}

// planProcs builds the command line and environment of every service's process. Shared
// secrets the config leaves empty are made up once here, so every child has the same;
// every service's process gets an admin address of its own (see childAdminPorts).
func planProcs(cfg *stack.Config, self, path string, flags *pflag.FlagSet) (*procsPlan, error) {
	var problems []string
	if !strings.HasPrefix(cfg.Registry, "etcd://") {
		problems = append(problems, fmt.Sprintf("registry is %q: set registry: etcd://127.0.0.1:2379 (REDLINE_REGISTRY, --registry); "+
			"the in-memory registry cannot be shared between processes", cfg.Registry))
	}
	if !strings.HasPrefix(cfg.Queue, "nats://") {
		problems = append(problems, fmt.Sprintf("queue is %q: set queue: nats://127.0.0.1:4222 (REDLINE_QUEUE); "+
			"the embedded NATS cannot be shared between processes", cfg.Queue))
	}
	if cfg.Payment.ProviderURL == "" && fixedPort(cfg.Provider.Addr) == "" {
		problems = append(problems, fmt.Sprintf("payprovider.addr %q: give it a port, or set payment.provider_url", cfg.Provider.Addr))
	}
	if cfg.Payment.CallbackURL == "" && fixedPort(cfg.BFF.Addr) == "" {
		problems = append(problems, fmt.Sprintf("bff.addr %q: give it a port, or set payment.callback_url", cfg.BFF.Addr))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("up --procs runs each service in its own process, and they must find each other:\n  %s\n"+
			"scripts/services.sh starts etcd and NATS", strings.Join(problems, "\n  "))
	}

	env := []string{}
	secret := func(key, value string) {
		if value == "" {
			b := make([]byte, 24)
			_, _ = rand.Read(b)
			env = append(env, conf.DefaultEnvPrefix+envKey(key)+"="+hex.EncodeToString(b))
		}
	}
	secret("auth.token_key", cfg.Auth.TokenKey)
	secret("payment.secret", cfg.Payment.Secret)
	if cfg.Payment.ProviderURL == "" {
		env = append(env, conf.DefaultEnvPrefix+envKey("payment.provider_url")+"=http://"+cfg.Provider.Addr)
	}
	if cfg.Payment.CallbackURL == "" {
		env = append(env, conf.DefaultEnvPrefix+envKey("payment.callback_url")+"=http://"+cfg.BFF.Addr+"/v1/payments/callback")
	}

	// Flags set on the command line reach every child, but admin.addr: each has its own.
	ours := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	configFlags(ours)
	var passed []pflag.Flag
	flags.Visit(func(f *pflag.Flag) {
		if ours.Lookup(f.Name) != nil && f.Name != "admin.addr" && f.Name != "config" {
			passed = append(passed, *f)
		}
	})
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		path = abs
	}

	adminPorts, err := childAdminPorts(cfg)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Admin.Addr)
	plan := &procsPlan{admins: map[string]string{}}
	for i, svc := range stack.Services {
		adminAddr := net.JoinHostPort(host, strconv.Itoa(adminPorts[i]))
		plan.admins[svc] = adminAddr
		args := []string{self, "serve", svc, "--admin.addr", adminAddr}
		if path != "" {
			args = append(args, "--config", path)
		}
		for _, f := range passed {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
		plan.procs = append(plan.procs, procs.Proc{Name: svc, Args: args, Env: env, Ready: childReady(adminAddr), Admin: adminAddr})
	}
	return plan, nil
}

// childAdminPorts returns the admin port of each service's process, in the order of
// stack.Services: the ports after admin.addr's. They are fixed, outside the range the
// kernel hands out for port 0 (on a usual admin port), so a restarted process finds its
// port free again; services keep their own addresses (port 0: a new one each start, the
// old one leaving the registry when its lease ends).
func childAdminPorts(cfg *stack.Config) ([]int, error) {
	base, err := strconv.Atoi(fixedPort(cfg.Admin.Addr))
	if err != nil || base+len(stack.Services) > 65535 {
		return nil, fmt.Errorf("admin.addr %q: --procs needs a fixed port, and gives each service's process one of the %d after it",
			cfg.Admin.Addr, len(stack.Services))
	}
	taken := map[int]string{}
	for svc, addr := range serviceAddrs(cfg) {
		if p, err := strconv.Atoi(fixedPort(addr)); err == nil {
			taken[p] = svc + ".addr"
		}
	}
	ports := make([]int, len(stack.Services))
	for i := range ports {
		ports[i] = base + 1 + i
		if key, ok := taken[ports[i]]; ok {
			return nil, fmt.Errorf("admin.addr %q: --procs gives the %d ports after it to the processes' admin endpoints, "+
				"but %s has port %d: move one of them", cfg.Admin.Addr, len(stack.Services), key, ports[i])
		}
	}
	return ports, nil
}

// serviceAddrs maps each service to its address key's value.
func serviceAddrs(c *stack.Config) map[string]string {
	return map[string]string{stack.QuotaName: c.Quota.Addr, "user": c.User.Addr, "note": c.Note.Addr,
		"interaction": c.Interaction.Addr, "inventory": c.Inventory.Addr, "product": c.Product.Addr, "order": c.Order.Addr,
		stack.ProviderName: c.Provider.Addr, "payment": c.Payment.Addr, "feed": c.Feed.Addr, "comment": c.Comment.Addr,
		"history": c.History.Addr, "search": c.Search.Addr, stack.SREName: c.SRE.Addr, "bff": c.BFF.Addr}
}

// envKey is the environment name of a config key after the prefix: payment.secret is
// PAYMENT__SECRET.
func envKey(key string) string {
	return strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// fixedPort returns addr's port unless it is 0 (any free port) or addr is not host:port.
func fixedPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" || port == "" {
		return ""
	}
	return port
}

// childReady probes a child's /readyz: nil when it answers 200, else what it said.
func childReady(adminAddr string) func(context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+adminAddr+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("not answering on %s: %w", adminAddr, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		var r admin.Readiness
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r)
		var failing []string
		for name, msg := range r.Checks {
			if msg != "ok" {
				failing = append(failing, name+": "+msg)
			}
		}
		sort.Strings(failing)
		if r.Draining {
			failing = append(failing, "draining")
		}
		return fmt.Errorf("not ready (%s)", strings.Join(failing, "; "))
	}
}
