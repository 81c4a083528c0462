// Package hotkey finds the hottest keys of a read stream with HeavyKeeper, and serves them
// from a small in-process cache (Local) so a key that a large share of traffic reads stops
// costing a remote cache or database read per request.
//
// # HeavyKeeper
//
// HeavyKeeper (Gong et al., USENIX ATC 2018) keeps d rows of w buckets, each bucket a
// fingerprint and a count, and a min-heap of the K largest estimates. A key hashes to one
// bucket per row: an empty bucket or one with the key's fingerprint counts it; a bucket held
// by another fingerprint with count C decays by one with probability b^-C, and is taken over
// when it reaches zero. Small flows thus lose their buckets quickly while an elephant's
// count is almost never decayed, so the estimate of a hot key is close to exact and the
// estimate of a cold key never exceeds its true count (fingerprint collisions aside).
//
// This implementation adds two things:
//
//   - Aging: every interval (default 10s) all counts are multiplied by a factor (default
//     0.5), so yesterday's hot keys cool down and the top-K follows the traffic. Aging runs
//     on the keeper's clock, lazily and without a goroutine: TopK and Local.Get read the
//     clock on every call, a bare Add on every 64th call of its shard (a clock reading can
//     cost more than the rest of an Add), and each shard catches up on its next use.
//   - Striping: the keeper is S independent HeavyKeepers (shards), and each Add goes to a
//     random one. Every shard thus sees a uniform sample of the stream, in which hot keys are
//     hot too; TopK sums a key's counts across shards. Striping by random choice rather than
//     by key hash matters here: sharding by key would send every Add of the hottest key to
//     one shard's lock, rebuilding the very hot spot the keeper is there to find.
package hotkey

