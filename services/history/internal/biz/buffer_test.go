package biz

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type key struct{ user, note int64 }

// memStore is a Store in memory that counts its writes and can be made to fail.
type memStore struct {
	mu      sync.Mutex
	rows    map[key]int64
	clears  map[int64]int64
	writes  int
	fail    error
	wrote   chan struct{} // receives after each successful write, when not nil
	entered chan struct{} // when not nil, Upsert reports here, then waits for gate
	gate    chan struct{}
}

func newMemStore() *memStore { return &memStore{rows: map[key]int64{}, clears: map[int64]int64{}} }

func (s *memStore) Upsert(_ context.Context, views []View, keep int) error {
	if s.entered != nil {
		s.entered <- struct{}{}
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.writes++
	for _, v := range views {
		k := key{v.UserID, v.NoteID}
		if v.At > s.rows[k] {
			s.rows[k] = v.At
		}
	}
	for _, v := range views {
		var mine []Entry
		for k, at := range s.rows {
			if k.user == v.UserID {
				mine = append(mine, Entry{NoteID: k.note, At: at})
			}
		}
		sortNewest(mine)
		for _, e := range mine[min(keep, len(mine)):] {
			delete(s.rows, key{v.UserID, e.NoteID})
		}
	}
	if s.wrote != nil {
		s.wrote <- struct{}{}
	}
	return nil
}

func sortNewest(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Or(cmp.Compare(b.At, a.At), cmp.Compare(b.NoteID, a.NoteID)) })
}

func (s *memStore) List(_ context.Context, user int64, p Pos, limit int) ([]Entry, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for k, at := range s.rows {
		if e := (Entry{NoteID: k.note, At: at}); k.user == user && at > s.clears[user] && p.Before(e) {
			out = append(out, e)
		}
	}
	sortNewest(out)
	return out[:min(limit, len(out))], s.clears[user], nil
}

func (s *memStore) Clear(_ context.Context, user, at int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.rows {
		if k.user == user {
			delete(s.rows, k)
		}
	}
	s.clears[user] = max(s.clears[user], at)
	return nil
}

func (s *memStore) snapshot() (map[key]int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rows), s.writes
}

func TestBufferLastWriteWins(t *testing.T) {
	store := newMemStore()
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})))
	defer b.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Add(1, 10, 100))
	must(b.Add(1, 10, 300))
	must(b.Add(1, 10, 200)) // late and older: ignored
	must(b.Add(1, 11, 50))
	must(b.Add(2, 10, 70))
	if got := b.Snapshot(1); !maps.Equal(got, map[int64]int64{10: 300, 11: 50}) {
		t.Fatalf("Snapshot(1) = %v; want {10:300 11:50}", got)
	}
	if p := b.Stats().Pending; p != 3 {
		t.Fatalf("Pending = %d; want 3 (repeats coalesce)", p)
	}
	must(b.Flush(context.Background()))
	must(b.Add(1, 10, 250)) // older than what is stored: the store keeps 300
	must(b.Flush(context.Background()))
	rows, writes := store.snapshot()
	want := map[key]int64{{1, 10}: 300, {1, 11}: 50, {2, 10}: 70}
	if writes != 2 || !maps.Equal(rows, want) {
		t.Fatalf("after flushes: %d writes, rows %v; want 2 and %v", writes, rows, want)
	}
}

