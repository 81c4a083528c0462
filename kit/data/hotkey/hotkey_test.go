package hotkey

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	zipfReads = 100_000
	zipfKeys  = 10_000
)

// zipfStream returns n reads of keys "k0".."k<keys-1>" with Zipf(s=1.1) popularity: key
// "k<r>" is the (r+1)-th most popular.
func zipfStream(n, keys int, seed uint64) []string {
	names := make([]string, keys)
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 7)), 1.1, 1, uint64(keys-1))
	out := make([]string, n)
	for i := range out {
		out[i] = names[z.Uint64()]
	}
	return out
}

// exactTop returns the k most frequent keys of stream, ties broken by key.
func exactTop(stream []string, k int) []Item {
	counts := map[string]uint64{}
	for _, s := range stream {
		counts[s]++
	}
	all := make([]Item, 0, len(counts))
	for key, c := range counts {
		all = append(all, Item{Key: key, Count: c})
	}
	slices.SortFunc(all, byCount)
	return all[:k]
}

// TestTopKPrecisionZipf feeds 100k Zipf(1.1) reads over 10k keys and compares HeavyKeeper's
// top-20 with the exact one: at least 18 of the 20 must be right, and the estimate of every
// key found must not exceed its true count by more than a few (collisions aside, HeavyKeeper
// underestimates).
func TestTopKPrecisionZipf(t *testing.T) {
	const k = 20
	for _, shards := range []int{1, 4} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("shards=%d/seed=%d", shards, seed), func(t *testing.T) {
				stream := zipfStream(zipfReads, zipfKeys, seed)
				hk := New(WithK(k), WithShards(shards), WithAging(0, 0))
				for _, key := range stream {
					hk.Add(key)
				}
				exact := exactTop(stream, k)
				truth := map[string]uint64{}
				for _, it := range exact {
					truth[it.Key] = it.Count
				}
				got := hk.TopK()
				if len(got) != k {
					t.Fatalf("TopK() has %d keys; want %d", len(got), k)
				}
				hit := 0
				for _, it := range got {
					if c, ok := truth[it.Key]; ok {
						hit++
						if it.Count > c+c/50 {
							t.Errorf("estimate of %s = %d; true count %d", it.Key, it.Count, c)
						}
					}
				}
				precision := float64(hit) / k
				t.Logf("precision %.2f; #1 %s est %d true %d; #20 %s est %d, true #20 %s %d",
					precision, got[0].Key, got[0].Count, truth[got[0].Key], got[k-1].Key, got[k-1].Count, exact[k-1].Key, exact[k-1].Count)
				if precision < 0.9 {
					t.Fatalf("precision of top-%d = %.2f; want >= 0.9\ngot   %v\nexact %v", k, precision, got, exact)
				}
			})
		}
	}
}

// TestAging shows a key that was hot yesterday cooling down: counts halve every interval,
// and a key that stopped being read leaves the top-K to one read now.
func TestAging(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	hk := New(WithK(1), WithShards(1), WithClock(clk), WithAging(10*time.Second, 0.5))
	for range 1000 {
		hk.Add("yesterday")
	}
	if top := hk.TopK(); len(top) != 1 || top[0] != (Item{"yesterday", 1000}) {
		t.Fatalf("TopK() = %v; want yesterday:1000", top)
	}
	clk.Advance(10 * time.Second)
	if top := hk.TopK(); len(top) != 1 || top[0].Count != 500 {
		t.Fatalf("TopK() after one interval = %v; want yesterday:500", top)
	}
	if hk.Add("today") {
		t.Fatal(`Add("today") = true against a count of 500; want false`)
	}
	clk.Advance(100 * time.Second) // ten intervals: 500 → 0
	if top := hk.TopK(); len(top) != 0 {
		t.Fatalf("TopK() after ten intervals = %v; want empty", top)
	}
	if !hk.Add("today") {
		t.Fatal(`Add("today") = false once yesterday's key cooled down; want true`)
	}
	if top := hk.TopK(); len(top) != 1 || top[0].Key != "today" {
		t.Fatalf("TopK() = %v; want today", top)
	}
}

// counter is a LoadFunc that counts its calls: each call is a database read.
type counter struct {
	calls atomic.Int64
	val   func(key string) []byte
}

func (c *counter) load(key string) LoadFunc {
	return func(context.Context) ([]byte, error) {
		c.calls.Add(1)
		if c.val != nil {
			return c.val(key), nil
		}
		return []byte("v:" + key), nil
	}
}

