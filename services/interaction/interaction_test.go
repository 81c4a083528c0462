package interaction_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/interaction/internal/biz"
	"github.com/redline-dev/redline/services/interaction/internal/data"
	"github.com/redline-dev/redline/services/interaction/migrations"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// engines returns the databases the suite runs on: in-memory SQLite, and real PostgreSQL in
// a schema of the test's own, dropped at cleanup, unless REDLINE_SKIP_INTEGRATION=1.
func engines() map[string]func(t *testing.T) *sqldb.DB {
	return map[string]func(t *testing.T) *sqldb.DB{
		"sqlite": func(t *testing.T) *sqldb.DB {
			db, err := sqldb.Open(context.Background(), "sqlite::memory:")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		"postgres": func(t *testing.T) *sqldb.DB {
			db, _ := sqldbtest.Postgres(t, "interaction")
			return db
		},
	}
}

// onEngines runs test once per engine, each with a fresh database.
func onEngines(t *testing.T, test func(t *testing.T, db *sqldb.DB)) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}

// newService returns the service on db with a clock that never moves, so counter changes
// reach the database only when the test flushes (through Close) or MaxPending forces it.
func newService(t *testing.T, db *sqldb.DB, opts ...interaction.Option) (interactionv1.InteractionServer, func() error) {
	t.Helper()
	svc, closer, err := interaction.New(context.Background(), db,
		append([]interaction.Option{interaction.WithClock(clock.NewFake(time.Time{}))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var closeErr error
	closeFn := func() error {
		once.Do(func() { closeErr = closer.Close() })
		return closeErr
	}
	t.Cleanup(func() { _ = closeFn() })
	return svc, closeFn
}

func counts(t *testing.T, svc interactionv1.InteractionServer, targets ...int64) map[int64]*interactionv1.Counts {
	t.Helper()
	r, err := svc.GetCounts(context.Background(), &interactionv1.GetCountsRequest{TargetIds: targets})
	if err != nil {
		t.Fatalf("GetCounts(%v) = %v", targets, err)
	}
	return r.GetCounts()
}

// stored reads a target's counters straight from the table, bypassing the buffer.
func stored(t *testing.T, db *sqldb.DB, target int64) (likes, collects, views int64) {
	t.Helper()
	err := db.QueryRowContext(context.Background(), `SELECT likes, collects, views FROM counters WHERE target_id = ?`, target).
		Scan(&likes, &collects, &views)
	if err != nil {
		t.Fatalf("counters row of %d: %v", target, err)
	}
	return likes, collects, views
}

// parallel runs f(0..n-1) on at most 32 goroutines at once (PostgreSQL has a connection
// limit) and waits for them.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

func TestLikesAreUniquePerUserAndTarget(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		svc, closeFn := newService(t, db)
		var changed atomic.Int64
		var failures atomic.Int64
		parallel(50, func(int) { // one user, 50 times at once
			r, err := svc.Like(ctx, &interactionv1.ReactRequest{UserId: 1, TargetId: 100})
			if err != nil {
				failures.Add(1)
			} else if r.GetChanged() {
				changed.Add(1)
			}
		})
		parallel(50, func(i int) { // 50 users once each
			if _, err := svc.Like(ctx, &interactionv1.ReactRequest{UserId: int64(1000 + i), TargetId: 200}); err != nil {
				failures.Add(1)
			}
		})
		if failures.Load() != 0 || changed.Load() != 1 {
			t.Fatalf("50 concurrent likes by one user: %d changed, %d failed; want 1 and 0", changed.Load(), failures.Load())
		}
		// Visible before any flush.
		c := counts(t, svc, 100, 200)
		if c[100].GetLikes() != 1 || c[200].GetLikes() != 50 {
			t.Fatalf("counts before flush = %v; want 1 and 50 likes", c)
		}
		r, err := svc.Unlike(ctx, &interactionv1.ReactRequest{UserId: 1, TargetId: 100})
		if err != nil || !r.GetChanged() {
			t.Fatalf("Unlike = %v, %v; want changed", r, err)
		}
		r, err = svc.Unlike(ctx, &interactionv1.ReactRequest{UserId: 1, TargetId: 100})
		if err != nil || r.GetChanged() {
			t.Fatalf("second Unlike = %v, %v; want unchanged", r, err)
		}
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
		if likes, _, _ := stored(t, db, 200); likes != 50 {
			t.Fatalf("stored likes of 200 after flush = %d; want 50", likes)
		}
		// Like then unlike cancelled out in the buffer: no row was ever written for 100.
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM counters WHERE target_id = 100`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("counters rows for 100 = %d, %v; want 0", n, err)
		}
	})
}

// TestCountersConvergeUnderLikeUnlikeBurst fires 10,000 likes and unlikes at one target from
// 200 users, with flushes running on the wall clock meanwhile, and checks the written counter
// equals the rows in likes. Reads during the burst must stay within [0, 200]: a delta counted
// twice or lost across a flush would push them out sooner or later.
func TestCountersConvergeUnderLikeUnlikeBurst(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		svc, closeFn := newService(t, db, interaction.WithClock(clock.Real{}), interaction.FlushInterval(time.Millisecond))
		var failures atomic.Int64
		parallel(10000, func(i int) {
			req := &interactionv1.ReactRequest{UserId: int64(1 + i%200), TargetId: 7}
			var err error
			if i%3 == 0 {
				_, err = svc.Unlike(ctx, req)
			} else {
				_, err = svc.Like(ctx, req)
			}
			if err != nil {
				failures.Add(1)
			}
			if i%50 == 0 {
				r, err := svc.GetCounts(ctx, &interactionv1.GetCountsRequest{TargetIds: []int64{7}})
				if l := r.GetCounts()[7].GetLikes(); err != nil || l < 0 || l > 200 {
					t.Errorf("GetCounts during burst = %d likes, %v; want 0 to 200", l, err)
				}
			}
		})
		if failures.Load() != 0 {
			t.Fatalf("%d calls failed", failures.Load())
		}
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
		var rows int64
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM likes WHERE target_id = 7`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if likes, _, _ := stored(t, db, 7); likes != rows {
			t.Fatalf("stored likes = %d; want %d, the rows in likes", likes, rows)
		}
		t.Logf("10,000 likes/unlikes by 200 users: %d likes stand", rows)
	})
}

// countingStore wraps the real counter store and counts the statements it runs: one
// upsert per data.UpsertRows targets of each write.
type countingStore struct {
	biz.CounterStore
	writes, statements, rows atomic.Int64
}

func (s *countingStore) AddCounts(ctx context.Context, deltas map[int64]biz.Counts) error {
	s.writes.Add(1)
	s.statements.Add(int64((len(deltas) + data.UpsertRows - 1) / data.UpsertRows))
	s.rows.Add(int64(len(deltas)))
	return s.CounterStore.AddCounts(ctx, deltas)
}

func migrated(t *testing.T, db *sqldb.DB) *data.Repo {
	t.Helper()
	if err := sqldb.Migrate(context.Background(), db, migrations.FS); err != nil {
		t.Fatal(err)
	}
	return data.NewRepo(db)
}

func TestViewsAreWrittenInBatches(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		t.Run("fake clock", func(t *testing.T) {
			store := &countingStore{CounterStore: migrated(t, db)}
			b := biz.NewBatcher(store, biz.WithClock(clock.NewFake(time.Time{})))
			defer b.Close()
			parallel(10000, func(int) { b.Add(1, biz.Counts{Views: 1}) })
			if n := store.statements.Load(); n != 0 {
				t.Fatalf("10,000 views before the interval: %d statements; want 0", n)
			}
			got, err := b.Counts(ctx, []int64{1})
			if err != nil || got[1].Views != 10000 {
				t.Fatalf("Counts = %v, %v; want 10000 views from the buffer", got, err)
			}
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if n := store.statements.Load(); n != 1 {
				t.Fatalf("one flush of one target: %d statements; want 1", n)
			}
			if _, _, views := stored(t, db, 1); views != 10000 {
				t.Fatalf("stored views = %d; want 10000", views)
			}
		})
		t.Run("real clock", func(t *testing.T) {
			const interval = 5 * time.Millisecond
			store := &countingStore{CounterStore: migrated(t, db)}
			b := biz.NewBatcher(store, biz.FlushInterval(interval))
			start := time.Now()
			var views atomic.Int64
			parallel(10000, func(i int) {
				b.Add(2, biz.Counts{Views: 1})
				views.Add(1)
				if i%1000 == 0 { // reads during the burst see every view so far
					got, err := b.Counts(ctx, []int64{2})
					if err != nil || got[2].Views < int64(i/1000) {
						t.Errorf("Counts during burst = %v, %v", got, err)
					}
				}
			})
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			// Flushes start at least an interval apart (the oldest delta must age), plus the
			// one in Close: the database's write rate is bounded whatever the burst.
			bound := int64(elapsed/interval) + 2
			if w, s := store.writes.Load(), store.statements.Load(); w > bound || s != w {
				t.Fatalf("%d writes, %d statements in %v at %v; want ≤ %d, one statement each", w, s, elapsed, interval, bound)
			}
			if _, _, v := stored(t, db, 2); v != 10000 {
				t.Fatalf("stored views = %d; want 10000", v)
			}
			t.Logf("10,000 views in %v: %d flushes, %d statements (bound %d)", elapsed, store.writes.Load(), store.statements.Load(), bound)
		})
		t.Run("many targets", func(t *testing.T) {
			store := &countingStore{CounterStore: migrated(t, db)}
			b := biz.NewBatcher(store, biz.WithClock(clock.NewFake(time.Time{})), biz.MaxPending(100000))
			for i := range 1000 {
				b.Add(int64(10+i), biz.Counts{Views: 1, Likes: int64(i % 2)})
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if w, s := store.writes.Load(), store.statements.Load(); w != 1 || s != 5 {
				t.Fatalf("1,000 targets: %d writes, %d statements; want 1 write of 5 statements", w, s)
			}
			if likes, _, views := stored(t, db, 1009); likes != 1 || views != 1 {
				t.Fatalf("target 1009 = %d likes %d views; want 1 and 1", likes, views)
			}
		})
	})
}

