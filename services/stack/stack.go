package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/chaos/netfault"
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
	"github.com/redline-dev/redline/services/comment"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/history"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/inventory"
	"github.com/redline-dev/redline/services/note"
	"github.com/redline-dev/redline/services/order"
	"github.com/redline-dev/redline/services/payment"
	"github.com/redline-dev/redline/services/product"
	"github.com/redline-dev/redline/services/search"
	"github.com/redline-dev/redline/services/user"
)

// idempotent lists, per service, the methods its clients may retry.
var idempotent = map[string][]string{user.Name: user.Idempotent, note.Name: note.Idempotent,
	inventory.Name: inventory.Idempotent, interaction.Name: interaction.Idempotent, product.Name: product.Idempotent,
	order.Name: order.Idempotent, payment.Name: payment.Idempotent, feed.Name: feed.Idempotent,
	comment.Name: comment.Idempotent, history.Name: history.Idempotent, search.Name: search.Idempotent}

// QuotaName is the quota service's name in the registry.
const QuotaName = "quota"

// Services lists the services a process can run, in start order: what others call starts
// first, the BFF last.
var Services = []string{QuotaName, user.Name, note.Name, interaction.Name, inventory.Name, product.Name, order.Name,
	ProviderName, payment.Name, feed.Name, comment.Name, history.Name, search.Name, SREName, bff.Name}

// queueUsers are the services that publish or consume on the queue.
var queueUsers = []string{note.Name, product.Name, feed.Name, comment.Name, search.Name}

// Stack is the set of services of one process with their shared parts.
type Stack struct {
	cfg      *Config
	logger   *slog.Logger
	services []string

	Admin *admin.Server
	reg   registry.Registry
	bff   *kithttp.Server
	sre   *kithttp.Server
	grpc  map[string]*kitgrpc.Server // by instance name: "note" (replica 1), "note-2", ...

	// switches force degradation of named dependencies; dynamic config sets them.
	switches  *degrade.Switches
	haServers map[string]*ha.Server // by server instance name ("note", "note-2", "bff")
	haClients map[string]*ha.Client

	quotaSvc    *quota.Service
	quotaClient *quota.Client
	slow        map[string]time.Duration // per-method budgets above timeouts.internal

	signer   *auth.Signer
	provider *kithttp.Server  // the mock payment provider, when this process runs it
	lanes    laneSwitches     // stress.kill and stress.kill_services, reloaded live
	faults   *faults.Registry // chaos.faults and the admin API's, nil when chaos is off

	netFaults *netfault.Proxies // chaos.net's proxies, nil when off (netfault.go)

	// shadow is on while a builder builds a service's shadow instance (shadow.go).
	shadow     bool
	serving    []app.Component    // the service's gRPC server and registration, held back
	routes     map[string]*routed // by gRPC service name
	routeOrder []string
	dbPairs    map[string][2]*sqldb.DB // baseline and shadow, by service

	// Opened by the first service that needs them.
	natsURL string
	queues  map[queueKey]mq.Queue
	cache   cache.Cache
	rdb     *redis.Client // the cache's Redis, when it is Redis

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
	if !all && cfg.Queue == "embedded" && slices.ContainsFunc(services, func(n string) bool { return slices.Contains(queueUsers, n) }) {
		return nil, errors.New("services in separate processes share one queue: start NATS (scripts/services.sh) and pass --queue nats://127.0.0.1:4222")
	}
	if !all && cfg.Payment.Secret == "" && (slices.Contains(services, payment.Name) || slices.Contains(services, ProviderName)) {
		return nil, errors.New("payment and payprovider in separate processes must share payment.secret: " +
			"export REDLINE_PAYMENT__SECRET=<at least 16 random bytes> for both")
	}
	if cfg.Payment.Secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		c := *cfg
		c.Payment.Secret = hex.EncodeToString(b)
		cfg = &c
	}
	s := &Stack{cfg: cfg, logger: logger, services: services, grpc: map[string]*kitgrpc.Server{},
		switches: degrade.NewSwitches(), haServers: map[string]*ha.Server{}, haClients: map[string]*ha.Client{},
		routes: map[string]*routed{}, dbPairs: map[string][2]*sqldb.DB{}}
	s.switches.Set(cfg.HA.Degrade.Forced)
	s.lanes.set(cfg.Stress)
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
	if err := s.buildChaos(); err != nil {
		return nil, err
	}
	if err := s.buildNetFault(); err != nil {
		return nil, err
	}

	if s.reg, err = openRegistry(cfg, logger); err != nil {
		return nil, err
	}
	s.components = append(s.components, app.Hook("registry", nil, func(context.Context) error { return s.reg.Close() }))

	signer, err := newSigner(cfg.Auth.TokenKey, logger)
	if err != nil {
		return nil, err
	}
	s.signer = signer
	for _, name := range services {
		if err := builders[name](s, ctx); err != nil {
			return nil, err
		}
		if cfg.Stress.Shadow && !noShadow[name] {
			s.shadow = true
			err := builders[name](s, ctx)
			s.shadow = false
			if err != nil {
				return nil, fmt.Errorf("%s (shadow): %w", name, err)
			}
		}
		s.components = append(s.components, s.serving...)
		s.serving = nil
	}
	if err := s.compareShadows(ctx); err != nil {
		return nil, err
	}
	if err := s.registerRoutes(); err != nil {
		return nil, err
	}
	s.serveLeakChecks()
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
	opts := []sqldb.Option{sqldb.WithService(name)}
	pair := s.dbPairs[name]
	if s.shadow {
		// A small pool: stress must not take the connections the baseline needs.
		opts = append(opts, sqldb.Shadow(), sqldb.WithMaxConns(shadowMaxConns))
		name += " shadow"
	}
	db, err := sqldb.Open(ctx, dsn, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: database: %w", name, err)
	}
	pair[btoi(s.shadow)] = db
	s.dbPairs[strings.TrimSuffix(name, " shadow")] = pair
	s.components = append(s.components, app.Hook(name+" db", nil, func(context.Context) error { return db.Close() }))
	if !s.shadow { // a broken shadow store fails stress runs, never the service's readiness
		s.Admin.AddCheck(name+" db", db.PingContext)
	}
	return db, nil
}

