package etcd_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/registry"
	"github.com/redline-dev/redline/kit/registry/etcd"
	"github.com/redline-dev/redline/kit/registry/registrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = etcd.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func TestContract(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		return etcd.New(cli, etcd.WithPrefix(registrytest.EtcdPrefix(t, cli)), quiet)
	})
}

var node = registry.Node{Service: "feed", ID: "n1", Addr: "127.0.0.1:9001", Labels: map[string]string{registry.LabelLane: "canary"}}

func TestDeadNodeExpires(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	prefix := registrytest.EtcdPrefix(t, cli)
	observer := etcd.New(cli, etcd.WithPrefix(prefix), quiet)
	defer observer.Close()

	// The dying process has its own client; closing the client stops its
	// keepalives without deregistering, as a crash would.
	dying := registrytest.EtcdClient(t)
	r := etcd.New(dying, etcd.WithPrefix(prefix), etcd.WithTTL(2*time.Second), quiet)
	require.NoError(t, r.Register(t.Context(), node))

	ch, err := observer.Watch(t.Context(), "feed")
	require.NoError(t, err)
	registrytest.AwaitNodes(t, ch, node)
	require.NoError(t, dying.Close())
	registrytest.AwaitNodes(t, ch) // gone once the 2s lease expires
	require.NoError(t, r.Close())
}

func TestRecoversRevokedLease(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	prefix := registrytest.EtcdPrefix(t, cli)
	r := etcd.New(cli, etcd.WithPrefix(prefix), etcd.WithTTL(5*time.Second), quiet)
	defer r.Close()
	require.NoError(t, r.Register(t.Context(), node))

	key := prefix + "feed/n1"
	lease := func() clientv3.LeaseID {
		resp, err := cli.Get(t.Context(), key)
		require.NoError(t, err)
		if len(resp.Kvs) == 0 {
			return 0
		}
		return clientv3.LeaseID(resp.Kvs[0].Lease)
	}
	old := lease()
	require.NotZero(t, old)

	ch, err := r.Watch(t.Context(), "feed")
	require.NoError(t, err)
	registrytest.AwaitNodes(t, ch, node)

	other := registrytest.EtcdClient(t)
	_, err = other.Revoke(t.Context(), old)
	require.NoError(t, err)
	registrytest.AwaitNodes(t, ch)       // revoking deleted the key...
	registrytest.AwaitNodes(t, ch, node) // ...and the registry put it back
	assert.NotEqual(t, old, lease())

	// Deregister revokes the new lease too.
	require.NoError(t, r.Deregister(t.Context(), node))
	registrytest.AwaitNodes(t, ch)
	assert.Zero(t, lease())
}

func TestCloseDeregisters(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	prefix := registrytest.EtcdPrefix(t, cli)
	observer := etcd.New(cli, etcd.WithPrefix(prefix), quiet)
	defer observer.Close()
	r := etcd.New(cli, etcd.WithPrefix(prefix), quiet)
	require.NoError(t, r.Register(t.Context(), node))
	require.NoError(t, r.Close())
	nodes, err := observer.Nodes(t.Context(), "feed")
	require.NoError(t, err)
	assert.Empty(t, nodes)
}

func TestDial(t *testing.T) {
	cli := registrytest.EtcdClient(t)
	prefix := registrytest.EtcdPrefix(t, cli)
	r, err := etcd.Dial([]string{"etcd://" + registrytest.EtcdAddr}, etcd.WithPrefix(prefix), quiet)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, r.Register(ctx, node))
	nodes, err := r.Nodes(ctx, "feed")
	require.NoError(t, err)
	assert.Equal(t, []registry.Node{node}, nodes)
	require.NoError(t, r.Close())
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "etcd://127.0.0.1:2379", want: []string{"127.0.0.1:2379"}},
		{in: "etcd://a:1,b:2/", want: []string{"a:1", "b:2"}},
		{in: "etcd://localhost", want: []string{"localhost:2379"}},
		{in: "etcd://[::1]", want: []string{"[::1]:2379"}},
		{in: "etcd://[::1]:2380", want: []string{"[::1]:2380"}},
		{in: "https://e1:2379", want: []string{"https://e1:2379"}},
		{in: "127.0.0.1:2379", wantErr: true},
		{in: "redis://a:1", wantErr: true},
		{in: "etcd://", wantErr: true},
		{in: "etcd://a:1,,b:2", wantErr: true},
		{in: "etcd://a:1/path", wantErr: true},
		{in: "etcd://user@a:1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := etcd.ParseURL(tt.in)
		if tt.wantErr {
			assert.Error(t, err, "ParseURL(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "ParseURL(%q)", tt.in)
		assert.Equal(t, tt.want, got, "ParseURL(%q)", tt.in)
	}
}