func TestViewerStateAndCounts(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		svc, closeFn := newService(t, db)
		must := func(r *interactionv1.ReactReply, err error) {
			t.Helper()
			if err != nil || !r.GetChanged() {
				t.Fatalf("= %v, %v; want changed", r, err)
			}
		}
		must(svc.Like(ctx, &interactionv1.ReactRequest{UserId: 5, TargetId: 1}))
		must(svc.Like(ctx, &interactionv1.ReactRequest{UserId: 5, TargetId: 3}))
		must(svc.Collect(ctx, &interactionv1.ReactRequest{UserId: 5, TargetId: 3}))
		must(svc.Collect(ctx, &interactionv1.ReactRequest{UserId: 5, TargetId: 4}))
		must(svc.Like(ctx, &interactionv1.ReactRequest{UserId: 6, TargetId: 2})) // someone else
		if r, err := svc.Collect(ctx, &interactionv1.ReactRequest{UserId: 5, TargetId: 4}); err != nil || r.GetChanged() {
			t.Fatalf("repeated Collect = %v, %v; want unchanged", r, err)
		}
		must(svc.Uncollect(ctx, &interactionv1.ReactRequest{UserId: 5, TargetId: 4}))
		for _, req := range []*interactionv1.RecordViewRequest{{TargetId: 1}, {TargetId: 1}, {TargetId: 3}} {
			if _, err := svc.RecordView(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.RecordComment(ctx, &interactionv1.RecordCommentRequest{TargetId: 3, Delta: 1}); err != nil {
			t.Fatal(err)
		}

		check := func(when string) {
			t.Helper()
			r, err := svc.GetViewerState(ctx, &interactionv1.GetViewerStateRequest{UserId: 5, TargetIds: []int64{1, 2, 3, 4, 5, 3}})
			if err != nil {
				t.Fatal(err)
			}
			want := map[int64][2]bool{1: {true, false}, 2: {}, 3: {true, true}, 4: {}, 5: {}}
			if len(r.GetStates()) != len(want) {
				t.Fatalf("%s: GetViewerState = %v; want %d targets", when, r.GetStates(), len(want))
			}
			for id, w := range want {
				s := r.GetStates()[id]
				if s == nil || s.GetLiked() != w[0] || s.GetCollected() != w[1] {
					t.Fatalf("%s: state of %d = %v; want liked=%v collected=%v", when, id, s, w[0], w[1])
				}
			}
			c := counts(t, svc, 1, 2, 3, 4, 99)
			wantCounts := map[int64][4]int64{1: {1, 0, 0, 2}, 2: {1, 0, 0, 0}, 3: {1, 1, 1, 1}, 4: {}, 99: {}}
			for id, w := range wantCounts {
				got := c[id]
				if got == nil || [4]int64{got.GetLikes(), got.GetCollects(), got.GetComments(), got.GetViews()} != w {
					t.Fatalf("%s: counts of %d = %v; want %v", when, id, got, w)
				}
			}
		}
		check("buffered")
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
		check("after Close")
	})
}

