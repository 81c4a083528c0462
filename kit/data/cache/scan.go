package cache

import (
	"context"
	"errors"
	"strings"
)

// Scanner walks a cache's live entries. Leak reports use it to look for a stress run's
// sentinel in baseline keys and values; it is not for serving traffic.
type Scanner interface {
	// Scan calls fn for every live entry whose key (without the cache's own prefix)
	// starts with prefix, until fn returns false or limit entries were seen (limit <= 0:
	// no limit). Entries written during the scan may or may not be seen.
	Scan(ctx context.Context, prefix string, limit int, fn func(key string, val []byte) bool) error
}

var (
	_ Scanner = (*Memory)(nil)
	_ Scanner = (*Redis)(nil)
)

// ErrNoScan is returned by ScanBaseline for a cache that cannot be walked.
var ErrNoScan = errors.New("cache: this cache cannot be scanned")

// ScanBaseline walks the baseline keys of c (a cache from Open, or its Shadow view's
// store): every key outside ShadowPrefix.
func ScanBaseline(ctx context.Context, c Cache, limit int, fn func(key string, val []byte) bool) error {
	switch v := c.(type) {
	case baseline:
		c = v.Cache
	case shadow:
		c = v.Cache
	}
	sc, ok := c.(Scanner)
	if !ok {
		return ErrNoScan
	}
	seen := 0
	return sc.Scan(ctx, "", 0, func(key string, val []byte) bool {
		if strings.HasPrefix(key, ShadowPrefix) {
			return true
		}
		if limit > 0 && seen >= limit {
			return false
		}
		seen++
		return fn(key, val)
	})
}

// Scan implements Scanner; it holds one shard's lock at a time.
func (m *Memory) Scan(ctx context.Context, prefix string, limit int, fn func(key string, val []byte) bool) error {
	if m.closed.Load() {
		return ErrClosed
	}
	now := m.clock.Now().UnixNano()
	seen := 0
	for _, s := range m.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		type kv struct {
			k string
			v []byte
		}
		var batch []kv
		s.mu.Lock()
		for k, el := range s.items {
			e := el.Value.(*entry)
			if strings.HasPrefix(k, prefix) && !expired(e, now) {
				batch = append(batch, kv{k, clone(e.val)})
			}
		}
		s.mu.Unlock()
		for _, e := range batch {
			if limit > 0 && seen >= limit {
				return nil
			}
			seen++
			if !fn(e.k, e.v) {
				return nil
			}
		}
	}
	return nil
}

// Scan implements Scanner with SCAN and MGET, 500 keys a round.
func (r *Redis) Scan(ctx context.Context, prefix string, limit int, fn func(key string, val []byte) bool) error {
	var cursor uint64
	seen := 0
	for {
		keys, next, err := r.client.Scan(ctx, cursor, r.prefix+prefix+"*", 500).Result()
		if err != nil {
			return r.wrap("scan", prefix, err)
		}
		if len(keys) > 0 {
			vals, err := r.client.MGet(ctx, keys...).Result()
			if err != nil {
				return r.wrap("scan", prefix, err)
			}
			for i, k := range keys {
				s, ok := vals[i].(string)
				if !ok { // expired between SCAN and MGET, or not a string
					continue
				}
				if limit > 0 && seen >= limit {
					return nil
				}
				seen++
				if !fn(strings.TrimPrefix(k, r.prefix), []byte(s)) {
					return nil
				}
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
