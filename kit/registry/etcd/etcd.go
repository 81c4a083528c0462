// Package etcd provides a registry.Registry backed by etcd: each node is a
// JSON value under PREFIX/<service>/<id>, attached to its own lease that is
// kept alive while the node is registered, so a node whose process dies
// disappears after the lease TTL.
package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/redline-dev/redline/kit/registry"
)

var _ registry.Registry = (*Registry)(nil)

// Defaults for the options.
const (
	DefaultPrefix = "/redline/registry/"
	DefaultTTL    = 10 * time.Second
	// DefaultPort is the port ParseURL assumes when a host has none.
	DefaultPort = "2379"
)

// Option configures New and Dial.
type Option func(*options)

type options struct {
	prefix string
	ttl    time.Duration
	logger *slog.Logger
}

// WithPrefix sets the key prefix (default DefaultPrefix); a trailing "/" is
// added if missing. Tests use it to own their keys.
func WithPrefix(p string) Option {
	return func(o *options) {
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		o.prefix = p
	}
}

// WithTTL sets the lease TTL (default DefaultTTL), rounded up to whole
// seconds. A dead node disappears about TTL after its last keepalive. etcd
// may raise a very small TTL to its minimum (about 2s by default).
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithLogger sets the logger for lease loss and recovery (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Registry is a registry.Registry on etcd. Nodes it registers stay registered
// until Deregister or Close: if a lease is lost (it expired while etcd was
// unreachable, or was revoked by someone else) the node is registered again
// under a new lease, retrying with backoff until Close.
type Registry struct {
	cli       *clientv3.Client
	opts      options
	ownClient bool

	regMu sync.Mutex // serializes Register and Deregister

	mu      sync.Mutex
	regs    map[string]*registration // by key
	watches map[*int]context.CancelFunc
	closed  bool
	wg      sync.WaitGroup
}

// registration is one registered node and the goroutine keeping its lease.
type registration struct {
	key, val string
	lease    atomic.Int64 // clientv3.LeaseID currently holding key
	cancel   context.CancelFunc
	done     chan struct{}
}

func (g *registration) stop() {
	g.cancel()
	<-g.done
}

// New returns a Registry using cli. Close does not close cli.
func New(cli *clientv3.Client, opts ...Option) *Registry {
	o := options{prefix: DefaultPrefix, ttl: DefaultTTL, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	return &Registry{
		cli:     cli,
		opts:    o,
		regs:    map[string]*registration{},
		watches: map[*int]context.CancelFunc{},
	}
}

// Dial connects to etcd and returns a Registry that closes the client on
// Close. An endpoint is either host:port or a URL that ParseURL accepts,
// such as etcd://127.0.0.1:2379.
func Dial(endpoints []string, opts ...Option) (*Registry, error) {
	var eps []string
	for _, e := range endpoints {
		if !strings.Contains(e, "://") {
			eps = append(eps, e)
			continue
		}
		parsed, err := ParseURL(e)
		if err != nil {
			return nil, err
		}
		eps = append(eps, parsed...)
	}
	if len(eps) == 0 {
		return nil, errors.New("registry/etcd: no endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("registry/etcd: dial %v: %w", eps, err)
	}
	r := New(cli, opts...)
	r.ownClient = true
	return r, nil
}

// ParseURL turns "etcd://host1:2379,host2:2379" into client endpoints
// ["host1:2379" "host2:2379"]. A host without a port gets DefaultPort.
// http:// and https:// URLs keep their scheme on each endpoint.
func ParseURL(raw string) ([]string, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(raw), "://")
	if !ok {
		return nil, fmt.Errorf("registry/etcd: %q is not a URL", raw)
	}
	var prefix string
	switch scheme {
	case "etcd":
	case "http", "https":
		prefix = scheme + "://"
	default:
		return nil, fmt.Errorf("registry/etcd: %q: unsupported scheme %q", raw, scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || strings.ContainsAny(rest, "/?#@") {
		return nil, fmt.Errorf("registry/etcd: %q: want scheme://host:port[,host:port...]", raw)
	}
	var out []string
	for _, h := range strings.Split(rest, ",") {
		if h == "" {
			return nil, fmt.Errorf("registry/etcd: %q: empty host", raw)
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			host := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
			if strings.Contains(host, "[") || strings.Contains(host, "]") || (strings.Count(host, ":") == 1) {
				return nil, fmt.Errorf("registry/etcd: %q: bad host %q", raw, h)
			}
			h = net.JoinHostPort(host, DefaultPort)
		}
		out = append(out, prefix+h)
	}
	return out, nil
}

func (r *Registry) servicePrefix(service string) string { return r.opts.prefix + service + "/" }

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// grantAndPut writes key under a new lease and returns the lease.
func (r *Registry) grantAndPut(ctx context.Context, key, val string) (clientv3.LeaseID, error) {
	ttl := int64((r.opts.ttl + time.Second - 1) / time.Second)
	g, err := r.cli.Grant(ctx, max(ttl, 1))
	if err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	if _, err := r.cli.Put(ctx, key, val, clientv3.WithLease(g.ID)); err != nil {
		r.revoke(g.ID)
		return 0, fmt.Errorf("put: %w", err)
	}
	return g.ID, nil
}

// revoke revokes lease, deleting its keys, ignoring a lease already gone.
func (r *Registry) revoke(lease clientv3.LeaseID) error {
	if r.cli.Ctx().Err() != nil {
		return nil // client closed: the lease expires by itself
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := r.cli.Revoke(ctx, lease)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("revoke lease %x: %w", lease, err)
	}
	return nil
}

// Register writes n under a new lease and keeps the lease alive until
// Deregister or Close.
func (r *Registry) Register(ctx context.Context, n registry.Node) error {
	if err := n.Validate(); err != nil {
		return err
	}
	val, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("registry/etcd: register %s/%s: %w", n.Service, n.ID, err)
	}
	key := r.servicePrefix(n.Service) + n.ID
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if r.isClosed() {
		return registry.ErrClosed
	}
	lease, err := r.grantAndPut(ctx, key, string(val))
	if err != nil {
		return fmt.Errorf("registry/etcd: register %s/%s: %w", n.Service, n.ID, err)
	}
	kctx, cancel := context.WithCancel(context.Background())
	ka, err := r.cli.KeepAlive(kctx, lease)
	if err != nil {
		cancel()
		_ = r.revoke(lease)
		return fmt.Errorf("registry/etcd: register %s/%s: keepalive: %w", n.Service, n.ID, err)
	}
	g := &registration{key: key, val: string(val), cancel: cancel, done: make(chan struct{})}
	g.lease.Store(int64(lease))

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		cancel()
		_ = r.revoke(lease)
		return registry.ErrClosed
	}
	old := r.regs[key]
	r.regs[key] = g
	r.wg.Go(func() { r.keep(kctx, g, ka) })
	r.mu.Unlock()

	if old != nil {
		// key is attached to the new lease now, so revoking the old one
		// leaves it in place.
		old.stop()
		if err := r.revoke(clientv3.LeaseID(old.lease.Load())); err != nil {
			r.opts.logger.Warn("registry: revoking replaced lease", "key", key, "err", err)
		}
	}
	return nil
}

// keep drains keepalive responses and re-registers when the lease is lost,
// until ctx is canceled.
func (r *Registry) keep(ctx context.Context, g *registration, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(g.done)
	for {
		for range ka {
		}
		if ctx.Err() != nil || r.cli.Ctx().Err() != nil {
			return
		}
		r.opts.logger.Warn("registry: lease lost, registering again", "key", g.key)
		if ka = r.reacquire(ctx, g); ka == nil {
			return
		}
		r.opts.logger.Info("registry: registered again", "key", g.key)
	}
}

// reacquire grants a new lease for g with backoff; nil means ctx is done or
// the client is closed.
func (r *Registry) reacquire(ctx context.Context, g *registration) <-chan *clientv3.LeaseKeepAliveResponse {
	for attempt := 0; ; attempt++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff(attempt)):
		}
		if r.cli.Ctx().Err() != nil {
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, r.opts.ttl)
		lease, err := r.grantAndPut(actx, g.key, g.val)
		cancel()
		if err != nil {
			r.opts.logger.Debug("registry: register again failed", "key", g.key, "attempt", attempt, "err", err)
			continue
		}
		g.lease.Store(int64(lease))
		ka, err := r.cli.KeepAlive(ctx, lease)
		if err != nil {
			continue
		}
		return ka
	}
}

