package search_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	searchv1 "github.com/redline-dev/redline/api/search/v1"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/search"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const defaultNATS = "nats://127.0.0.1:4222"

// env is a search service fed by a queue, and the queue to publish its events on.
type env struct {
	t   *testing.T
	q   mq.Queue
	svc searchv1.SearchServer
	ix  *search.Indexer
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// start runs the service on db with a queue on the NATS server at url, in a stream and
// subject prefix of the test's own. Cleanup stops the indexer, then the queue.
func start(t *testing.T, db *sqldb.DB, url string) *env {
	t.Helper()
	ctx := t.Context()
	stream := randomName("SEARCH")
	q, err := mq.Open(ctx, url, mq.WithStream(stream), mq.WithSubjectPrefix(strings.ToLower(stream)),
		mq.WithAckWait(10*time.Second))
	if err != nil {
		t.Fatalf("mq.Open(%s) = %v (start NATS with scripts/services.sh, or set REDLINE_SKIP_INTEGRATION=1)", url, err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("queue Close = %v", err)
		}
		deleteStream(t, url, stream)
	})
	svc, ix, err := search.New(ctx, db, q, search.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("search.New = %v", err)
	}
	t.Cleanup(func() {
		if err := ix.Close(); err != nil {
			t.Errorf("Indexer.Close = %v", err)
		}
	})
	return &env{t: t, q: q, svc: svc, ix: ix}
}

