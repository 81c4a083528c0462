package bloom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/data/internal/testenv"
	"github.com/redline-dev/redline/kit/data/sqldb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOptimal(t *testing.T) {
	tests := []struct {
		n       int
		p       float64
		want    Params
		wantErr bool
	}{
		// m = -n ln p / ln²2 = 958505.8 → 958528 (next multiple of 64); k = m/n ln2 ≈ 6.64 → 7.
		{n: 100_000, p: 0.01, want: Params{M: 958528, K: 7}},
		{n: 1, p: 0.5, want: Params{M: 64, K: 30}}, // k capped
		{n: 1000, p: 0.001, want: Params{M: 14400, K: 10}},
		{n: 0, p: 0.01, wantErr: true},
		{n: -5, p: 0.01, wantErr: true},
		{n: 10, p: 0, wantErr: true},
		{n: 10, p: 1, wantErr: true},
		{n: 10, p: math.NaN(), wantErr: true},
		{n: 1 << 40, p: 1e-9, wantErr: true}, // over MaxBits
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("n=%d,p=%v", tc.n, tc.p), func(t *testing.T) {
			got, err := Optimal(tc.n, tc.p)
			if tc.wantErr {
				if !errors.Is(err, ErrBadParams) {
					t.Fatalf("Optimal(%d, %v) = %v, %v; want ErrBadParams", tc.n, tc.p, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Optimal(%d, %v) = %+v, %v; want %+v", tc.n, tc.p, got, err, tc.want)
			}
		})
	}
}

// ids returns n distinct random positive ids and n more, distinct from the first, that
// are never added.
func ids(n int, seed uint64) (present, absent []int64) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	seen := make(map[int64]bool, 2*n)
	for len(seen) < 2*n {
		id := r.Int64N(1<<62) + 1
		if seen[id] {
			continue
		}
		seen[id] = true
		if len(present) < n {
			present = append(present, id)
		} else {
			absent = append(absent, id)
		}
	}
	return present, absent
}

// TestFilterRate adds 100k ids and checks that none is missed and that the false-positive
// rate on 100k others is within 2x of the target.
func TestFilterRate(t *testing.T) {
	const n, target = 100_000, 0.01
	f, err := New(n, target)
	if err != nil {
		t.Fatal(err)
	}
	present, absent := ids(n, 1)
	for _, id := range present {
		f.AddID(id)
	}
	for _, id := range present {
		if !f.MayContainID(id) {
			t.Fatalf("MayContainID(%d) = false after AddID; a bloom filter has no false negatives", id)
		}
	}
	fp := 0
	for _, id := range absent {
		if f.MayContainID(id) {
			fp++
		}
	}
	rate := float64(fp) / float64(len(absent))
	t.Logf("false-positive rate %.4f on %d absent ids (target %.4f, %+v)", rate, len(absent), target, f.Params())
	if rate > 2*target {
		t.Fatalf("false-positive rate = %.4f; want at most %.4f (2x the target)", rate, 2*target)
	}
	st := f.Stats()
	if math.Abs(st.EstimatedKeys-n)/n > 0.05 || st.EstimatedRate > 2*target {
		t.Fatalf("Stats() = %+v; want about %d keys and a rate near %v", st, n, target)
	}
}

func TestFilterBytes(t *testing.T) {
	f, err := New(1000, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		f.Add([]byte(fmt.Sprintf("user-%d", i)))
	}
	for i := range 1000 {
		if k := fmt.Sprintf("user-%d", i); !f.MayContain([]byte(k)) {
			t.Fatalf("MayContain(%q) = false after Add", k)
		}
	}
	fp := 0
	for i := range 10_000 {
		if f.MayContain([]byte(fmt.Sprintf("nobody-%d", i))) {
			fp++
		}
	}
	if fp > 20 { // 0.1% of 10k is 10
		t.Fatalf("%d false positives in 10000; want at most 20", fp)
	}
	// An empty filter says no to everything.
	empty, _ := New(10, 0.01)
	if empty.MayContain([]byte("x")) || empty.MayContainID(1) {
		t.Fatal("an empty filter says maybe; want no")
	}
}

