// Package ha assembles Redline's high-availability parts into the middleware the kit's
// servers and clients run by default. Each part lives in its own package (ha/shed,
// ha/codel, ha/ratelimit, ha/bulkhead, ha/breaker, ha/retry, ha/degrade, ha/criticality,
// ha/balancer); this package decides their order, their defaults and which run where.
//
// Server chain, after the kit's recovery, metadata, tracing, logging, metrics and deadline:
//
//	edge only: criticality (per route) → rate limit (per route and caller)
//	CPU report (for clients' P2C) → CoDel admission queue → adaptive shedder → bulkhead (per route)
//	edge only: last-good response cache
//
// Client chain, after the kit's metadata, tracing, logging, metrics and deadline:
//
//	degrade (fallbacks and forced switches) → retry (budget, chain stop, hedging) →
//	breaker (per target and method) → bulkhead (per target)
//
// and the gRPC balancer is P2C (ha/balancer). ha/README.md explains every default.
package ha

import (
	"errors"
	"fmt"
	"time"

	"github.com/redline-dev/redline/ha/balancer"
	"github.com/redline-dev/redline/ha/breaker"
	"github.com/redline-dev/redline/ha/bulkhead"
	"github.com/redline-dev/redline/ha/codel"
	"github.com/redline-dev/redline/ha/criticality"
	"github.com/redline-dev/redline/ha/degrade"
	"github.com/redline-dev/redline/ha/ratelimit"
	"github.com/redline-dev/redline/ha/retry"
	"github.com/redline-dev/redline/ha/shed"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

// Config configures every part. The zero value of a section's Off keeps the part on:
// everything is on unless switched off.
type Config struct {
	Shed        ShedConfig        `koanf:"shed"`
	Queue       QueueConfig       `koanf:"queue"`
	RateLimit   RateLimitConfig   `koanf:"ratelimit"`
	Bulkhead    BulkheadConfig    `koanf:"bulkhead"`
	Breaker     BreakerConfig     `koanf:"breaker"`
	Retry       RetryConfig       `koanf:"retry"`
	Degrade     DegradeConfig     `koanf:"degrade"`
	Criticality CriticalityConfig `koanf:"criticality"`
}

// ShedConfig configures the adaptive shedder (ha/shed).
type ShedConfig struct {
	Off bool `koanf:"off"`
	// Threshold is the CPU share of the quota above which shedding may start (0.8).
	Threshold float64 `koanf:"threshold"`
	// CoolDown keeps shedding on this long after the last shed request (1 s).
	CoolDown time.Duration `koanf:"cool_down"`
}

// QueueConfig configures the CoDel admission queue (ha/codel).
type QueueConfig struct {
	Off bool `koanf:"off"`
	// Target is the acceptable standing queue delay (5 ms).
	Target time.Duration `koanf:"target"`
	// Interval is how long the delay must stay above Target before dropping (100 ms).
	Interval time.Duration `koanf:"interval"`
	// MaxQueue bounds the waiters (1024).
	MaxQueue int `koanf:"max_queue"`
}

// RateLimitConfig configures the edge rate limit (ha/ratelimit). Internal servers have
// none: every caller there is another service, which the shedder and breakers protect.
type RateLimitConfig struct {
	Off bool `koanf:"off"`
	// Default is the limit of a route without its own (100/s, burst 200, per caller).
	Default ratelimit.Limit `koanf:"default"`
	// Routes are per-route limits, keyed by route pattern ("POST /v1/notes").
	Routes map[string]ratelimit.Limit `koanf:"routes"`
}

// BulkheadConfig configures concurrency compartments (ha/bulkhead).
type BulkheadConfig struct {
	Off bool `koanf:"off"`
	// Limit is the concurrency of one compartment: a route on a server, a target service on
	// a client (256).
	Limit int `koanf:"limit"`
}

// BreakerConfig configures the SRE client-side throttle (ha/breaker).
type BreakerConfig struct {
	Off bool `koanf:"off"`
	// K is the accept multiplier: reject with P = (requests − K·accepts)/(requests+1) (2).
	K float64 `koanf:"k"`
	// Window is the rolling window the counts cover (1 s).
	Window time.Duration `koanf:"window"`
	// MinRequests is the traffic below which the breaker never rejects (20).
	MinRequests int `koanf:"min_requests"`
}

// RetryConfig configures retries (ha/retry).
type RetryConfig struct {
	Off bool `koanf:"off"`
	// MaxAttempts bounds attempts per call, first included (3).
	MaxAttempts int `koanf:"max_attempts"`
	// BudgetRatio is the share of calls that may be retried, over a floor of 3/s (0.1).
	BudgetRatio float64 `koanf:"budget_ratio"`
	// Idempotent lists operations safe to retry besides HTTP GET/HEAD/OPTIONS and calls
	// with an idempotency key.
	Idempotent []string `koanf:"idempotent"`
	// Hedge lists operations that get a backup request after their observed p95; listing
	// one declares it idempotent too. Hedging runs on gRPC clients (the HTTP client
	// retries one attempt at a time).
	Hedge []string `koanf:"hedge"`
}

// DegradeConfig configures degradation (ha/degrade).
type DegradeConfig struct {
	// Forced names dependencies (services or operations) whose calls go straight to their
	// fallback. It reloads with the config file.
	Forced []string `koanf:"forced" dynamic:"true"`
	// LastGoodOff turns off the edge's last-good response cache.
	LastGoodOff bool `koanf:"last_good_off"`
	// LastGoodMaxAge is the oldest response served in place of a failure (5 min).
	LastGoodMaxAge time.Duration `koanf:"last_good_max_age"`
}

// CriticalityConfig sets the criticality of edge routes (ha/criticality).
type CriticalityConfig struct {
	// Default is the level of a route without its own (CRITICAL).
	Default string `koanf:"default"`
	// Routes maps route patterns to CRITICAL_PLUS, CRITICAL, SHEDDABLE_PLUS or SHEDDABLE.
	Routes map[string]string `koanf:"routes"`
}

// Validate checks the values that the parts cannot default.
func (c *Config) Validate() error {
	var problems []error
	if _, ok := meta.ParseCriticality(c.Criticality.Default); !ok {
		problems = append(problems, fmt.Errorf("criticality.default %q: want CRITICAL_PLUS, CRITICAL, SHEDDABLE_PLUS or SHEDDABLE", c.Criticality.Default))
	}
	if _, err := criticality.FromConfig(c.Criticality.Routes); err != nil && len(c.Criticality.Routes) > 0 {
		problems = append(problems, err)
	}
	if c.Shed.Threshold < 0 || c.Shed.Threshold >= 1 {
		problems = append(problems, fmt.Errorf("shed.threshold %v: want 0 (default) or a share in (0, 1)", c.Shed.Threshold))
	}
	if c.Retry.MaxAttempts < 0 || c.Retry.BudgetRatio < 0 || c.Retry.BudgetRatio > 1 {
		problems = append(problems, errors.New("retry.max_attempts must be >= 0 and retry.budget_ratio in [0, 1]"))
	}
	return errors.Join(problems...)
}

// Server is the HA state of one server: its shedder, queue, limits and caches.
type Server struct {
	service string
	shed    *shed.Shedder
	queue   *codel.Queue
	limiter *ratelimit.Limiter
	crit    *criticality.Policy
	bulk    *bulkhead.Bulkhead
	last    *degrade.LastGood
	chain   []middleware.Middleware
}

// NewServer builds the server parts for service. edge adds the parts that only make sense
// where users call: criticality by route, rate limits and the last-good cache.
func NewServer(service string, cfg Config, edge bool) (*Server, error) {
	s := &Server{service: service}
	if edge {
		routes, err := criticality.FromConfig(cfg.Criticality.Routes)
		if err != nil {
			return nil, err
		}
		def, _ := meta.ParseCriticality(cfg.Criticality.Default)
		s.crit = criticality.New(routes, def)
		s.chain = append(s.chain, criticality.Edge(s.crit))
		if !cfg.RateLimit.Off {
			var opts []ratelimit.Option
			if cfg.RateLimit.Default.Rate > 0 {
				opts = append(opts, ratelimit.Default(cfg.RateLimit.Default))
			}
			if len(cfg.RateLimit.Routes) > 0 {
				opts = append(opts, ratelimit.Routes(cfg.RateLimit.Routes))
			}
			s.limiter = ratelimit.New(opts...)
			s.chain = append(s.chain, ratelimit.Server(s.limiter))
		}
	}
	if !cfg.Shed.Off {
		opts := []shed.Option{shed.WithService(service)}
		if cfg.Shed.Threshold > 0 {
			opts = append(opts, shed.WithThreshold(cfg.Shed.Threshold))
		}
		if cfg.Shed.CoolDown > 0 {
			opts = append(opts, shed.WithCoolDown(cfg.Shed.CoolDown))
		}
		sh, err := shed.New(opts...)
		if err != nil {
			return nil, fmt.Errorf("ha: shedder: %w", err)
		}
		s.shed = sh
		if !edge { // internal callers balance on it; the public has no business knowing it
			s.chain = append(s.chain, balancer.ReportCPU(func() int64 { return int64(sh.CPU() * 1000) }))
		}
	}
	if !cfg.Queue.Off {
		opts := []codel.Option{codel.WithService(service)}
		if s.shed != nil {
			opts = append(opts, codel.WithLimiter(s.shed))
		}
		if cfg.Queue.Target > 0 {
			opts = append(opts, codel.WithTarget(cfg.Queue.Target))
		}
		if cfg.Queue.Interval > 0 {
			opts = append(opts, codel.WithInterval(cfg.Queue.Interval))
		}
		if cfg.Queue.MaxQueue > 0 {
			opts = append(opts, codel.WithMaxQueue(cfg.Queue.MaxQueue))
		}
		q, err := codel.New(opts...)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("ha: admission queue: %w", err)
		}
		s.queue = q
		s.chain = append(s.chain, codel.Server(q))
	}
	if s.shed != nil {
		s.chain = append(s.chain, shed.Server(s.shed))
	}
	if !cfg.Bulkhead.Off {
		s.bulk = bulkhead.New(bulkheadOpts(cfg.Bulkhead)...)
		s.chain = append(s.chain, bulkhead.Server(s.bulk))
	}
	if edge && !cfg.Degrade.LastGoodOff {
		var opts []degrade.Option
		if cfg.Degrade.LastGoodMaxAge > 0 {
			opts = append(opts, degrade.MaxAge(cfg.Degrade.LastGoodMaxAge))
		}
		s.last = degrade.NewLastGood(opts...)
		s.chain = append(s.chain, degrade.Server(s.last))
	}
	return s, nil
}

