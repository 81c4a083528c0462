package quota

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// Client defaults; see the package doc.
const (
	DefaultHeadroom       = 1.25
	DefaultMinDemand      = 1.0
	DefaultBurst          = 250 * time.Millisecond
	DefaultRPCTimeout     = time.Second
	DefaultReleaseTimeout = 200 * time.Millisecond
	// SampleInterval is how often demand is measured.
	SampleInterval = 500 * time.Millisecond
	// MinInterval is the shortest time between two measurements, or two RPCs triggered by a
	// demand change.
	MinInterval = 100 * time.Millisecond
	// DemandTau is the time constant of the demand EWMA.
	DemandTau = 2 * time.Second
	// JumpRatio is the relative change of demand that is reported before the next renewal.
	JumpRatio = 0.2
	// MinBackoff and MaxBackoff bound the delay between failed RPCs (±20% jitter).
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 2 * time.Second
)

// Modes of a client's resource, the reason label of its decisions.
const (
	ModeInitial  = "initial"          // no lease yet: Policy.InitialRate
	ModeLease    = "lease"            // a valid lease, the service reachable
	ModeHeld     = "held"             // the service unreachable: the last lease until it expires
	ModeFallback = "fallback"         // no lease, no service: global/N
	ModeFailOpen = "fail_open"        // no lease, no service, a fail-open resource: no limit
	ModeUnknown  = "unknown_resource" // the service does not know the resource: as initial
)

// Policy is a client's own settings for one resource.
type Policy struct {
	// FailOpen admits everything while there is neither a lease nor the service; the
	// service's Resource.FailOpen turns it on too.
	FailOpen bool `koanf:"fail_open" json:"fail_open"`
	// InitialRate is the rate before the first lease (and for a resource the service does
	// not know), in requests a second; 0 admits nothing.
	InitialRate float64 `koanf:"initial_rate" json:"initial_rate"`
	// Weight scales this client's fair share; 0 means 1.
	Weight float64 `koanf:"weight" json:"weight"`
}

// Option configures a Client.
type Option func(*options)

type options struct {
	id             string
	clock          clock.Clock
	logger         *slog.Logger
	policies       map[string]Policy
	def            Policy
	headroom       float64
	minDemand      float64
	burst          time.Duration
	manual         bool
	rpcTimeout     time.Duration
	releaseTimeout time.Duration
}

// ID names the client instance to the service; the default is "<hostname>-<pid>-<random>".
func ID(id string) Option { return func(o *options) { o.id = id } }

// Clock sets the time source; the default is clock.Real{}. The background loop sleeps in
// real time, so a fake clock goes with Manual.
func Clock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// Logger sets the logger of mode changes; the default is slog.Default().
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Policies sets per-resource policies, and declares those resources up front so their
// first leases are asked at once; the default is none.
func Policies(m map[string]Policy) Option { return func(o *options) { o.policies = m } }

// DefaultPolicy sets the policy of resources that Policies does not list; the default is
// the zero Policy (fail closed, initial rate 0, weight 1).
func DefaultPolicy(p Policy) Option { return func(o *options) { o.def = p } }

// Headroom multiplies measured demand before it is reported, so that a client whose load
// is steady is not rejected by its own noise; the default is DefaultHeadroom (1.25).
// Values below 1 are raised to 1.
func Headroom(f float64) Option { return func(o *options) { o.headroom = f } }

// MinDemand is the least demand reported for a resource, so an idle client still gets a
// token now and then; the default is DefaultMinDemand (1/s).
func MinDemand(f float64) Option { return func(o *options) { o.minDemand = f } }

// Burst sets how much of its rate a local bucket holds; the default is DefaultBurst
// (250 ms worth).
func Burst(d time.Duration) Option { return func(o *options) { o.burst = d } }

// Manual starts no background goroutine: the owner calls Renew when it says. For
// simulations on a fake clock.
func Manual() Option { return func(o *options) { o.manual = true } }

// RPCTimeout bounds each renewal RPC; the default is DefaultRPCTimeout (1 s).
func RPCTimeout(d time.Duration) Option { return func(o *options) { o.rpcTimeout = d } }

