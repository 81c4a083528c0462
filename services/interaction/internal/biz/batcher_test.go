package biz

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is a CounterStore in memory that counts its writes and can be made to fail.
type memStore struct {
	mu     sync.Mutex
	rows   map[int64]Counts
	writes int
	reads  int
	fail   error
	wrote  chan struct{} // receives after each successful write, when not nil
}

func newMemStore() *memStore { return &memStore{rows: map[int64]Counts{}} }

func (s *memStore) AddCounts(_ context.Context, deltas map[int64]Counts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.writes++
	for t, d := range deltas {
		c := s.rows[t]
		c.Add(d)
		s.rows[t] = c
	}
	if s.wrote != nil {
		s.wrote <- struct{}{}
	}
	return nil
}

func (s *memStore) Counts(_ context.Context, targets []int64) (map[int64]Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	out := map[int64]Counts{}
	for _, t := range targets {
		if c, ok := s.rows[t]; ok {
			out[t] = c
		}
	}
	return out, nil
}

func (s *memStore) snapshot() (map[int64]Counts, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rows), s.writes
}

func TestBatcherFlushesOnTheClock(t *testing.T) {
	store := newMemStore()
	fake := clock.NewFake(time.Time{})
	b := NewBatcher(store, WithClock(fake), FlushInterval(time.Second))
	defer b.Close()

	b.tick() // nothing pending: nothing to do
	b.Add(7, Counts{Likes: 1})
	fake.Advance(999 * time.Millisecond)
	b.Add(7, Counts{Views: 2})
	b.tick()
	if _, w := store.snapshot(); w != 0 {
		t.Fatalf("after 999ms: %d writes; want 0 (the oldest delta is not due)", w)
	}
	fake.Advance(time.Millisecond)
	b.tick()
	rows, w := store.snapshot()
	if w != 1 || rows[7] != (Counts{Likes: 1, Views: 2}) {
		t.Fatalf("after 1s: %d writes, rows %v; want 1 write of {1 0 0 2}", w, rows)
	}
	// The next delta ages from when it arrived, not from the last flush.
	fake.Advance(10 * time.Second)
	b.Add(7, Counts{Views: 1})
	b.tick()
	if _, w := store.snapshot(); w != 1 {
		t.Fatalf("fresh delta flushed after %d writes; want it to wait an interval", w)
	}
}

func TestBatcherCountsIncludePending(t *testing.T) {
	store := newMemStore()
	b := NewBatcher(store, WithClock(clock.NewFake(time.Time{})))
	defer b.Close()
	ctx := context.Background()
	b.Add(1, Counts{Likes: 1})
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.Add(1, Counts{Likes: 1, Comments: 1})
	b.Add(2, Counts{Views: 5})
	got, err := b.Counts(ctx, []int64{1, 2, 3})
	want := map[int64]Counts{1: {Likes: 2, Comments: 1}, 2: {Views: 5}, 3: {}}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("Counts = %v, %v; want %v", got, err, want)
	}
}

func TestBatcherKeepsDeltasWhenTheWriteFails(t *testing.T) {
	store := newMemStore()
	store.fail = errors.New("database down")
	b := NewBatcher(store, WithClock(clock.NewFake(time.Time{})))
	defer b.Close()
	ctx := context.Background()
	b.Add(1, Counts{Likes: 1})
	if err := b.Flush(ctx); err == nil {
		t.Fatal("Flush with the store down = nil; want its error")
	}
	b.Add(1, Counts{Likes: 1})
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, w := store.snapshot(); w != 1 || rows[1].Likes != 2 {
		t.Fatalf("after recovery: %d writes, rows %v; want one write of 2 likes", w, rows)
	}
}

func TestBatcherSkipsCancelledDeltas(t *testing.T) {
	store := newMemStore()
	b := NewBatcher(store, WithClock(clock.NewFake(time.Time{})))
	defer b.Close()
	b.Add(1, Counts{Likes: 1})
	b.Add(1, Counts{Likes: -1})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, w := store.snapshot(); w != 0 {
		t.Fatalf("a like and an unlike cost %d writes; want 0", w)
	}
}

