package biz_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/note/internal/biz"
	"github.com/redline-dev/redline/services/note/internal/data"
	"github.com/redline-dev/redline/services/note/migrations"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// onEngines runs test on shadow databases (sqldb.Shadow), which serve calls in a lane and
// out of one alike: the relay tests mix both on one outbox.
func onEngines(t *testing.T, test func(t *testing.T, db *sqldb.DB)) {
	open := func(t *testing.T, dsn string, opts ...sqldb.Option) *sqldb.DB {
		db, err := sqldb.Open(context.Background(), dsn, append(opts, sqldb.Shadow())...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	engines := map[string]func(t *testing.T) *sqldb.DB{
		"sqlite": func(t *testing.T) *sqldb.DB { return open(t, "sqlite:"+t.TempDir()+"/note.db") },
		"postgres": func(t *testing.T) *sqldb.DB {
			_, schema := sqldbtest.Postgres(t, "noterelay") // drops the shadow schema too
			return open(t, sqldbtest.PostgresURL(), sqldb.WithSchema(schema))
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			if err := sqldb.Migrate(context.Background(), db, migrations.FS); err != nil {
				t.Fatal(err)
			}
			test(t, db)
		})
	}
}

// sink is a publisher that records what it is given and fails while down.
type sink struct {
	mu   sync.Mutex
	down bool
	got  []event.NoteEvent
	lane []string
}

var errDown = errors.New("queue down")

func (s *sink) Publish(ctx context.Context, subject string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	var ev event.NoteEvent
	if err := event.Decode(subject, data, &ev); err != nil {
		return err
	}
	s.got = append(s.got, ev)
	s.lane = append(s.lane, meta.Lane(ctx))
	return nil
}

func (s *sink) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *sink) events() []event.NoteEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.NoteEvent(nil), s.got...)
}

func pending(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM note_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// newRelay returns a relay that is not started, so only the test's Flush calls publish.
func newRelay(t *testing.T, repo *data.Repo, pub biz.Publisher, clk clock.Clock) *biz.Relay {
	t.Helper()
	r := biz.NewRelay(repo, pub, biz.RelayClock(clk), biz.RelayRetry(time.Second), biz.RelayLease(10*time.Second),
		biz.RelayBatch(3))
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRelayRetriesAfterAFailedPublish(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		clk := clock.NewFake(time.Time{})
		repo := data.NewRepo(db, true)
		q := &sink{down: true}
		relay := newRelay(t, repo, q, clk)
		uc := biz.NewUsecase(repo, clk, nil)

		lane := meta.WithLane(ctx, "stress")
		n, err := uc.Create(lane, &biz.Note{AuthorID: 1, Title: "one", ProductIDs: []int64{4}})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
		if _, err := uc.Update(ctx, n.ID, 1, biz.Patch{Body: new("edited")}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond)
		if _, err := uc.Delete(ctx, n.ID, 1); err != nil {
			t.Fatal(err)
		}
		if got := pending(t, db); got != 3 {
			t.Fatalf("outbox holds %d events after create, update and delete; want 3", got)
		}

		if sent, err := relay.Flush(ctx); !errors.Is(err, errDown) || sent != 0 {
			t.Fatalf("Flush() with the queue down = %d, %v; want 0, %v", sent, err, errDown)
		}
		q.setDown(false)
		if sent, err := relay.Flush(ctx); err != nil || sent != 0 {
			t.Fatalf("Flush() before the retry time = %d, %v; want 0, nil (events wait RelayRetry)", sent, err)
		}
		clk.Advance(time.Second)
		if sent, err := relay.Flush(ctx); err != nil || sent != 3 {
			t.Fatalf("Flush() after the retry time = %d, %v; want 3, nil", sent, err)
		}
		if got := pending(t, db); got != 0 {
			t.Fatalf("outbox holds %d events after publishing; want 0", got)
		}
		got := q.events()
		ops := []event.Op{event.Created, event.Updated, event.Deleted}
		for i, ev := range got {
			if ev.Op != ops[i] || ev.ID != n.ID || ev.AuthorID != 1 {
				t.Fatalf("event %d = %+v; want %s of note %d by 1", i, ev, ops[i], n.ID)
			}
			if i > 0 && ev.Version <= got[i-1].Version {
				t.Fatalf("versions %d then %d; want strictly increasing", got[i-1].Version, ev.Version)
			}
		}
		if got[0].Version != clk.Now().Add(-2*time.Millisecond-time.Second).UnixMilli() || len(got[0].ProductIDs) != 1 {
			t.Fatalf("Created event = %+v; want Version = creation ms and the products", got[0])
		}
		if got[1].Body != "edited" || q.lane[0] != "stress" || q.lane[1] != "" {
			t.Fatalf("Updated body %q, lanes %q; want the new body, and each event in its request's lane", got[1].Body, q.lane)
		}
	})
}

