package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/data/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	redisEnv = "REDLINE_TEST_REDIS"
	redisDef = "redis://127.0.0.1:6379/0"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one fresh, isolated cache under test and a way to make its short TTLs run out.
type env struct {
	c        Cache
	shortTTL time.Duration
	// expire returns once key, set with shortTTL, has expired.
	expire func(t *testing.T, key string)
}

type backend struct {
	name string
	open func(t *testing.T) env
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) env {
			clock := newFakeClock()
			m := NewMemory(WithClock(clock))
			t.Cleanup(func() { m.Close() })
			return env{c: m, shortTTL: time.Second, expire: func(*testing.T, string) { clock.Advance(time.Second) }}
		}},
		{"redis", func(t *testing.T) env {
			r := openRedis(t)
			// Redis keeps real time, so its TTL cases wait for the server to expire the key.
			// The TTL leaves ample room for the read that checks the key is there first.
			return env{c: r, shortTTL: 1500 * time.Millisecond, expire: func(t *testing.T, key string) {
				t.Helper()
				waitFor(t, 10*time.Second, func() bool {
					_, err := r.Get(t.Context(), key)
					return errors.Is(err, ErrNotFound)
				})
			}}
		}},
	}
}

// openRedis opens a Redis cache under a prefix of the test's own and deletes the prefix's
// keys at cleanup.
func openRedis(t *testing.T) *Redis {
	t.Helper()
	url := testenv.URL(t, redisEnv, redisDef)
	prefix := testenv.Name("redline_test") + ":"
	c, err := Open(t.Context(), url, WithPrefix(prefix))
	if err != nil {
		testenv.Unreachable(t, redisEnv, err)
	}
	r := c.(baseline).Cache.(*Redis)
	t.Cleanup(func() {
		r.Close()
		// A client of its own: the test may have closed r.
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		raw := redis.NewClient(opts)
		defer raw.Close()
		ctx := context.Background()
		iter := raw.Scan(ctx, 0, prefix+"*", 100).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan %s*: %v", prefix, err)
		}
		if len(keys) > 0 {
			if err := raw.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("del %s*: %v", prefix, err)
			}
		}
	})
	return r
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustGet(t *testing.T, c Cache, key string, want []byte) {
	t.Helper()
	got, err := c.Get(t.Context(), key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, %v; want %q, nil", key, got, err, want)
	}
}

func mustMiss(t *testing.T, c Cache, key string) {
	t.Helper()
	if got, err := c.Get(t.Context(), key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func mustSet(t *testing.T, c Cache, key string, val []byte, ttl time.Duration) {
	t.Helper()
	if err := c.Set(t.Context(), key, val, ttl); err != nil {
		t.Fatalf("Set(%q) = %v", key, err)
	}
}

func mustSetNX(t *testing.T, c Cache, key string, val []byte, ttl time.Duration, want bool) {
	t.Helper()
	got, err := c.SetNX(t.Context(), key, val, ttl)
	if err != nil || got != want {
		t.Fatalf("SetNX(%q) = %v, %v; want %v, nil", key, got, err, want)
	}
}

// TestContract runs the Cache contract against every backend.
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"get missing", func(t *testing.T, e env) { mustMiss(t, e.c, "nope") }},
		{"set get overwrite", func(t *testing.T, e env) {
			mustSet(t, e.c, "k", []byte("v1"), 0)
			mustGet(t, e.c, "k", []byte("v1"))
			mustSet(t, e.c, "k", []byte("v2"), 0)
			mustGet(t, e.c, "k", []byte("v2"))
		}},
		{"empty and binary values", func(t *testing.T, e env) {
			mustSet(t, e.c, "empty", nil, 0)
			mustGet(t, e.c, "empty", []byte{})
			bin := []byte{0, 1, 0xff, '\n', 0}
			mustSet(t, e.c, "bin", bin, 0)
			mustGet(t, e.c, "bin", bin)
		}},
		{"values are copies", func(t *testing.T, e env) {
			val := []byte("abc")
			mustSet(t, e.c, "k", val, 0)
			val[0] = 'X'
			got, _ := e.c.Get(t.Context(), "k")
			got[1] = 'Y'
			mustGet(t, e.c, "k", []byte("abc"))
		}},
		{"setnx", func(t *testing.T, e env) {
			mustSetNX(t, e.c, "k", []byte("first"), 0, true)
			mustSetNX(t, e.c, "k", []byte("second"), 0, false)
			mustGet(t, e.c, "k", []byte("first"))
			if err := e.c.Del(t.Context(), "k"); err != nil {
				t.Fatal(err)
			}
			mustSetNX(t, e.c, "k", []byte("third"), 0, true)
			mustGet(t, e.c, "k", []byte("third"))
		}},
		{"del", func(t *testing.T, e env) {
			mustSet(t, e.c, "a", []byte("1"), 0)
			mustSet(t, e.c, "b", []byte("2"), 0)
			mustSet(t, e.c, "c", []byte("3"), 0)
			if err := e.c.Del(t.Context(), "a", "b", "absent"); err != nil {
				t.Fatalf("Del() = %v", err)
			}
			if err := e.c.Del(t.Context()); err != nil {
				t.Fatalf("Del() of no keys = %v", err)
			}
			mustMiss(t, e.c, "a")
			mustMiss(t, e.c, "b")
			mustGet(t, e.c, "c", []byte("3"))
		}},
		{"ttl expires", func(t *testing.T, e env) {
			mustSet(t, e.c, "short", []byte("v"), e.shortTTL)
			mustSet(t, e.c, "forever", []byte("v"), 0)
			mustGet(t, e.c, "short", []byte("v"))
			e.expire(t, "short")
			mustMiss(t, e.c, "short")
			mustGet(t, e.c, "forever", []byte("v"))
		}},
		{"set clears ttl", func(t *testing.T, e env) {
			mustSet(t, e.c, "k", []byte("v1"), e.shortTTL)
			mustSet(t, e.c, "k", []byte("v2"), 0)
			mustSet(t, e.c, "probe", []byte("p"), e.shortTTL)
			e.expire(t, "probe")
			mustGet(t, e.c, "k", []byte("v2"))
		}},
		{"setnx fills an expired key", func(t *testing.T, e env) {
			mustSetNX(t, e.c, "k", []byte("old"), e.shortTTL, true)
			e.expire(t, "k")
			mustSetNX(t, e.c, "k", []byte("new"), 0, true)
			mustGet(t, e.c, "k", []byte("new"))
		}},
		{"mget", func(t *testing.T, e env) {
			mustSet(t, e.c, "a", []byte("1"), 0)
			mustSet(t, e.c, "c", []byte("3"), 0)
			got, err := e.c.MGet(t.Context(), "a", "b", "c")
			if err != nil || len(got) != 3 || string(got[0]) != "1" || got[1] != nil || string(got[2]) != "3" {
				t.Fatalf("MGet(a, b, c) = %q, %v; want [1 nil 3]", got, err)
			}
			if got, err := e.c.MGet(t.Context()); err != nil || len(got) != 0 {
				t.Fatalf("MGet() = %q, %v; want nothing", got, err)
			}
		}},
		{"ping", func(t *testing.T, e env) {
			if err := e.c.Ping(t.Context()); err != nil {
				t.Fatalf("Ping() = %v", err)
			}
		}},
		{"concurrent", func(t *testing.T, e env) {
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 50 {
						key := fmt.Sprintf("k%d", i%10)
						val := fmt.Appendf(nil, "%d-%d", g, i)
						if err := e.c.Set(t.Context(), key, val, time.Hour); err != nil {
							t.Errorf("Set() = %v", err)
						}
						if _, err := e.c.SetNX(t.Context(), key, val, time.Hour); err != nil {
							t.Errorf("SetNX() = %v", err)
						}
						if _, err := e.c.Get(t.Context(), key); err != nil && !errors.Is(err, ErrNotFound) {
							t.Errorf("Get() = %v", err)
						}
					}
				})
			}
			wg.Wait()
		}},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.run(t, b.open(t))
				})
			}
		})
	}
}

