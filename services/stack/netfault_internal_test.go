package stack

import (
	"strings"
	"testing"

	"github.com/redline-dev/redline/chaos/netfault"
	"github.com/redline-dev/redline/kit/log"
)

// TestNetFaultDependencyURLs: the store URLs point at one proxy per distinct server, named
// by kind; everything else in the URL stays; the original config is untouched; and a URL
// with several hosts is refused, naming its key.
func TestNetFaultDependencyURLs(t *testing.T) {
	px := netfault.New(netfault.WithSweepInterval(0), netfault.WithLogger(log.Discard()))
	defer px.Close()
	cfg := Default()
	cfg.Cache = "redis://127.0.0.1:6379/0"
	cfg.Quota.Store = "redis://127.0.0.1:6380/1"
	cfg.User.DB = "postgres://app:s3cret@db.internal/users?sslmode=disable"
	cfg.Note.DB = "postgres://app:s3cret@db.internal:5432/notes"
	cfg.Search.DB = "postgresql://app@10.0.0.9:6432/search"
	cfg.Queue = "nats://127.0.0.1:4222"
	s := &Stack{cfg: cfg, services: Services}
	c, err := s.proxyDependencies(px)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"redis": "127.0.0.1:6379", "redis-2": "127.0.0.1:6380", "postgres": "db.internal:5432",
		"postgres-2": "10.0.0.9:6432", "nats": "127.0.0.1:4222"}
	got := map[string]string{}
	for _, p := range px.List() {
		got[p.Name] = p.Upstream
	}
	if len(got) != len(want) {
		t.Fatalf("proxies = %v; want %v", got, want)
	}
	for name, up := range want {
		if got[name] != up {
			t.Errorf("proxy %s upstream = %q; want %q", name, got[name], up)
		}
	}
	for _, tc := range []struct{ key, url, proxy, keep string }{
		{"cache", c.Cache, "redis", "/0"},
		{"quota.store", c.Quota.Store, "redis-2", "/1"},
		{"user.db", c.User.DB, "postgres", "app:s3cret@"},
		{"user.db", c.User.DB, "postgres", "/users?sslmode=disable"},
		{"note.db", c.Note.DB, "postgres", "/notes"},
		{"search.db", c.Search.DB, "postgres-2", "postgresql://app@"},
		{"queue", c.Queue, "nats", "nats://"},
	} {
		if !strings.Contains(tc.url, px.Addr(tc.proxy)) || !strings.Contains(tc.url, tc.keep) {
			t.Errorf("%s = %q; want it through %s (%s), keeping %q", tc.key, tc.url, tc.proxy, px.Addr(tc.proxy), tc.keep)
		}
	}
	if cfg.Cache != "redis://127.0.0.1:6379/0" || cfg.User.DB != "postgres://app:s3cret@db.internal/users?sslmode=disable" {
		t.Fatalf("the caller's config changed: %q, %q", cfg.Cache, cfg.User.DB)
	}

	cfg = Default()
	cfg.Order.DB = "postgres://app@h1:5432,h2:5432/orders"
	s = &Stack{cfg: cfg, services: Services}
	if _, err := s.proxyDependencies(px); err == nil || !strings.Contains(err.Error(), "order.db") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("proxyDependencies with two hosts = %v; want an error naming order.db", err)
	}
}
