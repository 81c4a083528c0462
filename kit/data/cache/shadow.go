package cache

import (
	"context"
	"time"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
)

// ShadowPrefix starts every key of a Shadow view, after the cache's own prefix.
const ShadowPrefix = "shadow:"

// ErrLane is returned by a baseline cache (one from Open) called in a lane.
var ErrLane = lanes.ErrBaseline

// baseline is the cache Open returns: it refuses calls in a lane, and runs the fault hook.
type baseline struct {
	Cache
	service string
}

func (b baseline) check(ctx context.Context, op string) error {
	if meta.Lane(ctx) != "" {
		lanes.Refused("cache")
		return ErrLane
	}
	return inject(ctx, b.service, op)
}

func (b baseline) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.check(ctx, opGet); err != nil {
		return nil, err
	}
	return b.Cache.Get(ctx, key)
}

func (b baseline) MGet(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := b.check(ctx, opMGet); err != nil {
		return nil, err
	}
	return b.Cache.MGet(ctx, keys...)
}

func (b baseline) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := b.check(ctx, opSet); err != nil {
		return err
	}
	return b.Cache.Set(ctx, key, val, ttl)
}

func (b baseline) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := b.check(ctx, opSetNX); err != nil {
		return false, err
	}
	return b.Cache.SetNX(ctx, key, val, ttl)
}

func (b baseline) Del(ctx context.Context, keys ...string) error {
	if err := b.check(ctx, opDel); err != nil {
		return err
	}
	return b.Cache.Del(ctx, keys...)
}

// Ping runs the fault hook but no lane check: readiness is not lane traffic.
func (b baseline) Ping(ctx context.Context) error {
	if err := inject(ctx, b.service, opPing); err != nil {
		return err
	}
	return b.Cache.Ping(ctx)
}

// Shadow returns the shadow view of c for lane traffic: the same store, every key under
// ShadowPrefix, and no lane check. A baseline cache from Open unwraps, so the view and the
// baseline share one connection pool (or one memory map) and never one key; the view runs
// the fault hook under the baseline's service name.
func Shadow(c Cache) Cache {
	if b, ok := c.(baseline); ok {
		return shadow{b.Cache, b.service}
	}
	return shadow{Cache: c}
}

type shadow struct {
	Cache
	service string
}

func (s shadow) Get(ctx context.Context, key string) ([]byte, error) {
	if err := inject(ctx, s.service, opGet); err != nil {
		return nil, err
	}
	return s.Cache.Get(ctx, ShadowPrefix+key)
}

func (s shadow) MGet(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := inject(ctx, s.service, opMGet); err != nil {
		return nil, err
	}
	return s.Cache.MGet(ctx, shadowKeys(keys)...)
}

func (s shadow) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := inject(ctx, s.service, opSet); err != nil {
		return err
	}
	return s.Cache.Set(ctx, ShadowPrefix+key, val, ttl)
}

func (s shadow) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := inject(ctx, s.service, opSetNX); err != nil {
		return false, err
	}
	return s.Cache.SetNX(ctx, ShadowPrefix+key, val, ttl)
}

func (s shadow) Del(ctx context.Context, keys ...string) error {
	if err := inject(ctx, s.service, opDel); err != nil {
		return err
	}
	return s.Cache.Del(ctx, shadowKeys(keys)...)
}

func (s shadow) Ping(ctx context.Context) error {
	if err := inject(ctx, s.service, opPing); err != nil {
		return err
	}
	return s.Cache.Ping(ctx)
}

// Close is a no-op: the view shares the baseline's store, which its owner closes.
func (s shadow) Close() error { return nil }

func shadowKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = ShadowPrefix + k
	}
	return out
}

// The Op of each operation in its fault Point: the method name in lower case.
const (
	opGet   = "get"
	opMGet  = "mget"
	opSet   = "set"
	opSetNX = "setnx"
	opDel   = "del"
	opPing  = "ping"
)

// inject asks the fault-injection hook about one operation of service's cache.
func inject(ctx context.Context, service, op string) error {
	return fault.Inject(ctx, fault.Point{Kind: fault.Cache, Side: fault.Client, Service: service, Op: op})
}

// ForService returns c as the cache of service, for a cache that several services of one
// process share: the same store and connection pool (Close of either closes both), with
// fault Points naming service. It applies to caches from Open and their Shadow views;
// any other Cache, which runs no fault hook, is returned as is.
func ForService(c Cache, service string) Cache {
	switch v := c.(type) {
	case baseline:
		v.service = service
		return v
	case shadow:
		v.service = service
		return v
	}
	return c
}
