// Package stack builds and runs the demo services on the kit, all of them in one process
// (`redline up`) or one per process (`redline serve SERVICE`), from one configuration.
package stack

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/ha/quota"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/trace"
	"github.com/redline-dev/redline/services/user"
	"github.com/redline-dev/redline/stress/lane"
)

// Config is the configuration of a Redline process. Every key can be set in the YAML file
// (--config), as REDLINE_<SECTION>__<KEY> in the environment, or as a flag where one
// exists; see kit/conf for precedence.
type Config struct {
	// DataDir holds the embedded stores (SQLite files, embedded NATS).
	DataDir string       `koanf:"data_dir"`
	Log     log.Config   `koanf:"log"`
	Trace   trace.Config `koanf:"trace"`
	Admin   AdminConfig  `koanf:"admin"`
	// Registry is "memory" (one process only) or "etcd://host:port[,host:port]".
	Registry string `koanf:"registry"`
	// RegistryPrefix is the etcd key prefix, so deployments (or tests) can share one etcd.
	RegistryPrefix string `koanf:"registry_prefix"`
	// RegistryTTL is the etcd lease TTL: how long a crashed instance stays listed.
	RegistryTTL time.Duration `koanf:"registry_ttl"`
	// Cache is "memory:" or "redis://host:port/db".
	Cache string `koanf:"cache"`
	// CachePrefix starts every cache key, so deployments (or tests) can share one Redis.
	CachePrefix string `koanf:"cache_prefix"`
	// Queue carries domain events and queued writes: "embedded" (a NATS server with
	// JetStream inside this process, storing under data_dir; one process only) or
	// "nats://host:port".
	Queue string `koanf:"queue"`
	// QueuePrefix starts every subject and QueueStream names the JetStream stream, so
	// deployments (or tests) can share one NATS.
	QueuePrefix string         `koanf:"queue_prefix"`
	QueueStream string         `koanf:"queue_stream"`
	Auth        AuthConfig     `koanf:"auth"`
	Timeouts    TimeoutsConfig `koanf:"timeouts"`
	BFF         BFFConfig      `koanf:"bff"`
	User        UserConfig     `koanf:"user"`
	Note        NoteConfig     `koanf:"note"`
	Inventory   ServiceConfig  `koanf:"inventory"`
	Interaction ServiceConfig  `koanf:"interaction"`
	Feed        FeedConfig     `koanf:"feed"`
	Comment     ServiceConfig  `koanf:"comment"`
	History     ServiceConfig  `koanf:"history"`
	Search      ServiceConfig  `koanf:"search"`
	Product     ServiceConfig  `koanf:"product"`
	Order       OrderConfig    `koanf:"order"`
	Payment     PaymentConfig  `koanf:"payment"`
	// SRE is the SRE service: incidents, the Alertmanager receiver, on-call.
	SRE SREConfig `koanf:"sre"`
	// Provider is the mock payment provider (a third party in production).
	Provider ProviderConfig `koanf:"payprovider"`
	// Stress configures stress lanes.
	Stress StressConfig `koanf:"stress"`
	// Chaos configures fault injection: faults from the config and the admin API.
	Chaos ChaosConfig `koanf:"chaos"`
	// Lane makes this process a lane instance (a canary, or a stress-only build): its gRPC
	// servers register with the registry label lane=<Lane>, so only requests in that lane
	// reach them, and lane requests for services it does not run fall back to baseline
	// instances. Empty: a baseline instance.
	Lane string `koanf:"lane"`
	// HA configures the HA parts every server and client runs (see ha/README.md).
	HA ha.Config `koanf:"ha"`
	// Quota configures the distributed quota service and the BFF's use of it.
	Quota QuotaConfig `koanf:"quota"`
	// Drain is how long readiness reports false before servers stop accepting.
	Drain time.Duration `koanf:"drain"`
	// StopTimeout bounds a graceful stop.
	StopTimeout time.Duration `koanf:"stop_timeout"`
}

// AdminConfig configures the admin endpoint.
type AdminConfig struct {
	Addr string `koanf:"addr"`
	// Token, when set, is required as a bearer token on every admin endpoint but
	// /healthz and /readyz.
	Token string `koanf:"token" secret:"true"`
}

// AuthConfig configures user tokens.
type AuthConfig struct {
	// TokenKey signs login tokens; the user service and the BFF must share it. Empty means
	// a random key per process, which only works when both run in one process (`up`).
	TokenKey string        `koanf:"token_key" secret:"true"`
	TokenTTL time.Duration `koanf:"token_ttl"`
}