// openQueue returns service's view of a queue of the process whose subscriptions run
// concurrency handlers at once, connecting (and starting the embedded NATS server) on first
// use. Queues stop after everything started later, so consumers and relays stop first.
func (s *Stack) openQueue(ctx context.Context, service string, concurrency int) (mq.Queue, error) {
	key := queueKey{concurrency, s.shadow}
	if q, ok := s.queues[key]; ok {
		return mq.ForService(q, service), nil
	}
	if s.natsURL == "" {
		s.natsURL = s.cfg.Queue
		if s.natsURL == "embedded" {
			e, err := mq.StartEmbedded(filepath.Join(s.cfg.DataDir, "nats"))
			if err != nil {
				return nil, err
			}
			s.components = append(s.components, app.Hook("embedded nats", nil, func(context.Context) error { e.Close(); return nil }))
			s.natsURL = e.URL()
		}
	}
	opts := []mq.Option{mq.WithSubjectPrefix(s.cfg.QueuePrefix), mq.WithStream(s.cfg.QueueStream), mq.WithConcurrency(concurrency)}
	if s.shadow {
		opts = append(opts, mq.Shadow())
	}
	q, err := mq.Open(ctx, s.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w (is NATS running? scripts/services.sh starts it)", conf.RedactURL(s.cfg.Queue), err)
	}
	s.components = append(s.components, app.Hook("queue", nil, func(context.Context) error { return q.Close() }))
	if len(s.queues) == 0 {
		s.Admin.AddCheck("queue", q.Ping)
	}
	if s.queues == nil {
		s.queues = map[queueKey]mq.Queue{}
	}
	s.queues[key] = q
	return mq.ForService(q, service), nil
}

