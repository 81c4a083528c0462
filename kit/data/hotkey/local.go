package hotkey

import (
	"context"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/redline-dev/redline/ha/clock"
)

// WithTTL sets how long Local serves a value before loading it again; it bounds how stale a
// value can be in a process that did not see the write's Invalidate. Default: 1s.
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithMaxEntries caps the values Local holds; past it an arbitrary entry of the key's shard
// is evicted (expired ones first). Default: 1024.
func WithMaxEntries(n int) Option { return func(o *options) { o.maxEntries = n } }

// WithWhitelist names keys known in advance to be hot (a campaign's product, the home page's
// config): Local caches them from their first read, whatever HeavyKeeper says. Default: none.
func WithWhitelist(keys ...string) Option {
	return func(o *options) { o.whitelist = append(o.whitelist, keys...) }
}

// LoadFunc reads a value from the layers below Local: the shared cache, then the database.
type LoadFunc func(ctx context.Context) ([]byte, error)

// Local is a read-through in-process cache for hot keys. Every Get is counted in a
// HeavyKeeper; a key in its top-K, or whitelisted, is kept in process for a short TTL, and
// any other key goes straight to its LoadFunc. It is safe for concurrent use.
//
// Writers call Invalidate after their write; other processes' copies age out within the TTL.
type Local struct {
	hk     *HeavyKeeper
	clock  clock.Clock
	ttl    int64
	white  map[string]struct{}
	shards []localShard
	mask   uint32
	per    int // max entries per shard
	seed   maphash.Seed
	group  singleflight.Group

	hits, misses, bypassed, invalidations, evictions atomic.Uint64
}

type entry struct {
	val     []byte
	expires int64 // unix nanoseconds
}

type localShard struct {
	mu sync.RWMutex
	m  map[string]entry
	// gen counts Invalidates: a load that began before one must not store its value.
	gen uint64
	_   [64]byte
}

// NewLocal returns a Local with its own HeavyKeeper, configured by the same options.
func NewLocal(opts ...Option) *Local {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.ttl <= 0 {
		o.ttl = time.Second
	}
	o.maxEntries = max(o.maxEntries, 1)
	n := 1
	for n < 16 && n*4 <= o.maxEntries {
		n *= 2
	}
	l := &Local{
		hk:     newKeeper(o),
		clock:  o.clock,
		ttl:    int64(o.ttl),
		white:  make(map[string]struct{}, len(o.whitelist)),
		shards: make([]localShard, n),
		mask:   uint32(n - 1),
		per:    (o.maxEntries + n - 1) / n,
		seed:   maphash.MakeSeed(),
	}
	for _, k := range o.whitelist {
		l.white[k] = struct{}{}
	}
	for i := range l.shards {
		l.shards[i].m = make(map[string]entry)
	}
	return l
}

// Keeper returns the HeavyKeeper that counts Local's reads.
func (l *Local) Keeper() *HeavyKeeper { return l.hk }

func (l *Local) shard(key string) *localShard {
	return &l.shards[uint32(maphash.String(l.seed, key))&l.mask]
}

// Get returns key's value: from the process when a fresh copy is held, otherwise from load.
// The value is kept for the TTL when key is hot (in the top-K) or whitelisted. Concurrent
// Gets of one hot key that all miss share one load, run with the first caller's ctx. Errors
// of load are returned as they are and never cached.
//
// The returned slice may be shared with other callers: it must not be modified.
func (l *Local) Get(ctx context.Context, key string, load LoadFunc) ([]byte, error) {
	now := l.clock.Now().UnixNano()
	hot := l.hk.add(key, now, true)
	s := l.shard(key)
	s.mu.RLock()
	e, ok := s.m[key]
	gen := s.gen
	s.mu.RUnlock()
	if ok && now < e.expires {
		l.hits.Add(1)
		return e.val, nil
	}
	if !hot {
		if _, white := l.white[key]; !white {
			l.bypassed.Add(1)
			return load(ctx)
		}
	}
	l.misses.Add(1)
	// The generation is part of the flight's key: a Get that starts after an Invalidate
	// never joins a load that started before it.
	v, err, _ := l.group.Do(key+"\x00"+strconv.FormatUint(gen, 10), func() (any, error) {
		// A flight that ended just before this one began may have stored the value.
		if val, ok := l.fresh(s, key, gen); ok {
			return val, nil
		}
		val, err := load(ctx)
		if err == nil {
			l.store(s, key, val, gen)
		}
		return val, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// fresh returns key's value when a copy stored at generation gen is still fresh.
func (l *Local) fresh(s *localShard, key string, gen uint64) ([]byte, bool) {
	now := l.clock.Now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[key]
	if !ok || s.gen != gen || now >= e.expires {
		return nil, false
	}
	return e.val, true
}

// store keeps val for key unless an Invalidate of the shard came after gen was read.
func (l *Local) store(s *localShard, key string, val []byte, gen uint64) {
	now := l.clock.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if _, ok := s.m[key]; !ok && len(s.m) >= l.per {
		for k, e := range s.m {
			if now >= e.expires {
				delete(s.m, k)
				l.evictions.Add(1)
			}
		}
		for k := range s.m {
			if len(s.m) < l.per {
				break
			}
			delete(s.m, k)
			l.evictions.Add(1)
		}
	}
	s.m[key] = entry{val: val, expires: now + l.ttl}
}

// Invalidate drops key's value, and keeps any load that began before the call from storing
// its result. Call it after the write that changed key has committed.
func (l *Local) Invalidate(key string) {
	s := l.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.gen++
	s.mu.Unlock()
	l.invalidations.Add(1)
}

// LocalStats is what Local did and holds, for the admin /state page.
type LocalStats struct {
	// Hits were served from the process.
	Hits uint64 `json:"hits"`
	// Misses were hot or whitelisted keys without a fresh copy: loaded, then kept.
	Misses uint64 `json:"misses"`
	// Bypassed were cold keys, loaded and not kept.
	Bypassed uint64 `json:"bypassed"`
	// HitRatio is Hits over all Gets.
	HitRatio      float64 `json:"hit_ratio"`
	Invalidations uint64  `json:"invalidations"`
	Evictions     uint64  `json:"evictions"`
	// Promoted lists the keys held in the process now, fresh or awaiting eviction.
	Promoted []string `json:"promoted"`
	// Whitelist is how many keys are whitelisted.
	Whitelist int `json:"whitelist"`
	// TopK is HeavyKeeper's current top-K, largest first.
	TopK []Item `json:"top_k"`
}

// Stats returns what Local did since it was made and what it holds now.
func (l *Local) Stats() LocalStats {
	st := LocalStats{
		Hits: l.hits.Load(), Misses: l.misses.Load(), Bypassed: l.bypassed.Load(),
		Invalidations: l.invalidations.Load(), Evictions: l.evictions.Load(),
		Whitelist: len(l.white), TopK: l.hk.TopK(),
	}
	if total := st.Hits + st.Misses + st.Bypassed; total > 0 {
		st.HitRatio = float64(st.Hits) / float64(total)
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		for k := range s.m {
			st.Promoted = append(st.Promoted, k)
		}
		s.mu.RUnlock()
	}
	slices.Sort(st.Promoted)
	return st
}
