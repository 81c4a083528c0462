package etcd

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redline-dev/redline/kit/registry"
	"github.com/redline-dev/redline/kit/registry/registrytest"
)

// syncBuffer is a log sink safe for the watch goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFollowRelistsAfterCompaction starts following from a revision that has
// been compacted away, so etcd cancels the watch with ErrCompacted at once:
// the watch must list again and carry on rather than give up.
func TestFollowRelistsAfterCompaction(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	prefix := registrytest.EtcdPrefix(t, cli)
	var logs syncBuffer
	r := New(cli, WithPrefix(prefix), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer r.Close()

	n1 := registry.Node{Service: "feed", ID: "n1", Addr: "127.0.0.1:9001"}
	n2 := registry.Node{Service: "feed", ID: "n2", Addr: "127.0.0.1:9002"}
	require.NoError(t, r.Register(t.Context(), n1))
	before, err := cli.Get(t.Context(), prefix)
	require.NoError(t, err)
	require.NoError(t, r.Register(t.Context(), n2))
	now, err := cli.Get(t.Context(), prefix)
	require.NoError(t, err)
	_, err = cli.Compact(t.Context(), now.Header.Revision)
	require.NoError(t, err)

	out := make(chan []registry.Node)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.follow(t.Context(), prefix+"feed/", map[string]registry.Node{}, before.Header.Revision-1, out)
	}()
	registrytest.AwaitNodes(t, out, n1, n2)
	assert.Contains(t, logs.String(), "watch broken")
	// follow stops with the test's context; wait so goleak sees no leak.
	t.Cleanup(func() { <-done })
}