// TimeoutsConfig holds the default budgets: the edge (what users call) and internal calls,
// and per-operation overrides.
type TimeoutsConfig struct {
	Edge       time.Duration     `koanf:"edge"`
	Internal   time.Duration     `koanf:"internal"`
	Margin     time.Duration     `koanf:"margin"`
	Operations []OperationBudget `koanf:"operations"`
}

// OperationBudget is the budget of one operation: an HTTP route pattern at the BFF
// ("GET /v1/notes/{id}") or a gRPC full method inside ("/note.v1.Note/GetNote"). A list,
// not a map, because config keys cannot hold the dots of gRPC method names.
type OperationBudget struct {
	Op      string        `koanf:"op"`
	Timeout time.Duration `koanf:"timeout"`
}

// budgets returns the per-operation budgets: built-in ones, then the configured overrides.
func (t TimeoutsConfig) budgets(builtin map[string]time.Duration) map[string]time.Duration {
	out := make(map[string]time.Duration, len(builtin)+len(t.Operations))
	for op, d := range builtin {
		out[op] = d
	}
	for _, b := range t.Operations {
		out[b.Op] = b.Timeout
	}
	return out
}

// BFFConfig configures the BFF.
type BFFConfig struct {
	Addr    string `koanf:"addr"`
	MaxBody int64  `koanf:"max_body"`
}

// UserConfig configures the user service.
type UserConfig struct {
	Addr       string        `koanf:"addr"`
	DB         string        `koanf:"db"`
	BcryptCost int           `koanf:"bcrypt_cost"`
	TokenTTL   time.Duration `koanf:"token_ttl"`
}

// QuotaConfig configures distributed quota (ha/quota): the quota service, which `up` runs
// in process and `redline quota serve` runs alone, and the resources it shares out.
type QuotaConfig struct {
	// Addr is the quota service's gRPC address (port 0: any free port).
	Addr string `koanf:"addr"`
	// Store holds the shared state: "memory" (one quota service) or
	// "redis://host:port/db" (several quota services serving together).
	Store string `koanf:"store"`
	// Prefix starts the store's Redis keys.
	Prefix string `koanf:"prefix"`
	// Resources are the shared limits, by name (names without dots). They reload live.
	Resources map[string]quota.Resource `koanf:"resources" dynamic:"true"`
	// Routes maps BFF routes to the resource each request consumes.
	Routes map[string]string `koanf:"routes"`
}

// NoteConfig configures the note service and its read path.
type NoteConfig struct {
	Addr string `koanf:"addr"`
	DB   string `koanf:"db"`
	// Replicas is how many gRPC servers serve note in this process (1 to MaxReplicas,
	// default 1), so a drill can make one replica slow (a fault with instance: note-2)
	// and watch the balancer steer around it. Replica 1 listens on addr, the others on
	// free ports of the same host. Each has its own server, HA parts (admission and
	// shedding are per instance, as on separate machines), registry node labelled
	// instance=note, note-2, ... and, with chaos.net on, its own proxy of that name. All
	// of them serve the same service object: one database, cache, hot-key copy, id filter
	// and outbox relay, so replicas differ in their servers, not in their data or state.
	Replicas int `koanf:"replicas"`
	// HotTTL is how long a hot note's in-process copy is served: the staleness other
	// processes may see after an update.
	HotTTL time.Duration `koanf:"hot_ttl"`
	// HotWhitelist are note ids known to be hot in advance (a launch, a campaign): served
	// from the process from their first read.
	HotWhitelist []int64 `koanf:"hot_whitelist"`
	// ExpectedNotes sizes the id bloom filter (1% false positives at that many notes).
	ExpectedNotes int `koanf:"expected_notes"`
}

// MaxReplicas bounds note.replicas: replicas are for drills on one machine, not capacity.
const MaxReplicas = 8

// FeedConfig configures the feed service.
type FeedConfig struct {
	Addr string `koanf:"addr"`
	DB   string `koanf:"db"`
	// BigAuthorFollowers: authors with more followers are not fanned out on write; their
	// notes are pulled into followers' feeds at read time.
	BigAuthorFollowers int `koanf:"big_author_followers"`
	// InboxCap is how many entries a home-feed inbox keeps (newest).
	InboxCap int `koanf:"inbox_cap"`
}

