package cache

import (
	"context"
	"time"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/meta"
)

// ShadowPrefix starts every key of a Shadow view, after the cache's own prefix.
const ShadowPrefix = "shadow:"

// ErrLane is returned by a baseline cache (one from Open) called in a lane.
var ErrLane = lanes.ErrBaseline

// baseline is the cache Open returns: it refuses calls in a lane.
type baseline struct{ Cache }

func (b baseline) check(ctx context.Context) error {
	if meta.Lane(ctx) != "" {
		lanes.Refused("cache")
		return ErrLane
	}
	return nil
}

func (b baseline) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.Cache.Get(ctx, key)
}

func (b baseline) MGet(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.Cache.MGet(ctx, keys...)
}

func (b baseline) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.Cache.Set(ctx, key, val, ttl)
}

func (b baseline) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := b.check(ctx); err != nil {
		return false, err
	}
	return b.Cache.SetNX(ctx, key, val, ttl)
}

func (b baseline) Del(ctx context.Context, keys ...string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.Cache.Del(ctx, keys...)
}

// Shadow returns the shadow view of c for lane traffic: the same store, every key under
// ShadowPrefix, and no lane check. A baseline cache from Open unwraps, so the view and the
// baseline share one connection pool (or one memory map) and never one key.
func Shadow(c Cache) Cache {
	if b, ok := c.(baseline); ok {
		c = b.Cache
	}
	return shadow{c}
}

type shadow struct{ Cache }

func (s shadow) Get(ctx context.Context, key string) ([]byte, error) {
	return s.Cache.Get(ctx, ShadowPrefix+key)
}

func (s shadow) MGet(ctx context.Context, keys ...string) ([][]byte, error) {
	return s.Cache.MGet(ctx, shadowKeys(keys)...)
}

func (s shadow) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return s.Cache.Set(ctx, ShadowPrefix+key, val, ttl)
}

func (s shadow) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return s.Cache.SetNX(ctx, ShadowPrefix+key, val, ttl)
}

func (s shadow) Del(ctx context.Context, keys ...string) error {
	return s.Cache.Del(ctx, shadowKeys(keys)...)
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
