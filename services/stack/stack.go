package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/ha/balancer"
	"github.com/redline-dev/redline/ha/degrade"
	"github.com/redline-dev/redline/ha/quota"
	"github.com/redline-dev/redline/kit/admin"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/middleware"
	"github.com/redline-dev/redline/kit/registry"
	etcdreg "github.com/redline-dev/redline/kit/registry/etcd"
	"github.com/redline-dev/redline/kit/registry/memory"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/bff"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/inventory"
	"github.com/redline-dev/redline/services/note"
	"github.com/redline-dev/redline/services/user"
)

// idempotent lists, per service, the methods its clients may retry.
var idempotent = map[string][]string{user.Name: user.Idempotent, note.Name: note.Idempotent,
	inventory.Name: inventory.Idempotent, interaction.Name: interaction.Idempotent}

// QuotaName is the quota service's name in the registry.
const QuotaName = "quota"

// Services lists the services a process can run, in start order.
var Services = []string{QuotaName, user.Name, note.Name, interaction.Name, inventory.Name, bff.Name}

// Stack is the set of services of one process with their shared parts.
type Stack struct {
	cfg      *Config
	logger   *slog.Logger
	services []string

	Admin *admin.Server
	reg   registry.Registry
	bff   *kithttp.Server
	grpc  map[string]*kitgrpc.Server

	// switches force degradation of named dependencies; dynamic config sets them.
	switches  *degrade.Switches
	haServers map[string]*ha.Server
	haClients map[string]*ha.Client

	quotaSvc    *quota.Service
	quotaClient *quota.Client
	slow        map[string]time.Duration // per-method budgets above timeouts.internal

	queue mq.Queue // opened by the first service that needs it

	components []app.Component
}

