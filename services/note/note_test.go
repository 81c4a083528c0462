package note_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/note"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a database and a queue URL: SQLite with an embedded NATS, or PostgreSQL with the
// real NATS at 127.0.0.1:4222 (REDLINE_TEST_NATS), each test with its own schema and stream.
type env struct {
	db  *sqldb.DB
	url string
}

func engines() map[string]func(t *testing.T) env {
	return map[string]func(t *testing.T) env{
		"sqlite": func(t *testing.T) env {
			db, err := sqldb.Open(context.Background(), "sqlite:"+t.TempDir()+"/note.db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			e, err := mq.StartEmbedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			return env{db: db, url: e.URL()}
		},
		"postgres": func(t *testing.T) env {
			db, _ := sqldbtest.Postgres(t, "note")
			url := os.Getenv("REDLINE_TEST_NATS")
			if url == "" {
				url = "nats://127.0.0.1:4222"
			}
			return env{db: db, url: url}
		},
	}
}

func onEngines(t *testing.T, test func(t *testing.T, e env)) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// openQueue opens a queue on a stream and subject prefix of the test's own, deleted at
// cleanup.
func openQueue(t *testing.T, url, stream string) *mq.JetStream {
	t.Helper()
	q, err := mq.Open(t.Context(), url, mq.WithStream(stream), mq.WithSubjectPrefix(strings.ToLower(stream)))
	if err != nil {
		t.Fatalf("mq.Open(%s) = %v (start NATS with scripts/services.sh)", url, err)
	}
	t.Cleanup(func() {
		q.Close()
		nc, err := nats.Connect(url)
		if err != nil {
			return // the server is gone, and its stream with it
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			_ = js.DeleteStream(context.Background(), stream)
		}
	})
	return q
}

// collector subscribes to note events and keeps them.
type collector struct {
	mu  sync.Mutex
	got []event.NoteEvent
}

func collect(t *testing.T, q mq.Queue) *collector {
	t.Helper()
	c := &collector{}
	sub, err := q.Subscribe(t.Context(), event.Note, "test", func(_ context.Context, m mq.Message) error {
		var ev event.NoteEvent
		if err := event.Decode(m.Subject, m.Data, &ev); err != nil {
			return err
		}
		c.mu.Lock()
		c.got = append(c.got, ev)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Stop() })
	return c
}

func (c *collector) events() []event.NoteEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// waitFor polls cond every 10ms until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newNote(t *testing.T, db *sqldb.DB, opts ...note.Option) *note.Server {
	t.Helper()
	svc, err := note.New(context.Background(), db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func TestNotesWithProducts(t *testing.T) {
	onEngines(t, func(t *testing.T, e env) {
		ctx := context.Background()
		svc := newNote(t, e.db) // no queue: the constructor the stack uses today
		n, err := svc.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: 1, Title: "Haul", Tags: []string{"#Shop"},
			ProductIds: []int64{11, 12, 11}})
		if err != nil || !slices.Equal(n.GetProductIds(), []int64{11, 12}) {
			t.Fatalf("CreateNote = %v, %v; want products [11 12]", n, err)
		}
		got, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: n.GetId()})
		if err != nil || !slices.Equal(got.GetProductIds(), []int64{11, 12}) {
			t.Fatalf("GetNote = %v, %v; want products [11 12] stored", got, err)
		}
		// Products are kept unless set_product_ids; an empty list with it clears them.
		u, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: n.GetId(), AuthorId: 1, Title: new("Haul 2")})
		if err != nil || !slices.Equal(u.GetProductIds(), []int64{11, 12}) {
			t.Fatalf("UpdateNote(title) = %v, %v; want products kept", u, err)
		}
		u, err = svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: n.GetId(), AuthorId: 1, SetProductIds: true, ProductIds: []int64{13}})
		if err != nil || !slices.Equal(u.GetProductIds(), []int64{13}) {
			t.Fatalf("UpdateNote(products) = %v, %v; want [13]", u, err)
		}
		list, err := svc.ListByAuthor(ctx, &notev1.ListByAuthorRequest{AuthorId: 1})
		if err != nil || len(list.GetNotes()) != 1 || !slices.Equal(list.GetNotes()[0].GetProductIds(), []int64{13}) {
			t.Fatalf("ListByAuthor = %v, %v; want the note with [13]", list, err)
		}
		tooMany := make([]int64, 21)
		for i := range tooMany {
			tooMany[i] = int64(i + 1)
		}
		for reason, req := range map[string]*notev1.CreateNoteRequest{
			"TOO_MANY_PRODUCTS": {AuthorId: 1, Title: "t", ProductIds: tooMany},
			"INVALID_PRODUCT":   {AuthorId: 1, Title: "t", ProductIds: []int64{1, -2}},
			"INVALID_TITLE":     {AuthorId: 1},
		} {
			if _, err := svc.CreateNote(ctx, req); errs.Reason(err) != reason {
				t.Errorf("CreateNote(%v) = %v; want %s", req, err, reason)
			}
		}
		if _, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: n.GetId(), AuthorId: 1, SetProductIds: true,
			ProductIds: []int64{0}}); errs.Reason(err) != "INVALID_PRODUCT" {
			t.Fatalf("UpdateNote(bad product) = %v; want INVALID_PRODUCT", err)
		}
		if got, _ := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: n.GetId()}); !slices.Equal(got.GetProductIds(), []int64{13}) {
			t.Fatalf("products after a rejected update = %v; want [13] (nothing half applied)", got.GetProductIds())
		}
		if _, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: n.GetId(), AuthorId: 2}); errs.Reason(err) != "NOT_OWNER" {
			t.Fatalf("UpdateNote by another user = %v; want NOT_OWNER", err)
		}
		if _, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: 404, AuthorId: 1}); errs.Reason(err) != "NOTE_NOT_FOUND" {
			t.Fatalf("UpdateNote(missing) = %v; want NOTE_NOT_FOUND", err)
		}
		if _, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: 404}); errs.Reason(err) != "NOTE_NOT_FOUND" {
			t.Fatalf("GetNote(missing) = %v; want NOTE_NOT_FOUND", err)
		}
		if _, err := svc.ListByAuthor(ctx, &notev1.ListByAuthorRequest{AuthorId: 1, Cursor: "junk"}); errs.Reason(err) != "BAD_CURSOR" {
			t.Fatalf("ListByAuthor(bad cursor) = %v; want BAD_CURSOR", err)
		}
		if r, err := svc.DeleteNote(ctx, &notev1.DeleteNoteRequest{Id: 404, AuthorId: 1}); err != nil || r.GetChanged() {
			t.Fatalf("DeleteNote(missing) = %v, %v; want unchanged", r, err)
		}
		if r, err := svc.DeleteNote(ctx, &notev1.DeleteNoteRequest{Id: n.GetId(), AuthorId: 1}); err != nil || !r.GetChanged() {
			t.Fatalf("DeleteNote = %v, %v; want changed", r, err)
		}
		if _, err := svc.GetNote(ctx, &notev1.GetNoteRequest{Id: n.GetId()}); errs.Reason(err) != "NOTE_NOT_FOUND" {
			t.Fatalf("GetNote(deleted) = %v; want NOTE_NOT_FOUND", err)
		}
		var pending int
		if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM note_outbox`).Scan(&pending); err != nil || pending != 0 {
			t.Fatalf("outbox rows without a queue = %d, %v; want 0", pending, err)
		}
	})
}

func TestEveryChangeIsPublished(t *testing.T) {
	onEngines(t, func(t *testing.T, e env) {
		ctx := context.Background()
		q := openQueue(t, e.url, randomName("NOTE"))
		got := collect(t, q)
		svc := newNote(t, e.db, note.WithQueue(q))
		n, err := svc.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: 5, Title: "hello", Tags: []string{"go"}, ProductIds: []int64{9}})
		if err != nil {
			t.Fatal(err)
		}
		// A repeat with the same idempotency key, and a failed update, change nothing and
		// publish nothing.
		if _, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: n.GetId(), AuthorId: 5, Title: new("")}); err == nil {
			t.Fatal("UpdateNote(empty title) succeeded")
		}
		if _, err := svc.UpdateNote(ctx, &notev1.UpdateNoteRequest{Id: n.GetId(), AuthorId: 5, Body: new("more")}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := svc.DeleteNote(ctx, &notev1.DeleteNoteRequest{Id: n.GetId(), AuthorId: 5}); err != nil {
				t.Fatal(err)
			}
		}
		// No Flush: the nudge after each commit publishes without waiting for a poll.
		waitFor(t, "3 events", func() bool { return len(got.events()) >= 3 })
		evs := got.events()
		if len(evs) != 3 {
			t.Fatalf("got %d events; want 3 (create, update, delete)", len(evs))
		}
		slices.SortFunc(evs, func(a, b event.NoteEvent) int { return int(a.Version - b.Version) })
		want := []event.Op{event.Created, event.Updated, event.Deleted}
		for i, ev := range evs {
			if ev.Op != want[i] || ev.ID != n.GetId() || ev.AuthorID != 5 || ev.CreatedMS != n.GetCreatedAtMs() {
				t.Fatalf("event %d = %+v; want %s of %d", i, ev, want[i], n.GetId())
			}
		}
		if !slices.Equal(evs[0].ProductIDs, []int64{9}) || evs[1].Body != "more" || evs[0].Version >= evs[1].Version {
			t.Fatalf("events = %+v; want products, the new body and increasing versions", evs)
		}
	})
}

// downQueue is a queue whose Publish fails, as when the NATS server cannot be reached.
type downQueue struct{ mq.Queue }

func (downQueue) Publish(context.Context, string, []byte) error {
	return errors.New("nats: no servers available")
}

func TestEventsOfACrashedInstanceArePublishedByTheNext(t *testing.T) {
	onEngines(t, func(t *testing.T, e env) {
		ctx := context.Background()
		q := openQueue(t, e.url, randomName("NOTE"))
		got := collect(t, q)
		first, err := note.New(ctx, e.db, note.WithQueue(downQueue{q}), note.RelayTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n, err := first.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: 6, Title: "survives"})
		if err != nil {
			t.Fatalf("CreateNote with the queue down = %v; want the note stored anyway", err)
		}
		first.Close() // dies with the event unpublished
		if evs := got.events(); len(evs) != 0 {
			t.Fatalf("events while the queue was down = %v", evs)
		}
		newNote(t, e.db, note.WithQueue(q)) // the next instance relays at start
		waitFor(t, "the event of the dead instance", func() bool {
			evs := got.events()
			return len(evs) > 0 && evs[0].ID == n.GetId() && evs[0].Op == event.Created
		})
	})
}

// restartableNATS is a NATS server with JetStream that can be stopped and started again on
// the same port and store: a real outage and recovery.
type restartableNATS struct {
	t    *testing.T
	dir  string
	port int
	srv  *server.Server
}

func startNATS(t *testing.T) *restartableNATS {
	n := &restartableNATS{t: t, dir: t.TempDir(), port: server.RANDOM_PORT}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *restartableNATS) start() {
	srv, err := server.NewServer(&server.Options{ServerName: "outage", Host: "127.0.0.1", Port: n.port,
		JetStream: true, StoreDir: n.dir, NoSigs: true, NoLog: true})
	if err != nil {
		n.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		n.t.Fatal("NATS not ready within 10s")
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
}

func (n *restartableNATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *restartableNATS) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// TestOutboxPublishesAfterAQueueOutage stops the NATS server, creates a note, and starts the
// server again: the note is stored at once, and its event is published once the queue is
// back, by the relay's retries.
func TestOutboxPublishesAfterAQueueOutage(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite:"+t.TempDir()+"/note.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ns := startNATS(t)
	stream := randomName("OUTAGE")
	q := openQueue(t, ns.url(), stream)
	svc := newNote(t, db, note.WithQueue(q), note.RelayInterval(20*time.Millisecond),
		note.RelayRetry(20*time.Millisecond), note.RelayTimeout(500*time.Millisecond))

	ns.stop()
	n, err := svc.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: 8, Title: "written in the outage"})
	if err != nil {
		t.Fatalf("CreateNote with NATS down = %v; want the note stored anyway", err)
	}
	var pending int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM note_outbox`).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("outbox rows during the outage = %d, %v; want 1", pending, err)
	}

	ns.start()
	waitFor(t, "the outbox to drain", func() bool {
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM note_outbox`).Scan(&pending)
		return err == nil && pending == 0
	})
	// A fresh queue reads the stream from the start: the event is there.
	got := collect(t, openQueue(t, ns.url(), stream))
	waitFor(t, "the event published after the outage", func() bool {
		return slices.ContainsFunc(got.events(), func(ev event.NoteEvent) bool { return ev.ID == n.GetId() })
	})
}

// TestInstancesShareOneOutbox runs three note instances on one database, as replicas do:
// every note's event is published, and none twice.
func TestInstancesShareOneOutbox(t *testing.T) {
	onEngines(t, func(t *testing.T, e env) {
		ctx := context.Background()
		q := openQueue(t, e.url, randomName("NOTE"))
		got := collect(t, q)
		var svcs []*note.Server
		for range 3 {
			svcs = append(svcs, newNote(t, e.db, note.WithQueue(q), note.RelayInterval(20*time.Millisecond)))
		}
		const notes = 30
		var wg sync.WaitGroup
		for i := range notes {
			wg.Go(func() {
				if _, err := svcs[i%3].CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: int64(i + 1), Title: "r"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		waitFor(t, "every event", func() bool { return len(got.events()) >= notes })
		for _, s := range svcs { // whatever is left in flight
			if _, err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[int64]int{}
		for _, ev := range got.events() {
			seen[ev.ID]++
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("note %d published %d times; want once", id, c)
			}
		}
		if len(seen) != notes {
			t.Fatalf("published %d notes; want %d", len(seen), notes)
		}
	})
}
