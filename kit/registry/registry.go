// Package registry provides service discovery: services register their
// instances (Nodes) and clients list and watch them. Implementations live in
// registry/memory (in-process) and registry/etcd (leases in etcd).
package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// LabelLane is the node label that names the node's stress-test lane.
// Baseline nodes have no lane label (or an empty one).
const LabelLane = "lane"

// LabelInstance is the node label that names the server instance a node is, where one
// process serves a service from several servers ("note", "note-2"): balancers count their
// picks by it (a bounded set of names, unlike node ids), and faults can be scoped to it.
const LabelInstance = "instance"

// Sentinel errors returned by every implementation.
var (
	// ErrClosed is returned by calls on a closed Registry.
	ErrClosed = errors.New("registry: closed")
	// ErrInvalidNode is returned for a node without a service, id or address,
	// or whose service or id contains "/".
	ErrInvalidNode = errors.New("registry: invalid node")
)

// Node is one instance of a service.
type Node struct {
	Service string            `json:"service"`
	ID      string            `json:"id"`
	Addr    string            `json:"addr"`             // host:port of its gRPC server
	Labels  map[string]string `json:"labels,omitempty"` // e.g. "lane": "canary"
}

// Lane returns the node's lane, "" for the baseline lane.
func (n Node) Lane() string { return n.Labels[LabelLane] }

// Validate reports (wrapping ErrInvalidNode) whether n can be registered.
func (n Node) Validate() error {
	switch {
	case n.Service == "" || strings.Contains(n.Service, "/"):
		return fmt.Errorf("%w: service %q", ErrInvalidNode, n.Service)
	case n.ID == "" || strings.Contains(n.ID, "/"):
		return fmt.Errorf("%w: id %q", ErrInvalidNode, n.ID)
	case n.Addr == "":
		return fmt.Errorf("%w: %s/%s has no address", ErrInvalidNode, n.Service, n.ID)
	}
	return nil
}

// Clone returns a copy of n that shares no memory with it.
func (n Node) Clone() Node {
	n.Labels = maps.Clone(n.Labels)
	return n
}

// Sort sorts nodes by ID, the order every Registry returns them in.
func Sort(nodes []Node) {
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
}

// Registry registers service instances and discovers them.
type Registry interface {
	// Register adds or replaces (by service and ID) n. It stays registered
	// until Deregister or Close.
	Register(ctx context.Context, n Node) error
	// Deregister removes n (matched by service and ID). Removing a node that
	// is not registered is not an error.
	Deregister(ctx context.Context, n Node) error
	// Nodes returns the nodes of service, sorted by ID.
	Nodes(ctx context.Context, service string) ([]Node, error)
	// Watch first sends the current nodes of service, then the full set after
	// every change, sorted by ID. A slow reader misses intermediate sets but
	// always gets the latest. The channel is closed when ctx is done or the
	// registry is closed.
	Watch(ctx context.Context, service string) (<-chan []Node, error)
	// Close deregisters what this registry registered, closes its watches and
	// releases its resources.
	Close() error
}