// New builds the named services (all of Services when none are named) and everything
// they need. Nothing listens until the components start.
func New(ctx context.Context, cfg *Config, logger *slog.Logger, services ...string) (_ *Stack, err error) {
	if len(services) == 0 {
		services = Services
	}
	for _, s := range services {
		if !slices.Contains(Services, s) {
			return nil, fmt.Errorf("unknown service %q: choose from %s", s, strings.Join(Services, ", "))
		}
	}
	all := len(services) == len(Services)
	if !all && cfg.Registry == "memory" && slices.Contains(services, bff.Name) {
		return nil, errors.New("the bff cannot find user and note in another process through the memory registry: " +
			"start etcd (scripts/services.sh) and pass --registry etcd://127.0.0.1:2379")
	}
	if !all && cfg.Auth.TokenKey == "" && (slices.Contains(services, bff.Name) || slices.Contains(services, user.Name)) {
		return nil, errors.New("user and bff in separate processes must share auth.token_key: " +
			"export REDLINE_AUTH__TOKEN_KEY=<at least 16 random bytes> for both")
	}
	s := &Stack{cfg: cfg, logger: logger, services: services, grpc: map[string]*kitgrpc.Server{},
		switches: degrade.NewSwitches(), haServers: map[string]*ha.Server{}, haClients: map[string]*ha.Client{}}
	s.switches.Set(cfg.HA.Degrade.Forced)
	// Hashing a password is slow on purpose: these two get the edge budget, not the
	// internal one, on both sides of the hop.
	s.slow = map[string]time.Duration{userv1.User_Register_FullMethodName: cfg.Timeouts.Edge,
		userv1.User_Login_FullMethodName: cfg.Timeouts.Edge}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	s.Admin = admin.New(admin.Address(cfg.Admin.Addr), admin.Token(cfg.Admin.Token))
	s.components = append(s.components, s.Admin)
	s.Admin.AddState("ha", s.haState)

	if s.reg, err = openRegistry(cfg, logger); err != nil {
		return nil, err
	}
	s.components = append(s.components, app.Hook("registry", nil, func(context.Context) error { return s.reg.Close() }))

	signer, err := newSigner(cfg.Auth.TokenKey, logger)
	if err != nil {
		return nil, err
	}
	var c cache.Cache
	if slices.Contains(services, user.Name) {
		if c, err = cache.Open(ctx, cfg.Cache, cache.WithPrefix(cfg.CachePrefix)); err != nil {
			return nil, fmt.Errorf("cache %s: %w (is Redis running? scripts/services.sh starts it)", cfg.Cache, err)
		}
		s.components = append(s.components, app.Hook("cache", nil, func(context.Context) error { return c.Close() }))
		s.Admin.AddCheck("cache", c.Ping)
	}
	for _, name := range services {
		switch name {
		case QuotaName:
			if err := s.serveQuota(ctx); err != nil {
				return nil, err
			}
		case user.Name:
			db, err := s.openDB(ctx, name, cfg.dsn(name, cfg.User.DB))
			if err != nil {
				return nil, err
			}
			svc, err := user.New(ctx, db, c, signer, cfg.userConfig())
			if err != nil {
				return nil, err
			}
			srv, err := s.serveGRPC(name, cfg.User.Addr, s.slow)
			if err != nil {
				return nil, err
			}
			userv1.RegisterUserServer(srv, svc)
		case note.Name:
			db, err := s.openDB(ctx, name, cfg.dsn(name, cfg.Note.DB))
			if err != nil {
				return nil, err
			}
			svc, err := note.New(ctx, db)
			if err != nil {
				return nil, err
			}
			srv, err := s.serveGRPC(name, cfg.Note.Addr, nil)
			if err != nil {
				return nil, err
			}
			notev1.RegisterNoteServer(srv, svc)
		case interaction.Name:
			db, err := s.openDB(ctx, name, cfg.dsn(name, cfg.Interaction.DB))
			if err != nil {
				return nil, err
			}
			svc, batcher, err := interaction.New(ctx, db, interaction.WithLogger(logger))
			if err != nil {
				return nil, err
			}
			// Before the server in start order, so it stops after the server: the last
			// buffered counts are flushed once no call can add more.
			s.components = append(s.components, app.Hook("interaction counters", nil, func(context.Context) error { return batcher.Close() }))
			srv, err := s.serveGRPC(name, cfg.Interaction.Addr, nil)
			if err != nil {
				return nil, err
			}
			interactionv1.RegisterInteractionServer(srv, svc)
		case inventory.Name:
			db, err := s.openDB(ctx, name, cfg.dsn(name, cfg.Inventory.DB))
			if err != nil {
				return nil, err
			}
			svc, err := inventory.New(ctx, db)
			if err != nil {
				return nil, err
			}
			srv, err := s.serveGRPC(name, cfg.Inventory.Addr, nil)
			if err != nil {
				return nil, err
			}
			inventoryv1.RegisterInventoryServer(srv, svc)
		case bff.Name:
			users, err := s.client(user.Name)
			if err != nil {
				return nil, err
			}
			notes, err := s.client(note.Name)
			if err != nil {
				return nil, err
			}
			quotas, err := s.dial(QuotaName, false)
			if err != nil {
				return nil, err
			}
			// Before its first lease a BFF admits up to 10/s per resource, so a BFF started
			// without a quota service still serves a trickle rather than nothing. It asks
			// for at least 10/s and keeps a second of it as burst, so a quiet BFF can still
			// take a user's burst of writes; under contention max-min fairness decides.
			qc, err := quota.NewClient(quotav1.NewQuotaClient(quotas), quota.Logger(logger),
				quota.DefaultPolicy(quota.Policy{InitialRate: 10}), quota.MinDemand(10), quota.Burst(time.Second))
			if err != nil {
				return nil, fmt.Errorf("bff: quota client: %w", err)
			}
			s.quotaClient = qc
			// Stopped after the BFF's server (components stop in reverse), releasing its leases.
			s.components = append(s.components, app.Hook("quota client", nil, func(context.Context) error { return qc.Close() }))
			h, err := s.haServer(bff.Name, true)
			if err != nil {
				return nil, err
			}
			s.bff = kithttp.NewServer(bff.Name, kithttp.Address(cfg.BFF.Addr), kithttp.Logger(logger), kithttp.Edge(), kithttp.HA(h),
				kithttp.MaxBody(cfg.BFF.MaxBody),
				kithttp.Deadline(middleware.DeadlineConfig{Default: cfg.Timeouts.Edge, Margin: cfg.Timeouts.Margin,
					Operations: cfg.Timeouts.budgets(nil)}))
			interactions, err := s.client(interaction.Name)
			if err != nil {
				return nil, err
			}
			bff.Register(s.bff, bff.Clients{Users: userv1.NewUserClient(users), Notes: notev1.NewNoteClient(notes),
				Interactions: interactionv1.NewInteractionClient(interactions)}, signer, quota.Server(qc, cfg.Quota.Routes))
			s.components = append(s.components, s.bff)
		}
	}
	return s, nil
}

