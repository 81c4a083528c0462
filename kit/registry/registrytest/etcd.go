package registrytest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdAddr is where integration tests expect etcd (scripts/services.sh
// starts it there).
const EtcdAddr = "127.0.0.1:2379"

// EtcdClient returns a client of the test etcd, closed when t ends. It skips
// t only when REDLINE_SKIP_INTEGRATION=1; an unreachable etcd fails t.
func EtcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{EtcdAddr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "/redline-test/ping"); err != nil {
		t.Fatalf("etcd not reachable at %s: %v (start it with scripts/services.sh)", EtcdAddr, err)
	}
	return cli
}

// EtcdPrefix returns a key prefix ending in "/" that only t uses, and
// deletes everything under it when t ends.
func EtcdPrefix(t testing.TB, cli *clientv3.Client) string {
	t.Helper()
	p := fmt.Sprintf("/redline-test/%s/%x/", t.Name(), rand.Uint64())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, _ = cli.Delete(ctx, p, clientv3.WithPrefix())
	})
	return p
}