func TestBufferFlushesOnTheClock(t *testing.T) {
	store := newMemStore()
	fake := clock.NewFake(time.Time{})
	b := NewBuffer(store, WithClock(fake), FlushInterval(time.Second), CheckEvery(time.Hour))
	defer b.Close()

	b.tick() // nothing pending: nothing to do
	if err := b.Add(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(999 * time.Millisecond)
	if err := b.Add(1, 2, 2); err != nil {
		t.Fatal(err)
	}
	b.tick()
	if _, w := store.snapshot(); w != 0 {
		t.Fatalf("after 999ms: %d writes; want 0 (the oldest view is not due)", w)
	}
	fake.Advance(time.Millisecond)
	b.tick()
	if rows, w := store.snapshot(); w != 1 || len(rows) != 2 {
		t.Fatalf("after 1s: %d writes, rows %v; want 1 write of 2 views", w, rows)
	}
	// The next view ages from when it arrived, not from the last flush.
	fake.Advance(10 * time.Second)
	if err := b.Add(1, 3, 3); err != nil {
		t.Fatal(err)
	}
	b.tick()
	if _, w := store.snapshot(); w != 1 {
		t.Fatalf("fresh view flushed after %d writes; want it to wait an interval", w)
	}
}

// TestBufferFlushLoopFollowsTheClock runs the background loop, checking often in real time,
// and shows that only the fake clock decides when a view is due.
func TestBufferFlushLoopFollowsTheClock(t *testing.T) {
	store := newMemStore()
	store.wrote = make(chan struct{}, 1)
	fake := clock.NewFake(time.Time{})
	b := NewBuffer(store, WithClock(fake), FlushInterval(time.Minute), CheckEvery(time.Millisecond))
	defer b.Close()
	if err := b.Add(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(59 * time.Second)
	// The loop checks every millisecond: many checks run in this wait, none may flush.
	select {
	case <-store.wrote:
		t.Fatal("flushed 59s (fake) after the view; want at 60s")
	case <-time.After(30 * time.Millisecond):
	}
	fake.Advance(time.Second)
	select {
	case <-store.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no flush 10s (real) after the fake clock reached the interval")
	}
	if rows, _ := store.snapshot(); rows[key{1, 1}] != 1 {
		t.Fatalf("rows = %v", rows)
	}
}

func TestBufferFlushesWhenMaxPending(t *testing.T) {
	store := newMemStore()
	store.wrote = make(chan struct{}, 1)
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})), MaxPending(3), CheckEvery(time.Hour))
	defer b.Close()
	_ = b.Add(1, 1, 1)
	_ = b.Add(1, 2, 1)
	_ = b.Add(1, 1, 2) // coalesces: still 2 pending
	select {
	case <-store.wrote:
		t.Fatal("flushed with 2 of 3 views pending")
	default:
	}
	_ = b.Add(2, 1, 1)
	select {
	case <-store.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no flush 10s after MaxPending views were pending")
	}
	if rows, _ := store.snapshot(); len(rows) != 3 || rows[key{1, 1}] != 2 {
		t.Fatalf("rows = %v", rows)
	}
}

func TestBufferDropsWhenFull(t *testing.T) {
	store := newMemStore()
	store.fail = errors.New("database down")
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})), MaxPending(2), MaxBuffered(3), CheckEvery(time.Hour),
		WithLogger(slog.New(slog.DiscardHandler)))
	defer func() {
		store.mu.Lock()
		store.fail = nil
		store.mu.Unlock()
		b.Close()
	}()
	// Hold off the background flushes the Adds ask for: one taking the batch in flight
	// would empty the buffer under the assertions below.
	b.flushMu.Lock()
	release := sync.OnceFunc(b.flushMu.Unlock)
	defer release() // before Close, which waits for the flusher
	for n := range int64(3) {
		if err := b.Add(1, n+1, 1); err != nil {
			t.Fatalf("Add %d = %v", n, err)
		}
	}
	err := b.Add(1, 4, 1)
	if !errors.Is(err, ErrBufferFull) || errs.Reason(err) != "HISTORY_BUFFER_FULL" {
		t.Fatalf("Add past MaxBuffered = %v; want HISTORY_BUFFER_FULL", err)
	}
	if err := b.Add(1, 2, 9); err != nil { // a pending note still moves forward
		t.Fatalf("Add of a pending note when full = %v; want nil", err)
	}
	s := b.Stats()
	release()
	if s.Dropped != 1 || s.Pending != 3 {
		t.Fatalf("Stats = %+v; want 1 dropped, 3 pending", s)
	}
	if err := b.Flush(context.Background()); err == nil {
		t.Fatal("Flush with the store down = nil; want its error")
	}
	if got := b.Snapshot(1); !maps.Equal(got, map[int64]int64{1: 1, 2: 9, 3: 1}) {
		t.Fatalf("after a failed flush Snapshot = %v; want the views kept", got)
	}
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows, w := store.snapshot(); w != 1 || len(rows) != 3 || rows[key{1, 2}] != 9 {
		t.Fatalf("after recovery: %d writes, rows %v", w, rows)
	}
	// Reaching MaxPending and dropping both ask for background flushes, which may have
	// failed too: at least the one above did.
	if s := b.Stats(); s.Pending != 0 || s.Failed < 1 || s.Written != 3 {
		t.Fatalf("Stats = %+v; want 0 pending, a failed flush, 3 written", s)
	}
}