// backoff is the pause before retry attempt: 100ms doubling to 5s, ±20%.
func backoff(attempt int) time.Duration {
	d := 5 * time.Second
	if attempt < 6 {
		d = 100 * time.Millisecond << attempt
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Deregister stops keeping n's lease and revokes it, deleting n's key. A node
// this registry did not register is left alone.
func (r *Registry) Deregister(ctx context.Context, n registry.Node) error {
	key := r.servicePrefix(n.Service) + n.ID
	r.regMu.Lock()
	defer r.regMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return registry.ErrClosed
	}
	g := r.regs[key]
	delete(r.regs, key)
	r.mu.Unlock()
	if g == nil {
		return nil
	}
	g.stop()
	if _, err := r.cli.Revoke(ctx, clientv3.LeaseID(g.lease.Load())); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("registry/etcd: deregister %s/%s: %w", n.Service, n.ID, err)
	}
	return nil
}

// Nodes lists the nodes of service, sorted by ID. Values that are not valid
// node JSON are skipped and logged.
func (r *Registry) Nodes(ctx context.Context, service string) ([]registry.Node, error) {
	if r.isClosed() {
		return nil, registry.ErrClosed
	}
	resp, err := r.cli.Get(ctx, r.servicePrefix(service), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("registry/etcd: nodes of %s: %w", service, err)
	}
	return sorted(r.decodeAll(resp.Kvs)), nil
}