// Client consumes leased capacity locally. Allow is safe for concurrent use and makes no
// network call; a background goroutine (stopped by Close) renews the leases.
type Client struct {
	id  string
	svc quotav1.QuotaClient
	o   options

	res   atomic.Pointer[map[string]*resource]
	addMu sync.Mutex

	// With the real clock the hot path reads only the monotonic clock (time.Since), about
	// half the cost of time.Now, and immune to wall-clock steps.
	mono  bool
	start time.Time
	base  int64

	renewMu sync.Mutex // one Renew at a time
	mu      sync.Mutex // guards the fields below and the renewal fields of every resource
	due     time.Time  // the next batched renewal
	lastRPC time.Time
	fails   int
	retryAt time.Time
	lastErr string
	rng     *rand.Rand

	wake      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// resource is one resource as a client sees it.
type resource struct {
	name   string
	policy Policy

	// Hot path.
	tat      atomic.Int64 // GCRA theoretical arrival time, Unix ns
	mode     atomic.Pointer[mode]
	attempts atomic.Uint64
	rejected atomic.Uint64
	starved  atomic.Bool

	// Renewal state, guarded by Client.mu.
	asked      bool // a lease was asked for at least once
	lastCount  uint64
	lastSample time.Time
	measured   bool
	demand     float64 // EWMA of attempts a second
	reported   float64
	hasLease   bool
	rate       float64
	renewed    time.Time
	expires    time.Time
	due        time.Time
	clients    int
	limit      float64
	failOpen   bool
	invalid    bool
	invalidAt  time.Time // when to ask again for a resource the service did not know
	invalidMsg string
}

// mode is what Allow does for a resource; replaced whole on every change.
type mode struct {
	name      string
	rate      float64
	unlimited bool
	interval  int64 // ns per token; 0 admits nothing
	tolerance int64 // ns the bucket may run ahead of now
	admit     prometheus.Counter
	reject    prometheus.Counter
}

// NewClient returns a client of the quota service svc (a quotav1.QuotaClient on a kit gRPC
// connection, or Local for an in-process Service) and, unless Manual, starts its renewal
// goroutine, which asks for the declared resources at once.
func NewClient(svc quotav1.QuotaClient, opts ...Option) (*Client, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), headroom: DefaultHeadroom,
		minDemand: DefaultMinDemand, burst: DefaultBurst, rpcTimeout: DefaultRPCTimeout,
		releaseTimeout: DefaultReleaseTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if svc == nil {
		return nil, errors.New("quota: NewClient: nil service")
	}
	if o.id == "" {
		host, _ := os.Hostname()
		o.id = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.Uint32()&0xffff)
	}
	if err := validName(o.id); err != nil {
		return nil, fmt.Errorf("quota: client id %q: %w", o.id, err)
	}
	for name, p := range o.policies {
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("quota: policy %q: %w", name, err)
		}
		if !validFloat(p.InitialRate) || !validFloat(p.Weight) {
			return nil, fmt.Errorf("quota: policy %q: initial_rate and weight must be finite and >= 0", name)
		}
	}
	if !validFloat(o.def.InitialRate) || !validFloat(o.def.Weight) {
		return nil, errors.New("quota: default policy: initial_rate and weight must be finite and >= 0")
	}
	o.headroom = max(1, o.headroom)
	if !(o.headroom < math.Inf(1)) {
		o.headroom = DefaultHeadroom
	}
	if !validFloat(o.minDemand) {
		o.minDemand = DefaultMinDemand
	}
	if o.burst <= 0 {
		o.burst = DefaultBurst
	}
	h := fnv.New64a()
	h.Write([]byte(o.id))
	seed := h.Sum64()
	c := &Client{id: o.id, svc: svc, o: o, rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		wake: make(chan struct{}, 1)}
	now := o.clock.Now()
	_, c.mono = o.clock.(clock.Real)
	c.start, c.base = now, now.UnixNano()
	m := make(map[string]*resource, len(o.policies))
	for name, p := range o.policies {
		m[name] = c.newResource(name, p, now)
	}
	c.res.Store(&m)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if !o.manual {
		c.done = make(chan struct{})
		go c.run()
	}
	return c, nil
}