func TestBufferCloseFlushes(t *testing.T) {
	store := newMemStore()
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})))
	_ = b.Add(9, 9, 9)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	if rows, w := store.snapshot(); w != 1 || rows[key{9, 9}] != 9 {
		t.Fatalf("after Close: %d writes, rows %v", w, rows)
	}
}

// gate makes store hold its next Upserts until release is called.
func gate(store *memStore) (release func()) {
	store.entered, store.gate = make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func() { once.Do(func() { close(store.gate) }) }
}

// TestSnapshotDuringFlush reads while a flush has taken the views out of the shards but the
// store does not have them yet: the views must still be seen.
func TestSnapshotDuringFlush(t *testing.T) {
	store := newMemStore()
	release := gate(store)
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})), CheckEvery(time.Hour))
	defer b.Close()
	defer release()
	_ = b.Add(1, 5, 50)
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(context.Background()) }()
	<-store.entered
	if got := b.Snapshot(1); got[5] != 50 {
		t.Fatalf("Snapshot mid-flush = %v; want note 5 at 50", got)
	}
	release()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := b.Snapshot(1); len(got) != 0 {
		t.Fatalf("Snapshot after flush = %v; want empty (all stored)", got)
	}
}

// TestClearWaitsForFlush clears a user while a flush holding that user's views is half way:
// the Clear must wait, so the flush cannot write the views after it.
func TestClearWaitsForFlush(t *testing.T) {
	store := newMemStore()
	release := gate(store)
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})), CheckEvery(time.Hour))
	defer b.Close()
	defer release()
	_ = b.Add(1, 5, 50)
	_ = b.Add(2, 5, 50)
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(context.Background()) }()
	<-store.entered
	cleared := make(chan error, 1)
	go func() { cleared <- b.Clear(context.Background(), 1, 60) }()
	// A Clear that returns now ran while the flush holds user 1's view; a correct one waits
	// whatever the timing, so this wait only gives a wrong one the chance to show.
	select {
	case err := <-cleared:
		t.Fatalf("Clear returned %v while a flush held the user's views", err)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := <-cleared; err != nil {
		t.Fatal(err)
	}
	rows, _ := store.snapshot()
	if _, ok := rows[key{1, 5}]; ok || rows[key{2, 5}] != 50 {
		t.Fatalf("rows = %v; want user 1 cleared and user 2 kept", rows)
	}
}