import (
	"cmp"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Option configures New and NewLocal. Options that do not apply to one are ignored by it.
type Option func(*options)

type options struct {
	k, depth, width, shards int
	decay                   float64
	ageEvery                time.Duration
	ageFactor               float64
	clock                   clock.Clock

	// Local only.
	ttl        time.Duration
	maxEntries int
	whitelist  []string
}

func defaultOptions() options {
	return options{
		k:          100,
		depth:      2,
		width:      1024,
		shards:     defaultShards(),
		decay:      1.08,
		ageEvery:   10 * time.Second,
		ageFactor:  0.5,
		clock:      clock.Real{},
		ttl:        time.Second,
		maxEntries: 1024,
	}
}

// defaultShards is the next power of two at or above 2·GOMAXPROCS, at most 64.
func defaultShards() int {
	n := 1
	for n < 2*runtime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	return n
}

// WithK sets how many keys the top-K holds. Default: 100.
func WithK(k int) Option { return func(o *options) { o.k = k } }

// WithDepth sets d, the number of bucket rows. Default: 2.
func WithDepth(d int) Option { return func(o *options) { o.depth = d } }

// WithWidth sets w, the number of buckets in a row of each shard. More buckets mean fewer
// collisions between keys; 1024 keeps a shard's rows in 16 KiB. Default: 1024.
func WithWidth(w int) Option { return func(o *options) { o.width = w } }

// WithShards sets how many independently locked shards the keeper has, rounded up to a power
// of two. Default: 2·GOMAXPROCS rounded up, at most 64.
func WithShards(n int) Option { return func(o *options) { o.shards = n } }

// WithDecayBase sets b, the base of the decay probability b^-count. Default: 1.08, the
// paper's choice.
func WithDecayBase(b float64) Option { return func(o *options) { o.decay = b } }

// WithAging multiplies every count by factor (0 < factor < 1) once per interval, so keys
// that stopped being read fall out of the top-K. An interval <= 0 turns aging off.
// Default: every 10s, by 0.5.
func WithAging(interval time.Duration, factor float64) Option {
	return func(o *options) { o.ageEvery, o.ageFactor = interval, factor }
}

// WithClock sets the clock of aging and, for Local, of entry expiry. Default: the wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// Item is a key and its estimated count (after aging).
type Item struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// decayTableLen bounds the decay table: b^-C for C past it is below 2^-32 at b = 1.08, and
// such a bucket is treated as never decaying.
const decayTableLen = 300

// HeavyKeeper estimates the top-K keys of a stream. It is safe for concurrent use.
type HeavyKeeper struct {
	k, depth, width int
	shards          []shard
	mask            uint32
	seed            maphash.Seed
	// decay[c] is b^-c scaled to a uint32: a bucket with count c decays when a random
	// uint32 is below it.
	decay [decayTableLen]uint32

	clock     clock.Clock
	ageEvery  int64 // nanoseconds; 0 = no aging
	ageFactor float64
	nextAge   atomic.Int64  // unix nanoseconds of the next aging
	epoch     atomic.Uint64 // agings so far; each shard catches up to it
	ageMu     sync.Mutex
}

type bucket struct {
	fp    uint32
	count uint32
}

type shard struct {
	mu      sync.Mutex
	buckets []bucket // depth rows of width
	heap    []Item   // min-heap by Count
	pos     map[string]int
	rng     rand.PCG
	epoch   uint64
	ops     uint64   // Adds, to space out clock readings
	_       [64]byte // keeps neighbouring shards' locks off one cache line
}

// New returns a HeavyKeeper. It starts no goroutine: aging happens on the calls.
func New(opts ...Option) *HeavyKeeper {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return newKeeper(o)
}

func newKeeper(o options) *HeavyKeeper {
	o.k, o.depth, o.width = max(o.k, 1), max(o.depth, 1), max(o.width, 1)
	n := 1
	for n < o.shards && n < 1024 {
		n *= 2
	}
	hk := &HeavyKeeper{
		k: o.k, depth: o.depth, width: o.width,
		shards: make([]shard, n), mask: uint32(n - 1), seed: maphash.MakeSeed(),
		clock: o.clock,
	}
	if o.decay <= 1 {
		o.decay = 1.08
	}
	for c := range hk.decay {
		hk.decay[c] = uint32(math.Pow(o.decay, -float64(c)) * math.MaxUint32)
	}
	if o.ageEvery > 0 && o.ageFactor > 0 && o.ageFactor < 1 {
		hk.ageEvery, hk.ageFactor = int64(o.ageEvery), o.ageFactor
		hk.nextAge.Store(o.clock.Now().UnixNano() + hk.ageEvery)
	}
	for i := range hk.shards {
		s := &hk.shards[i]
		s.buckets = make([]bucket, o.depth*o.width)
		s.heap = make([]Item, 0, o.k)
		s.pos = make(map[string]int, o.k)
		s.rng.Seed(rand.Uint64(), rand.Uint64())
	}
	return hk
}

// clockEvery is how many Adds of a shard share one reading of the clock: on some virtual
// machines a reading costs more than the rest of an Add.
const clockEvery = 64

// Add counts one occurrence of key and reports whether key is now among the top-K of the
// shard that counted it, which, every shard seeing a sample of the whole stream, stands for
// the top-K of the stream. Add reads the clock once per 64 calls of a shard, so an aging falls
// due at most that many Adds late (TopK reads the clock every time).
func (hk *HeavyKeeper) Add(key string) bool { return hk.add(key, 0, false) }

// add is Add; when known, now (unix nanoseconds) is the time, read by a caller that reads the
// clock anyway.
func (hk *HeavyKeeper) add(key string, now int64, known bool) bool {
	h := maphash.String(hk.seed, key)
	fp, h1 := uint32(h>>32), uint32(h)
	s := &hk.shards[rand.Uint32()&hk.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if hk.ageEvery > 0 {
		s.ops++
		if !known && s.ops%clockEvery == 0 {
			now, known = hk.clock.Now().UnixNano(), true
		}
		epoch := hk.epoch.Load()
		if known {
			epoch = hk.tick(now)
		}
		if s.epoch < epoch {
			hk.age(s, epoch)
		}
	}
	var est uint32
	for row := range hk.depth {
		b := &s.buckets[row*hk.width+index(h1, fp, row, hk.width)]
		switch {
		case b.count == 0:
			b.fp, b.count = fp, 1
		case b.fp == fp:
			if b.count < math.MaxUint32 {
				b.count++
			}
		case b.count < decayTableLen && uint32(s.rng.Uint64()) < hk.decay[b.count]:
			b.count--
			if b.count == 0 {
				b.fp, b.count = fp, 1
			}
		default:
			continue
		}
		if b.fp == fp {
			est = max(est, b.count)
		}
	}
	return s.offer(key, uint64(est), hk.k)
}

// index picks a key's bucket in row by double hashing; the multiply-shift maps it onto width.
func index(h1, fp uint32, row, width int) int {
	return int(uint64(h1+uint32(row)*(fp|1)) * uint64(width) >> 32)
}

// bucketOf returns key's fingerprint and its bucket's index in row.
func (hk *HeavyKeeper) bucketOf(key string, row int) (fp uint32, idx int) {
	h := maphash.String(hk.seed, key)
	fp = uint32(h >> 32)
	return fp, index(uint32(h), fp, row, hk.width)
}

// offer updates the heap with key's estimate and reports whether key is in it.
func (s *shard) offer(key string, est uint64, k int) bool {
	if i, ok := s.pos[key]; ok {
		if est > s.heap[i].Count {
			s.heap[i].Count = est
			s.down(i)
		}
		return true
	}
	switch {
	case est == 0:
		return false
	case len(s.heap) < k:
		s.heap = append(s.heap, Item{Key: key, Count: est})
		s.pos[key] = len(s.heap) - 1
		s.up(len(s.heap) - 1)
		return true
	case est > s.heap[0].Count:
		delete(s.pos, s.heap[0].Key)
		s.heap[0] = Item{Key: key, Count: est}
		s.pos[key] = 0
		s.down(0)
		return true
	}
	return false
}

func (s *shard) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.pos[s.heap[i].Key] = i
	s.pos[s.heap[j].Key] = j
}

func (s *shard) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].Count <= s.heap[i].Count {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *shard) down(i int) {
	for {
		l, small := 2*i+1, i
		if l < len(s.heap) && s.heap[l].Count < s.heap[small].Count {
			small = l
		}
		if r := l + 1; r < len(s.heap) && s.heap[r].Count < s.heap[small].Count {
			small = r
		}
		if small == i {
			return
		}
		s.swap(i, small)
		i = small
	}
}

