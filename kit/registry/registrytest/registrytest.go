// Package registrytest provides the contract test every registry.Registry
// implementation must pass.
package registrytest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redline-dev/redline/kit/registry"
)

// Timeout bounds every wait for a watch update. It is generous: it only
// stops a broken implementation from hanging the test.
const Timeout = 10 * time.Second

// Run runs the contract cases against registries made by newRegistry, one
// fresh registry per case. newRegistry must give each registry its own
// namespace (for etcd, its own key prefix) and may register cleanup with t.
func Run(t *testing.T, newRegistry func(t *testing.T) registry.Registry) {
	a := registry.Node{Service: "feed", ID: "a", Addr: "127.0.0.1:9001"}
	b := registry.Node{Service: "feed", ID: "b", Addr: "127.0.0.1:9002"}
	canary := registry.Node{Service: "feed", ID: "c", Addr: "127.0.0.1:9003", Labels: map[string]string{registry.LabelLane: "canary", "zone": "z1"}}
	other := registry.Node{Service: "user", ID: "a", Addr: "127.0.0.1:9101"}

	tests := []struct {
		name string
		run  func(t *testing.T, r registry.Registry)
	}{
		{"nodes are sorted by id", func(t *testing.T, r registry.Registry) {
			register(t, r, b, a)
			assertNodes(t, r, "feed", a, b)
		}},
		{"unknown service has no nodes", func(t *testing.T, r registry.Registry) {
			assertNodes(t, r, "nobody")
		}},
		{"services are separate", func(t *testing.T, r registry.Registry) {
			register(t, r, a, other)
			assertNodes(t, r, "feed", a)
			assertNodes(t, r, "user", other)
		}},
		{"labels are preserved", func(t *testing.T, r registry.Registry) {
			register(t, r, canary, a)
			nodes := assertNodes(t, r, "feed", a, canary)
			assert.Equal(t, "canary", nodes[1].Lane())
			assert.Equal(t, "", nodes[0].Lane())
		}},
		{"register replaces the same id", func(t *testing.T, r registry.Registry) {
			moved := a
			moved.Addr = "127.0.0.1:9999"
			register(t, r, a, moved)
			assertNodes(t, r, "feed", moved)
		}},
		{"deregister removes", func(t *testing.T, r registry.Registry) {
			register(t, r, a, b)
			require.NoError(t, r.Deregister(t.Context(), a))
			assertNodes(t, r, "feed", b)
			require.NoError(t, r.Deregister(t.Context(), a), "deregistering twice")
		}},
		{"returned nodes are copies", func(t *testing.T, r registry.Registry) {
			register(t, r, canary)
			nodes, err := r.Nodes(t.Context(), "feed")
			require.NoError(t, err)
			nodes[0].Labels[registry.LabelLane] = "mutated"
			assertNodes(t, r, "feed", canary)
		}},
		{"invalid nodes are rejected", func(t *testing.T, r registry.Registry) {
			for _, n := range []registry.Node{
				{ID: "a", Addr: "x:1"},
				{Service: "feed", Addr: "x:1"},
				{Service: "feed", ID: "a"},
				{Service: "fe/ed", ID: "a", Addr: "x:1"},
				{Service: "feed", ID: "a/b", Addr: "x:1"},
			} {
				assert.ErrorIs(t, r.Register(t.Context(), n), registry.ErrInvalidNode, "Register(%+v)", n)
			}
		}},
		{"watch sends current set then add and remove", func(t *testing.T, r registry.Registry) {
			register(t, r, a)
			ch, err := r.Watch(t.Context(), "feed")
			require.NoError(t, err)
			AwaitNodes(t, ch, a)
			register(t, r, canary)
			AwaitNodes(t, ch, a, canary)
			require.NoError(t, r.Deregister(t.Context(), a))
			AwaitNodes(t, ch, canary)
			register(t, r, other)
			require.NoError(t, r.Deregister(t.Context(), canary))
			AwaitNodes(t, ch)
		}},
		{"watch of an empty service sends an empty set", func(t *testing.T, r registry.Registry) {
			ch, err := r.Watch(t.Context(), "feed")
			require.NoError(t, err)
			AwaitNodes(t, ch)
		}},
		{"slow watcher gets the latest set", func(t *testing.T, r registry.Registry) {
			ch, err := r.Watch(t.Context(), "feed")
			require.NoError(t, err)
			// Register without reading: must not block the registry.
			register(t, r, a, b, canary)
			AwaitNodes(t, ch, a, b, canary)
		}},
		{"watch closes when ctx is done", func(t *testing.T, r registry.Registry) {
			ctx, cancel := context.WithCancel(t.Context())
			ch, err := r.Watch(ctx, "feed")
			require.NoError(t, err)
			cancel()
			AwaitClosed(t, ch)
		}},
		{"close ends watches and later calls fail", func(t *testing.T, r registry.Registry) {
			register(t, r, a)
			ch, err := r.Watch(t.Context(), "feed")
			require.NoError(t, err)
			require.NoError(t, r.Close())
			AwaitClosed(t, ch)
			assert.ErrorIs(t, r.Register(t.Context(), b), registry.ErrClosed)
			_, err = r.Nodes(t.Context(), "feed")
			assert.ErrorIs(t, err, registry.ErrClosed)
			_, err = r.Watch(t.Context(), "feed")
			assert.ErrorIs(t, err, registry.ErrClosed)
			assert.NoError(t, r.Close(), "second Close")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t)
			defer r.Close()
			tt.run(t, r)
		})
	}
}

func register(t *testing.T, r registry.Registry, nodes ...registry.Node) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, r.Register(t.Context(), n), "Register(%+v)", n)
	}
}

func normalize(nodes []registry.Node) []registry.Node {
	out := make([]registry.Node, len(nodes))
	for i, n := range nodes {
		if len(n.Labels) == 0 {
			n.Labels = nil
		}
		out[i] = n
	}
	return out
}

func assertNodes(t *testing.T, r registry.Registry, service string, want ...registry.Node) []registry.Node {
	t.Helper()
	got, err := r.Nodes(t.Context(), service)
	require.NoError(t, err)
	require.Equal(t, normalize(want), normalize(got), "Nodes(%q)", service)
	return got
}

// awaitNodes reads ch until it sends want, failing after Timeout. Sets in
// between are allowed: a watch may coalesce or split changes.
func AwaitNodes(t *testing.T, ch <-chan []registry.Node, want ...registry.Node) {
	t.Helper()
	timeout := time.After(Timeout)
	var last []registry.Node
	for {
		select {
		case got, ok := <-ch:
			require.True(t, ok, "watch closed while waiting for %v", want)
			if last = normalize(got); assert.ObjectsAreEqual(normalize(want), last) {
				return
			}
		case <-timeout:
			t.Fatalf("watch: last set %v; want %v", last, want)
		}
	}
}

// AwaitClosed reads ch until it is closed, failing after Timeout.
func AwaitClosed(t *testing.T, ch <-chan []registry.Node) {
	t.Helper()
	timeout := time.After(Timeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch not closed")
		}
	}
}