func TestClosed(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			c := b.open(t).c
			if err := c.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close() = %v", err)
			}
			ctx := t.Context()
			calls := map[string]error{
				"Get":   func() error { _, err := c.Get(ctx, "k"); return err }(),
				"Set":   c.Set(ctx, "k", []byte("v"), 0),
				"SetNX": func() error { _, err := c.SetNX(ctx, "k", []byte("v"), 0); return err }(),
				"Del":   c.Del(ctx, "k"),
				"Ping":  c.Ping(ctx),
			}
			for name, err := range calls {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("%s after Close = %v; want ErrClosed", name, err)
				}
			}
		})
	}
}

func TestRedisPrefixAndTTL(t *testing.T) {
	r := openRedis(t)
	ctx := t.Context()
	mustSet(t, r, "k", []byte("v"), time.Minute)
	mustSet(t, r, "forever", []byte("v"), 0)
	raw := r.client
	if got, err := raw.Get(ctx, r.prefix+"k").Result(); err != nil || got != "v" {
		t.Fatalf("raw GET %sk = %q, %v; want \"v\"", r.prefix, got, err)
	}
	if n, err := raw.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("raw EXISTS k = %d, %v; want 0 (the key lives under the prefix)", n, err)
	}
	ttl, err := raw.PTTL(ctx, r.prefix+"k").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v, %v; want in (0, 1m]", ttl, err)
	}
	if ttl, err := raw.PTTL(ctx, r.prefix+"forever").Result(); err != nil || ttl != -1 {
		t.Fatalf("PTTL of a key without ttl = %v, %v; want -1", ttl, err)
	}
}

func TestOpen(t *testing.T) {
	redisURL := testenv.URL(t, redisEnv, redisDef)
	tests := []struct {
		dsn     string
		want    string // type name, or "" for an error
		wantErr error
	}{
		{"memory:", "*cache.Memory", nil},
		{redisURL, "*cache.Redis", nil},
		{"memcached://127.0.0.1:11211", "", ErrUnsupportedDSN},
		{"redis://127.0.0.1:1/0", "", nil}, // nothing listens on port 1
		{"redis://127.0.0.1:6379/notanumber", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			c, err := Open(t.Context(), tt.dsn)
			if tt.want == "" {
				if err == nil {
					c.Close()
					t.Fatalf("Open(%q) succeeded; want an error", tt.dsn)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Open(%q) = %v; want %v", tt.dsn, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q) = %v", tt.dsn, err)
			}
			defer c.Close()
			if got := fmt.Sprintf("%T", c.(baseline).Cache); got != tt.want {
				t.Fatalf("Open(%q) is a %s; want %s", tt.dsn, got, tt.want)
			}
		})
	}
}
