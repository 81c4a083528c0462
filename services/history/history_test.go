package history_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	historyv1 "github.com/redline-dev/redline/api/history/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/history"
	"github.com/redline-dev/redline/services/history/internal/biz"
	"github.com/redline-dev/redline/services/history/internal/data"
	"github.com/redline-dev/redline/services/history/internal/service"
	"github.com/redline-dev/redline/services/history/migrations"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openSQLite(t testing.TB) *sqldb.DB {
	db, err := sqldb.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// onEngines runs test on in-memory SQLite and on real PostgreSQL in a schema of its own
// (skipped with REDLINE_SKIP_INTEGRATION=1).
func onEngines(t *testing.T, test func(t *testing.T, db *sqldb.DB)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		db, _ := sqldbtest.Postgres(t, "history")
		test(t, db)
	})
}

// newService returns the service on db with a fake clock whose interval never comes, so
// views reach the database only through MaxPending, Close or the test.
func newService(t *testing.T, db *sqldb.DB, fake *clock.Fake, opts ...history.Option) (historyv1.HistoryServer, *history.Writer) {
	t.Helper()
	svc, w, err := history.New(context.Background(), db,
		append([]history.Option{history.WithClock(fake), history.FlushInterval(time.Hour), history.FlushTimeout(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return svc, w
}

func list(t *testing.T, svc historyv1.HistoryServer, user int64) []*historyv1.Entry {
	t.Helper()
	var out []*historyv1.Entry
	cursor := ""
	for range 100 {
		r, err := svc.List(context.Background(), &historyv1.ListRequest{UserId: user, PageSize: 50, Cursor: cursor})
		if err != nil {
			t.Fatalf("List(%d) = %v", user, err)
		}
		out = append(out, r.GetEntries()...)
		if cursor = r.GetNextCursor(); cursor == "" {
			return out
		}
	}
	t.Fatal("List did not end after 100 pages")
	return nil
}

func notes(es []*historyv1.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.GetNoteId()
	}
	return out
}

func storedRows(t *testing.T, db *sqldb.DB, user int64) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM history WHERE user_id = ?`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// countingStore wraps the real store and counts flushes and (a bound on) the statements
// they run.
type countingStore struct {
	biz.Store
	flushes, statements, rows atomic.Int64
}

func (s *countingStore) Upsert(ctx context.Context, views []biz.View, keep int) error {
	s.flushes.Add(1)
	s.statements.Add(int64(data.MaxStatements(views)))
	s.rows.Add(int64(len(views)))
	return s.Store.Upsert(ctx, views, keep)
}

// TestBurstIsBatched fires 10,000 views by 100 users of 50 notes, in 10 rounds of 1,000
// concurrent calls with the clock a second later each round, and checks that the database
// saw a bounded number of statements and ends holding each user's latest view of each note.
func TestBurstIsBatched(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
			t.Fatal(err)
		}
		store := &countingStore{Store: data.NewRepo(db)}
		fake := clock.NewFake(time.Time{})
		const maxPending = 1000
		buf := biz.NewBuffer(store, biz.WithClock(fake), biz.FlushInterval(time.Hour), biz.MaxPending(maxPending),
			biz.FlushTimeout(time.Minute)) // generous: the race detector on a busy machine is slow
		svc := service.New(biz.NewUsecase(store, buf, fake))

		type key struct{ user, note int64 }
		rng := rand.New(rand.NewPCG(1, 2))
		want := map[key]int64{}
		const calls, rounds = 10000, 10
		var failures atomic.Int64
		for range rounds {
			fake.Advance(time.Second)
			now := fake.Now().UnixMilli()
			round := make([]key, calls/rounds)
			for i := range round {
				round[i] = key{1 + rng.Int64N(100), 1 + rng.Int64N(50)}
				want[round[i]] = now
			}
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < len(round); i += 8 {
						if _, err := svc.RecordView(ctx, &historyv1.RecordViewRequest{UserId: round[i].user, NoteId: round[i].note}); err != nil {
							failures.Add(1)
						}
					}
				})
			}
			wg.Wait()
		}
		if err := buf.Close(); err != nil {
			t.Fatal(err)
		}
		if failures.Load() != 0 {
			t.Fatalf("%d RecordView calls failed", failures.Load())
		}
		// A flush starts only when maxPending new pairs are pending (or at Close), and a
		// second kick can queue behind one: at most 2 flushes per maxPending new pairs, plus
		// Close. Each flush runs one upsert per 500 views, and a count and at most one trim
		// per 200 users.
		flushes, statements, rows := store.flushes.Load(), store.statements.Load(), store.rows.Load()
		maxFlushes := int64(2*calls/maxPending + 1)
		maxStatements := rows/data.UpsertRows + 3*flushes
		if flushes > maxFlushes || statements > maxStatements || statements >= calls/100 {
			t.Fatalf("10,000 views: %d flushes, %d statements, %d rows; want ≤ %d flushes and ≤ %d statements",
				flushes, statements, rows, maxFlushes, maxStatements)
		}
		t.Logf("10,000 views over %d pairs: %d flushes, %d statements, %d rows written", len(want), flushes, statements, rows)

		got := map[key]int64{}
		q, err := db.QueryContext(ctx, `SELECT user_id, note_id, viewed_at FROM history`)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		for q.Next() {
			var k key
			var at int64
			if err := q.Scan(&k.user, &k.note, &at); err != nil {
				t.Fatal(err)
			}
			got[k] = at
		}
		if err := q.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("stored %d pairs; want %d", len(got), len(want))
		}
		for k, at := range want {
			if got[k] != at {
				t.Fatalf("stored view of %v at %d; want %d (the last round that viewed it)", k, got[k], at)
			}
		}
	})
}

func TestListShowsBufferedViews(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		fake := clock.NewFake(time.Time{})
		svc, w := newService(t, db, fake)
		view := func(user, note int64) {
			t.Helper()
			fake.Advance(time.Millisecond)
			if _, err := svc.RecordView(ctx, &historyv1.RecordViewRequest{UserId: user, NoteId: note}); err != nil {
				t.Fatal(err)
			}
		}
		view(1, 10)
		view(1, 11)
		view(2, 10)
		if n := storedRows(t, db, 1); n != 0 {
			t.Fatalf("stored rows before any flush = %d; want 0", n)
		}
		if got := notes(list(t, svc, 1)); len(got) != 2 || got[0] != 11 || got[1] != 10 {
			t.Fatalf("List(1) from the buffer = %v; want [11 10]", got)
		}
		if err := w.Close(); err != nil { // the final flush
			t.Fatal(err)
		}
		if n := storedRows(t, db, 1); n != 2 {
			t.Fatalf("stored rows after Close = %d; want 2", n)
		}
		// A restart reads back what was flushed.
		again, _ := newService(t, db, fake)
		es := list(t, again, 1)
		if got := notes(es); len(got) != 2 || got[0] != 11 || es[0].GetViewedAtMs() != fake.Now().Add(-time.Millisecond).UnixMilli() {
			t.Fatalf("List(1) after restart = %v", es)
		}
		if got := list(t, again, 99); len(got) != 0 {
			t.Fatalf("List of a user without history = %v; want empty", got)
		}
	})
}

func TestClearWinsOverBufferedViews(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		fake := clock.NewFake(time.Time{})
		a, wa := newService(t, db, fake)
		b, wb := newService(t, db, fake) // a second instance on the same database
		view := func(svc historyv1.HistoryServer, note int64) {
			t.Helper()
			fake.Advance(time.Millisecond)
			if _, err := svc.RecordView(ctx, &historyv1.RecordViewRequest{UserId: 1, NoteId: note}); err != nil {
				t.Fatal(err)
			}
		}
		view(a, 1)
		if err := wa.Close(); err != nil { // note 1 stored
			t.Fatal(err)
		}
		a, wa = newService(t, db, fake)
		view(a, 2) // buffered in a
		view(b, 3) // buffered in b, which the Clear below does not reach
		if _, err := a.Clear(ctx, &historyv1.ClearRequest{UserId: 1}); err != nil {
			t.Fatal(err)
		}
		if got := list(t, a, 1); len(got) != 0 {
			t.Fatalf("List after Clear = %v; want empty", notes(got))
		}
		if err := wa.Close(); err != nil {
			t.Fatal(err)
		}
		if err := wb.Close(); err != nil { // b writes its stale view of note 3 after the Clear
			t.Fatal(err)
		}
		c, _ := newService(t, db, fake)
		if got := list(t, c, 1); len(got) != 0 {
			t.Fatalf("List after the other instance flushed = %v; want empty: the clear wins", notes(got))
		}
		if n := storedRows(t, db, 1); n != 1 {
			t.Fatalf("stored rows = %d; want 1 (b's late row, hidden)", n)
		}
		view(c, 4) // after the clear
		if got := notes(list(t, c, 1)); len(got) != 1 || got[0] != 4 {
			t.Fatalf("List after a new view = %v; want [4]", got)
		}
	})
}

func TestKeepTrimsEachUser(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		fake := clock.NewFake(time.Time{})
		svc, w := newService(t, db, fake, history.Keep(5))
		for note := int64(1); note <= 8; note++ {
			fake.Advance(time.Millisecond)
			for _, user := range []int64{1, 2} {
				if _, err := svc.RecordView(ctx, &historyv1.RecordViewRequest{UserId: user, NoteId: note}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		again, _ := newService(t, db, fake, history.Keep(5))
		for _, user := range []int64{1, 2} {
			if got := notes(list(t, again, user)); len(got) != 5 || got[0] != 8 || got[4] != 4 {
				t.Fatalf("user %d history = %v; want [8 7 6 5 4]", user, got)
			}
			if n := storedRows(t, db, user); n != 5 {
				t.Fatalf("user %d: %d stored rows; want 5", user, n)
			}
		}
	})
}

func TestValidation(t *testing.T) {
	svc, _ := newService(t, openSQLite(t), clock.NewFake(time.Time{}))
	ctx := context.Background()
	cases := []struct {
		name, reason string
		call         func() error
	}{
		{"view without user", "INVALID_USER", func() error {
			_, err := svc.RecordView(ctx, &historyv1.RecordViewRequest{NoteId: 1})
			return err
		}},
		{"view without note", "INVALID_NOTE", func() error {
			_, err := svc.RecordView(ctx, &historyv1.RecordViewRequest{UserId: 1, NoteId: -1})
			return err
		}},
		{"list without user", "INVALID_USER", func() error {
			_, err := svc.List(ctx, &historyv1.ListRequest{})
			return err
		}},
		{"list with a foreign cursor", "BAD_CURSOR", func() error {
			_, err := svc.List(ctx, &historyv1.ListRequest{UserId: 1, Cursor: "bjE6MTIz"})
			return err
		}},
		{"clear without user", "INVALID_USER", func() error {
			_, err := svc.Clear(ctx, &historyv1.ClearRequest{UserId: 0})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); errs.Reason(err) != c.reason {
				t.Fatalf("reason = %q (%v); want %q", errs.Reason(err), err, c.reason)
			}
		})
	}
}

// BenchmarkRecordView measures the write path under parallel load: memory only, with the
// buffer flushing to in-memory SQLite in the background on the wall clock.
func BenchmarkRecordView(b *testing.B) {
	svc, w, err := history.New(context.Background(), openSQLite(b), history.FlushInterval(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		base := seq.Add(1) * 7919
		i := int64(0)
		for pb.Next() {
			i++
			req := &historyv1.RecordViewRequest{UserId: 1 + (base+i)%10000, NoteId: 1 + (i*31)%1000}
			if _, err := svc.RecordView(context.Background(), req); err != nil && errs.Reason(err) != "HISTORY_BUFFER_FULL" {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	s := w.Stats()
	b.ReportMetric(float64(s.Dropped), "dropped")
	b.ReportMetric(float64(s.Flushes), "flushes")
}