// tick advances the aging epoch when now has passed the next aging time, and returns it.
func (hk *HeavyKeeper) tick(now int64) uint64 {
	if hk.ageEvery == 0 || now < hk.nextAge.Load() {
		return hk.epoch.Load()
	}
	hk.ageMu.Lock()
	defer hk.ageMu.Unlock()
	if next := hk.nextAge.Load(); now >= next {
		n := (now-next)/hk.ageEvery + 1
		hk.epoch.Add(uint64(n))
		hk.nextAge.Store(next + n*hk.ageEvery)
	}
	return hk.epoch.Load()
}

// age brings a locked shard to epoch: every count is multiplied by the factor once per
// aging it missed, and what reaches zero is dropped.
func (hk *HeavyKeeper) age(s *shard, epoch uint64) {
	f := math.Pow(hk.ageFactor, float64(min(epoch-s.epoch, 64)))
	s.epoch = epoch
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.count == 0 {
			continue
		}
		if b.count = uint32(float64(b.count) * f); b.count == 0 {
			b.fp = 0
		}
	}
	kept := s.heap[:0]
	for _, it := range s.heap {
		delete(s.pos, it.Key)
		if it.Count = uint64(float64(it.Count) * f); it.Count > 0 {
			kept = append(kept, it)
		}
	}
	clear(s.heap[len(kept):]) // drop the keys' strings
	s.heap = kept
	// Scaling by one factor keeps the order up to ties, so the heap property still holds;
	// only the positions of the survivors need recording.
	for i, it := range s.heap {
		s.pos[it.Key] = i
	}
}

// TopK returns the top-K keys, largest estimate first. The candidates are the keys in any
// shard's top-K; a candidate's count is the sum of every shard's estimate of it, read from the
// buckets, so a key near the boundary that is in some shards' top-K and not others is not
// undercounted.
func (hk *HeavyKeeper) TopK() []Item {
	epoch := hk.tick(hk.now())
	sum := make(map[string]uint64, hk.k*2)
	for i := range hk.shards {
		s := &hk.shards[i]
		s.mu.Lock()
		if s.epoch < epoch {
			hk.age(s, epoch)
		}
		for _, it := range s.heap {
			sum[it.Key] = 0
		}
		s.mu.Unlock()
	}
	for i := range hk.shards {
		s := &hk.shards[i]
		s.mu.Lock()
		if s.epoch < epoch {
			hk.age(s, epoch)
		}
		for key := range sum {
			c := hk.estimate(s, key)
			if j, ok := s.pos[key]; ok {
				c = max(c, s.heap[j].Count)
			}
			sum[key] += c
		}
		s.mu.Unlock()
	}
	out := make([]Item, 0, len(sum))
	for k, c := range sum {
		out = append(out, Item{Key: k, Count: c})
	}
	slices.SortFunc(out, byCount)
	return out[:min(len(out), hk.k)]
}

// byCount orders items largest count first, then by key.
func byCount(a, b Item) int {
	if c := cmp.Compare(b.Count, a.Count); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// estimate returns a locked shard's count of key: the largest count among its buckets that
// hold key's fingerprint.
func (hk *HeavyKeeper) estimate(s *shard, key string) uint64 {
	var est uint32
	for row := range hk.depth {
		fp, idx := hk.bucketOf(key, row)
		if b := s.buckets[row*hk.width+idx]; b.fp == fp {
			est = max(est, b.count)
		}
	}
	return uint64(est)
}

func (hk *HeavyKeeper) now() int64 {
	if hk.ageEvery == 0 {
		return 0
	}
	return hk.clock.Now().UnixNano()
}