// ID returns the client's id.
func (c *Client) ID() string { return c.id }

func (c *Client) newResource(name string, p Policy, now time.Time) *resource {
	r := &resource{name: name, policy: p, lastSample: now}
	r.tat.Store(c.nanotime())
	name0, rate := c.fallback(r)
	r.mode.Store(c.newMode(r, name0, rate))
	return r
}

func (c *Client) newMode(r *resource, name string, rate float64) *mode {
	m := &mode{name: name, rate: rate, admit: decisions.WithLabelValues(r.name, "admit", name),
		reject: decisions.WithLabelValues(r.name, "reject", name), tolerance: int64(c.o.burst)}
	switch {
	case math.IsInf(rate, 1):
		m.unlimited = true
	case rate > 0:
		m.interval = max(1, int64(float64(time.Second)/rate))
	}
	return m
}

// Allow reports whether one request for resource may go now, taking a token from the
// local bucket. It makes no network call and does not allocate, except the first time it
// sees a resource.
func (c *Client) Allow(resource string) bool {
	ok, _ := c.allow(resource)
	return ok
}

// allow is Allow that also returns, on a rejection, the time until the next token.
func (c *Client) allow(name string) (bool, time.Duration) {
	r := (*c.res.Load())[name]
	if r == nil {
		r = c.add(name)
	}
	r.attempts.Add(1)
	m := r.mode.Load()
	if m.unlimited {
		m.admit.Inc()
		return true, 0
	}
	if m.interval == 0 {
		c.starve(r, m)
		return false, SampleInterval
	}
	now := c.nanotime()
	for {
		tat := r.tat.Load()
		t := max(tat, now)
		if ahead := t - now; ahead > m.tolerance {
			c.starve(r, m)
			return false, time.Duration(ahead - m.tolerance)
		}
		if r.tat.CompareAndSwap(tat, t+m.interval) {
			m.admit.Inc()
			return true, 0
		}
	}
}

// nanotime is the hot path's clock, in Unix ns.
func (c *Client) nanotime() int64 {
	if c.mono {
		return c.base + int64(time.Since(c.start))
	}
	return c.o.clock.Now().UnixNano()
}

