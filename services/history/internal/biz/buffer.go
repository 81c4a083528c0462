package biz

import (
	"cmp"
	"context"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Buffer holds views in memory, one per user and note with the latest time (last write
// wins), and writes them to a Store in batches: when the oldest pending view has waited
// FlushInterval on the buffer's clock, or when MaxPending views are pending. A burst of any
// size therefore costs the database one Upsert per flush, and repeated views of a note
// coalesce before they reach it.
//
// Memory is bounded: at MaxBuffered pending views (a database that does not keep up) a view
// of a new user and note is dropped, counted in Stats.Dropped and answered with
// ErrBufferFull; a repeated view of a pending note still updates it, taking no memory. Its
// goroutine is stopped by Close.
type Buffer struct {
	store       Store
	clock       clock.Clock
	interval    time.Duration
	check       time.Duration
	maxPending  int64
	maxBuffered int64
	keep        int
	timeout     time.Duration
	logger      *slog.Logger

	seed   maphash.Seed
	shards []shard
	total  atomic.Int64 // pending views across shards
	// since is the clock's UnixNano when the oldest pending view arrived; 0 when none.
	since atomic.Int64

	// flushMu serializes flushes and clears: a Clear never runs while a flush holds views
	// it took out of the shards, so no such view can be written after the Clear.
	flushMu sync.Mutex
	// inflightMu guards inflight, the views a flush has taken out of the shards and not yet
	// written. A flush moves views from the shards to inflight, and drops inflight once the
	// store has them, holding it for writing; Snapshot holds it for reading across both, so
	// a reader finds every view in a shard, in inflight or (once dropped) in the store.
	inflightMu sync.RWMutex
	inflight   map[int64]map[int64]int64

	dropped, flushes, failed, written atomic.Uint64

	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	closeEr error
}

type shard struct {
	mu    sync.Mutex
	users map[int64]map[int64]int64 // user → note → unix ms
	_     [48]byte                  // keeps neighbouring shards' locks off one cache line
}

const numShards = 32

// BufferOption configures NewBuffer.
type BufferOption func(*Buffer)

// FlushInterval is how long a view may wait in memory before it is written. Default 1s.
func FlushInterval(d time.Duration) BufferOption {
	return func(b *Buffer) {
		if d > 0 {
			b.interval = d
		}
	}
}

// CheckEvery is how often, in real time, the buffer asks its clock whether the oldest view
// is due. Default a quarter of FlushInterval.
func CheckEvery(d time.Duration) BufferOption {
	return func(b *Buffer) {
		if d > 0 {
			b.check = d
		}
	}
}

// MaxPending is the number of pending views (distinct user and note pairs) that starts a
// flush before the interval is up. Default 2000.
func MaxPending(n int) BufferOption {
	return func(b *Buffer) {
		if n > 0 {
			b.maxPending = int64(n)
		}
	}
}

// MaxBuffered bounds the pending views; past it new views are dropped. Default 100,000,
// and never below MaxPending.
func MaxBuffered(n int) BufferOption {
	return func(b *Buffer) {
		if n > 0 {
			b.maxBuffered = int64(n)
		}
	}
}

// Keep is how many of a user's newest entries the store keeps; each flush trims the users
// it writes. Default 500.
func Keep(n int) BufferOption {
	return func(b *Buffer) {
		if n > 0 {
			b.keep = n
		}
	}
}

// WithClock sets the clock that ages pending views. Default the wall clock.
func WithClock(c clock.Clock) BufferOption { return func(b *Buffer) { b.clock = c } }

// FlushTimeout bounds one background flush, and the final one in Close. Default 5s.
func FlushTimeout(d time.Duration) BufferOption {
	return func(b *Buffer) {
		if d > 0 {
			b.timeout = d
		}
	}
}

// WithLogger sets where failed background flushes are reported (their views stay pending
// and are retried). Default slog.Default().
func WithLogger(l *slog.Logger) BufferOption { return func(b *Buffer) { b.logger = l } }

// NewBuffer returns a buffer writing to store and starts its goroutine.
func NewBuffer(store Store, opts ...BufferOption) *Buffer {
	b := &Buffer{
		store:       store,
		clock:       clock.Real{},
		interval:    time.Second,
		maxPending:  2000,
		maxBuffered: 100_000,
		keep:        500,
		timeout:     5 * time.Second,
		logger:      slog.Default(),
		seed:        maphash.MakeSeed(),
		shards:      make([]shard, numShards),
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	if b.check == 0 {
		b.check = max(b.interval/4, time.Millisecond)
	}
	b.maxBuffered = max(b.maxBuffered, b.maxPending)
	for i := range b.shards {
		b.shards[i].users = map[int64]map[int64]int64{}
	}
	go b.run()
	return b
}

func (b *Buffer) shard(user int64) *shard {
	return &b.shards[maphash.Comparable(b.seed, user)%numShards]
}

// Add buffers user's view of note at (unix ms); an earlier time than the pending one for
// the same note changes nothing. It returns ErrBufferFull when the view was dropped.
func (b *Buffer) Add(user, note, at int64) error {
	s := b.shard(user)
	s.mu.Lock()
	notes := s.users[user]
	if old, ok := notes[note]; ok {
		if at > old {
			notes[note] = at
		}
		s.mu.Unlock()
		return nil
	}
	if b.total.Load() >= b.maxBuffered {
		s.mu.Unlock()
		b.dropped.Add(1)
		b.askFlush()
		return ErrBufferFull
	}
	if notes == nil {
		notes = make(map[int64]int64, 4)
		s.users[user] = notes
	}
	notes[note] = at
	n := b.total.Add(1)
	s.mu.Unlock()
	if b.since.Load() == 0 {
		b.since.CompareAndSwap(0, b.clock.Now().UnixNano())
	}
	if n >= b.maxPending {
		b.askFlush()
	}
	return nil
}

func (b *Buffer) askFlush() {
	select {
	case b.kick <- struct{}{}:
	default: // a flush is already asked for
	}
}

// Snapshot returns user's pending views, note → unix ms, including those a flush is
// writing.
func (b *Buffer) Snapshot(user int64) map[int64]int64 {
	b.inflightMu.RLock()
	defer b.inflightMu.RUnlock()
	s := b.shard(user)
	s.mu.Lock()
	out := make(map[int64]int64, len(s.users[user])+len(b.inflight[user]))
	for note, at := range s.users[user] {
		out[note] = at
	}
	s.mu.Unlock()
	for note, at := range b.inflight[user] {
		if at > out[note] {
			out[note] = at
		}
	}
	return out
}

// Clear deletes user's history in the store, recording at as the time of the clear, then
// drops user's pending views made at or before at. It waits for a flush in progress, so a
// view taken out of the buffer before the Clear is written before it and deleted by it.
func (b *Buffer) Clear(ctx context.Context, user, at int64) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	if err := b.store.Clear(ctx, user, at); err != nil {
		return err
	}
	s := b.shard(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	notes := s.users[user]
	for note, t := range notes {
		if t <= at {
			delete(notes, note)
			b.total.Add(-1)
		}
	}
	if len(notes) == 0 {
		delete(s.users, user)
	}
	return nil
}

// Flush writes every pending view to the store in one Upsert. On failure the views go back
// to the buffer, merged with any added meanwhile, and the error is returned.
func (b *Buffer) Flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	batch, since := b.take()
	if len(batch) == 0 {
		return nil
	}
	views := make([]View, 0, 64)
	for user, notes := range batch {
		for note, at := range notes {
			views = append(views, View{UserID: user, NoteID: note, At: at})
		}
	}
	// Rows in key order, so flushes from several processes lock them in the same order.
	slices.SortFunc(views, func(a, c View) int {
		return cmp.Or(cmp.Compare(a.UserID, c.UserID), cmp.Compare(a.NoteID, c.NoteID))
	})
	err := b.store.Upsert(ctx, views, b.keep)
	b.inflightMu.Lock()
	defer b.inflightMu.Unlock()
	b.inflight = nil
	b.flushes.Add(1)
	if err != nil {
		b.failed.Add(1)
		b.putBack(batch, since)
		return err
	}
	b.written.Add(uint64(len(views)))
	return nil
}

// take moves every pending view into inflight and returns them with the time the oldest
// arrived.
func (b *Buffer) take() (map[int64]map[int64]int64, int64) {
	b.inflightMu.Lock()
	defer b.inflightMu.Unlock()
	since := b.since.Swap(0)
	batch := map[int64]map[int64]int64{}
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		if len(s.users) > 0 {
			var k int64
			for user, notes := range s.users {
				batch[user] = notes
				k += int64(len(notes))
			}
			s.users = make(map[int64]map[int64]int64, len(s.users))
			// Under the shard's lock: an Add that finds the shard emptied also finds the
			// total without its views, instead of a full buffer that is not.
			b.total.Add(-k)
		}
		s.mu.Unlock()
	}
	b.inflight = batch
	return batch, since
}

// putBack returns a failed batch to the shards, keeping the later time per note. The caller
// holds inflightMu.
func (b *Buffer) putBack(batch map[int64]map[int64]int64, since int64) {
	for user, notes := range batch {
		s := b.shard(user)
		s.mu.Lock()
		cur := s.users[user]
		if cur == nil {
			cur = make(map[int64]int64, len(notes))
			s.users[user] = cur
		}
		for note, at := range notes {
			old, ok := cur[note]
			if !ok {
				b.total.Add(1)
			}
			if at > old {
				cur[note] = at
			}
		}
		s.mu.Unlock()
	}
	// The batch is older than anything added since it was taken.
	if since != 0 {
		b.since.Store(since)
	}
}

// BufferStats counts what a buffer did since it started.
type BufferStats struct {
	Pending int64  // views waiting in memory
	Dropped uint64 // views refused because the buffer was full
	Flushes uint64 // flushes that had something to write
	Failed  uint64 // flushes whose write failed (their views were kept)
	Written uint64 // views written
}

// Stats returns the buffer's counters.
func (b *Buffer) Stats() BufferStats {
	return BufferStats{Pending: b.total.Load(), Dropped: b.dropped.Load(), Flushes: b.flushes.Load(),
		Failed: b.failed.Load(), Written: b.written.Load()}
}

// Close stops the goroutine and flushes what is pending. Views added after Close stay in
// memory until someone calls Flush: close the buffer after the server stops taking calls.
func (b *Buffer) Close() error {
	b.once.Do(func() {
		close(b.done)
		<-b.stopped
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		defer cancel()
		b.closeEr = b.Flush(ctx)
	})
	return b.closeEr
}

func (b *Buffer) run() {
	defer close(b.stopped)
	t := time.NewTicker(b.check)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.tick()
		case <-b.kick:
			b.flushInBackground()
		}
	}
}

// tick flushes when the oldest pending view has waited FlushInterval by the buffer's clock.
// since can be older than the oldest pending view (a view added while a flush was taking
// the shards sets it and may leave with that flush); that only makes a flush come early.
func (b *Buffer) tick() {
	since := b.since.Load()
	if since == 0 || b.total.Load() == 0 {
		return
	}
	if !b.clock.Now().Before(time.Unix(0, since).Add(b.interval)) {
		b.flushInBackground()
	}
}

func (b *Buffer) flushInBackground() {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		b.logger.Warn("history: flush failed; views kept for the next one", "err", err)
	}
}