// TestLocalZipf reads 100k Zipf(1.1) keys through Local, 100µs apart on a fake clock (10s of
// traffic, so every cached value expires ten times), and measures how many reads Local kept
// from the database. The floor is below what was measured (0.66).
func TestLocalZipf(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	l := NewLocal(WithClock(clk))
	db := &counter{}
	ctx := t.Context()
	for _, key := range zipfStream(zipfReads, zipfKeys, 11) {
		v, err := l.Get(ctx, key, db.load(key))
		if err != nil || string(v) != "v:"+key {
			t.Fatalf("Get(%q) = %q, %v; want v:%s", key, v, err, key)
		}
		clk.Advance(100 * time.Microsecond)
	}
	st := l.Stats()
	reads := db.calls.Load()
	t.Logf("hit ratio %.3f: %d hits, %d misses, %d bypassed; database reads %d of %d (%d keys promoted, top key %v)",
		st.HitRatio, st.Hits, st.Misses, st.Bypassed, reads, zipfReads, len(st.Promoted), st.TopK[0])
	if st.Hits+uint64(reads) != zipfReads || uint64(reads) != st.Misses+st.Bypassed {
		t.Fatalf("hits %d + database reads %d != %d reads, or reads != misses %d + bypassed %d",
			st.Hits, reads, zipfReads, st.Misses, st.Bypassed)
	}
	if st.HitRatio < 0.55 {
		t.Fatalf("hit ratio = %.3f; want >= 0.55", st.HitRatio)
	}
	if len(st.Promoted) > 1024 {
		t.Fatalf("%d keys held; want at most the default 1024", len(st.Promoted))
	}
}

func TestLocalWhitelist(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	// K=1 and one very hot other key: only the whitelist can get "campaign" cached.
	l := NewLocal(WithClock(clk), WithK(1), WithShards(1), WithWhitelist("campaign"))
	db := &counter{}
	ctx := t.Context()
	for range 100 {
		if _, err := l.Get(ctx, "hot", db.load("hot")); err != nil {
			t.Fatal(err)
		}
	}
	db.calls.Store(0)
	for i := range 5 {
		if _, err := l.Get(ctx, "campaign", db.load("campaign")); err != nil {
			t.Fatal(err)
		}
		if n := db.calls.Load(); n != 1 {
			t.Fatalf("after %d Gets of a whitelisted key, %d database reads; want 1 (the first)", i+1, n)
		}
	}
	db.calls.Store(0)
	for range 5 {
		if _, err := l.Get(ctx, "cold", db.load("cold")); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.calls.Load(); n != 5 {
		t.Fatalf("5 Gets of a cold key made %d database reads; want 5", n)
	}
	if st := l.Stats(); st.Whitelist != 1 || !slices.Contains(st.Promoted, "campaign") || slices.Contains(st.Promoted, "cold") {
		t.Fatalf("Stats() = %+v; want campaign promoted and cold not", st)
	}
}

func TestLocalTTL(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	l := NewLocal(WithClock(clk), WithTTL(time.Second), WithWhitelist("k"))
	version := 1
	db := &counter{val: func(string) []byte { return []byte(strconv.Itoa(version)) }}
	get := func(want string) {
		t.Helper()
		if v, err := l.Get(t.Context(), "k", db.load("k")); err != nil || string(v) != want {
			t.Fatalf("Get = %q, %v; want %q", v, err, want)
		}
	}
	get("1")
	version = 2 // written elsewhere, with no Invalidate here
	clk.Advance(999 * time.Millisecond)
	get("1") // still within the TTL
	clk.Advance(time.Millisecond)
	get("2") // expired: loaded again
	if n := db.calls.Load(); n != 2 {
		t.Fatalf("%d database reads; want 2", n)
	}
}

func TestLocalInvalidate(t *testing.T) {
	l := NewLocal(WithClock(clock.NewFake(time.Time{})), WithWhitelist("k"))
	ctx := t.Context()
	version := 1
	db := &counter{val: func(string) []byte { return []byte(strconv.Itoa(version)) }}
	if v, _ := l.Get(ctx, "k", db.load("k")); string(v) != "1" {
		t.Fatalf("Get = %q; want 1", v)
	}
	version = 2
	l.Invalidate("k")
	if v, _ := l.Get(ctx, "k", db.load("k")); string(v) != "2" {
		t.Fatalf("Get after Invalidate = %q; want 2", v)
	}
	if st := l.Stats(); st.Invalidations != 1 || db.calls.Load() != 2 {
		t.Fatalf("invalidations %d, database reads %d; want 1 and 2", st.Invalidations, db.calls.Load())
	}

	// A write lands while a load is in flight: the load's (old) value is returned to its
	// caller but not kept, so the next Get reads the new value.
	l.Invalidate("k")
	racing := func(context.Context) ([]byte, error) {
		old := []byte(strconv.Itoa(version))
		version = 3
		l.Invalidate("k")
		return old, nil
	}
	if v, _ := l.Get(ctx, "k", racing); string(v) != "2" {
		t.Fatalf("Get racing a write = %q; want the value it read, 2", v)
	}
	if v, _ := l.Get(ctx, "k", db.load("k")); string(v) != "3" {
		t.Fatalf("Get after the racing write = %q; want 3 (the racing load must not be kept)", v)
	}
}

func TestLocalErrorsNotCached(t *testing.T) {
	l := NewLocal(WithClock(clock.NewFake(time.Time{})), WithWhitelist("k"))
	boom := errors.New("db down")
	if _, err := l.Get(t.Context(), "k", func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Get = %v; want the load's error", err)
	}
	db := &counter{}
	if v, err := l.Get(t.Context(), "k", db.load("k")); err != nil || string(v) != "v:k" || db.calls.Load() != 1 {
		t.Fatalf("Get after a failed load = %q, %v (%d reads); want a fresh load", v, err, db.calls.Load())
	}
}

func TestLocalMaxEntries(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = "w" + strconv.Itoa(i)
	}
	l := NewLocal(WithClock(clk), WithMaxEntries(4), WithWhitelist(keys...))
	db := &counter{}
	for _, k := range keys {
		if _, err := l.Get(t.Context(), k, db.load(k)); err != nil {
			t.Fatal(err)
		}
	}
	st := l.Stats()
	if len(st.Promoted) > 4 || st.Evictions != uint64(10-len(st.Promoted)) {
		t.Fatalf("held %d keys with %d evictions; want at most 4, the rest evicted", len(st.Promoted), st.Evictions)
	}
}