// OrderConfig configures the order service.
type OrderConfig struct {
	Addr string `koanf:"addr"`
	DB   string `koanf:"db"`
	// PaymentTimeout is how long an order waits for payment before it closes itself and
	// its stock returns.
	PaymentTimeout time.Duration `koanf:"payment_timeout"`
	// CloseInterval is how often expired orders are looked for.
	CloseInterval time.Duration `koanf:"close_interval"`
	// CreateTimeout is how long an order may stay CREATING (a create that failed half way,
	// whose client did not come back) before the closer closes it and releases its stock.
	CreateTimeout time.Duration `koanf:"create_timeout"`
}

// PaymentConfig configures the payment service.
type PaymentConfig struct {
	Addr string `koanf:"addr"`
	DB   string `koanf:"db"`
	// Secret signs provider callbacks (HMAC-SHA256), shared with the provider; at least 16
	// bytes. Empty: a random one per process, which works only when the mock provider runs
	// in the same process (`up`).
	Secret string `koanf:"secret" secret:"true"`
	// ProviderURL is the provider's base URL; empty means the mock in this process.
	ProviderURL string `koanf:"provider_url"`
	// CallbackURL is where the provider calls back (the BFF's POST /v1/payments/callback);
	// empty means this process's BFF.
	CallbackURL string `koanf:"callback_url"`
	// ProviderTimeout is the most one charge call to the provider may take, whatever the
	// caller's deadline allows (see providerCharger). Default DefaultProviderTimeout.
	ProviderTimeout time.Duration `koanf:"provider_timeout"`
	// ProviderBreaker tunes the breaker of the calls to the provider over ha.breaker: a
	// third party called a few times a second needs a longer window and fewer requests in
	// it than ha.breaker's defaults (1s, 20) to ever throttle. Zero fields keep ha.breaker's.
	ProviderBreaker ha.BreakerConfig `koanf:"provider_breaker"`
}

// StressConfig configures stress lanes (stress/lane).
type StressConfig struct {
	// Key signs lane tokens: the BFF admits a lane only with a token signed by it (at least
	// 16 bytes). Empty: no lanes; every lane token is stripped and counted.
	Key string `koanf:"key" secret:"true"`
	// Shadow builds a shadow instance of every service that keeps data, on shadow data:
	// requests in a lane go to it (see shadow.go). Default on. Off, lanes are refused at the
	// BFF with LANE_NOT_ISOLATED, and the data clients refuse them anyway: lanes fail closed.
	Shadow bool `koanf:"shadow"`
	// Kill refuses lane traffic on every service of this process at once (LANE_KILLED);
	// KillServices refuses it on the services named. Both reload live: the stop button of a
	// stress test.
	Kill         bool     `koanf:"kill" dynamic:"true"`
	KillServices []string `koanf:"kill_services" dynamic:"true"`
}

// ProviderConfig configures the mock payment provider.
type ProviderConfig struct {
	Addr string `koanf:"addr"`
	// Delay is how long the mock waits before it calls back; FailureRatio is the share of
	// charges it declines. For drills.
	Delay        time.Duration `koanf:"delay"`
	FailureRatio float64       `koanf:"failure_ratio"`
}

// ServiceConfig configures a service that needs only an address and a database.
type ServiceConfig struct {
	Addr string `koanf:"addr"`
	// DB is the service's database; "" is a SQLite file in data_dir.
	DB string `koanf:"db"`
}