func (r *Registry) decode(kv *mvccpb.KeyValue) (registry.Node, bool) {
	var n registry.Node
	if err := json.Unmarshal(kv.Value, &n); err != nil {
		r.opts.logger.Warn("registry: skipping bad node", "key", string(kv.Key), "err", err)
		return n, false
	}
	return n, true
}

func (r *Registry) decodeAll(kvs []*mvccpb.KeyValue) map[string]registry.Node {
	m := make(map[string]registry.Node, len(kvs))
	for _, kv := range kvs {
		if n, ok := r.decode(kv); ok {
			m[string(kv.Key)] = n
		}
	}
	return m
}

func sorted(m map[string]registry.Node) []registry.Node {
	out := make([]registry.Node, 0, len(m))
	for _, n := range m {
		out = append(out, n.Clone())
	}
	registry.Sort(out)
	return out
}

// Watch lists service and then follows an etcd watch on its prefix. If the
// watch breaks (compaction, lost leader, connection errors) it lists again
// and resumes, with backoff.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan []registry.Node, error) {
	prefix := r.servicePrefix(service)
	if r.isClosed() {
		return nil, registry.ErrClosed
	}
	resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("registry/etcd: watch %s: %w", service, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	id := new(int)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		cancel()
		return nil, registry.ErrClosed
	}
	r.watches[id] = cancel
	out := make(chan []registry.Node)
	r.wg.Go(func() {
		defer func() {
			r.mu.Lock()
			delete(r.watches, id)
			r.mu.Unlock()
			cancel()
		}()
		r.follow(ctx, prefix, r.decodeAll(resp.Kvs), resp.Header.Revision, out)
	})
	r.mu.Unlock()
	return out, nil
}

// follow sends the latest node set to out (only the latest if the reader
// is slow) until ctx is done, then closes out.
func (r *Registry) follow(ctx context.Context, prefix string, nodes map[string]registry.Node, rev int64, out chan<- []registry.Node) {
	defer close(out)
	watch := func(rev int64) (clientv3.WatchChan, context.CancelFunc) {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		return r.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)), cancel
	}
	wch, stop := watch(rev)
	defer func() { stop() }()

	last := sorted(nodes)
	pending := sorted(nodes) // a copy for the reader
	has := true
	for {
		var send chan<- []registry.Node
		if has {
			send = out
		}
		select {
		case <-ctx.Done():
			return
		case send <- pending:
			has = false
			continue
		case wr, ok := <-wch:
			if ok && wr.Err() == nil && !wr.Canceled {
				for _, ev := range wr.Events {
					key := string(ev.Kv.Key)
					if ev.Type == clientv3.EventTypeDelete {
						delete(nodes, key)
					} else if n, ok := r.decode(ev.Kv); ok {
						nodes[key] = n
					}
				}
				break
			}
			if !ok && ctx.Err() != nil {
				return
			}
			r.opts.logger.Warn("registry: watch broken, listing again", "prefix", prefix, "err", wr.Err())
			stop()
			var relisted bool
			if nodes, rev, relisted = r.relist(ctx, prefix); !relisted {
				return
			}
			wch, stop = watch(rev)
		}
		if next := sorted(nodes); !equal(next, last) {
			last, pending, has = next, sorted(nodes), true
		}
	}
}

// relist lists prefix with backoff until it succeeds or ctx is done.
func (r *Registry) relist(ctx context.Context, prefix string) (map[string]registry.Node, int64, bool) {
	for attempt := 0; ; attempt++ {
		select {
		case <-ctx.Done():
			return nil, 0, false
		case <-time.After(backoff(attempt)):
		}
		resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix())
		if err == nil {
			return r.decodeAll(resp.Kvs), resp.Header.Revision, true
		}
		if r.cli.Ctx().Err() != nil {
			return nil, 0, false
		}
	}
}

func equal(a, b []registry.Node) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Service != y.Service || x.ID != y.ID || x.Addr != y.Addr || len(x.Labels) != len(y.Labels) {
			return false
		}
		for k, v := range x.Labels {
			if w, ok := y.Labels[k]; !ok || w != v {
				return false
			}
		}
	}
	return true
}

// Close revokes the leases of the nodes this registry registered, ends its
// watches, waits for its goroutines and, if Dial made the client, closes it.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	regs, watches := r.regs, r.watches
	r.regs, r.watches = nil, nil
	r.mu.Unlock()

	for _, cancel := range watches {
		cancel()
	}
	var errs []error
	for _, g := range regs {
		g.stop()
		if err := r.revoke(clientv3.LeaseID(g.lease.Load())); err != nil {
			errs = append(errs, err)
		}
	}
	r.wg.Wait()
	if r.ownClient {
		errs = append(errs, r.cli.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registry/etcd: close: %w", err)
	}
	return nil
}
