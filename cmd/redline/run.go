package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/trace"
	"github.com/redline-dev/redline/services/seed"
	"github.com/redline-dev/redline/services/stack"
)

// configFlags adds the flags shared by up and serve. Flag names are config keys, with
// '-' accepted for '_'.
func configFlags(fs *pflag.FlagSet) *string {
	d := stack.Default()
	path := fs.String("config", "", "YAML config file (keys as in the README's configuration section)")
	fs.String("registry", d.Registry, "service registry: memory, or etcd://127.0.0.1:2379")
	fs.String("cache", d.Cache, "cache: memory:, or redis://127.0.0.1:6379/0")
	fs.String("data_dir", d.DataDir, "directory for the embedded stores (SQLite files)")
	fs.String("admin.addr", d.Admin.Addr, "admin endpoint address (/healthz /readyz /metrics /state /config /debug/pprof/)")
	fs.String("bff.addr", d.BFF.Addr, "BFF (public JSON API) address")
	fs.String("user.addr", d.User.Addr, "user service gRPC address (port 0: any free port)")
	fs.String("note.addr", d.Note.Addr, "note service gRPC address (port 0: any free port)")
	fs.Int("note.replicas", d.Note.Replicas, "note gRPC servers in this process, note and note-2.. (1 to 8): a replica to make slow in a drill")
	fs.String("quota.addr", d.Quota.Addr, "quota service gRPC address")
	fs.String("quota.store", d.Quota.Store, "quota state: memory (one quota service), or redis://127.0.0.1:6379/0 (several)")
	fs.String("log.level", d.Log.Level, "log level: debug, info, warn, error (reloads with the config file)")
	fs.String("log.format", d.Log.Format, "log format: text or json")
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "-", "_"))
	})
	return path
}

// run loads the configuration, builds the named services and runs them until a signal.
// banner prints the addresses once everything listens.
func run(cmd *cobra.Command, path string, services []string, banner func(w io.Writer, s *stack.Stack), seedOpts *seed.Options) error {
	ctx := cmd.Context()
	cfg := stack.Default()
	opts := []conf.Option{conf.WithFlags(cmd.Flags())}
	if path != "" {
		opts = append(opts, conf.WithFile(path))
	}
	loaded, err := conf.Load(cfg, opts...)
	if err != nil {
		return usageError{err}
	}
	defer loaded.Close()
	logger, level := log.New(os.Stderr, cfg.Log)
	slog.SetDefault(logger)

	name := "redline"
	if len(services) == 1 {
		name = services[0]
	}
	shutdownTrace, err := trace.Setup(ctx, name, cfg.Trace)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTrace(context.Background()) }()

	st, err := stack.New(ctx, cfg, logger, services...)
	if err != nil {
		return err
	}
	st.Admin.SetConfig(func() any { return loaded.Redacted() })
	watch := app.Hook("config watch", func(ctx context.Context) error {
		return loaded.Watch(context.WithoutCancel(ctx), func() any { return stack.Default() }, func(u conf.Update) {
			next := u.Value.(*stack.Config)
			if l, err := log.ParseLevel(next.Log.Level); err == nil && l != level.Level() {
				level.Set(l)
			}
			st.Apply(next)
			logger.Info("config reloaded", "changed", u.Changed, "needs_restart", u.Static, "log.level", next.Log.Level)
		})
	}, func(context.Context) error { return loaded.Close() })
	printed := app.Hook("banner", func(context.Context) error {
		banner(cmd.OutOrStdout(), st)
		return nil
	}, nil)
	comps := append(st.Components(), watch, printed)
	if seedOpts != nil {
		comps = append(comps, st.Seeder(*seedOpts))
	}
	a := app.New(app.Name(name), app.Components(comps...), app.Drainers(st.Admin), app.Logger(logger),
		app.StopTimeout(cfg.StopTimeout), app.DrainDelay(cfg.Drain))
	if err := a.Run(ctx); err != nil {
		return err
	}
	return nil
}