func bulkheadOpts(c BulkheadConfig) []bulkhead.Option {
	if c.Limit > 0 {
		return []bulkhead.Option{bulkhead.Limit(c.Limit)}
	}
	return nil
}

// Middleware returns the server parts in chain order, to run after the kit's defaults.
func (s *Server) Middleware() []middleware.Middleware { return s.chain }

// State is the live state of every part, for the admin /state page.
func (s *Server) State() any {
	out := map[string]any{}
	if s.shed != nil {
		out["shed"] = s.shed.State()
	}
	if s.queue != nil {
		out["queue"] = s.queue.State()
	}
	if s.limiter != nil {
		out["ratelimit"] = s.limiter.State()
	}
	if s.crit != nil {
		out["criticality"] = s.crit.State()
	}
	if s.bulk != nil {
		out["bulkhead"] = s.bulk.State()
	}
	if s.last != nil {
		out["last_good"] = s.last.State()
	}
	return out
}

// Close stops the shedder's CPU sampler.
func (s *Server) Close() error {
	if s.shed != nil {
		return s.shed.Close()
	}
	return nil
}

// Client is the HA state of one client: its retrier, breakers and compartments.
type Client struct {
	retry    *retry.Retrier
	breakers *breaker.Group
	bulk     *bulkhead.Bulkhead
	switches *degrade.Switches
	chain    []middleware.Middleware
}