// starve counts a rejection and, the first time since the last measurement, wakes the
// renewal loop to measure demand early.
func (c *Client) starve(r *resource, m *mode) {
	m.reject.Inc()
	r.rejected.Add(1)
	if !r.starved.Load() && r.starved.CompareAndSwap(false, true) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// add declares a resource on its first use.
func (c *Client) add(name string) *resource {
	c.addMu.Lock()
	defer c.addMu.Unlock()
	old := *c.res.Load()
	if r := old[name]; r != nil {
		return r
	}
	p, ok := c.o.policies[name]
	if !ok {
		p = c.o.def
	}
	r := c.newResource(name, p, c.o.clock.Now())
	m := make(map[string]*resource, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[name] = r
	c.res.Store(&m)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return r
}

// list returns the resources sorted by name.
func (c *Client) list() []*resource {
	m := *c.res.Load()
	rs := make([]*resource, 0, len(m))
	for _, r := range m {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *resource) int { return cmp.Compare(a.name, b.name) })
	return rs
}

func (c *Client) run() {
	defer close(c.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		d, _ := c.Renew(c.ctx) // failures are logged, counted and shown by State
		t.Reset(d)
	}
}

// Renew does what is due: it measures demand, moves expired leases to their fallback, and,
// when a renewal is due (2/3 of a TTL, the service's refresh hint, a demand change, a new
// resource, or the retry time after a failure), renews every lease in one RPC. It returns
// the delay until it should run again, and the RPC's error, if any, which it has already
// handled. The background goroutine calls it; with Manual the owner does.
func (c *Client) Renew(ctx context.Context) (time.Duration, error) {
	c.renewMu.Lock()
	defer c.renewMu.Unlock()
	now := c.o.clock.Now()
	rs := c.list()
	c.mu.Lock()
	c.sample(rs, now)
	c.settle(rs, now)
	batch := c.batch(rs, now)
	c.mu.Unlock()
	var err error
	if len(batch) > 0 {
		err = c.exchange(ctx, batch, now)
	}
	now = c.o.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle(rs, now)
	return c.next(rs, now), err
}

// sample measures the demand of resources whose measurement is due, and brings the next
// renewal forward when it changed by more than JumpRatio.
func (c *Client) sample(rs []*resource, now time.Time) {
	for _, r := range rs {
		dt := now.Sub(r.lastSample)
		if dt < SampleInterval && !(r.starved.Load() && dt >= MinInterval) {
			continue
		}
		r.starved.Store(false)
		n := r.attempts.Load()
		rate := float64(n-r.lastCount) / dt.Seconds()
		if r.measured {
			r.demand += (1 - math.Exp(-dt.Seconds()/DemandTau.Seconds())) * (rate - r.demand)
		} else {
			r.demand, r.measured = rate, true
		}
		r.lastCount, r.lastSample = n, now
		if w := c.want(r); r.asked && !r.invalid && math.Abs(w-r.reported) > JumpRatio*max(r.reported, c.o.minDemand) {
			if at := c.lastRPC.Add(MinInterval); at.Before(c.due) {
				c.due = at
			}
		}
	}
}

// want is the demand reported for r.
func (c *Client) want(r *resource) float64 { return max(r.demand*c.o.headroom, c.o.minDemand) }

// fallback is the mode of a resource without a valid lease.
func (c *Client) fallback(r *resource) (string, float64) {
	switch {
	case r.policy.FailOpen || r.failOpen:
		return ModeFailOpen, math.Inf(1)
	case r.invalid:
		return ModeUnknown, r.policy.InitialRate
	case r.clients > 0:
		return ModeFallback, r.limit / float64(r.clients)
	}
	return ModeInitial, r.policy.InitialRate
}

// settle sets every resource's mode for now, logging and counting each change.
func (c *Client) settle(rs []*resource, now time.Time) {
	for _, r := range rs {
		var name string
		var rate float64
		switch {
		case r.invalid:
			name, rate = c.fallback(r)
			if name != ModeFailOpen {
				name = ModeUnknown
			}
		case r.hasLease && now.Before(r.expires):
			name, rate = ModeLease, r.rate
			if c.fails > 0 {
				name = ModeHeld
			}
		default:
			name, rate = c.fallback(r)
		}
		old := r.mode.Load()
		if old.name == name && old.rate == rate {
			continue
		}
		r.mode.Store(c.newMode(r, name, rate))
		if old.name == name {
			continue
		}
		transitions.WithLabelValues(r.name, old.name, name).Inc()
		level := slog.LevelInfo
		if name != ModeLease {
			level = slog.LevelWarn
		}
		c.o.logger.Log(context.Background(), level, "quota mode changed", "client", c.id, "resource", r.name,
			"from", old.name, "to", name, "rate", rateText(rate), "clients", r.clients, "limit", r.limit,
			"error", c.lastErr)
	}
}

func rateText(r float64) string {
	if math.IsInf(r, 1) {
		return "unlimited"
	}
	return fmt.Sprintf("%.3g/s", r)
}

// batch returns the resources to send now, or none when no renewal is due.
func (c *Client) batch(rs []*resource, now time.Time) []*resource {
	if c.fails > 0 && now.Before(c.retryAt) {
		return nil
	}
	due := !now.Before(c.due) || c.fails > 0
	var out []*resource
	for _, r := range rs {
		if r.invalid {
			if !now.Before(r.invalidAt) {
				out, due = append(out, r), true
			}
			continue
		}
		if !r.asked && !now.Before(c.lastRPC.Add(MinInterval)) {
			due = true
		}
		out = append(out, r)
	}
	if !due {
		return nil
	}
	return out
}

// exchange sends one batch (again without a resource the service rejects as unknown or
// invalid) and applies the leases.
func (c *Client) exchange(ctx context.Context, batch []*resource, sent time.Time) error {
	for len(batch) > 0 {
		req := &quotav1.GetCapacityRequest{ClientId: c.id}
		c.mu.Lock()
		for _, r := range batch {
			has := r.mode.Load().rate
			if math.IsInf(has, 1) {
				has = r.demand
			}
			req.Resources = append(req.Resources, &quotav1.ResourceRequest{Resource: r.name,
				Demand: c.want(r), Weight: r.policy.Weight, Has: has, Clients: int32(r.clients)})
		}
		c.lastRPC = sent
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, c.o.rpcTimeout)
		reply, err := c.svc.GetCapacity(rctx, req)
		cancel()
		if err == nil && len(reply.GetLeases()) != len(batch) {
			err = fmt.Errorf("quota: %d leases for %d resources", len(reply.GetLeases()), len(batch))
		}
		e := errs.From(err)
		if err != nil && e.Code == codes.InvalidArgument {
			if i := slices.IndexFunc(batch, func(r *resource) bool { return r.name == e.Metadata[MetadataResource] }); i >= 0 {
				renewals.WithLabelValues("invalid").Inc()
				c.mu.Lock()
				r := batch[i]
				r.invalid, r.invalidAt, r.invalidMsg = true, sent.Add(DefaultLeaseTTL*2/3), e.Message
				r.hasLease = false
				c.mu.Unlock()
				c.o.logger.Warn("quota service rejected a resource", "client", c.id, "resource", r.name,
					"reason", e.Reason, "error", e.Message)
				batch = slices.Delete(batch, i, i+1)
				continue
			}
		}
		c.mu.Lock()
		if err != nil {
			c.fail(sent, e, err)
			c.mu.Unlock()
			return err
		}
		c.succeed(batch, req, reply, sent)
		c.mu.Unlock()
		return nil
	}
	return nil
}