// TestLocalSingleLoad: concurrent misses of one hot key share one load.
func TestLocalSingleLoad(t *testing.T) {
	l := NewLocal(WithWhitelist("k"))
	release := make(chan struct{})
	var calls atomic.Int64
	load := func(context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return []byte("v"), nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if v, err := l.Get(ctx, "k", load); err != nil || string(v) != "v" {
				t.Errorf("Get = %q, %v; want v", v, err)
			}
		})
	}
	// Release the load once every Get has missed; until then none can hit. A Get that
	// reaches the flight after it ended finds the stored value instead of loading again.
	for l.misses.Load() < 20 && ctx.Err() == nil {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("20 concurrent Gets ran load %d times; want 1", n)
	}
}

// TestConcurrent mixes Gets, Invalidates and Stats from several goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	l := NewLocal(WithK(10), WithMaxEntries(32))
	stream := zipfStream(20_000, 500, 3)
	db := &counter{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(stream); i += 4 {
				key := stream[i]
				if v, err := l.Get(t.Context(), key, db.load(key)); err != nil || string(v) != "v:"+key {
					t.Errorf("Get(%q) = %q, %v", key, v, err)
					return
				}
				if i%97 == 0 {
					l.Invalidate(key)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = l.Stats()
		}
	})
	wg.Wait()
	if st := l.Stats(); st.Hits+st.Misses+st.Bypassed != uint64(len(stream)) {
		t.Fatalf("Stats() counts %d Gets; want %d", st.Hits+st.Misses+st.Bypassed, len(stream))
	}
}

func BenchmarkHeavyKeeperAdd(b *testing.B) {
	stream := zipfStream(1<<16, zipfKeys, 5)
	b.Run("serial", func(b *testing.B) {
		hk := New()
		i := 0
		for b.Loop() {
			hk.Add(stream[i&(1<<16-1)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		hk := New()
		var seed atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(9973))
			for pb.Next() {
				hk.Add(stream[i&(1<<16-1)])
				i++
			}
		})
	})
}

func BenchmarkLocalGetHot(b *testing.B) {
	load := func(context.Context) ([]byte, error) { return []byte("value"), nil }
	b.Run("one-key", func(b *testing.B) {
		l := NewLocal()
		ctx := context.Background()
		for range 10 {
			_, _ = l.Get(ctx, "hot", load)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Get(ctx, "hot", load); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("zipf", func(b *testing.B) {
		l := NewLocal()
		ctx := context.Background()
		stream := zipfStream(1<<16, zipfKeys, 6)
		var seed atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(9973))
			for pb.Next() {
				if _, err := l.Get(ctx, stream[i&(1<<16-1)], load); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.ReportMetric(l.Stats().HitRatio, "hit-ratio")
	})
}
