package biz

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCursorRoundTrip(t *testing.T) {
	for _, kind := range []string{homeCursor, recentCursor} {
		for _, p := range []Pos{{1, 1}, {1700000000000, 42}, {math.MaxInt64, 1<<62 + 7}} {
			got, err := DecodeCursor(kind, EncodeCursor(kind, p))
			if err != nil || got != p {
				t.Errorf("DecodeCursor(%s, EncodeCursor(%v)) = %v, %v", kind, p, got, err)
			}
		}
	}
	hot := Pos{int64(math.Float64bits(0.125)), 9}
	if got, err := DecodeCursor(hotCursor, EncodeCursor(hotCursor, hot)); err != nil || got != hot {
		t.Errorf("hot cursor round trip = %v, %v; want %v", got, err, hot)
	}
	if got, err := DecodeCursor(homeCursor, ""); err != nil || got != Start {
		t.Errorf(`DecodeCursor("") = %v, %v; want Start`, got, err)
	}
	bad := []struct{ kind, cursor string }{
		{homeCursor, EncodeCursor(recentCursor, Pos{1, 1})}, // another list's cursor
		{homeCursor, "."},
		{homeCursor, EncodeCursor(homeCursor, Pos{1, 1}) + ".x"},
		{hotCursor, EncodeCursor(hotCursor, Pos{int64(math.Float64bits(math.Inf(1))), 1})},
		{homeCursor, "not a cursor"},
	}
	for _, b := range bad {
		if _, err := DecodeCursor(b.kind, b.cursor); errs.Reason(err) != "BAD_CURSOR" {
			t.Errorf("DecodeCursor(%s, %q) = %v; want BAD_CURSOR", b.kind, b.cursor, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(homeCursor, EncodeCursor(homeCursor, Pos{5, 6}))
	f.Add(hotCursor, EncodeCursor(hotCursor, Pos{int64(math.Float64bits(2.5)), 6}))
	f.Add(recentCursor, "")
	f.Add(homeCursor, "..")
	f.Fuzz(func(t *testing.T, kind, c string) {
		p, err := DecodeCursor(kind, c)
		if err != nil {
			if errs.Reason(err) != "BAD_CURSOR" {
				t.Fatalf("DecodeCursor(%q, %q) error %v; want BAD_CURSOR", kind, c, err)
			}
			return
		}
		if c == "" {
			return
		}
		if p.Major <= 0 || p.NoteID <= 0 {
			t.Fatalf("DecodeCursor(%q, %q) = %v; positions are positive", kind, c, p)
		}
		if again, err := DecodeCursor(kind, EncodeCursor(kind, p)); err != nil || again != p {
			t.Fatalf("re-encoded cursor of %v decodes to %v, %v", p, again, err)
		}
	})
}

func TestDecodeNoteEvent(t *testing.T) {
	enc := func(ev event.NoteEvent) []byte { b, _ := json.Marshal(ev); return b }
	good := []event.NoteEvent{
		{Op: event.Created, ID: 1, AuthorID: 2, CreatedMS: 3, Version: 3},
		{Op: event.Updated, ID: 1, AuthorID: 2, CreatedMS: 3, Version: 4},
		{Op: event.Deleted, ID: 1, Version: 5}, // a delete may carry nothing else
	}
	for _, ev := range good {
		if got, err := DecodeNoteEvent(enc(ev)); err != nil || got.ID != ev.ID || got.Op != ev.Op {
			t.Errorf("DecodeNoteEvent(%+v) = %+v, %v; want it back", ev, got, err)
		}
	}
	bad := map[string][]byte{
		"not json":      []byte("{"),
		"no id":         enc(event.NoteEvent{Op: event.Created, AuthorID: 2, CreatedMS: 3, Version: 3}),
		"no version":    enc(event.NoteEvent{Op: event.Deleted, ID: 1}),
		"unknown op":    enc(event.NoteEvent{Op: "liked", ID: 1, AuthorID: 2, CreatedMS: 3, Version: 3}),
		"no author":     enc(event.NoteEvent{Op: event.Created, ID: 1, CreatedMS: 3, Version: 3}),
		"no created_ms": enc(event.NoteEvent{Op: event.Updated, ID: 1, AuthorID: 2, Version: 3}),
	}
	for name, data := range bad {
		if _, err := DecodeNoteEvent(data); !errors.Is(err, ErrBadEvent) {
			t.Errorf("DecodeNoteEvent(%s) = %v; want ErrBadEvent", name, err)
		}
	}
}

func FuzzDecodeNoteEvent(f *testing.F) {
	f.Add([]byte(`{"op":"created","id":1,"author_id":2,"created_ms":3,"version":3}`))
	f.Add([]byte(`{"op":"deleted","id":1,"version":9}`))
	f.Add([]byte(`{"op":"updated","id":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeNoteEvent(data)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("DecodeNoteEvent(%q) = %v; want ErrBadEvent", data, err)
			}
			return
		}
		if ev.ID <= 0 || ev.Version <= 0 || ev.Op != event.Deleted && (ev.AuthorID <= 0 || ev.CreatedMS <= 0) {
			t.Fatalf("DecodeNoteEvent(%q) accepted %+v", data, ev)
		}
	})
}

func TestFollowsCodec(t *testing.T) {
	for _, f := range []*Follows{
		{},
		{Following: []int64{1, 5, 1 << 60}, Big: []int64{5}, Complete: true},
	} {
		got, ok := decodeFollows(encodeFollows(f))
		if !ok || got.Complete != f.Complete || !slices.Equal(got.Following, f.Following) || !slices.Equal(got.Big, f.Big) {
			t.Errorf("decodeFollows(encodeFollows(%+v)) = %+v, %v", f, got, ok)
		}
	}
	for _, b := range [][]byte{nil, {2}, {1, 5}, append(encodeFollows(&Follows{}), 0)} {
		if _, ok := decodeFollows(b); ok {
			t.Errorf("decodeFollows(%v) accepted a value encodeFollows did not make", b)
		}
	}
}

func FuzzDecodeFollows(f *testing.F) {
	f.Add(encodeFollows(&Follows{Following: []int64{1, 2}, Big: []int64{2}, Complete: true}))
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeFollows(b)
		if !ok {
			return
		}
		if again, ok := decodeFollows(encodeFollows(got)); !ok || !slices.Equal(again.Following, got.Following) ||
			!slices.Equal(again.Big, got.Big) || again.Complete != got.Complete {
			t.Fatalf("decodeFollows(%v) = %+v does not round-trip", b, got)
		}
	})
}

// feedSorted sorts entries in feed order.
func feedSorted(es []Entry) []Entry {
	slices.SortFunc(es, func(a, b Entry) int {
		if a.CreatedMS != b.CreatedMS {
			return -cmp.Compare(a.CreatedMS, b.CreatedMS)
		}
		return -cmp.Compare(a.NoteID, b.NoteID)
	})
	return es
}

func TestMergeIsTheSortedUnionWithoutRepeats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		all := map[int64]Entry{}
		var a, b []Entry
		for i := range 30 {
			e := Entry{NoteID: int64(i + 1), CreatedMS: int64(r.IntN(10)), AuthorID: 1}
			all[e.NoteID] = e
			switch r.IntN(3) {
			case 0:
				a = append(a, e)
			case 1:
				b = append(b, e)
			default: // in both, as a big author's note fanned out before the author became big
				a, b = append(a, e), append(b, e)
			}
		}
		feedSorted(a)
		feedSorted(b)
		want := feedSorted(slices.Collect(func(yield func(Entry) bool) {
			for _, e := range all {
				if !yield(e) {
					return
				}
			}
		}))
		limit := 1 + r.IntN(35)
		got := Merge(a, b, limit)
		if !slices.Equal(got, want[:min(limit, len(want))]) {
			t.Fatalf("round %d: Merge = %v; want %v", round, got, want[:min(limit, len(want))])
		}
	}
}

func TestScore(t *testing.T) {
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	created := now.Add(-2 * time.Hour).UnixMilli()
	// (3 + 2·2 + 3·1 + 1) / (2 + 2)^1.5 = 11 / 8
	if got := Score(Counts{Likes: 3, Collects: 2, Comments: 1}, created, now); math.Abs(got-11.0/8) > 1e-12 {
		t.Fatalf("Score = %v; want 1.375", got)
	}
	if Score(Counts{Likes: 1}, created, now) <= Score(Counts{}, created, now) {
		t.Fatal("a like did not raise the score")
	}
	if Score(Counts{}, created, now) <= Score(Counts{}, created-int64(time.Hour/time.Millisecond), now) {
		t.Fatal("age did not lower the score")
	}
	if s := Score(Counts{Likes: -5}, now.Add(time.Hour).UnixMilli(), now); s <= 0 || math.IsInf(s, 0) {
		t.Fatalf("Score with negative counts and a future note = %v; want positive and finite", s)
	}
}

// gateStore is a Store whose ApplyNotes records each batch's size and holds the first batch
// until released; its other methods are never reached (ApplyNotes reports nothing fresh).
type gateStore struct {
	Store
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (g *gateStore) ApplyNotes(_ context.Context, states []NoteState) ([]Entry, error) {
	g.mu.Lock()
	first := len(g.sizes) == 0
	g.sizes = append(g.sizes, len(states))
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
	}
	return nil, nil
}

func TestEventsQueuedDuringABatchFormTheNext(t *testing.T) {
	g := &gateStore{entered: make(chan struct{}), release: make(chan struct{})}
	f := NewFanOut(g, nil, clock.NewFake(time.Time{}), FanOutConfig{MaxBatch: 16}, log.Discard())
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := func(id int64) event.NoteEvent {
		return event.NoteEvent{Op: event.Created, ID: id, AuthorID: 1, CreatedMS: 1, Version: 1}
	}
	var wg sync.WaitGroup
	submit := func(id int64) {
		wg.Go(func() {
			if err := f.Submit(ctx, ev(id)); err != nil {
				t.Errorf("Submit(%d) = %v", id, err)
			}
		})
	}
	submit(1)
	<-g.entered
	for id := range int64(10) {
		submit(id + 2)
	}
	for len(f.in) < 10 && ctx.Err() == nil { // all ten queued behind the held batch
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	if !slices.Equal(g.sizes, []int{1, 10}) {
		t.Fatalf("batch sizes = %v; want [1 10]: the ten events queued during the first batch share the second", g.sizes)
	}
	f.Close()
	if err := f.Submit(ctx, ev(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close = %v; want ErrClosed", err)
	}
}