func TestBatcherFlushesWhenFull(t *testing.T) {
	store := newMemStore()
	store.wrote = make(chan struct{}, 1)
	// The clock never moves, so only MaxPending can start the flush.
	b := NewBatcher(store, WithClock(clock.NewFake(time.Time{})), MaxPending(3))
	defer b.Close()
	b.Add(1, Counts{Views: 1})
	b.Add(2, Counts{Views: 1})
	b.Add(1, Counts{Views: 1}) // coalesces: still 2 targets
	select {
	case <-store.wrote:
		t.Fatal("flushed with 2 of 3 targets pending")
	default:
	}
	b.Add(3, Counts{Views: 1})
	select {
	case <-store.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no flush 10s after MaxPending targets were pending")
	}
	if rows, _ := store.snapshot(); rows[1].Views != 2 || rows[3].Views != 1 {
		t.Fatalf("rows = %v", rows)
	}
}

func TestBatcherCloseFlushes(t *testing.T) {
	store := newMemStore()
	b := NewBatcher(store, WithClock(clock.NewFake(time.Time{})))
	b.Add(9, Counts{Collects: 1})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	if rows, w := store.snapshot(); w != 1 || rows[9].Collects != 1 {
		t.Fatalf("after Close: %d writes, rows %v; want the pending collect written", w, rows)
	}
}

// gatedStore holds each write between entered and gate, outside its lock, so a test can
// read while a flush is half way.
type gatedStore struct {
	*memStore
	entered, gate chan struct{}
}

func (s *gatedStore) AddCounts(ctx context.Context, deltas map[int64]Counts) error {
	s.entered <- struct{}{}
	<-s.gate
	return s.memStore.AddCounts(ctx, deltas)
}

// TestBatcherCountsDuringFlush reads while a flush has taken the deltas out of the buffer
// but the store does not have them yet: the read must wait and then see each delta once.
func TestBatcherCountsDuringFlush(t *testing.T) {
	store := &gatedStore{memStore: newMemStore(), entered: make(chan struct{}), gate: make(chan struct{})}
	b := NewBatcher(store, WithClock(clock.NewFake(time.Time{})))
	defer b.Close()
	var open sync.Once
	release := func() { open.Do(func() { close(store.gate) }) }
	defer release() // before Close, which would wait for the held flush
	ctx := context.Background()
	b.Add(1, Counts{Likes: 1})
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(ctx) }()
	<-store.entered
	read := make(chan int64, 1)
	go func() {
		got, err := b.Counts(ctx, []int64{1})
		if err != nil {
			t.Error(err)
		}
		read <- got[1].Likes
	}()
	// A read that answers now, mid-flush, can only have missed the delta; a correct one
	// waits whatever the timing, so this wait only gives a wrong one the chance to show.
	select {
	case got := <-read:
		t.Fatalf("Counts mid-flush returned %d likes without waiting for the flush", got)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := <-read; got != 1 {
		t.Fatalf("Counts after the flush = %d likes; want 1", got)
	}
}

// TestBatcherCachesStoredCounts: repeated reads of the same targets reuse what the store
// said until StoredTTL passes; a flush drops what it wrote, so a count never goes back.
func TestBatcherCachesStoredCounts(t *testing.T) {
	store := newMemStore()
	fake := clock.NewFake(time.Unix(1e9, 0))
	b := NewBatcher(store, WithClock(fake), StoredTTL(time.Second))
	defer b.Close()
	ctx := context.Background()
	read := func() int64 {
		t.Helper()
		c, err := b.Counts(ctx, []int64{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		return c[1].Likes
	}
	b.Add(1, Counts{Likes: 1})
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := read(); got != 1 {
			t.Fatalf("likes = %d; want 1", got)
		}
	}
	if store.reads != 1 {
		t.Fatalf("5 reads of the same targets cost %d store reads; want 1", store.reads)
	}
	// A pending like shows at once, on top of the cached stored value; after its flush the
	// cached entry is gone, so the count does not fall back to the old stored value.
	b.Add(1, Counts{Likes: 1})
	if got := read(); got != 2 {
		t.Fatalf("likes with one pending = %d; want 2", got)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != 2 {
		t.Fatalf("likes after the flush = %d; want 2 (a stale cached 1 would show here)", got)
	}
	// Another instance's write shows once the TTL passes.
	store.mu.Lock()
	c := store.rows[1]
	c.Likes += 10
	store.rows[1] = c
	store.mu.Unlock()
	if got := read(); got != 2 {
		t.Fatalf("likes within the TTL = %d; want the cached 2", got)
	}
	fake.Advance(time.Second)
	if got := read(); got != 12 {
		t.Fatalf("likes after the TTL = %d; want 12", got)
	}
}
