package netfault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// DefaultListen is where a proxy listens when Add is given no address: a free loopback port.
const DefaultListen = "127.0.0.1:0"

// DefaultSweepInterval is how often the background sweep removes expired toxics and ends
// expired outages.
const DefaultSweepInterval = time.Second

// Option configures a Proxies.
type Option func(*options)

type options struct {
	clock  clock.Clock
	logger *slog.Logger
	maxTTL time.Duration
	sweep  time.Duration
}

// WithClock sets the clock that expiry is judged by. Default: clock.Real{}. The background
// sweep ticks on the real clock whatever this is; tests call Sweep.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger of added, removed and expired toxics and outages. Default:
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMaxTTL sets the longest a toxic or an outage may live. Default: DefaultMaxTTL (1h).
// One without ttl lives DefaultTTL or MaxTTL, the shorter.
func WithMaxTTL(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxTTL = d
		}
	}
}

// WithSweepInterval sets how often a background goroutine calls Sweep; 0 runs none (the
// caller calls Sweep). Default: DefaultSweepInterval (1s).
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweep = max(d, 0) } }

// Proxies is a set of named TCP proxies (toxiproxy's, in process) with the toxics and
// outages set on them. It is safe for concurrent use; make one with New and Close it.
type Proxies struct {
	o      options
	server *toxiproxy.ApiServer // holds the library's ProxyCollection; its HTTP API is not served

	// mu guards the maps and serializes every change to the library's proxies and toxic
	// chains, so the two never disagree.
	mu      sync.Mutex
	proxies map[string]*entry
	toxics  map[string]*active // by id
	closed  bool

	stop chan struct{}
	done chan struct{}
}

type entry struct {
	p                *toxiproxy.Proxy
	listen, upstream string
	enabled          bool
	outage           *Outage // while disabled through Disable
}

type active struct {
	Toxic
	typ string
}

// Toxic is an active toxic: its spec with the id, stream, toxicity and ttl filled in, and
// when it ends.
type Toxic struct {
	ToxicSpec
	// AddedAt is when the toxic was added.
	AddedAt time.Time `json:"added_at"`
	// ExpiresAt is when the toxic is removed.
	ExpiresAt time.Time `json:"expires_at"`
}

// Outage is a proxy taken away with Disable.
type Outage struct {
	Reason string `json:"reason,omitempty"`
	// Since is when the proxy was disabled.
	Since time.Time `json:"since"`
	// ExpiresAt is when the proxy is enabled again.
	ExpiresAt time.Time `json:"expires_at"`
	// Error is why the proxy could not listen again when the outage ended (its port was
	// taken, say); every sweep retries.
	Error string `json:"error,omitempty"`
}

// Proxy is the state of one proxy.
type Proxy struct {
	Name string `json:"name"`
	// Listen is the proxy's address: what clients dial instead of Upstream. It stays the
	// same across Disable and Enable.
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	// Enabled is false while the proxy refuses connections.
	Enabled bool `json:"enabled"`
	// Outage is set while the proxy is disabled.
	Outage *Outage `json:"outage,omitempty"`
	// Toxics are the proxy's active toxics, oldest first.
	Toxics []Toxic `json:"toxics"`
}

// New returns an empty Proxies and starts its background sweep (see WithSweepInterval).
func New(opts ...Option) *Proxies {
	o := options{clock: clock.Real{}, logger: slog.Default(), maxTTL: DefaultMaxTTL, sweep: DefaultSweepInterval}
	for _, opt := range opts {
		opt(&o)
	}
	p := &Proxies{o: o, server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*entry{}, toxics: map[string]*active{}, stop: make(chan struct{}), done: make(chan struct{})}
	if o.sweep > 0 {
		go p.sweeper()
	} else {
		close(p.done)
	}
	return p
}

func (p *Proxies) sweeper() {
	defer close(p.done)
	t := time.NewTicker(p.o.sweep)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.Sweep()
		}
	}
}

// Close stops the sweep and every proxy, dropping their connections. Calling it again does
// nothing.
func (p *Proxies) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	toxicsActive.Sub(float64(len(p.toxics)))
	clear(p.toxics)
	clear(p.proxies)
	err := p.server.Collection.Clear()
	p.mu.Unlock()
	<-p.done
	return err
}

