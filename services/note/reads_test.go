package note_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/bloom"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/hotkey"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/note"
)

// readEnv is a note service with the whole read path: id filter, hot keys on a fake clock
// (so the local copies' TTL is decided by the test, not by the machine's speed), and a
// memory cache.
func readEnv(t *testing.T, notes int) (*note.Server, []int64, *hotkey.Local) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	ids, err := bloom.New(100_000, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	hot := hotkey.NewLocal(hotkey.WithK(50), hotkey.WithClock(clock.NewFake(time.Unix(1e9, 0))))
	svc, err := note.New(ctx, db, note.WithCache(c), note.WithHotKeys(hot), note.WithIDFilter(ids))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	created := make([]int64, notes)
	for i := range created {
		n, err := svc.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: 1 + int64(i%50), Title: "note"})
		if err != nil {
			t.Fatal(err)
		}
		created[i] = n.GetId()
	}
	return svc, created, hot
}

func TestHotNotesAreServedFromTheProcess(t *testing.T) {
	ctx := context.Background()
	svc, ids, hot := readEnv(t, 2000)
	r := rand.New(rand.NewPCG(7, 7))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(ids)-1))
	const reads = 20_000
	before := svc.ReadStats()
	for range reads {
		id := ids[zipf.Uint64()]
		n, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: id})
		if err != nil || n.GetId() != id {
			t.Fatalf("GetNote(%d) = %v, %v", id, n, err)
		}
	}
	after, st := svc.ReadStats(), hot.Stats()
	db := after.DBReads - before.DBReads
	t.Logf("%d Zipf(1.1) reads over %d notes: local hit ratio %.3f (%d hits), cache hits %d, database reads %d, %d keys promoted",
		reads, len(ids), st.HitRatio, st.Hits, after.CacheHits-before.CacheHits, db, len(st.Promoted))
	if st.HitRatio < 0.5 {
		t.Errorf("local hit ratio %.3f; want the hottest keys served from the process (>= 0.5)", st.HitRatio)
	}
	if db > uint64(len(ids)) {
		t.Errorf("%d database reads for %d distinct notes; want at most one each (cache-aside + singleflight)", db, len(ids))
	}
	// The hottest note is promoted; an update is visible at once through the read path.
	hottest := ids[0]
	title := "changed"
	if _, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: hottest, AuthorId: 1, Title: &title}); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: hottest}); err != nil || n.GetTitle() != "changed" {
		t.Fatalf("GetNote after update = %v, %v; want the new title, not the hot copy", n, err)
	}
	if _, err := svc.DeleteNote(ctx, &notev1.DeleteNoteRequest{Id: hottest, AuthorId: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: hottest}); errs.Reason(err) != "NOTE_NOT_FOUND" {
		t.Fatalf("GetNote after delete = %v; want NOTE_NOT_FOUND", err)
	}
}

func TestMissingIDsDoNotReachTheDatabase(t *testing.T) {
	ctx := context.Background()
	svc, ids, _ := readEnv(t, 500)
	exists := map[int64]bool{}
	for _, id := range ids {
		exists[id] = true
	}
	r := rand.New(rand.NewPCG(1, 2))
	before := svc.ReadStats()
	const missing = 10_000
	for i := 0; i < missing; {
		id := ids[0] + 1 + r.Int64N(1<<40)
		if exists[id] {
			continue
		}
		i++
		if _, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: id}); errs.Reason(err) != "NOTE_NOT_FOUND" {
			t.Fatalf("GetNote(missing %d) = %v; want NOTE_NOT_FOUND", id, err)
		}
	}
	after := svc.ReadStats()
	db, rejected := after.DBReads-before.DBReads, after.BloomRejected-before.BloomRejected
	t.Logf("%d reads of missing ids: %d answered by the id filter, %d reached the database (filter sized for 1%%)", missing, rejected, db)
	if db > missing*3/100 {
		t.Errorf("%d of %d missing-id reads reached the database; want about the filter's 1%% false-positive rate", db, missing)
	}
	// Batch reads skip them too, and keep request order for the ones that exist.
	got, err := svc.GetNotes(ctx, &notev1.GetNotesRequest{Ids: []int64{ids[3], ids[0] + 1<<41, ids[1], ids[3]}})
	if err != nil || len(got.GetNotes()) != 2 || got.GetNotes()[0].GetId() != ids[3] || got.GetNotes()[1].GetId() != ids[1] {
		t.Fatalf("GetNotes = %v, %v; want notes 3 and 1 in that order, once each", got, err)
	}
	if _, err := svc.GetNotes(ctx, &notev1.GetNotesRequest{Ids: make([]int64, 101)}); errs.Reason(err) != "TOO_MANY_IDS" {
		t.Fatalf("GetNotes(101 ids) = %v; want TOO_MANY_IDS", err)
	}
}
