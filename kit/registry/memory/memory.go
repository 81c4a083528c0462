// Package memory provides an in-process registry.Registry, for tests and for
// running every service in one process.
package memory

import (
	"context"
	"sync"

	"github.com/redline-dev/redline/kit/registry"
)

var _ registry.Registry = (*Registry)(nil)

// Registry is an in-process registry.Registry, safe for concurrent use.
// Watchers never slow it down: each keeps only the latest set of nodes.
type Registry struct {
	mu       sync.Mutex
	services map[string]map[string]registry.Node // service -> id -> node
	watchers map[string]map[*watcher]struct{}
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
}

// watcher holds the latest unsent set of nodes for one Watch.
type watcher struct {
	mu     sync.Mutex
	latest []registry.Node
	notify chan struct{} // capacity 1: "latest changed"
}

func (w *watcher) set(nodes []registry.Node) {
	w.mu.Lock()
	w.latest = nodes
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []registry.Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// New returns an empty Registry.
func New() *Registry {
	return &Registry{
		services: map[string]map[string]registry.Node{},
		watchers: map[string]map[*watcher]struct{}{},
		done:     make(chan struct{}),
	}
}

// Register adds or replaces n.
func (r *Registry) Register(_ context.Context, n registry.Node) error {
	if err := n.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return registry.ErrClosed
	}
	m := r.services[n.Service]
	if m == nil {
		m = map[string]registry.Node{}
		r.services[n.Service] = m
	}
	m[n.ID] = n.Clone()
	r.notifyLocked(n.Service)
	return nil
}

// Deregister removes n; removing an unknown node is not an error.
func (r *Registry) Deregister(_ context.Context, n registry.Node) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return registry.ErrClosed
	}
	if _, ok := r.services[n.Service][n.ID]; !ok {
		return nil
	}
	delete(r.services[n.Service], n.ID)
	if len(r.services[n.Service]) == 0 {
		delete(r.services, n.Service)
	}
	r.notifyLocked(n.Service)
	return nil
}

// Nodes returns copies of the nodes of service, sorted by ID.
func (r *Registry) Nodes(_ context.Context, service string) ([]registry.Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, registry.ErrClosed
	}
	return r.snapshotLocked(service), nil
}

func (r *Registry) snapshotLocked(service string) []registry.Node {
	out := make([]registry.Node, 0, len(r.services[service]))
	for _, n := range r.services[service] {
		out = append(out, n.Clone())
	}
	registry.Sort(out)
	return out
}

func (r *Registry) notifyLocked(service string) {
	for w := range r.watchers[service] {
		w.set(r.snapshotLocked(service))
	}
}

// Watch sends the current nodes of service and then every change.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan []registry.Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, registry.ErrClosed
	}
	w := &watcher{notify: make(chan struct{}, 1)}
	w.set(r.snapshotLocked(service))
	if r.watchers[service] == nil {
		r.watchers[service] = map[*watcher]struct{}{}
	}
	r.watchers[service][w] = struct{}{}
	out := make(chan []registry.Node)
	r.wg.Go(func() { r.forward(ctx, service, w, out) })
	return out, nil
}

// forward sends w's latest nodes to out until ctx is done or r is closed.
func (r *Registry) forward(ctx context.Context, service string, w *watcher, out chan<- []registry.Node) {
	defer close(out)
	defer func() {
		r.mu.Lock()
		delete(r.watchers[service], w)
		r.mu.Unlock()
	}()
	var pending []registry.Node
	has := false
	for {
		var send chan<- []registry.Node
		if has {
			send = out
		}
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-w.notify:
			pending, has = w.take(), true
		case send <- pending:
			has = false
		}
	}
}

// Close removes every node, closes every watch and waits for their
// goroutines to exit.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.services = nil
	close(r.done)
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