// deleteStream removes a test's stream from a shared server (an embedded one goes anyway).
func deleteStream(t *testing.T, url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return // the embedded server is already gone
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("jetstream: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

func handled(s search.IndexerStats) uint64 { return s.Applied + s.Stale + s.Dropped }

// publish puts raw data on subject and waits, bounded, until the indexer has handled it.
func (e *env) publish(subject string, data []byte) search.IndexerStats {
	e.t.Helper()
	before := handled(e.ix.Stats())
	if err := e.q.Publish(e.t.Context(), subject, data); err != nil {
		e.t.Fatalf("Publish(%s) = %v", subject, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for handled(e.ix.Stats()) <= before {
		if time.Now().After(deadline) {
			e.t.Fatalf("event on %s not handled within 15s; stats %+v", subject, e.ix.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return e.ix.Stats()
}

func (e *env) send(subject string, ev any) search.IndexerStats {
	e.t.Helper()
	data, err := event.Encode(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.publish(subject, data)
}

func (e *env) note(ev event.NoteEvent) search.IndexerStats {
	e.t.Helper()
	return e.send(event.Note, ev)
}

func (e *env) product(ev event.ProductEvent) search.IndexerStats {
	e.t.Helper()
	return e.send(event.Product, ev)
}

func (e *env) search(q string, kind searchv1.Kind) []*searchv1.Hit {
	e.t.Helper()
	r, err := e.svc.Search(e.t.Context(), &searchv1.SearchRequest{Q: q, Kind: kind})
	if err != nil {
		e.t.Fatalf("Search(%q, %v) = %v", q, kind, err)
	}
	return r.GetHits()
}

// ids returns the ids of hits, in order.
func ids(hits []*searchv1.Hit) []int64 {
	out := make([]int64, len(hits))
	for i, h := range hits {
		out[i] = h.GetId()
	}
	return out
}

func (e *env) want(q string, kind searchv1.Kind, want ...int64) []*searchv1.Hit {
	e.t.Helper()
	hits := e.search(q, kind)
	got := ids(hits)
	if len(got) != len(want) {
		e.t.Fatalf("Search(%q, %v) ids = %v; want %v", q, kind, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			e.t.Fatalf("Search(%q, %v) ids = %v; want %v", q, kind, got, want)
		}
	}
	return hits
}

const all = searchv1.Kind_KIND_UNSPECIFIED

// behaviour runs against every backend. Each case owns its ids and its words.
var behaviour = map[string]func(e *env){
	"latin words, kinds and fields": func(e *env) {
		n, p, author := id.New(), id.New(), id.New()
		e.note(event.NoteEvent{Op: event.Created, ID: n, AuthorID: author, Title: "Best Hiking Boots",
			Body: "Waterproof leather, tested on three trails.", Tags: []string{"outdoor"}, CreatedMS: 1000, Version: 1000})
		e.product(event.ProductEvent{Op: event.Created, ID: p, Title: "Hiking Poles", Description: "carbon, foldable",
			MinPrice: 12900, Currency: "CNY", Version: 2000})
		hits := e.want("hiking", all, p, n) // equal score (title), the product is newer
		if h := hits[0]; h.GetKind() != searchv1.Kind_KIND_PRODUCT || h.GetTitle() != "Hiking Poles" ||
			h.GetMinPrice() != 12900 || h.GetCurrency() != "CNY" || h.GetScore() != 2 {
			e.t.Fatalf("product hit = %v", h)
		}
		if h := hits[1]; h.GetKind() != searchv1.Kind_KIND_NOTE || h.GetAuthorId() != author || h.GetRecencyMs() != 1000 {
			e.t.Fatalf("note hit = %v", h)
		}
		e.want("hiking", searchv1.Kind_KIND_NOTE, n)
		e.want("hiking", searchv1.Kind_KIND_PRODUCT, p)
		e.want("HIKING boots!", all, n)
		e.want("leather OUTDOOR", all, n)
		e.want("foldable", all, p)
		// Not found is an empty page, not an error.
		e.want("hiking sandals", all)
		e.want("nosuchwordanywhere", all)
	},
	"chinese": func(e *env) {
		n, p := id.New(), id.New()
		e.note(event.NoteEvent{Op: event.Created, ID: n, AuthorID: 1, Title: "上海美食探店",
			Body: "周末去了一家很棒的小笼包店，排队一小时。", Tags: []string{"美食"}, CreatedMS: 1000, Version: 1000})
		e.product(event.ProductEvent{Op: event.Created, ID: p, Title: "无线蓝牙耳机 Pro", Description: "主动降噪，续航30小时",
			MinPrice: 39900, Currency: "CNY", Version: 1000})
		e.want("美食", all, n)
		e.want("小笼包", all, n)
		e.want("上海 小笼包", all, n)
		e.want("美食探店", all, n)
		e.want("店", all, n) // one character finds it as a word of its own
		e.want("蓝牙耳机", all, p)
		e.want("降噪 pro", all, p)
		e.want("小时", all, p, n) // each has it once in its body, both at 1000: product before note
		e.want("北京美食", all)
		e.want("小笼包子", all)
	},
	"update replaces": func(e *env) {
		n := id.New()
		e.note(event.NoteEvent{Op: event.Created, ID: n, Title: "crimsonq dress", CreatedMS: 1, Version: 1})
		e.want("crimsonq", all, n)
		e.note(event.NoteEvent{Op: event.Updated, ID: n, Title: "azureq skirt", CreatedMS: 1, Version: 2})
		e.want("crimsonq", all)
		if h := e.want("azureq", all, n); h[0].GetTitle() != "azureq skirt" {
			e.t.Fatalf("title after update = %q", h[0].GetTitle())
		}
	},
	"delete removes, and a late create does not resurrect": func(e *env) {
		n, p := id.New(), id.New()
		created := event.NoteEvent{Op: event.Created, ID: n, Title: "ephemeralq note", CreatedMS: 1, Version: 1}
		e.note(created)
		e.product(event.ProductEvent{Op: event.Created, ID: p, Title: "ephemeralq product", Version: 1})
		e.want("ephemeralq", all, p, n)
		e.note(event.NoteEvent{Op: event.Deleted, ID: n, Version: 2})
		e.product(event.ProductEvent{Op: event.Deleted, ID: p, Version: 2})
		e.want("ephemeralq", all)
		before := e.ix.Stats().Stale
		if st := e.note(created); st.Stale != before+1 {
			e.t.Fatalf("stale count after a late create = %d; want %d", st.Stale, before+1)
		}
		e.want("ephemeralq", all)
	},
	"stale version ignored": func(e *env) {
		n := id.New()
		e.note(event.NoteEvent{Op: event.Updated, ID: n, Title: "alphaq", CreatedMS: 1, Version: 3})
		e.note(event.NoteEvent{Op: event.Updated, ID: n, Title: "betaq", CreatedMS: 1, Version: 2})
		e.want("betaq", all)
		e.want("alphaq", all, n)
	},
	"redelivery is idempotent": func(e *env) {
		n := id.New()
		ev := event.NoteEvent{Op: event.Created, ID: n, Title: "twiceq twiceq", Body: "twiceq", CreatedMS: 1, Version: 1}
		first := e.note(ev)
		score := e.want("twiceq", all, n)[0].GetScore()
		second := e.note(ev)
		if second.Applied != first.Applied || second.Stale != first.Stale+1 {
			e.t.Fatalf("stats after a redelivery = %+v; before %+v; want one more stale, no more applied", second, first)
		}
		if got := e.want("twiceq", all, n)[0].GetScore(); got != score || score != 5 {
			e.t.Fatalf("score after redelivery = %d; before %d; want 5 both times", got, score)
		}
	},
	"ranking": func(e *env) {
		inBody, inTitle, newerInBody := id.New(), id.New(), id.New()
		e.note(event.NoteEvent{Op: event.Created, ID: inBody, Title: "a", Body: "zebraq", CreatedMS: 10, Version: 10})
		e.note(event.NoteEvent{Op: event.Created, ID: inTitle, Title: "zebraq", CreatedMS: 5, Version: 5})
		e.note(event.NoteEvent{Op: event.Created, ID: newerInBody, Title: "b", Body: "zebraq", CreatedMS: 20, Version: 20})
		e.want("zebraq", all, inTitle, newerInBody, inBody)
	},
	"paging": func(e *env) {
		const n = 23
		want := make([]int64, n)
		for i := range n {
			want[n-1-i] = id.New()
			e.note(event.NoteEvent{Op: event.Created, ID: want[n-1-i], Title: "pagingq", CreatedMS: int64(100 + i), Version: 1})
		}
		var got []int64
		cursor, pages := "", 0
		for {
			r, err := e.svc.Search(e.t.Context(), &searchv1.SearchRequest{Q: "pagingq", PageSize: 10, Cursor: cursor})
			if err != nil {
				e.t.Fatalf("Search page %d = %v", pages, err)
			}
			pages++
			got = append(got, ids(r.GetHits())...)
			if cursor = r.GetNextCursor(); cursor == "" || pages > 5 {
				break
			}
		}
		if pages != 3 || len(got) != n {
			e.t.Fatalf("%d pages with %d hits; want 3 pages with %d", pages, len(got), n)
		}
		for i := range want {
			if got[i] != want[i] {
				e.t.Fatalf("paged ids = %v; want newest first %v", got, want)
			}
		}
		// A cursor belongs to its query.
		r, _ := e.svc.Search(e.t.Context(), &searchv1.SearchRequest{Q: "pagingq", PageSize: 10})
		_, err := e.svc.Search(e.t.Context(), &searchv1.SearchRequest{Q: "zebraq", Cursor: r.GetNextCursor()})
		wantErr(e.t, "Search with another query's cursor", err, "BAD_CURSOR")
	},
	"events that cannot be indexed are dropped": func(e *env) {
		before := e.ix.Stats().Dropped
		e.publish(event.Note, []byte("not json"))
		e.note(event.NoteEvent{Op: event.Created, ID: 0, Title: "droppedq", Version: 1})
		e.product(event.ProductEvent{Op: "archived", ID: id.New(), Title: "droppedq", Version: 1})
		if d := e.ix.Stats().Dropped; d != before+3 {
			e.t.Fatalf("dropped = %d; want %d", d, before+3)
		}
		e.want("droppedq", all)
	},
	"validation": func(e *env) {
		for _, tc := range []struct {
			name   string
			req    *searchv1.SearchRequest
			reason string
		}{
			{"empty q", &searchv1.SearchRequest{}, "INVALID_QUERY"},
			{"long q", &searchv1.SearchRequest{Q: strings.Repeat("x", 101)}, "INVALID_QUERY"},
			{"only punctuation", &searchv1.SearchRequest{Q: "？！ ..."}, "NO_TERMS"},
			{"unknown kind", &searchv1.SearchRequest{Q: "boots", Kind: 99}, "INVALID_KIND"},
			{"bad cursor", &searchv1.SearchRequest{Q: "boots", Cursor: "bm90LWEtY3Vyc29y"}, "BAD_CURSOR"},
		} {
			_, err := e.svc.Search(e.t.Context(), tc.req)
			wantErr(e.t, tc.name, err, tc.reason)
		}
	},
}

func wantErr(t *testing.T, what string, err error, reason string) {
	t.Helper()
	if errs.Code(err) != codes.InvalidArgument || errs.Reason(err) != reason {
		t.Fatalf("%s = %v; want INVALID_ARGUMENT %s", what, err, reason)
	}
}

func runBehaviour(t *testing.T, e *env) {
	for name, tc := range behaviour {
		t.Run(name, func(t *testing.T) {
			sub := *e
			sub.t = t
			tc(&sub)
		})
	}
}

// TestSQLiteEmbeddedNATS runs every behaviour on in-memory SQLite fed by an embedded NATS.
func TestSQLiteEmbeddedNATS(t *testing.T) {
	srv, err := mq.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	db, err := sqldb.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	runBehaviour(t, start(t, db, srv.URL()))
}

// TestPostgresNATS runs every behaviour on real PostgreSQL, in a schema of its own, fed by
// the real NATS server (REDLINE_TEST_NATS, default nats://127.0.0.1:4222) in a stream of its
// own.
func TestPostgresNATS(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" || os.Getenv("REDLINE_TEST_NATS") == "skip" {
		t.Skip("integration tests skipped")
	}
	url := os.Getenv("REDLINE_TEST_NATS")
	if url == "" {
		url = defaultNATS
	}
	db, _ := sqldbtest.Postgres(t, "search")
	runBehaviour(t, start(t, db, url))
}

// TestRestartResumes stops the service, publishes while it is down, and starts it again on
// the same database and durable: the events published meanwhile are indexed, and the ones
// indexed before are not applied twice.
func TestRestartResumes(t *testing.T) {
	srv, err := mq.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	db, err := sqldb.Open(t.Context(), "sqlite:"+t.TempDir()+"/search.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	q, err := mq.Open(ctx, srv.URL(), mq.WithStream("S"), mq.WithSubjectPrefix("s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	logger := search.WithLogger(slog.New(slog.DiscardHandler))
	svc, ix, err := search.New(ctx, db, q, logger)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, q: q, svc: svc, ix: ix}
	first, second := id.New(), id.New()
	e.note(event.NoteEvent{Op: event.Created, ID: first, Title: "resumeq", CreatedMS: 1, Version: 1})
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := event.Encode(event.NoteEvent{Op: event.Created, ID: second, Title: "resumeq", CreatedMS: 2, Version: 2})
	if err := q.Publish(ctx, event.Note, data); err != nil {
		t.Fatal(err)
	}
	svc, ix, err = search.New(ctx, db, q, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	e = &env{t: t, q: q, svc: svc, ix: ix}
	deadline := time.Now().Add(15 * time.Second)
	for ix.Stats().Applied < 1 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	e.want("resumeq", all, second, first)
	if st := ix.Stats(); st.Applied != 1 || st.Stale != 0 {
		t.Fatalf("restarted indexer stats = %+v; want exactly the one event published while it was down", st)
	}
}

func TestNewNeedsQueue(t *testing.T) {
	db, err := sqldb.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := search.New(t.Context(), db, nil); err == nil {
		t.Fatal("search.New without a queue = nil error; want one")
	}
}