func newUp() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run every demo service in one process on embedded stores",
		Long: `up runs every service (` + strings.Join(stack.Services, ", ") + `) in one
process. Each service listens on its own loopback port and they call each other over
real gRPC, found through the in-memory registry; events go through an embedded NATS
server. Data lives in SQLite files under --data-dir. Ctrl-C stops gracefully: readiness
turns false, in-flight requests finish, then the servers stop.

--seed loads a demo data set once everything listens (users with a long-tailed follower
graph, notes with tags, likes, products with stock), logging its progress; log in as
` + seed.DemoUser + ` / ` + seed.DemoPassword + ` to see a populated feed. It runs once per data dir.

--procs runs each service as its own ` + "`redline serve`" + ` process instead, under a supervisor
that starts again whatever dies and injects process faults (` + "`redline proc`" + `: kill -9,
stop, start, pause, resume, restart). It needs registry: etcd://... and queue: nats://...
(scripts/services.sh starts both); admin.addr serves the supervisor's /chaos/procs and a
/readyz that is ready when every process is, and each process gets an admin address of
its own.`,
		Args: cobra.NoArgs,
	}
	path := configFlags(cmd.Flags())
	doSeed := cmd.Flags().Bool("seed", false, "load the demo data set after start (once per data dir)")
	var opts seed.Options
	cmd.Flags().IntVar(&opts.Users, "seed-users", 200, "users to seed")
	cmd.Flags().IntVar(&opts.Notes, "seed-notes", 1200, "notes to seed")
	cmd.Flags().IntVar(&opts.Products, "seed-products", 40, "products to seed")
	procsMode := cmd.Flags().Bool("procs", false, "run each service in its own process under a supervisor (needs etcd and NATS; see redline proc)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *procsMode {
			return runProcs(cmd, *path, *doSeed)
		}
		var so *seed.Options
		if *doSeed {
			so = &opts
		}
		return run(cmd, *path, nil, func(w io.Writer, s *stack.Stack) {
			fmt.Fprintf(w, "redline is up\n  BFF (public API)  %s/v1\n  admin             %s  (/readyz /metrics /state /config)\n  dashboard         %s/\n  SRE API           %s/v1  (SLOs, release gate, incidents, Alertmanager webhook, on-call)\n  stop with Ctrl-C\n",
				s.BFFURL(), s.AdminURL(), s.AdminURL(), s.SREURL())
		}, so)
	}
	return cmd
}

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:       "serve SERVICE",
		Short:     "Run one service in this process (" + strings.Join(stack.Services, ", ") + ")",
		ValidArgs: stack.Services,
		Long: `serve runs one service, registered in --registry so the others find it. Start
them in any order; the BFF's /readyz reports which dependency (user, note, feed) has no
instance until it appears, and its other routes degrade until theirs do. Separate
processes must share auth.token_key (REDLINE_AUTH__TOKEN_KEY), one queue
(REDLINE_QUEUE=nats://...: note, product, feed, comment and search use it) and, for
payment and payprovider, payment.secret (REDLINE_PAYMENT__SECRET).

Example, with etcd and NATS from scripts/services.sh:
  export REDLINE_AUTH__TOKEN_KEY=$(head -c 24 /dev/urandom | base64)
  export REDLINE_REGISTRY=etcd://127.0.0.1:2379 REDLINE_QUEUE=nats://127.0.0.1:4222
  redline serve user --admin.addr 127.0.0.1:9091 --data-dir data
  redline serve note --admin.addr 127.0.0.1:9092 --data-dir data
  redline serve feed --admin.addr 127.0.0.1:9094 --data-dir data
  redline serve bff  --admin.addr 127.0.0.1:9093

A canary of one service, reached only by requests in lane canary (a signed lane token):
  redline serve note --lane canary --admin.addr 127.0.0.1:9095 --data-dir data-canary`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("serve needs one service: %s", strings.Join(stack.Services, ", "))}
			}
			return nil
		},
	}
	path := configFlags(cmd.Flags())
	cmd.Flags().String("lane", "", "run a lane instance (canary): only requests in this lane reach it; others of the lane fall back to baseline")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return run(cmd, *path, args, func(w io.Writer, s *stack.Stack) {
			fmt.Fprintf(w, "%s is up\n", args[0])
			if l := s.Lane(); l != "" {
				fmt.Fprintf(w, "  lane              %s (lane requests only)\n", l)
			}
			if u := s.BFFURL(); u != "" {
				fmt.Fprintf(w, "  BFF (public API)  %s/v1\n", u)
			}
			if u := s.SREURL(); u != "" {
				fmt.Fprintf(w, "  SRE API           %s/v1\n", u)
			}
			if a := s.GRPCAddr(args[0]); a != "" {
				fmt.Fprintf(w, "  gRPC              %s\n", a)
			}
			fmt.Fprintf(w, "  admin             %s\n", s.AdminURL())
		}, nil)
	}
	return cmd
}