func TestClearDropsBufferedViews(t *testing.T) {
	store := newMemStore()
	b := NewBuffer(store, WithClock(clock.NewFake(time.Time{})), CheckEvery(time.Hour))
	defer b.Close()
	_ = b.Add(1, 1, 10)
	_ = b.Add(1, 2, 20)
	_ = b.Add(1, 3, 30) // after the clear below
	_ = b.Add(2, 1, 10)
	if err := b.Clear(context.Background(), 1, 20); err != nil {
		t.Fatal(err)
	}
	if got := b.Snapshot(1); !maps.Equal(got, map[int64]int64{3: 30}) {
		t.Fatalf("Snapshot(1) after Clear at 20 = %v; want only the view at 30", got)
	}
	if p := b.Stats().Pending; p != 2 {
		t.Fatalf("Pending = %d; want 2", p)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := store.snapshot()
	want := map[key]int64{{1, 3}: 30, {2, 1}: 10}
	if !maps.Equal(rows, want) {
		t.Fatalf("rows = %v; want %v", rows, want)
	}
}

func TestUsecaseListMergesAndPages(t *testing.T) {
	store := newMemStore()
	fake := clock.NewFake(time.UnixMilli(1000))
	b := NewBuffer(store, WithClock(fake), CheckEvery(time.Hour))
	defer b.Close()
	uc := NewUsecase(store, b, fake)
	ctx := context.Background()
	view := func(note int64) {
		t.Helper()
		fake.Advance(time.Millisecond)
		if err := uc.RecordView(7, note); err != nil {
			t.Fatal(err)
		}
	}
	for note := int64(1); note <= 5; note++ {
		view(note)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	view(2) // stored at an older time, buffered at a newer one
	view(6)
	var got []int64
	cursor := ""
	for range 10 {
		es, next, err := uc.List(ctx, 7, 1, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got = append(got, e.NoteID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []int64{6, 2, 5, 4, 3, 1}; !slices.Equal(got, want) {
		t.Fatalf("paged history = %v; want %v", got, want)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, p := range []Pos{{At: 0, NoteID: 1}, {At: 1700000000000, NoteID: 42}, Start} {
		got, err := DecodeCursor(EncodeCursor(p))
		if err != nil || got != p {
			t.Fatalf("DecodeCursor(EncodeCursor(%v)) = %v, %v", p, got, err)
		}
	}
	for _, bad := range []string{"x", "aDE6MQ", EncodeCursor(Pos{At: -1, NoteID: 1}), EncodeCursor(Pos{At: 1, NoteID: 0})} {
		if _, err := DecodeCursor(bad); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("DecodeCursor(%q) = %v; want BAD_CURSOR", bad, err)
		}
	}
}

// FuzzDecodeCursor checks that any string either decodes to a position that encodes back to
// the same cursor, or is BAD_CURSOR.
func FuzzDecodeCursor(f *testing.F) {
	f.Add("")
	f.Add(EncodeCursor(Pos{At: 5, NoteID: 9}))
	f.Add(EncodeCursor(Start))
	f.Add("aDE6MTox")
	f.Fuzz(func(t *testing.T, c string) {
		p, err := DecodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("DecodeCursor(%q) error = %v; want BAD_CURSOR", c, err)
			}
			return
		}
		if c == "" {
			if p != Start {
				t.Fatalf("DecodeCursor(\"\") = %v; want Start", p)
			}
			return
		}
		if p.At < 0 || p.NoteID <= 0 {
			t.Fatalf("DecodeCursor(%q) = %v; want At >= 0, NoteID > 0", c, p)
		}
		if again, err := DecodeCursor(EncodeCursor(p)); err != nil || again != p {
			t.Fatalf("round trip of %v = %v, %v", p, again, err)
		}
	})
}

// FuzzValidateView checks that a view is accepted exactly when both ids are positive, and
// names the bad one otherwise.
func FuzzValidateView(f *testing.F) {
	f.Add(int64(1), int64(1))
	f.Add(int64(0), int64(1))
	f.Add(int64(1), int64(-1))
	f.Fuzz(func(t *testing.T, user, note int64) {
		err := ValidateView(user, note)
		switch {
		case user <= 0 && !errors.Is(err, ErrInvalidUser),
			user > 0 && note <= 0 && !errors.Is(err, ErrInvalidNote),
			user > 0 && note > 0 && err != nil:
			t.Fatalf("ValidateView(%d, %d) = %v", user, note, err)
		}
	})
}
