package cache

import (
	"container/list"
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is an in-process Cache: a sharded map with per-entry TTLs and an LRU cap per shard.
// Expired entries are dropped when read and by a janitor goroutine that Close stops.
type Memory struct {
	clock  Clock
	seed   maphash.Seed
	shards []*shard

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{} // closed when the janitor has returned; nil without a janitor
}

type shard struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element // values are *entry
	lru   list.List                // front: most recently used
}

type entry struct {
	key     string
	val     []byte
	expires int64 // unix nanoseconds; 0 never expires
}

// NewMemory returns a memory cache configured by WithClock, WithMaxEntries, WithShards and
// WithJanitorInterval. Close it to stop its janitor.
func NewMemory(opts ...Option) *Memory {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	o.maxEntries = max(o.maxEntries, 1)
	n := min(max(o.shards, 1), o.maxEntries)
	m := &Memory{clock: o.clock, seed: maphash.MakeSeed(), shards: make([]*shard, n), stop: make(chan struct{})}
	for i := range m.shards {
		// Spread the cap so the shards add up to exactly maxEntries.
		limit := o.maxEntries / n
		if i < o.maxEntries%n {
			limit++
		}
		m.shards[i] = &shard{max: limit, items: make(map[string]*list.Element)}
	}
	if o.janitor > 0 {
		m.done = make(chan struct{})
		go m.janitor(o.janitor)
	}
	return m
}

func (m *Memory) shard(key string) *shard {
	return m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
}

func (m *Memory) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return m.clock.Now().Add(ttl).UnixNano()
}

func expired(e *entry, now int64) bool { return e.expires != 0 && e.expires <= now }

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	now := m.clock.Now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, ErrNotFound
	}
	e := el.Value.(*entry)
	if expired(e, now) {
		s.remove(el)
		return nil, ErrNotFound
	}
	s.lru.MoveToFront(el)
	return clone(e.val), nil
}

// MGet implements Cache.
func (m *Memory) MGet(ctx context.Context, keys ...string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := m.Get(ctx, k)
		switch {
		case err == nil:
			out[i] = v
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// Set implements Cache.
func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	if m.closed.Load() {
		return ErrClosed
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, clone(val), m.expiry(ttl))
	return nil
}

// SetNX implements Cache.
func (m *Memory) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if m.closed.Load() {
		return false, ErrClosed
	}
	now := m.clock.Now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok && !expired(el.Value.(*entry), now) {
		return false, nil
	}
	s.put(key, clone(val), m.expiry(ttl))
	return true, nil
}

// Del implements Cache.
func (m *Memory) Del(_ context.Context, keys ...string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	for _, key := range keys {
		s := m.shard(key)
		s.mu.Lock()
		if el, ok := s.items[key]; ok {
			s.remove(el)
		}
		s.mu.Unlock()
	}
	return nil
}

// Ping implements Cache: a memory cache serves until it is closed.
func (m *Memory) Ping(context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close stops the janitor and waits for it. It is safe to call more than once.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		if m.done != nil {
			<-m.done
		}
	})
	return nil
}

// Len returns the number of entries held, expired ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for _, s := range m.shards {
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

func (m *Memory) janitor(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep drops every expired entry, one shard at a time so readers of other shards go on.
func (m *Memory) sweep() {
	for _, s := range m.shards {
		now := m.clock.Now().UnixNano()
		s.mu.Lock()
		for _, el := range s.items {
			if expired(el.Value.(*entry), now) {
				s.remove(el)
			}
		}
		s.mu.Unlock()
	}
}

// put stores an entry as the most recently used and evicts the least recently used past the
// cap. s.mu is held.
func (s *shard) put(key string, val []byte, expires int64) {
	if el, ok := s.items[key]; ok {
		e := el.Value.(*entry)
		e.val, e.expires = val, expires
		s.lru.MoveToFront(el)
		return
	}
	s.items[key] = s.lru.PushFront(&entry{key: key, val: val, expires: expires})
	for len(s.items) > s.max {
		s.remove(s.lru.Back())
	}
}

// remove drops el. s.mu is held.
func (s *shard) remove(el *list.Element) {
	s.lru.Remove(el)
	delete(s.items, el.Value.(*entry).key)
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}
