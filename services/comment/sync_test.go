package comment_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/comment/internal/biz"
	"github.com/redline-dev/redline/services/comment/internal/data"
	"github.com/redline-dev/redline/services/comment/internal/service"
	"github.com/redline-dev/redline/services/comment/migrations"
)

type countingCounter struct{ calls atomic.Int64 }

func (c *countingCounter) RecordComment(context.Context, int64, int32) error {
	c.calls.Add(1)
	return nil
}

type noNotes struct{}

func (noNotes) Author(context.Context, int64) (int64, error) { return 0, biz.ErrNoteNotFound }

type noQueue struct{}

func (noQueue) Publish(context.Context, string, []byte) error { return nil }

func newUsecase(t testing.TB, db *sqldb.DB, counter biz.Counter) (*biz.Usecase, *data.Repo) {
	t.Helper()
	if err := sqldb.Migrate(context.Background(), db, migrations.FS); err != nil {
		t.Fatal(err)
	}
	repo := data.NewRepo(db)
	return biz.NewUsecase(repo, noNotes{}, counter, noQueue{}, biz.Config{Clock: clock.NewFake(time.Time{}),
		Logger: log.Discard(), TopReplies: biz.DefaultTopReplies, CountLease: 30 * time.Second}), repo
}

// TestConcurrentSyncsCallOnce races many syncs of one comment, as the consumer, a Delete and
// the relays of several instances could: the lease lets exactly one call through for the
// +1, and exactly one for the -1 after the delete.
func TestConcurrentSyncsCallOnce(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			counter := &countingCounter{}
			uc, repo := newUsecase(t, b.db(t), counter)
			c := &biz.Comment{ID: 1, NoteID: 1, UserID: 1, Body: "x", CreatedAt: 1}
			if ok, err := repo.Insert(ctx, c); err != nil || !ok {
				t.Fatalf("Insert = %v, %v", ok, err)
			}
			race := func() {
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						if err := uc.SyncCount(ctx, 1); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			race()
			if n := counter.calls.Load(); n != 1 {
				t.Fatalf("16 concurrent syncs of a new comment made %d calls; want 1", n)
			}
			if _, err := repo.Delete(ctx, c, 2); err != nil {
				t.Fatal(err)
			}
			race()
			if n := counter.calls.Load(); n != 2 {
				t.Fatalf("after the delete: %d calls in all; want 2", n)
			}
			if n, err := uc.SyncPending(ctx, 10); err != nil || n != 0 {
				t.Fatalf("SyncPending = %d, %v; want nothing left", n, err)
			}
		})
	}
}

// BenchmarkListRoots lists, through the gRPC service, the first page (20 roots, each with
// its first 3 replies) of a note with 200 roots of 5 replies each, on in-memory SQLite.
func BenchmarkListRoots(b *testing.B) {
	for _, order := range []string{"hot", "new"} {
		b.Run(order, func(b *testing.B) {
			db := sqliteDB(b)
			uc, repo := newUsecase(b, db, &countingCounter{})
			ctx := context.Background()
			id := int64(0)
			for r := range 200 {
				id++
				root := id
				if _, err := repo.Insert(ctx, &biz.Comment{ID: root, NoteID: 1, UserID: 1, Body: fmt.Sprintf("root %d", r), CreatedAt: 1}); err != nil {
					b.Fatal(err)
				}
				for range 5 {
					id++
					if _, err := repo.Insert(ctx, &biz.Comment{ID: id, NoteID: 1, UserID: 2, RootID: root, Body: "reply", CreatedAt: 1}); err != nil {
						b.Fatal(err)
					}
				}
			}
			svc := service.New(uc)
			req := &commentv1.ListRootsRequest{NoteId: 1, Order: order, PageSize: 20}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := svc.ListRoots(ctx, req)
				if err != nil || len(r.GetThreads()) != 20 || len(r.GetThreads()[0].GetReplies()) != 3 || r.GetNextCursor() == "" {
					b.Fatalf("ListRoots = %v, %v", r, err)
				}
			}
		})
	}
}