// NewClient builds the client parts. switches are the process's forced-degradation
// switches (shared by every client, set from dynamic config); fallbacks, keyed by service
// or operation, answer when a call fails with a degradable error or is forced.
func NewClient(cfg Config, switches *degrade.Switches, fallbacks map[string]degrade.Fallback) *Client {
	c := &Client{switches: switches}
	c.chain = append(c.chain, degrade.Client(fallbacks, switches))
	if !cfg.Retry.Off {
		var opts []retry.Option
		if cfg.Retry.MaxAttempts > 0 {
			opts = append(opts, retry.WithMaxAttempts(cfg.Retry.MaxAttempts))
		}
		if cfg.Retry.BudgetRatio > 0 {
			opts = append(opts, retry.WithBudget(cfg.Retry.BudgetRatio, 3, 10))
		}
		// A hedged operation runs twice at once by design, so it must be idempotent.
		if safe := append(append([]string{}, cfg.Retry.Idempotent...), cfg.Retry.Hedge...); len(safe) > 0 {
			opts = append(opts, retry.WithIdempotent(middleware.Operations(safe...)))
		}
		if len(cfg.Retry.Hedge) > 0 {
			opts = append(opts, retry.WithHedging(middleware.Operations(cfg.Retry.Hedge...)))
		}
		c.retry = retry.New(opts...)
		c.chain = append(c.chain, retry.Client(c.retry))
	}
	if !cfg.Breaker.Off {
		var opts []breaker.Option
		if cfg.Breaker.K > 0 {
			opts = append(opts, breaker.WithK(cfg.Breaker.K))
		}
		if cfg.Breaker.Window > 0 {
			opts = append(opts, breaker.WithWindow(cfg.Breaker.Window, 10))
		}
		if cfg.Breaker.MinRequests > 0 {
			opts = append(opts, breaker.WithMinRequests(cfg.Breaker.MinRequests))
		}
		c.breakers = breaker.NewGroup(opts...)
		c.chain = append(c.chain, breaker.Client(c.breakers))
	}
	if !cfg.Bulkhead.Off {
		c.bulk = bulkhead.New(bulkheadOpts(cfg.Bulkhead)...)
		c.chain = append(c.chain, bulkhead.Client(c.bulk))
	}
	return c
}

// Middleware returns the client parts in chain order, to run after the kit's defaults.
func (c *Client) Middleware() []middleware.Middleware { return c.chain }

// State is the live state of every part, for the admin /state page.
func (c *Client) State() any {
	out := map[string]any{}
	if c.retry != nil {
		out["retry"] = c.retry.State()
	}
	if c.breakers != nil {
		out["breakers"] = c.breakers.State()
	}
	if c.bulk != nil {
		out["bulkhead"] = c.bulk.State()
	}
	if c.switches != nil {
		out["degrade"] = c.switches.State()
	}
	return out
}

// Default is the configuration every server and client runs with unless told otherwise.
func Default() Config {
	return Config{Criticality: CriticalityConfig{Default: "CRITICAL"}}
}

// Own returns h, or when h is nil builds the server parts from Default() for service and
// returns them as owned, for the caller to Close when it stops. It is how the kit's
// servers turn HA on by default.
func Own(h *Server, service string, edge bool) (use, owned *Server, err error) {
	if h != nil {
		return h, nil, nil
	}
	owned, err = NewServer(service, Default(), edge)
	return owned, owned, err
}
