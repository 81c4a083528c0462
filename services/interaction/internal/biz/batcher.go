package biz

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Batcher buffers counter deltas in memory and writes them back to a CounterStore in
// batches: one AddCounts per flush, holding one coalesced delta per target, so a burst of
// any size costs the database at most one write per flush interval (plus the flushes forced
// by MaxPending). Reads through Counts add the pending deltas, so a change is visible at
// once. Its goroutine is stopped by Close.
type Batcher struct {
	store      CounterStore
	clock      clock.Clock
	interval   time.Duration
	maxPending int
	timeout    time.Duration
	logger     *slog.Logger

	// flushing is held for writing by a flush from taking the deltas out of pending until
	// the store has them (or has failed and they are back), and for reading by Counts across
	// its store read and its pending read; so a reader never sees a delta twice or not at
	// all. It also serializes flushes.
	flushing sync.RWMutex

	mu      sync.Mutex
	pending map[int64]Counts
	oldest  time.Time // when the oldest pending delta was added
	closed  bool

	// stored caches what the store last said of a target's counters, for storedTTL: a page
	// of cards asks for the same popular notes again and again. A flush drops the entries
	// of what it wrote (under flushing, so no read can store an older value after it).
	cmu       sync.Mutex
	stored    map[int64]storedCounts
	storedTTL time.Duration

	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	closeEr error
}

type storedCounts struct {
	c     Counts
	until time.Time
}

// maxStored bounds the stored-counts cache; past it the cache starts empty again.
const maxStored = 100_000

// StoredTTL is how long counters read from the store are reused by Counts (pending deltas
// are always added on top, so this instance's changes show at once). Counters written by
// another instance show within it. 0 turns the cache off. Default 1s.
func StoredTTL(d time.Duration) BatcherOption { return func(b *Batcher) { b.storedTTL = max(d, 0) } }

// BatcherOption configures NewBatcher.
type BatcherOption func(*Batcher)

// FlushInterval is how long a delta may wait in memory before it is written: the batcher
// flushes when the oldest pending delta is this old, checking every quarter interval.
// Default 100ms.
func FlushInterval(d time.Duration) BatcherOption {
	return func(b *Batcher) {
		if d > 0 {
			b.interval = d
		}
	}
}

// MaxPending is the number of distinct targets with pending deltas that forces a flush
// before the interval is up, bounding both memory and the size of one write. Repeated
// deltas to one target coalesce and do not count. Default 1000.
func MaxPending(n int) BatcherOption {
	return func(b *Batcher) {
		if n > 0 {
			b.maxPending = n
		}
	}
}

// WithClock sets the clock that ages pending deltas. Default the wall clock.
func WithClock(c clock.Clock) BatcherOption { return func(b *Batcher) { b.clock = c } }

// FlushTimeout bounds one background flush, and the final one in Close. Default 5s.
func FlushTimeout(d time.Duration) BatcherOption {
	return func(b *Batcher) {
		if d > 0 {
			b.timeout = d
		}
	}
}

// WithLogger sets where failed background flushes are reported (their deltas stay pending
// and are retried). Default slog.Default().
func WithLogger(l *slog.Logger) BatcherOption { return func(b *Batcher) { b.logger = l } }

// NewBatcher returns a batcher writing to store and starts its goroutine.
func NewBatcher(store CounterStore, opts ...BatcherOption) *Batcher {
	b := &Batcher{
		store:      store,
		clock:      clock.Real{},
		interval:   100 * time.Millisecond,
		maxPending: 1000,
		storedTTL:  time.Second,
		timeout:    5 * time.Second,
		logger:     slog.Default(),
		pending:    map[int64]Counts{},
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	go b.run()
	return b
}

// Add buffers a change to target's counters.
func (b *Batcher) Add(target int64, d Counts) {
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.oldest = b.clock.Now()
	}
	c := b.pending[target]
	c.Add(d)
	b.pending[target] = c
	full := len(b.pending) >= b.maxPending && !b.closed
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default: // a flush is already asked for
		}
	}
}

