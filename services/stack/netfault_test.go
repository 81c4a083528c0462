package stack_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

type netProxy struct {
	Name, Listen, Upstream string
	Enabled                bool
}

func netProxies(t *testing.T, s *stacktest.Running) map[string]netProxy {
	t.Helper()
	var l struct{ Proxies []netProxy }
	stacktest.Do(t, "GET", s.Admin+"/chaos/net", nil).JSON(t, &l)
	out := map[string]netProxy{}
	for _, p := range l.Proxies {
		out[p.Name] = p
	}
	return out
}

// TestNetFaultServiceProxies: with chaos.net on, every gRPC server has a proxy named after
// its service in front of it, and the registry hands out the proxy: disabling "search"
// takes search away from the BFF, which serves its last good answer where it has one and
// 503 where it has none, and enabling it brings search back.
func TestNetFaultServiceProxies(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Chaos.Net.Enabled = true })
	proxies := netProxies(t, s)
	servers := 0
	for _, name := range stack.Services {
		addr := s.GRPCAddr(name)
		if addr == "" {
			continue
		}
		servers++
		if p, ok := proxies[name]; !ok || p.Upstream != addr || p.Listen == addr || !p.Enabled {
			t.Errorf("proxy %s = %+v (found %v); want one in front of %s", name, p, ok, addr)
		}
	}
	if servers == 0 || len(proxies) != servers {
		t.Fatalf("GET /chaos/net lists %d proxies for %d gRPC servers: %+v", len(proxies), servers, proxies)
	}

	search := func(q string) stacktest.Response { return stacktest.Do(t, "GET", s.BFF+"/v1/search?q="+q, nil) }
	if r := search("warm"); r.Status != http.StatusOK || r.Header.Get("X-Redline-Degraded") != "" {
		t.Fatalf("search through the proxy = %d %v %s; want 200, not degraded", r.Status, r.Header, r.Body)
	}
	if r := stacktest.Do(t, "POST", s.Admin+"/chaos/net/proxies/search/disable", `{"ttl":"1m","reason":"test"}`); r.Status != http.StatusOK {
		t.Fatalf("disable search = %d %s", r.Status, r.Body)
	}
	if r := search("warm"); r.Status != http.StatusOK || r.Header.Get("X-Redline-Degraded") != "last-good" {
		t.Fatalf("search for a query answered before, search down = %d %v %s; want 200 degraded last-good", r.Status, r.Header, r.Body)
	}
	if r := search("cold"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("search for a new query, search down = %d %s; want 503", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "POST", s.Admin+"/chaos/net/proxies/search/enable", nil); r.Status != http.StatusOK {
		t.Fatalf("enable search = %d %s", r.Status, r.Body)
	}
	// The gRPC client reconnects after its backoff: not at once.
	stacktest.Eventually(t, "search back after enable", func() (bool, string) {
		r := search("cold")
		return r.Status == http.StatusOK && r.Header.Get("X-Redline-Degraded") == "", string(r.Body)
	})
}

// TestNetFaultRedisProxy: with a real Redis as the cache, the cache client dials a proxy
// named "redis"; disabling it fails readiness on the cache check, and enabling it passes
// again.
func TestNetFaultRedisProxy(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	const prefix = "test:netfault:"
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		_ = rdb.Close()
	})
	var internal time.Duration
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Chaos.Net.Enabled = true
		c.Cache, c.CachePrefix = redisURL, prefix
		internal = c.Timeouts.Internal
	})
	if p, ok := netProxies(t, s)["redis"]; !ok || p.Upstream != "127.0.0.1:6379" {
		t.Fatalf("proxy redis = %+v (found %v); want one in front of 127.0.0.1:6379", p, ok)
	}
	ready := func() stacktest.Response { return stacktest.Do(t, "GET", s.Admin+"/readyz", nil) }
	bearer, _ := stacktest.Session(t, s.BFF, "redisdown")
	var note struct{ ID string }
	stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "read through redis down"}, "Authorization", bearer).JSON(t, &note)
	noteID := note.ID
	if r := ready(); r.Status != http.StatusOK {
		t.Fatalf("readyz = %d %s; want 200", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "POST", s.Admin+"/chaos/net/proxies/redis/disable", nil); r.Status != http.StatusOK {
		t.Fatalf("disable redis = %d %s", r.Status, r.Body)
	}
	if r := ready(); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), `"cache": "cache:`) {
		t.Fatalf("readyz with redis down = %d %s; want 503 on the cache check", r.Status, r.Body)
	}
	// Reads degrade to the database: a note never read before (so neither cached nor kept as
	// a last good answer) is served whole, with Redis gone, at the cost of a refused dial per
	// cache call, not of its deadline. (Each of the read's five Redis calls, the note's id
	// filter, get and fill and the author's get and fill, once cost go-redis's five dials
	// 100 ms apart per attempt: together the whole internal timeout.)
	began := time.Now()
	r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+noteID, nil)
	took := time.Since(began)
	t.Logf("note read with redis down took %v", took)
	if r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), "read through redis down") || r.Header.Get("X-Redline-Degraded") != "" {
		t.Fatalf("note read with redis down = %d %s (degraded %q); want 200 from the database", r.Status, r.Body, r.Header.Get("X-Redline-Degraded"))
	}
	if took >= internal/2 {
		t.Fatalf("note read with redis down took %v; want under half the internal timeout (%v): the cache fails fast", took, internal)
	}
	if r := stacktest.Do(t, "DELETE", s.Admin+"/chaos/net", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"enabled":1`) {
		t.Fatalf("DELETE /chaos/net = %d %s; want redis enabled", r.Status, r.Body)
	}
	stacktest.Eventually(t, "ready after redis is back", func() (bool, string) {
		r := ready()
		return r.Status == http.StatusOK, string(r.Body)
	})
}