func openRegistry(cfg *Config, logger *slog.Logger) (registry.Registry, error) {
	if cfg.Registry == "memory" {
		return memory.New(), nil
	}
	eps, err := etcdreg.ParseURL(cfg.Registry)
	if err != nil {
		return nil, err
	}
	r, err := etcdreg.Dial(eps, etcdreg.WithLogger(logger), etcdreg.WithPrefix(cfg.RegistryPrefix), etcdreg.WithTTL(cfg.RegistryTTL))
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w (is etcd running? scripts/services.sh starts it)", cfg.Registry, err)
	}
	return r, nil
}

func newSigner(key string, logger *slog.Logger) (*auth.Signer, error) {
	if key == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		key = hex.EncodeToString(b)
		logger.Info("auth.token_key not set: using a random key; tokens die with this process")
	}
	return auth.NewSigner(key, nil)
}

func (s *Stack) openDB(ctx context.Context, name, dsn string) (*sqldb.DB, error) {
	if strings.HasPrefix(dsn, "sqlite:") {
		if err := os.MkdirAll(s.cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data_dir %s: %w", s.cfg.DataDir, err)
		}
	}
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: database: %w", name, err)
	}
	s.components = append(s.components, app.Hook(name+" db", nil, func(context.Context) error { return db.Close() }))
	s.Admin.AddCheck(name+" db", db.PingContext)
	return db, nil
}

// openQueue returns the process's queue, opening it (and the embedded NATS server) on first
// use. It is stopped after everything started later, so consumers and relays stop first.
func (s *Stack) openQueue(ctx context.Context) (mq.Queue, error) {
	if s.queue != nil {
		return s.queue, nil
	}
	url := s.cfg.Queue
	if url == "embedded" {
		e, err := mq.StartEmbedded(filepath.Join(s.cfg.DataDir, "nats"))
		if err != nil {
			return nil, err
		}
		s.components = append(s.components, app.Hook("embedded nats", nil, func(context.Context) error { e.Close(); return nil }))
		url = e.URL()
	}
	q, err := mq.Open(ctx, url, mq.WithSubjectPrefix(s.cfg.QueuePrefix), mq.WithStream(s.cfg.QueueStream))
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w (is NATS running? scripts/services.sh starts it)", conf.RedactURL(s.cfg.Queue), err)
	}
	s.components = append(s.components, app.Hook("queue", nil, func(context.Context) error { return q.Close() }))
	s.Admin.AddCheck("queue", q.Ping)
	s.queue = q
	return q, nil
}

// serveGRPC adds a gRPC server for name and its registration, which is withdrawn before the
// server stops so callers move away first.
func (s *Stack) serveGRPC(name, addr string, budgets map[string]time.Duration) (*kitgrpc.Server, error) {
	h, err := s.haServer(name, false)
	if err != nil {
		return nil, err
	}
	srv := kitgrpc.NewServer(name, kitgrpc.Address(addr), kitgrpc.Logger(s.logger), kitgrpc.HA(h),
		kitgrpc.Deadline(middleware.DeadlineConfig{Default: s.cfg.Timeouts.Internal, Margin: s.cfg.Timeouts.Margin,
			Operations: s.cfg.Timeouts.budgets(budgets)}))
	s.grpc[name] = srv
	node := registry.Node{Service: name, ID: name + "-" + instanceID()}
	s.components = append(s.components, srv, app.Hook(name+" registration",
		func(ctx context.Context) error {
			node.Addr = srv.Endpoint()
			return s.reg.Register(ctx, node)
		},
		func(ctx context.Context) error { return s.reg.Deregister(ctx, node) }))
	return srv, nil
}

// haServer builds the HA parts of one server and closes them after the server stops.
func (s *Stack) haServer(name string, edge bool) (*ha.Server, error) {
	h, err := ha.NewServer(name, s.cfg.HA, edge)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.haServers[name] = h
	s.components = append(s.components, app.Hook(name+" ha", nil, func(context.Context) error { return h.Close() }))
	return h, nil
}

// haState is the "ha" section of the admin /state page.
func (s *Stack) haState() any {
	servers := map[string]any{}
	for name, h := range s.haServers {
		servers[name] = h.State()
	}
	clients := map[string]any{}
	for name, h := range s.haClients {
		clients[name] = h.State()
	}
	out := map[string]any{"servers": servers, "clients": clients, "balancer": balancer.State(),
		"forced_degradation": s.switches.State()}
	if s.quotaSvc != nil {
		out["quota_service"] = s.quotaSvc.State()
	}
	if s.quotaClient != nil {
		out["quota_client"] = s.quotaClient.State()
	}
	return out
}