// fail records a failed renewal: the leases are held until they expire, then fall back.
func (c *Client) fail(now time.Time, e *errs.Error, err error) {
	result := "error"
	if e.Code == codes.Unavailable || e.Code == codes.DeadlineExceeded {
		result = "unavailable"
	}
	renewals.WithLabelValues(result).Inc()
	c.fails++
	d := min(MaxBackoff, MinBackoff<<min(c.fails-1, 10))
	d = time.Duration(float64(d) * (0.8 + 0.4*c.rng.Float64()))
	c.retryAt = now.Add(d)
	msg := err.Error()
	if c.lastErr != msg && c.fails == 1 {
		c.o.logger.Warn("quota service unreachable: holding leases, then falling back", "client", c.id, "error", msg)
	}
	c.lastErr = msg
}

func (c *Client) succeed(batch []*resource, req *quotav1.GetCapacityRequest, reply *quotav1.GetCapacityReply, sent time.Time) {
	renewals.WithLabelValues("ok").Inc()
	if c.fails > 0 {
		c.o.logger.Info("quota service reachable again", "client", c.id, "after_failures", c.fails)
	}
	c.fails, c.lastErr = 0, ""
	for i, r := range batch {
		l := reply.GetLeases()[i]
		ttl := time.Duration(l.GetTtlMs()) * time.Millisecond
		r.asked, r.invalid, r.invalidMsg = true, false, ""
		r.hasLease, r.rate, r.renewed, r.expires = true, max(0, l.GetRate()), sent, sent.Add(ttl)
		r.clients, r.limit, r.failOpen = int(l.GetClients()), l.GetLimit(), l.GetFailOpen()
		r.reported = req.GetResources()[i].GetDemand()
		r.due = sent.Add(ttl * 2 / 3)
		if ms := l.GetRefreshMs(); ms > 0 && time.Duration(ms)*time.Millisecond < ttl*2/3 {
			// The service's refresh; 2/3 of the TTL at the latest.
			r.due = sent.Add(time.Duration(ms) * time.Millisecond)
		}
	}
	c.due = time.Time{}
	for _, r := range *c.res.Load() {
		if r.hasLease && !r.invalid && (c.due.IsZero() || r.due.Before(c.due)) {
			c.due = r.due
		}
	}
}