// Add starts a proxy called name that listens on listen ("" is DefaultListen, a free
// loopback port) and forwards every connection to upstream (host:port). It returns the
// proxy; its Listen is the address to dial. Errors: InvalidArgument naming the field,
// AlreadyExists for a name in use, NET_PROXY_FAILED when it cannot listen.
func (p *Proxies) Add(name, listen, upstream string) (Proxy, error) {
	if !validName(name, 64) {
		return Proxy{}, errs.InvalidArgument(ReasonBadNetFault, "netfault: name: %q is not a proxy name ([a-z0-9-]{1,64})", name).
			WithMetadata("field", "name")
	}
	if listen == "" {
		listen = DefaultListen
	} else if _, _, err := net.SplitHostPort(listen); err != nil {
		return Proxy{}, errs.InvalidArgument(ReasonBadNetFault, "netfault: listen: %q is not host:port", listen).
			WithMetadata("field", "listen")
	}
	if !validUpstream(upstream) {
		return Proxy{}, errs.InvalidArgument(ReasonBadNetFault, "netfault: upstream: %q is not host:port", upstream).
			WithMetadata("field", "upstream")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.openLocked(); err != nil {
		return Proxy{}, err
	}
	if _, ok := p.proxies[name]; ok {
		return Proxy{}, errs.AlreadyExists(ReasonProxyExists, "netfault: proxy %q already exists", name).WithMetadata("field", "name")
	}
	tp := toxiproxy.NewProxy(p.server, name, listen, upstream)
	if err := p.server.Collection.Add(tp, true); err != nil {
		return Proxy{}, errs.Newf(codes.Unavailable, ReasonProxyFailed, "netfault: proxy %s: listen %s: %v", name, listen, err)
	}
	// Start has returned, so the library has written the bound address; from here on the
	// proxy listens there again after every Disable.
	e := &entry{p: tp, listen: tp.Listen, upstream: upstream, enabled: true}
	p.proxies[name] = e
	p.o.logger.Info("netfault: proxy added", "proxy", name, "listen", e.listen, "upstream", upstream)
	return p.viewLocked(name, e), nil
}

// Remove stops the proxy name, dropping its connections, and removes its toxics.
// Errors: NotFound.
func (p *Proxies) Remove(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.proxies[name]; !ok {
		return p.proxyNotFoundLocked(name)
	}
	for id, a := range p.toxics {
		if a.Proxy == name {
			delete(p.toxics, id)
			toxicsActive.Dec()
		}
	}
	delete(p.proxies, name)
	return p.server.Collection.Remove(name)
}

// Addr returns the address proxy name listens on, or "" when there is no such proxy.
func (p *Proxies) Addr(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.proxies[name]; ok {
		return e.listen
	}
	return ""
}

// AddToxic puts the toxic of spec on its proxy: connections open now and later suffer it
// until it is removed or expires. A spec without an id gets a random one. Errors:
// InvalidArgument (BAD_NET_FAULT) naming the field (an unknown proxy is a bad "proxy"),
// AlreadyExists for an id in use, ResourceExhausted beyond MaxToxics.
func (p *Proxies) AddToxic(spec ToxicSpec) (Toxic, error) {
	c, fe := compileToxic(spec)
	if fe != nil {
		return Toxic{}, fe.err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.openLocked(); err != nil {
		return Toxic{}, err
	}
	now := p.o.clock.Now()
	p.sweepLocked(now)
	ttl, fe := p.ttl(c.ttl)
	if fe != nil {
		return Toxic{}, fe.err()
	}
	e, ok := p.proxies[spec.Proxy]
	if !ok {
		return Toxic{}, bad("proxy", "no proxy %q; there are: %s", spec.Proxy, p.namesLocked()).err()
	}
	id := spec.ID
	if id == "" {
		id = p.newIDLocked()
	} else if _, ok := p.toxics[id]; ok {
		return Toxic{}, errs.AlreadyExists(ReasonToxicExists, "netfault: toxic %q already exists", id).WithMetadata("field", "id")
	}
	if len(p.toxics) >= MaxToxics {
		return Toxic{}, errs.Newf(codes.ResourceExhausted, ReasonTooManyToxics, "netfault: %d toxics are active, the most there may be", MaxToxics)
	}
	body, err := json.Marshal(map[string]any{"name": id, "type": spec.Type, "stream": c.stream,
		"toxicity": c.toxicity, "attributes": c.attrs})
	if err != nil {
		return Toxic{}, errs.Internal(err)
	}
	if _, err := e.p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return Toxic{}, errs.Internal(fmt.Errorf("netfault: toxiproxy refused %s: %w", body, err))
	}
	t := c.spec
	t.ID, t.Stream, t.TTL = id, c.stream, ttl.String()
	tox := c.toxicity
	t.Toxicity = &tox
	a := &active{Toxic: Toxic{ToxicSpec: t, AddedAt: now, ExpiresAt: now.Add(ttl)}, typ: spec.Type}
	p.toxics[id] = a
	toxicsActive.Inc()
	toxicsTotal.WithLabelValues(spec.Proxy, spec.Type).Inc()
	p.o.logger.Info("netfault: toxic added", "id", id, "proxy", spec.Proxy, "type", spec.Type, "stream", c.stream,
		"toxicity", c.toxicity, "ttl", ttl, "reason", spec.Reason)
	return a.view(), nil
}

// RemoveToxic removes the toxic id from its proxy. Errors: NotFound.
func (p *Proxies) RemoveToxic(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(p.o.clock.Now())
	a, ok := p.toxics[id]
	if !ok {
		return errs.NotFound(ReasonToxicNotFound, "netfault: no active toxic %q", id)
	}
	p.removeLocked(a, "removed")
	return nil
}

// Disable takes proxy name away, as if its dependency went down: it stops accepting (so
// dials are refused) and drops its open connections, until Enable, Reset or the outage's
// expiry. Disabling a disabled proxy replaces its outage. Errors: InvalidArgument naming
// the field, NotFound.
func (p *Proxies) Disable(name string, spec OutageSpec) (Proxy, error) {
	o, fe := compileOutage(spec)
	if fe != nil {
		return Proxy{}, fe.err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.openLocked(); err != nil {
		return Proxy{}, err
	}
	ttl, fe := p.ttl(o.ttl)
	if fe != nil {
		return Proxy{}, fe.err()
	}
	e, ok := p.proxies[name]
	if !ok {
		return Proxy{}, p.proxyNotFoundLocked(name)
	}
	now := p.o.clock.Now()
	if e.enabled {
		e.p.Stop()
		e.enabled = false
	}
	e.outage = &Outage{Reason: spec.Reason, Since: now, ExpiresAt: now.Add(ttl)}
	p.o.logger.Warn("netfault: proxy disabled", "proxy", name, "upstream", e.upstream, "ttl", ttl, "reason", spec.Reason)
	return p.viewLocked(name, e), nil
}

// Enable ends proxy name's outage: it listens on its address again. Enabling an enabled
// proxy does nothing. Errors: NotFound, NET_PROXY_FAILED when it cannot listen again.
func (p *Proxies) Enable(name string) (Proxy, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.proxies[name]
	if !ok {
		return Proxy{}, p.proxyNotFoundLocked(name)
	}
	if err := p.enableLocked(name, e); err != nil {
		return p.viewLocked(name, e), err
	}
	return p.viewLocked(name, e), nil
}

// Reset removes every toxic and enables every proxy: the big red button. It returns how
// many toxics it removed and proxies it enabled; the error names the proxies that could
// not listen again.
func (p *Proxies) Reset() (removed, enabled int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.toxics {
		p.removeLocked(a, "cleared")
		removed++
	}
	var problems []error
	for _, name := range p.sortedLocked() {
		e := p.proxies[name]
		if e.enabled {
			continue
		}
		if err := p.enableLocked(name, e); err != nil {
			problems = append(problems, err)
			continue
		}
		enabled++
	}
	return removed, enabled, errors.Join(problems...)
}

// List returns every proxy by name, after removing what has expired.
func (p *Proxies) List() []Proxy {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(p.o.clock.Now())
	out := make([]Proxy, 0, len(p.proxies))
	for _, name := range p.sortedLocked() {
		out = append(out, p.viewLocked(name, p.proxies[name]))
	}
	return out
}

// Sweep removes the toxics and ends the outages that have expired by the clock, and
// returns how many. The background sweep calls it every second; List and every change
// call it too.
func (p *Proxies) Sweep() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sweepLocked(p.o.clock.Now())
}

func (p *Proxies) sweepLocked(now time.Time) int {
	n := 0
	for _, a := range p.toxics {
		if !now.Before(a.ExpiresAt) {
			p.removeLocked(a, "expired")
			n++
		}
	}
	for _, name := range p.sortedLocked() {
		e := p.proxies[name]
		if e.outage == nil || now.Before(e.outage.ExpiresAt) {
			continue
		}
		if p.enableLocked(name, e) == nil {
			n++
		}
	}
	return n
}

// enableLocked starts e again; a failure is kept on its outage (logged once) for the next
// sweep to retry.
func (p *Proxies) enableLocked(name string, e *entry) error {
	if e.enabled {
		e.outage = nil
		return nil
	}
	if err := e.p.Start(); err != nil {
		if e.outage == nil {
			e.outage = &Outage{Since: p.o.clock.Now(), ExpiresAt: p.o.clock.Now()}
		}
		if e.outage.Error == "" {
			p.o.logger.Error("netfault: proxy cannot listen again", "proxy", name, "listen", e.listen, "error", err)
		}
		e.outage.Error = err.Error()
		return errs.Newf(codes.Unavailable, ReasonProxyFailed, "netfault: proxy %s: listen %s: %v", name, e.listen, err)
	}
	e.enabled, e.outage = true, nil
	p.o.logger.Info("netfault: proxy enabled", "proxy", name, "upstream", e.upstream)
	return nil
}

func (p *Proxies) removeLocked(a *active, why string) {
	delete(p.toxics, a.ID)
	toxicsActive.Dec()
	if e, ok := p.proxies[a.Proxy]; ok {
		// Not found means the library lost it with its proxy: nothing left to remove.
		_ = e.p.Toxics.RemoveToxic(context.Background(), a.ID)
	}
	p.o.logger.Info("netfault: toxic "+why, "id", a.ID, "proxy", a.Proxy, "type", a.typ)
}

// ttl applies the default and the bound to a spec's ttl (0: none given).
func (p *Proxies) ttl(d time.Duration) (time.Duration, *fieldError) {
	if d == 0 {
		return min(DefaultTTL, p.o.maxTTL), nil
	}
	if d > p.o.maxTTL {
		return 0, bad("ttl", "%v is over the limit of %v", d, p.o.maxTTL)
	}
	return d, nil
}

func (p *Proxies) openLocked() error {
	if p.closed {
		return errs.New(codes.FailedPrecondition, ReasonProxyFailed, "netfault: closed")
	}
	return nil
}

func (p *Proxies) proxyNotFoundLocked(name string) error {
	return errs.NotFound(ReasonProxyNotFound, "netfault: no proxy %q; there are: %s", name, p.namesLocked())
}

func (p *Proxies) namesLocked() string {
	if len(p.proxies) == 0 {
		return "none"
	}
	return strings.Join(p.sortedLocked(), ", ")
}

func (p *Proxies) sortedLocked() []string {
	names := make([]string, 0, len(p.proxies))
	for name := range p.proxies {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (p *Proxies) newIDLocked() string {
	for {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id := "net-" + hex.EncodeToString(b)
		if _, ok := p.toxics[id]; !ok {
			return id
		}
	}
}

func (p *Proxies) viewLocked(name string, e *entry) Proxy {
	v := Proxy{Name: name, Listen: e.listen, Upstream: e.upstream, Enabled: e.enabled, Toxics: []Toxic{}}
	if e.outage != nil {
		o := *e.outage
		v.Outage = &o
	}
	for _, a := range p.toxics {
		if a.Proxy == name {
			v.Toxics = append(v.Toxics, a.view())
		}
	}
	slices.SortFunc(v.Toxics, func(x, y Toxic) int {
		if c := x.AddedAt.Compare(y.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return v
}

// view copies a, so callers cannot reach the toxicity it points to.
func (a *active) view() Toxic {
	t := a.Toxic
	tox := *t.Toxicity
	t.Toxicity = &tox
	return t
}