func TestVersionsIncreaseWithinOneMillisecond(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Time{}) // never moves
		repo := data.NewRepo(db, true)
		uc := biz.NewUsecase(repo, clk, nil)
		n, err := uc.Create(ctx, &biz.Note{AuthorID: 2, Title: "fast"})
		if err != nil {
			t.Fatal(err)
		}
		last := n.Version
		for i := range 3 {
			u, err := uc.Update(ctx, n.ID, 2, biz.Patch{Title: new("t")})
			if err != nil || u.Version != last+1 {
				t.Fatalf("update %d: version %d, %v; want %d", i, u.Version, err, last+1)
			}
			last = u.Version
		}
	})
}

// lossyDone loses the Done of its relay, as if the process died after publishing.
type lossyDone struct{ *data.Repo }

func (lossyDone) Done(context.Context, []int64) error { return errors.New("crashed before Done") }

func TestLeaseExpiryRepublishesUnacknowledgedEvents(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Time{})
		repo := data.NewRepo(db, true)
		q := &sink{}
		crashed := biz.NewRelay(lossyDone{repo}, q, biz.RelayClock(clk), biz.RelayLease(10*time.Second))
		if _, err := biz.NewUsecase(repo, clk, nil).Create(ctx, &biz.Note{AuthorID: 3, Title: "x"}); err != nil {
			t.Fatal(err)
		}
		if sent, err := crashed.Flush(ctx); sent != 1 || err == nil {
			t.Fatalf("Flush() with a lost Done = %d, %v; want 1 and the error", sent, err)
		}
		crashed.Close()
		other := newRelay(t, repo, q, clk)
		if sent, _ := other.Flush(ctx); sent != 0 {
			t.Fatalf("another relay published %d events under a live lease; want 0", sent)
		}
		clk.Advance(10 * time.Second)
		if sent, err := other.Flush(ctx); sent != 1 || err != nil {
			t.Fatalf("Flush() after the lease = %d, %v; want the event again (at least once)", sent, err)
		}
		if got := len(q.events()); got != 2 {
			t.Fatalf("published %d times; want 2", got)
		}
	})
}

func TestConcurrentRelaysClaimDisjointEvents(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		clk := clock.NewFake(time.Time{})
		repo := data.NewRepo(db, true)
		uc := biz.NewUsecase(repo, clk, nil)
		const notes = 60
		for i := range notes {
			if _, err := uc.Create(ctx, &biz.Note{AuthorID: int64(i + 1), Title: "n"}); err != nil {
				t.Fatal(err)
			}
		}
		q := &sink{}
		relays := make([]*biz.Relay, 4)
		for i := range relays {
			relays[i] = newRelay(t, repo, q, clk)
		}
		var wg sync.WaitGroup
		for _, r := range relays {
			wg.Go(func() {
				for {
					sent, err := r.Flush(ctx)
					if err != nil {
						t.Errorf("Flush() = %v", err)
					}
					if sent == 0 || err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		if got := pending(t, db); got != 0 {
			t.Fatalf("outbox holds %d events after the relays ran dry; want 0", got)
		}
		seen := map[int64]int{}
		for _, ev := range q.events() {
			seen[ev.ID]++
		}
		if len(seen) != notes {
			t.Fatalf("published %d distinct notes; want %d", len(seen), notes)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("note %d published %d times by 4 concurrent relays; want once (claims are disjoint)", id, n)
			}
		}
	})
}

func TestNoEventsWithoutAQueue(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		uc := biz.NewUsecase(data.NewRepo(db, false), clock.NewFake(time.Time{}), nil)
		if _, err := uc.Create(context.Background(), &biz.Note{AuthorID: 1, Title: "quiet"}); err != nil {
			t.Fatal(err)
		}
		if got := pending(t, db); got != 0 {
			t.Fatalf("outbox holds %d events with events off; want 0", got)
		}
	})
}