// Counts returns the counters of targets, stored plus pending; zero for targets with none.
func (b *Batcher) Counts(ctx context.Context, targets []int64) (map[int64]Counts, error) {
	out := make(map[int64]Counts, len(targets))
	if len(targets) == 0 {
		return out, nil
	}
	b.flushing.RLock()
	defer b.flushing.RUnlock()
	stored, err := b.storedCounts(ctx, targets)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range targets {
		c := stored[t]
		c.Add(b.pending[t])
		out[t] = c
	}
	return out, nil
}

// storedCounts reads the store's counters of targets, through the cache. Callers hold
// flushing for reading.
func (b *Batcher) storedCounts(ctx context.Context, targets []int64) (map[int64]Counts, error) {
	if b.storedTTL <= 0 {
		return b.store.Counts(ctx, targets)
	}
	now := b.clock.Now()
	out := make(map[int64]Counts, len(targets))
	var miss []int64
	b.cmu.Lock()
	for _, t := range targets {
		if e, ok := b.stored[t]; ok && now.Before(e.until) {
			out[t] = e.c
		} else {
			miss = append(miss, t)
		}
	}
	b.cmu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	got, err := b.store.Counts(ctx, miss)
	if err != nil {
		return nil, err
	}
	b.cmu.Lock()
	if b.stored == nil || len(b.stored) > maxStored {
		b.stored = make(map[int64]storedCounts)
	}
	for _, t := range miss {
		out[t] = got[t]
		b.stored[t] = storedCounts{c: got[t], until: now.Add(b.storedTTL)}
	}
	b.cmu.Unlock()
	return out, nil
}

// Flush writes every pending delta to the store in one AddCounts call. On failure the deltas
// go back to pending, merged with any added meanwhile, and the error is returned.
func (b *Batcher) Flush(ctx context.Context) error {
	b.flushing.Lock()
	defer b.flushing.Unlock()
	b.mu.Lock()
	batch := b.pending
	if len(batch) == 0 {
		b.mu.Unlock()
		return nil
	}
	oldest := b.oldest
	b.pending = make(map[int64]Counts, len(batch))
	b.mu.Unlock()

	for t, c := range batch {
		if c.IsZero() { // a like and an unlike cancelled out: nothing to write
			delete(batch, t)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	err := b.store.AddCounts(ctx, batch)
	if err == nil {
		b.cmu.Lock()
		for t := range batch {
			delete(b.stored, t)
		}
		b.cmu.Unlock()
	}
	if err != nil {
		b.mu.Lock()
		if len(b.pending) == 0 || oldest.Before(b.oldest) {
			b.oldest = oldest
		}
		for t, c := range b.pending {
			c.Add(batch[t])
			batch[t] = c
		}
		b.pending = batch
		b.mu.Unlock()
	}
	return err
}

// Close stops the goroutine and flushes what is pending. Deltas added after Close stay in
// memory until someone calls Flush: close the batcher after the server stops taking calls.
func (b *Batcher) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.done)
		<-b.stopped
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		defer cancel()
		b.closeEr = b.Flush(ctx)
	})
	return b.closeEr
}

func (b *Batcher) run() {
	defer close(b.stopped)
	t := time.NewTicker(max(b.interval/4, time.Millisecond))
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

// tick flushes when the oldest pending delta has waited FlushInterval by the batcher's clock.
func (b *Batcher) tick() {
	b.mu.Lock()
	due := len(b.pending) > 0 && !b.clock.Now().Before(b.oldest.Add(b.interval))
	b.mu.Unlock()
	if due {
		b.flushInBackground()
	}
}

func (b *Batcher) flushInBackground() {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		b.logger.Warn("interaction: counter flush failed; deltas kept for the next one", "err", err)
	}
}
