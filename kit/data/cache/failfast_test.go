package cache

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisFailsFast: a Redis cache bounds dial, read, write and pool waits, dials once
// per attempt and retries once, so a Redis that is down costs a cache call half a second,
// not go-redis's 5 s dial times 3 retries; what the URL sets stays.
func TestRedisFailsFast(t *testing.T) {
	r, err := NewRedis("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.client.Close()
	o := r.client.Options()
	if o.DialTimeout != FailFastTimeout || o.ReadTimeout != FailFastTimeout || o.WriteTimeout != FailFastTimeout ||
		o.PoolTimeout != FailFastTimeout || o.MaxRetries != 1 || o.DialerRetries != 1 {
		t.Fatalf("options = dial %v read %v write %v pool %v retries %d dialer retries %d; want %v each, 1 retry, 1 dial",
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries, o.DialerRetries, FailFastTimeout)
	}
	r2, err := NewRedis("redis://127.0.0.1:6379/0?dial_timeout=2s&max_retries=4")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.client.Close()
	if o := r2.client.Options(); o.DialTimeout != 2*time.Second || o.MaxRetries != 4 || o.ReadTimeout != FailFastTimeout {
		t.Fatalf("URL options were overridden: dial %v retries %d read %v", o.DialTimeout, o.MaxRetries, o.ReadTimeout)
	}
}

// TestFailFastDialsOncePerAttempt: against a Redis that refuses connections, a command
// dials once per attempt (the first and its one retry), not go-redis's five times per
// attempt, 100 ms apart; a pipeline dials once per attempt in each of go-redis's two pools
// (its pipeline pool, then the main pool it spills to).
func TestFailFastDialsOncePerAttempt(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(context.Context, *redis.Client) error
		max  int32
	}{
		{"get", func(ctx context.Context, c *redis.Client) error { return c.Get(ctx, "k").Err() }, 2},
		{"pipeline", func(ctx context.Context, c *redis.Client) error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { p.GetBit(ctx, "k", 1); return nil })
			return err
		}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := redis.ParseURL("redis://127.0.0.1:1/0")
			if err != nil {
				t.Fatal(err)
			}
			FailFast(o)
			var dials atomic.Int32
			o.Dialer = func(context.Context, string, string) (net.Conn, error) {
				dials.Add(1)
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			c := redis.NewClient(o)
			defer c.Close()
			if err := tc.call(context.Background(), c); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("%s with Redis refusing = %v; want connection refused", tc.name, err)
			}
			if n := dials.Load(); n > tc.max {
				t.Fatalf("%s with Redis refusing dialed %d times; want at most %d", tc.name, n, tc.max)
			}
		})
	}
}