// shadowMaxConns is the PostgreSQL pool of a shadow database.
const shadowMaxConns = 4

// queueKey names one of the process's queues.
type queueKey struct {
	concurrency int
	shadow      bool
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// openCache returns service's view of the process's cache, opening it on first use; a
// shadow instance gets its shadow view.
func (s *Stack) openCache(ctx context.Context, service string) (cache.Cache, error) {
	c, err := s.openBaselineCache(ctx)
	if err != nil {
		return nil, err
	}
	if s.shadow {
		c = cache.Shadow(c)
	}
	return cache.ForService(c, service), nil
}

// cachePrefix is the prefix of keys the services write to the cache's Redis directly.
func (s *Stack) cachePrefix() string {
	if s.shadow {
		return s.cfg.CachePrefix + cache.ShadowPrefix
	}
	return s.cfg.CachePrefix
}

func (s *Stack) openBaselineCache(ctx context.Context) (cache.Cache, error) {
	if s.cache != nil {
		return s.cache, nil
	}
	c, err := cache.Open(ctx, s.cfg.Cache, cache.WithPrefix(s.cfg.CachePrefix))
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w (is Redis running? scripts/services.sh starts it)", s.cfg.Cache, err)
	}
	s.components = append(s.components, app.Hook("cache", nil, func(context.Context) error { return c.Close() }))
	s.Admin.AddCheck("cache", c.Ping)
	s.cache = c
	return c, nil
}

// redisClient returns a client of the cache's Redis, or nil when the cache is in memory.
func (s *Stack) redisClient() *redis.Client {
	if s.rdb != nil || !strings.HasPrefix(s.cfg.Cache, "redis://") {
		return s.rdb
	}
	opt, err := redis.ParseURL(s.cfg.Cache)
	if err != nil {
		return nil // Validate and openCache report a bad URL
	}
	cache.FailFast(opt)
	s.rdb = redis.NewClient(opt)
	s.components = append(s.components, app.Hook("redis", nil, func(context.Context) error { return s.rdb.Close() }))
	return s.rdb
}