// TestFilterConcurrent adds from several goroutines while others read; every id added before
// a reader looks is found. Run with -race.
func TestFilterConcurrent(t *testing.T) {
	f, _ := New(40_000, 0.01)
	var wg sync.WaitGroup
	var missed atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 10_000 {
				id := int64(g*10_000 + i + 1)
				f.AddID(id)
				if !f.MayContainID(id) {
					missed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	for id := int64(1); id <= 40_000; id++ {
		if !f.MayContainID(id) {
			missed.Add(1)
		}
	}
	if m := missed.Load(); m != 0 {
		t.Fatalf("%d ids added but not found; want 0", m)
	}
}

// guarded is the read path a service writes: the filter first, then the database. dbReads
// counts the database queries.
type guarded struct {
	mayContain func(ctx context.Context, id int64) bool
	db         *sqldb.DB
	dbReads    atomic.Int64
}

var errNotFound = errors.New("not found")

func (g *guarded) get(ctx context.Context, id int64) (string, error) {
	if !g.mayContain(ctx, id) {
		return "", errNotFound // certainly absent: the database is not asked
	}
	g.dbReads.Add(1)
	var title string
	err := g.db.QueryRowContext(ctx, `SELECT title FROM items WHERE id = ?`, id).Scan(&title)
	if err != nil {
		return "", errNotFound
	}
	return title, nil
}

// itemsDB is a SQLite database with a row in items for every id of present.
func itemsDB(t *testing.T, present []int64) *sqldb.DB {
	t.Helper()
	ctx := t.Context()
	db, err := sqldb.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (id BIGINT PRIMARY KEY, title TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *sqldb.Tx) error {
		for start := 0; start < len(present); start += 500 {
			chunk := present[start:min(start+500, len(present))]
			q, args := `INSERT INTO items (id, title) VALUES `, make([]any, 0, 2*len(chunk))
			for i, id := range chunk {
				if i > 0 {
					q += ", "
				}
				q += "(?, ?)"
				args = append(args, id, fmt.Sprint("item ", id))
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

const scanItems = `SELECT id FROM items WHERE id > ? ORDER BY id LIMIT ?`

// readsOfMissingIDs fills dst from the database, then reads 10k random missing ids and 1k
// present ones through the guard: misses reach the database only at about the filter's rate,
// and every present id is found.
func readsOfMissingIDs(t *testing.T, db *sqldb.DB, present, absent []int64, dst IDAdder, target float64,
	mayContain func(ctx context.Context, id int64) bool) {
	t.Helper()
	ctx := t.Context()
	n, err := Fill(ctx, dst, SQLScan(db, scanItems), 777)
	if err != nil || n != len(present) {
		t.Fatalf("Fill = %d, %v; want %d, nil", n, err, len(present))
	}
	g := &guarded{mayContain: mayContain, db: db}
	for _, id := range absent {
		if _, err := g.get(ctx, id); !errors.Is(err, errNotFound) {
			t.Fatalf("get(%d) = %v; want not found", id, err)
		}
	}
	reads := g.dbReads.Load()
	rate := float64(reads) / float64(len(absent))
	t.Logf("%d reads of missing ids reached the database %d times (%.4f; filter target %.4f)", len(absent), reads, rate, target)
	if rate > 2*target {
		t.Fatalf("missing ids reached the database at rate %.4f; want at most %.4f", rate, 2*target)
	}
	g.dbReads.Store(0)
	for _, id := range present[:1000] {
		if _, err := g.get(ctx, id); err != nil {
			t.Fatalf("get(%d) of an existing id = %v; the filter must never hide a row", id, err)
		}
	}
	if r := g.dbReads.Load(); r != 1000 {
		t.Fatalf("reads of present ids reached the database %d times; want 1000", r)
	}
}

func TestReadsOfMissingIDsDoNotReachTheDatabase(t *testing.T) {
	const target = 0.01
	present, absent := ids(10_000, 2)
	db := itemsDB(t, present)
	f, err := New(len(present), target)
	if err != nil {
		t.Fatal(err)
	}
	readsOfMissingIDs(t, db, present, absent, f, target, func(_ context.Context, id int64) bool { return f.MayContainID(id) })

	// The rule: add before the row is visible, and a reader never misses it.
	fresh := absent[0] // certainly not yet in the filter, unless a false positive
	f.AddID(fresh)
	if _, err := db.ExecContext(t.Context(), `INSERT INTO items (id, title) VALUES (?, 'fresh')`, fresh); err != nil {
		t.Fatal(err)
	}
	g := &guarded{mayContain: func(_ context.Context, id int64) bool { return f.MayContainID(id) }, db: db}
	if title, err := g.get(t.Context(), fresh); err != nil || title != "fresh" {
		t.Fatalf("get(%d) after add-then-insert = %q, %v; want fresh", fresh, title, err)
	}
}

func TestFillRejectsUnorderedScan(t *testing.T) {
	f, _ := New(10, 0.01)
	calls := 0
	scan := func(_ context.Context, after int64, limit int) ([]int64, error) {
		calls++
		return []int64{5, 3}, nil
	}
	if _, err := Fill(t.Context(), f, scan, 2); err == nil || calls != 1 {
		t.Fatalf("Fill of an unordered scan = %v after %d calls; want an error after 1", err, calls)
	}
	boom := errors.New("db down")
	if _, err := Fill(t.Context(), f, func(context.Context, int64, int) ([]int64, error) { return nil, boom }, 2); !errors.Is(err, boom) {
		t.Fatalf("Fill with a failing scan = %v; want it wrapped", err)
	}
}

// redisClient returns a client of the real Redis (REDLINE_TEST_REDIS, default
// redis://127.0.0.1:6379/0), failing (not skipping) when it is down.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	url := testenv.URL(t, "REDLINE_TEST_REDIS", "redis://127.0.0.1:6379/0")
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		testenv.Unreachable(t, "REDLINE_TEST_REDIS", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// redisFilter opens a filter under a name of the test's own, deleted at cleanup.
func redisFilter(t *testing.T, rdb *redis.Client, name string, n int, p float64) *Redis {
	t.Helper()
	r, err := NewRedis(rdb, name, n, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := r.Delete(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return r
}

// TestRedis runs on the real Redis: two processes (two clients) share one filter, a filled
// filter keeps misses from the database, and the answers match the in-process filter bit for
// bit, since both hash the same way.
func TestRedis(t *testing.T) {
	const target = 0.01
	rdb, other := redisClient(t), redisClient(t)
	name := testenv.Name("test-bloom")
	a := redisFilter(t, rdb, name, 10_000, target)
	b, err := NewRedis(other, name, 10_000, target)
	if err != nil || b.Key() != a.Key() {
		t.Fatalf("NewRedis = %v, %v; want the same key %s", b, err, a.Key())
	}
	ctx := t.Context()

	present, absent := ids(10_000, 3)
	db := itemsDB(t, present)
	readsOfMissingIDs(t, db, present, absent, a, target, func(ctx context.Context, id int64) bool {
		ok, _ := b.MayContainID(ctx, id) // fail open: an error reads as maybe
		return ok
	})

	// The other process sees every id, in one batch call too.
	got, err := b.MayContainIDs(ctx, present)
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range got {
		if !ok {
			t.Fatalf("MayContainIDs: id %d = false in the other process; want true", present[i])
		}
	}
	// Same bits as an in-process filter of the same size.
	local, _ := New(10_000, target)
	_ = local.AddIDs(ctx, present...)
	remote, err := b.MayContainIDs(ctx, absent)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range absent {
		if remote[i] != local.MayContainID(id) {
			t.Fatalf("id %d: Redis says %v, in-process says %v; want the same", id, remote[i], local.MayContainID(id))
		}
	}
	st, err := b.Stats(ctx)
	if err != nil || st.BitsSet != local.Stats().BitsSet {
		t.Fatalf("Stats() = %+v, %v; want %d bits set", st, err, local.Stats().BitsSet)
	}

	// A differently sized filter of the same name lives under another key.
	c := redisFilter(t, rdb, name, 500, target)
	if c.Key() == a.Key() {
		t.Fatalf("keys of differently sized filters are both %s", c.Key())
	}
}

// TestRedisDown fails open: a filter whose Redis is gone answers maybe, with the error.
func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	r, err := NewRedis(rdb, "down", 100, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := r.MayContainID(t.Context(), 42)
	if err == nil || !ok {
		t.Fatalf("MayContainID on a dead Redis = %v, %v; want true and an error", ok, err)
	}
	if err := r.AddIDs(t.Context(), 1, 2); err == nil {
		t.Fatal("AddIDs on a dead Redis = nil; want an error")
	}
	if _, err := NewRedis(rdb, "", 100, 0.01); !errors.Is(err, ErrBadParams) {
		t.Fatalf("NewRedis with no name = %v; want ErrBadParams", err)
	}
}

func BenchmarkBloomMayContain(b *testing.B) {
	f, _ := New(1_000_000, 0.01)
	present, absent := ids(1<<16, 4)
	for _, id := range present {
		f.AddID(id)
	}
	b.Run("present", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f.MayContainID(present[i&(1<<16-1)])
			i++
		}
	})
	b.Run("absent", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f.MayContainID(absent[i&(1<<16-1)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				f.MayContainID(absent[i&(1<<16-1)])
				i++
			}
		})
	})
}