// Default returns the configuration of `redline up` on a fresh machine: embedded stores
// under ./data, the BFF on 127.0.0.1:8080, admin on 127.0.0.1:9090, gRPC on free
// loopback ports found through the in-memory registry.
func Default() *Config {
	return &Config{
		DataDir:        "data",
		Log:            log.Config{Format: "text", Level: "info"},
		Admin:          AdminConfig{Addr: "127.0.0.1:9090"},
		Registry:       "memory",
		RegistryPrefix: "/redline/registry/",
		RegistryTTL:    10 * time.Second,
		Cache:          "memory:",
		Queue:          "embedded",
		QueuePrefix:    "redline",
		QueueStream:    "REDLINE",
		Auth:           AuthConfig{TokenTTL: 24 * time.Hour},
		Timeouts:       TimeoutsConfig{Edge: time.Second, Internal: 100 * time.Millisecond, Margin: 2 * time.Millisecond},
		BFF:            BFFConfig{Addr: "127.0.0.1:8080", MaxBody: 1 << 20},
		User:           UserConfig{Addr: "127.0.0.1:0"},
		Note:           NoteConfig{Addr: "127.0.0.1:0", Replicas: 1, HotTTL: time.Second, ExpectedNotes: 1_000_000},
		Inventory:      ServiceConfig{Addr: "127.0.0.1:0"},
		Interaction:    ServiceConfig{Addr: "127.0.0.1:0"},
		Feed:           FeedConfig{Addr: "127.0.0.1:0", BigAuthorFollowers: 1000, InboxCap: 1000},
		Comment:        ServiceConfig{Addr: "127.0.0.1:0"},
		History:        ServiceConfig{Addr: "127.0.0.1:0"},
		Search:         ServiceConfig{Addr: "127.0.0.1:0"},
		Product:        ServiceConfig{Addr: "127.0.0.1:0"},
		Order:          OrderConfig{Addr: "127.0.0.1:0", PaymentTimeout: 15 * time.Minute, CloseInterval: 5 * time.Second, CreateTimeout: 30 * time.Second},
		Payment: PaymentConfig{Addr: "127.0.0.1:0", ProviderTimeout: DefaultProviderTimeout,
			ProviderBreaker: ha.BreakerConfig{Window: 5 * time.Second, MinRequests: 5}},
		Provider: ProviderConfig{Addr: "127.0.0.1:9180", Delay: 50 * time.Millisecond},
		HA:       ha.Default(),
		Stress:   StressConfig{Shadow: true},
		Chaos:    ChaosConfig{Enabled: true, MaxTTL: faults.DefaultMaxTTL, Net: NetConfig{Dependencies: true}},
		SRE: SREConfig{Addr: "127.0.0.1:9200", OnCall: OnCallConfig{Primary: []string{"oncall-primary"},
			Secondary: []string{"oncall-secondary"}, Manager: "oncall-manager", Rotation: 7 * 24 * time.Hour, AckTimeout: 5 * time.Minute},
			EvalInterval: 5 * time.Second},
		Quota: QuotaConfig{Addr: "127.0.0.1:9190", Store: "memory", Prefix: "redline:quota:",
			// Creating a note is the demo's costly write: at most 50/s across every BFF.
			Resources: map[string]quota.Resource{"notes_create": {Limit: 50, LeaseTTL: 10 * time.Second}},
			Routes:    map[string]string{"POST /v1/notes": "notes_create"}},
		Drain:       0,
		StopTimeout: 10 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var problems []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	for key, addr := range map[string]string{"admin.addr": c.Admin.Addr, "bff.addr": c.BFF.Addr, "user.addr": c.User.Addr,
		"note.addr": c.Note.Addr, "quota.addr": c.Quota.Addr, "inventory.addr": c.Inventory.Addr,
		"interaction.addr": c.Interaction.Addr, "feed.addr": c.Feed.Addr, "comment.addr": c.Comment.Addr,
		"history.addr": c.History.Addr, "search.addr": c.Search.Addr, "product.addr": c.Product.Addr,
		"order.addr": c.Order.Addr, "payment.addr": c.Payment.Addr, "payprovider.addr": c.Provider.Addr, "sre.addr": c.SRE.Addr} {
		_, _, err := net.SplitHostPort(addr)
		check(err == nil, "%s %q: want host:port", key, addr)
	}
	check(c.Registry == "memory" || strings.HasPrefix(c.Registry, "etcd://"), "registry %q: want memory or etcd://host:port", c.Registry)
	check(c.RegistryTTL >= 2*time.Second, "registry_ttl %v: etcd leases last at least 2s", c.RegistryTTL)
	check(c.Cache == "memory:" || strings.HasPrefix(c.Cache, "redis://"), "cache %q: want memory: or redis://host:port", c.Cache)
	check(c.Queue == "embedded" || strings.HasPrefix(c.Queue, "nats://"), "queue %q: want embedded or nats://host:port", c.Queue)
	check(c.Auth.TokenKey == "" || len(c.Auth.TokenKey) >= auth.MinKeyLen, "auth.token_key: at least %d bytes", auth.MinKeyLen)
	check(c.Timeouts.Edge > 0 && c.Timeouts.Internal > 0, "timeouts.edge and timeouts.internal must be positive")
	check(c.Timeouts.Margin >= 0 && c.Timeouts.Margin < c.Timeouts.Internal, "timeouts.margin must be >= 0 and below timeouts.internal")
	for i, b := range c.Timeouts.Operations {
		check(b.Op != "" && b.Timeout > 0, "timeouts.operations[%d]: want an op and a positive timeout", i)
	}
	check(c.BFF.MaxBody > 0, "bff.max_body must be positive")
	check(c.Note.HotTTL > 0 && c.Note.ExpectedNotes > 0, "note.hot_ttl and note.expected_notes must be positive")
	check(c.Note.Replicas >= 1 && c.Note.Replicas <= MaxReplicas,
		"note.replicas %d: want 1 to %d gRPC servers of note in this process (1: no replicas)", c.Note.Replicas, MaxReplicas)
	check(c.Feed.BigAuthorFollowers > 0 && c.Feed.InboxCap > 0, "feed.big_author_followers and feed.inbox_cap must be positive")
	check(c.Order.PaymentTimeout > 0 && c.Order.CloseInterval > 0 && c.Order.CreateTimeout > 0,
		"order.payment_timeout, order.close_interval and order.create_timeout must be positive")
	check(c.Payment.Secret == "" || len(c.Payment.Secret) >= 16, "payment.secret: at least 16 bytes")
	oc := c.SRE.OnCall
	check(len(oc.Primary) > 0 && len(oc.Secondary) > 0 && oc.Manager != "",
		"sre.oncall: primary and secondary need at least one user each, and manager a user")
	check(oc.Rotation > 0 && oc.AckTimeout > 0, "sre.oncall: rotation and ack_timeout must be positive")
	check(c.SRE.EvalInterval >= time.Second && c.SRE.EvalInterval <= time.Minute, "sre.eval_interval %v: want 1s to 1m (5s keeps pages within 10%% of the workbook's detection time)", c.SRE.EvalInterval)
	if err := c.SRE.Gate.Validate(); err != nil {
		problems = append(problems, fmt.Errorf("sre.%w", err))
	}
	for i, u := range c.SRE.Scrape {
		check(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"), "sre.scrape[%d] %q: want an http(s) URL of a /metrics endpoint", i, u)
	}
	check(c.Chaos.MaxTTL > 0, "chaos.max_ttl must be positive")
	check(!c.Chaos.Enabled || c.Admin.Token != "" || loopback(c.Admin.Addr),
		"chaos.enabled with admin.addr %q off loopback needs admin.token: anyone reaching it could inject faults (set admin.token, or chaos.enabled: false)", c.Admin.Addr)
	for i, f := range c.Chaos.Faults {
		if err := f.Validate(); err != nil {
			problems = append(problems, fmt.Errorf("chaos.faults[%d]: %w", i, err))
		}
	}
	check(c.Lane == "" || meta.ValidLane(c.Lane), "lane %q: 1 to 32 of a-z, 0-9 and -, starting with a letter", c.Lane)
	check(c.Stress.Key == "" || len(c.Stress.Key) >= lane.MinKeyLen, "stress.key: at least %d bytes", lane.MinKeyLen)
	check(c.Provider.FailureRatio >= 0 && c.Provider.FailureRatio <= 1, "payprovider.failure_ratio must be 0 to 1")
	check(c.Payment.ProviderTimeout > 0 && c.Payment.ProviderTimeout <= time.Minute,
		"payment.provider_timeout %v: want a duration in (0, 1m] such as 2s", c.Payment.ProviderTimeout)
	check(c.Quota.Store == "memory" || strings.HasPrefix(c.Quota.Store, "redis://"), "quota.store %q: want memory or redis://host:port/db", c.Quota.Store)
	if err := quota.ValidateResources(c.Quota.Resources); err != nil {
		problems = append(problems, fmt.Errorf("quota.resources: %w", err))
	}
	for route, res := range c.Quota.Routes {
		_, ok := c.Quota.Resources[res]
		check(ok, "quota.routes[%q]: resource %q is not in quota.resources", route, res)
	}
	check(c.StopTimeout > 0, "stop_timeout must be positive")
	return errors.Join(problems...)
}

// dsn returns the database of a service: its configured DSN or a SQLite file in DataDir.
func (c *Config) dsn(service, configured string) string {
	if configured != "" {
		return configured
	}
	return "sqlite:" + filepath.Join(c.DataDir, service+".db")
}

func (c *Config) userConfig() user.Config {
	ttl := c.User.TokenTTL
	if ttl == 0 {
		ttl = c.Auth.TokenTTL
	}
	return user.Config{TokenTTL: ttl, BcryptCost: c.User.BcryptCost}
}

// loopback reports whether addr (host:port) listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