// next is the delay until Renew has something to do.
func (c *Client) next(rs []*resource, now time.Time) time.Duration {
	at := now.Add(SampleInterval)
	earlier := func(t time.Time) {
		if t.After(now) && t.Before(at) {
			at = t
		} else if !t.After(now) {
			at = now
		}
	}
	if c.fails > 0 {
		earlier(c.retryAt)
	} else if !c.due.IsZero() {
		earlier(c.due)
	}
	for _, r := range rs {
		earlier(r.lastSample.Add(SampleInterval))
		if r.starved.Load() {
			earlier(r.lastSample.Add(MinInterval))
		}
		if r.hasLease && r.expires.After(now) {
			earlier(r.expires)
		}
		if r.invalid {
			earlier(r.invalidAt)
		} else if !r.asked && c.fails == 0 {
			earlier(c.lastRPC.Add(MinInterval))
		}
	}
	return max(at.Sub(now), time.Millisecond)
}

// Close stops the renewal goroutine and releases the client's leases (best effort, with a
// short timeout), so its share returns to the others at once. Allow must not be used
// after Close.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		if c.done != nil {
			<-c.done
		}
		req := &quotav1.ReleaseRequest{ClientId: c.id}
		c.mu.Lock()
		for _, r := range c.list() {
			if r.asked {
				req.Resources = append(req.Resources, r.name)
			}
		}
		c.mu.Unlock()
		if len(req.Resources) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.o.releaseTimeout)
		defer cancel()
		if _, err := c.svc.Release(ctx, req); err != nil {
			c.o.logger.Warn("quota release failed: the leases will expire instead", "client", c.id, "error", err)
		}
	})
	return nil
}

// ClientState is the JSON snapshot of a Client for the admin page.
type ClientState struct {
	ID        string          `json:"id"`
	Failures  int             `json:"failures"`
	LastError string          `json:"last_error,omitempty"`
	Resources []ResourceUsage `json:"resources"`
}

// ResourceUsage is one resource as a client sees it.
type ResourceUsage struct {
	Resource  string  `json:"resource"`
	Mode      string  `json:"mode"`
	Rate      float64 `json:"rate"` // the rate Allow admits at; -1 for no limit
	Granted   float64 `json:"granted"`
	Demand    float64 `json:"demand"`   // measured attempts a second
	Reported  float64 `json:"reported"` // the demand last reported
	Clients   int     `json:"clients"`
	Limit     float64 `json:"limit"`
	LeaseAge  string  `json:"lease_age,omitempty"`
	ExpiresIn string  `json:"expires_in,omitempty"`
	Admitted  uint64  `json:"admitted"`
	Rejected  uint64  `json:"rejected"`
	Error     string  `json:"error,omitempty"`
}

// State returns a ClientState.
func (c *Client) State() any {
	now := c.o.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ClientState{ID: c.id, Failures: c.fails, LastError: c.lastErr, Resources: []ResourceUsage{}}
	for _, r := range c.list() {
		m := r.mode.Load()
		u := ResourceUsage{Resource: r.name, Mode: m.name, Rate: m.rate, Granted: r.rate, Demand: r.demand,
			Reported: r.reported, Clients: r.clients, Limit: r.limit, Error: r.invalidMsg}
		if m.unlimited {
			u.Rate = -1
		}
		n, rej := r.attempts.Load(), r.rejected.Load()
		u.Admitted, u.Rejected = n-min(n, rej), rej
		if r.hasLease {
			u.LeaseAge = now.Sub(r.renewed).Round(time.Millisecond).String()
			u.ExpiresIn = r.expires.Sub(now).Round(time.Millisecond).String()
		}
		st.Resources = append(st.Resources, u)
	}
	return st
}

// Usage returns the client's view of resource, and false if it has never seen it.
func (c *Client) Usage(resource string) (ResourceUsage, bool) {
	for _, u := range c.State().(ClientState).Resources {
		if u.Resource == resource {
			return u, true
		}
	}
	return ResourceUsage{}, false
}