// serveGRPC adds the gRPC servers of name and their registrations, which are withdrawn
// before the servers stop so callers move away first. A service runs replicas(name)
// servers: replica 1 at addr, named after the service; replica k at a free port of addr's
// host, named "<name>-k". Each has its own HA parts and registry node (label instance) and,
// with chaos.net on, its own proxy; its fault hook knows its instance name, so a fault can
// be scoped to one replica.
//
// It returns where the builder registers its gRPC services: registerRoutes registers them
// on every replica once both instances are built. A shadow instance gets no server of its
// own.
func (s *Stack) serveGRPC(name, addr string, budgets map[string]time.Duration) (grpc.ServiceRegistrar, error) {
	if s.shadow {
		return registrar{s: s, shadow: true}, nil
	}
	n := s.replicas(name)
	srvs := make([]*kitgrpc.Server, 0, n)
	for k := 1; k <= n; k++ {
		instance, at := name, addr
		if k > 1 {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("%s: addr %q: %w", name, addr, err)
			}
			instance, at = fmt.Sprintf("%s-%d", name, k), net.JoinHostPort(host, "0")
		}
		srv, err := s.serveReplica(name, instance, at, budgets)
		if err != nil {
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	return registrar{s: s, srvs: srvs}, nil
}

// replicas is how many gRPC servers serve service in this process: note.replicas for note
// (at least 1, for a config that skipped Validate), 1 for the others.
func (s *Stack) replicas(service string) int {
	if service == note.Name {
		return max(s.cfg.Note.Replicas, 1)
	}
	return 1
}

// serveReplica adds one gRPC server of service, named instance, listening on addr.
func (s *Stack) serveReplica(service, instance, addr string, budgets map[string]time.Duration) (*kitgrpc.Server, error) {
	h, err := s.haInstance(service, instance, false)
	if err != nil {
		return nil, err
	}
	srv := kitgrpc.NewServer(service, kitgrpc.Address(addr), kitgrpc.Logger(s.logger), kitgrpc.HA(h),
		kitgrpc.Instance(instance), kitgrpc.Middleware(s.laneGuard(service)),
		kitgrpc.Deadline(middleware.DeadlineConfig{Default: s.cfg.Timeouts.Internal, Margin: s.cfg.Timeouts.Margin,
			Operations: s.cfg.Timeouts.budgets(budgets)}))
	s.grpc[instance] = srv
	node := registry.Node{Service: service, ID: instance + "-" + instanceID(),
		Labels: map[string]string{registry.LabelInstance: instance}}
	if s.cfg.Lane != "" {
		node.Labels[registry.LabelLane] = s.cfg.Lane
	}
	// Held back until the service's shadow instance is built too (New), so the server starts
	// after, and stops before, everything both instances serve from.
	s.serving = append(s.serving, srv, app.Hook(instance+" registration",
		func(ctx context.Context) (err error) {
			if node.Addr, err = s.netAddr(instance, srv.Endpoint()); err != nil { // a chaos.net proxy's, when on
				return err
			}
			return s.reg.Register(ctx, node)
		},
		func(ctx context.Context) error { return s.reg.Deregister(ctx, node) }))
	return srv, nil
}

// haServer builds the HA parts of one server and closes them after the server stops.
func (s *Stack) haServer(name string, edge bool) (*ha.Server, error) {
	return s.haInstance(name, name, edge)
}

// haInstance builds the HA parts of the server instance of service, shown under instance
// in /state, and closes them after the server stops.
func (s *Stack) haInstance(service, instance string, edge bool) (*ha.Server, error) {
	h, err := ha.NewServer(service, s.cfg.HA, edge)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", instance, err)
	}
	s.haServers[instance] = h
	s.components = append(s.components, app.Hook(instance+" ha", nil, func(context.Context) error { return h.Close() }))
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
		cache.FailFast(opt)
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
// switches, the lane kill switches, quota resources and the config's faults. (The log level is the caller's: it owns the logger.)
func (s *Stack) Apply(next *Config) {
	s.switches.Set(next.HA.Degrade.Forced)
	s.lanes.set(next.Stress)
	if s.faults != nil {
		if err := s.faults.SetConfig(next.Chaos.Faults); err != nil {
			s.logger.Warn("chaos.faults not applied", "error", err)
		}
	}
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
	opts := []kitgrpc.ClientOption{kitgrpc.Registry(s.reg), kitgrpc.ClientLogger(s.logger), kitgrpc.ClientHA(h),
		kitgrpc.ClientDeadline(middleware.DeadlineConfig{Default: s.cfg.Timeouts.Internal, Operations: s.cfg.Timeouts.budgets(s.slow)})}
	key := service
	if s.shadow {
		opts = append(opts, kitgrpc.ClientLane(s.shadowLane()))
		key += " (shadow)"
	}
	s.haClients[key] = h
	c, err := kitgrpc.NewClient(kitgrpc.Scheme+":///"+service, opts...)
	if err != nil {
		return nil, err
	}
	s.components = append(s.components, app.Hook(key+" client", nil, func(context.Context) error { return c.Close() }))
	if required && !s.shadow {
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

// Lane is the lane this process serves ("" for baseline): see Config.Lane.
func (s *Stack) Lane() string { return s.cfg.Lane }

// GRPCAddr is the bound address of a service's gRPC server in this process (replica 1's),
// or "". A further replica's is asked for by its instance name: GRPCAddr("note-2").
func (s *Stack) GRPCAddr(service string) string {
	if srv, ok := s.grpc[service]; ok {
		return srv.Endpoint()
	}
	return ""
}
