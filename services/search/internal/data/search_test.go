package data

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/search/internal/biz"
	"github.com/redline-dev/redline/services/search/migrations"
)

func migrated(t testing.TB, db *sqldb.DB) *Repo {
	t.Helper()
	if err := sqldb.Migrate(context.Background(), db, migrations.FS); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	return NewRepo(db)
}

func openSQLite(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func noteDoc(t testing.TB, id, version int64, title string) *biz.Doc {
	t.Helper()
	d, err := biz.NoteDoc(event.NoteEvent{Op: event.Updated, ID: id, Title: title, CreatedMS: 1, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestConcurrentVersions applies twenty versions of one document at once, in random order,
// from twenty goroutines: whatever the interleaving, the newest version is what remains, with
// its postings only. On PostgreSQL the upsert's row lock is what makes this hold.
func TestConcurrentVersions(t *testing.T) {
	backends := map[string]func(t *testing.T) *sqldb.DB{
		"sqlite-file": func(t *testing.T) *sqldb.DB {
			return openSQLite(t, "sqlite:"+filepath.Join(t.TempDir(), "search.db"))
		},
		"postgres": func(t *testing.T) *sqldb.DB { db, _ := sqldbtest.Postgres(t, "searchdata"); return db },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			repo := migrated(t, open(t))
			const versions = 20
			order := rand.Perm(versions)
			var wg sync.WaitGroup
			errc := make(chan error, versions)
			for _, v := range order {
				wg.Go(func() {
					_, err := repo.Apply(t.Context(), noteDoc(t, 77, int64(v+1), fmt.Sprintf("versionq%d", v+1)))
					errc <- err
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatalf("Apply = %v", err)
				}
			}
			for v := 1; v <= versions; v++ {
				hits, err := repo.Search(t.Context(), biz.Query{Terms: []string{fmt.Sprintf("versionq%d", v)}, Limit: 5})
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 1, false: 0}[v == versions]; len(hits) != want {
					t.Fatalf("hits of version %d = %v; want %d (only the newest version stays)", v, hits, want)
				}
			}
			ok, err := repo.Apply(t.Context(), noteDoc(t, 77, versions, "again"))
			if err != nil || ok {
				t.Fatalf("Apply of the same version again = %v, %v; want false", ok, err)
			}
		})
	}
}

// corpus fills repo with n notes of mixed Chinese and latin text drawn from small
// vocabularies: a worst case, in which most query terms are in a large share of the notes
// and a query scores thousands of them. One note in a hundred has the rare word "rareq".
func corpus(b *testing.B, repo *Repo, n int) {
	b.Helper()
	zh := []string{"上海", "美食", "探店", "小笼包", "咖啡", "周末", "旅行", "穿搭", "护肤", "健身", "北京", "火锅", "露营", "拍照", "好物"}
	en := []string{"coffee", "hiking", "boots", "travel", "skincare", "outfit", "camera", "weekend", "review", "vlog"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(words []string, k int) string {
		out := make([]string, k)
		for i := range out {
			out[i] = words[r.IntN(len(words))]
		}
		return strings.Join(out, "")
	}
	for i := range n {
		title := pick(zh, 3) + " " + pick(en, 1)
		if i%100 == 0 {
			title += " rareq"
		}
		ev := event.NoteEvent{Op: event.Created, ID: int64(i + 1), AuthorID: int64(i%97 + 1),
			Title: title, Body: pick(zh, 20) + " " + strings.Join(strings.Fields(pick(en, 1)), " "),
			CreatedMS: int64(1_700_000_000_000 + i), Version: 1}
		d, err := biz.NoteDoc(ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := repo.Apply(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSearchQuery runs first-page queries on a file SQLite index of 5000 notes.
func BenchmarkSearchQuery(b *testing.B) {
	repo := migrated(b, openSQLite(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db")))
	corpus(b, repo, 5000)
	for _, q := range []string{"rareq", "rareq hiking", "hiking", "小笼包", "上海美食", "露营 camera", "nosuchterm"} {
		b.Run(q, func(b *testing.B) {
			query, err := biz.ParseQuery(q, biz.KindAll, 20, "")
			if err != nil {
				b.Fatal(err)
			}
			query.Limit++
			var hits []biz.Hit
			for b.Loop() {
				if hits, err = repo.Search(context.Background(), query); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(hits)), "hits")
		})
	}
}
