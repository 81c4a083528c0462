package ratelimit

import "sync"

// A bucket is kept as its theoretical arrival time (GCRA): the instant at which it would be
// full again. Taking a token moves it one interval later; the bucket is empty when it runs
// more than (Burst-1) intervals ahead of now. One integer per key, and exact: no float
// drift between refills.
type entry struct {
	key        string
	tat        int64 // theoretical arrival time, Unix ns
	last       int64 // last request, Unix ns
	prev, next *entry
}

// shard is one lock's worth of buckets, in least-recently-used order.
type shard struct {
	mu  sync.Mutex
	m   map[string]*entry
	lru entry // sentinel: lru.next is the most recent, lru.prev the least
	max int
}

// take takes a token from key's bucket under r at now, and returns 0, or the nanoseconds
// until a token is available when there is none.
func (s *shard) take(key string, now int64, r *route, idleTTL int64) int64 {
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		s.expire(now, idleTTL, 2)
		if len(s.m) >= s.max {
			s.remove(s.lru.prev)
		}
		e = &entry{key: key, tat: now}
		s.m[key] = e
	} else {
		s.unlink(e)
	}
	s.pushFront(e)
	e.last = now
	tat := max(e.tat, now)
	if ahead := tat - now; ahead > r.tolerance {
		s.mu.Unlock()
		return ahead - r.tolerance
	}
	e.tat = tat + r.interval
	s.mu.Unlock()
	return 0
}

// expire drops up to limit (all when negative) least recently used buckets that have been
// idle for ttl and are full again, so dropping them changes no decision.
func (s *shard) expire(now, ttl int64, limit int) {
	for n := 0; limit < 0 || n < limit; n++ {
		e := s.lru.prev
		if e == &s.lru || now-e.last < ttl || e.tat > now {
			return
		}
		s.remove(e)
	}
}

func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.m, e.key)
}

func (s *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
}

func (s *shard) pushFront(e *entry) {
	e.prev = &s.lru
	e.next = s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}