// TestCloseFlushes checks that counter changes survive a restart: Close writes them, and a
// new service on the same database reads them back.
func TestCloseFlushes(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		svc, closeFn := newService(t, db)
		if _, err := svc.Like(ctx, &interactionv1.ReactRequest{UserId: 1, TargetId: 9}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RecordView(ctx, &interactionv1.RecordViewRequest{TargetId: 9}); err != nil {
			t.Fatal(err)
		}
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
		again, _ := newService(t, db)
		if c := counts(t, again, 9)[9]; c.GetLikes() != 1 || c.GetViews() != 1 {
			t.Fatalf("after restart counts = %v; want 1 like, 1 view", c)
		}
	})
}

func TestValidation(t *testing.T) {
	db, err := sqldb.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, _ := newService(t, db)
	ctx := context.Background()
	tooMany := make([]int64, 101)
	for i := range tooMany {
		tooMany[i] = int64(i + 1)
	}
	cases := []struct {
		name, reason string
		call         func() error
	}{
		{"like no user", "INVALID_USER", func() error {
			_, err := svc.Like(ctx, &interactionv1.ReactRequest{TargetId: 1})
			return err
		}},
		{"collect negative target", "INVALID_TARGET", func() error {
			_, err := svc.Collect(ctx, &interactionv1.ReactRequest{UserId: 1, TargetId: -1})
			return err
		}},
		{"view no target", "INVALID_TARGET", func() error {
			_, err := svc.RecordView(ctx, &interactionv1.RecordViewRequest{})
			return err
		}},
		{"comment delta 2", "INVALID_DELTA", func() error {
			_, err := svc.RecordComment(ctx, &interactionv1.RecordCommentRequest{TargetId: 1, Delta: 2})
			return err
		}},
		{"counts of 101", "TOO_MANY_TARGETS", func() error {
			_, err := svc.GetCounts(ctx, &interactionv1.GetCountsRequest{TargetIds: tooMany})
			return err
		}},
		{"counts with a zero id", "INVALID_TARGET", func() error {
			_, err := svc.GetCounts(ctx, &interactionv1.GetCountsRequest{TargetIds: []int64{1, 0}})
			return err
		}},
		{"viewer state no user", "INVALID_USER", func() error {
			_, err := svc.GetViewerState(ctx, &interactionv1.GetViewerStateRequest{TargetIds: []int64{1}})
			return err
		}},
		{"viewer state of 101", "TOO_MANY_TARGETS", func() error {
			_, err := svc.GetViewerState(ctx, &interactionv1.GetViewerStateRequest{UserId: 1, TargetIds: tooMany})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); errs.Reason(err) != c.reason {
				t.Fatalf("%s = %v; want %s", c.name, err, c.reason)
			}
		})
	}
	// Nothing was written by the rejected calls.
	var n int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM likes) + (SELECT COUNT(*) FROM collects)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after rejected calls = %d, %v; want 0", n, err)
	}
	if c := counts(t, svc, 1)[1]; c.GetViews() != 0 || c.GetComments() != 0 {
		t.Fatalf("counts after rejected calls = %v; want zeros", c)
	}
}