// serveQuota runs the quota service on its own gRPC server, registered like the others.
func (s *Stack) serveQuota(ctx context.Context) error {
	var store quota.Store = quota.NewMemoryStore()
	if strings.HasPrefix(s.cfg.Quota.Store, "redis://") {
		opt, err := redis.ParseURL(s.cfg.Quota.Store)
		if err != nil {
			return fmt.Errorf("quota.store: %w", err)
		}
		// Fail fast during an outage: clients fall back rather than wait.
		opt.DialTimeout, opt.MaxRetries = 500*time.Millisecond, 1
		rdb := redis.NewClient(opt)
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			return fmt.Errorf("quota.store %s: %w (is Redis running? scripts/services.sh starts it)", s.cfg.Quota.Store, err)
		}
		s.components = append(s.components, app.Hook("quota store", nil, func(context.Context) error { return rdb.Close() }))
		store = quota.NewRedisStore(rdb, s.cfg.Quota.Prefix)
	}
	svc, err := quota.NewService(store, s.cfg.Quota.Resources, quota.ServiceLogger(s.logger))
	if err != nil {
		return fmt.Errorf("quota: %w", err)
	}
	s.quotaSvc = svc
	srv, err := s.serveGRPC(QuotaName, s.cfg.Quota.Addr, nil)
	if err != nil {
		return err
	}
	quotav1.RegisterQuotaServer(srv, svc)
	return nil
}

// Apply applies the dynamic keys of a reloaded configuration: the forced degradation
// switches. (The log level is the caller's: it owns the logger.)
func (s *Stack) Apply(next *Config) {
	s.switches.Set(next.HA.Degrade.Forced)
	if s.quotaSvc != nil {
		if err := s.quotaSvc.SetResources(next.Quota.Resources); err != nil {
			s.logger.Warn("quota.resources not applied", "error", err)
		}
	}
}

func (s *Stack) client(service string) (*kitgrpc.Client, error) {
	return s.dial(service, true)
}

// dial connects to service; required makes its absence fail readiness. The quota service
// is not required: its clients fall back (last lease, then global/N) without it.
func (s *Stack) dial(service string, required bool) (*kitgrpc.Client, error) {
	hcfg := s.cfg.HA
	hcfg.Retry.Idempotent = append(append([]string{}, hcfg.Retry.Idempotent...), idempotent[service]...)
	h := ha.NewClient(hcfg, s.switches, nil)
	s.haClients[service] = h
	c, err := kitgrpc.NewClient(kitgrpc.Scheme+":///"+service, kitgrpc.Registry(s.reg), kitgrpc.ClientLogger(s.logger),
		kitgrpc.ClientHA(h),
		kitgrpc.ClientDeadline(middleware.DeadlineConfig{Default: s.cfg.Timeouts.Internal, Operations: s.cfg.Timeouts.budgets(s.slow)}))
	if err != nil {
		return nil, err
	}
	s.components = append(s.components, app.Hook(service+" client", nil, func(context.Context) error { return c.Close() }))
	if required {
		s.Admin.AddCheck(service, c.Check)
	}
	return c, nil
}

func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Components returns everything to start, in order.
func (s *Stack) Components() []app.Component { return s.components }

// closeAll releases what New opened when New fails half way.
func (s *Stack) closeAll() {
	ctx := context.Background()
	for i := len(s.components) - 1; i >= 0; i-- {
		if _, isServer := s.components[i].(interface{ Endpoint() string }); isServer {
			continue // never started
		}
		_ = s.components[i].Stop(ctx)
	}
}

// BFFURL is the BFF's base URL once started; "" when this process runs no BFF.
func (s *Stack) BFFURL() string {
	if s.bff == nil {
		return ""
	}
	return "http://" + s.bff.Endpoint()
}

// AdminURL is the admin endpoint's base URL once started.
func (s *Stack) AdminURL() string { return "http://" + s.Admin.Endpoint() }

// GRPCAddr is the bound address of a service's gRPC server in this process, or "".
func (s *Stack) GRPCAddr(service string) string {
	if srv, ok := s.grpc[service]; ok {
		return srv.Endpoint()
	}
	return ""
}
