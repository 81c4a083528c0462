package comment_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/comment"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/note"
)

// backend is where a test's data lives: the comment database and the queue.
type backend struct {
	name string
	db   func(t testing.TB) *sqldb.DB
	nats func(t testing.TB) string
}

func sqliteDB(t testing.TB) *sqldb.DB {
	db, err := sqldb.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func embeddedNATS(t testing.TB) string {
	e, err := mq.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.URL()
}

// realNATS is the NATS of scripts/services.sh, or REDLINE_TEST_NATS; skipped with
// REDLINE_SKIP_INTEGRATION=1 or REDLINE_TEST_NATS=skip.
func realNATS(t testing.TB) string {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" || os.Getenv("REDLINE_TEST_NATS") == "skip" {
		t.Skip("integration tests skipped")
	}
	if u := os.Getenv("REDLINE_TEST_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// backends are in-memory SQLite with an embedded NATS (unit), and real PostgreSQL with the
// real NATS (integration), each test in its own schema and stream.
func backends() []backend {
	return []backend{
		{"sqlite+embedded", sqliteDB, embeddedNATS},
		{"postgres+nats", func(t testing.TB) *sqldb.DB {
			db, _ := sqldbtest.Postgres(t, "comment")
			return db
		}, realNATS},
	}
}

func onBackends(t *testing.T, test func(t *testing.T, e *env)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, newEnv(t, b)) })
	}
}

// noteClient calls the note service in process.
type noteClient struct{ s notev1.NoteServer }

func (c noteClient) GetNote(ctx context.Context, in *notev1.GetNoteRequest, _ ...grpc.CallOption) (*notev1.NoteInfo, error) {
	return c.s.GetNote(ctx, in)
}

// countingInteraction calls the real interaction service in process, counting the
// RecordComment calls that reached it, and can be made to fail them.
type countingInteraction struct {
	s     interactionv1.InteractionServer
	calls atomic.Int64
	fail  atomic.Bool
}

func (c *countingInteraction) RecordComment(ctx context.Context, in *interactionv1.RecordCommentRequest, _ ...grpc.CallOption) (*interactionv1.RecordCommentReply, error) {
	if c.fail.Load() {
		return nil, errs.New(codes.Unavailable, "UNAVAILABLE", "interaction is down")
	}
	c.calls.Add(1)
	return c.s.RecordComment(ctx, in)
}

type env struct {
	t       *testing.T
	clock   *clock.Fake
	notes   notev1.NoteServer
	inter   *countingInteraction
	url     string
	stream  string
	q       *mq.JetStream
	db      *sqldb.DB
	svc     commentv1.CommentServer
	w       *comment.Worker
	stopped bool
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

func newEnv(t *testing.T, b backend) *env {
	ctx := context.Background()
	e := &env{t: t, clock: clock.NewFake(time.Time{}), url: b.nats(t), db: b.db(t), stream: randomName("COMMENT")}
	var err error
	if e.notes, err = note.New(ctx, sqliteDB(t)); err != nil {
		t.Fatal(err)
	}
	inter, closer, err := interaction.New(ctx, sqliteDB(t), interaction.WithClock(e.clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	e.inter = &countingInteraction{s: inter}
	e.q = e.openQueue()
	t.Cleanup(func() {
		if err := e.q.Close(); err != nil {
			t.Errorf("queue Close = %v", err)
		}
		deleteStream(t, e.url, e.stream)
	})
	e.start()
	return e
}

func (e *env) openQueue() *mq.JetStream {
	q, err := mq.Open(context.Background(), e.url, mq.WithStream(e.stream), mq.WithSubjectPrefix(strings.ToLower(e.stream)))
	if err != nil {
		e.t.Fatalf("queue at %s: %v (start scripts/services.sh or set REDLINE_TEST_NATS=skip)", e.url, err)
	}
	return q
}

func deleteStream(t testing.TB, url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect to delete stream %s: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("jetstream: %v", err)
		return
	}
	if err := js.DeleteStream(context.Background(), name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

// start (re)starts the comment service and its worker on the env's database and queue.
func (e *env) start(opts ...comment.Option) {
	e.t.Helper()
	svc, w, err := comment.New(context.Background(), e.db, noteClient{e.notes}, e.inter, e.q,
		append([]comment.Option{comment.WithClock(e.clock), comment.RelayInterval(time.Hour),
			comment.WithLogger(log.Discard())}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc, e.w, e.stopped = svc, w, false
	var once sync.Once
	e.t.Cleanup(func() { once.Do(func() { _ = w.Close() }) })
}

// stop closes the worker: commands stay queued until the next start.
func (e *env) stop() {
	e.t.Helper()
	if err := e.w.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.stopped = true
}

func (e *env) note(author int64) int64 {
	e.t.Helper()
	n, err := e.notes.CreateNote(context.Background(), &notev1.CreateNoteRequest{AuthorId: author, Title: "a note"})
	if err != nil {
		e.t.Fatal(err)
	}
	return n.GetId()
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// queue creates a comment and returns its id without waiting for the consumer.
func (e *env) queue(noteID, user, root, parent int64, body string) int64 {
	e.t.Helper()
	r, err := e.svc.CreateComment(context.Background(), &commentv1.CreateCommentRequest{NoteId: noteID, UserId: user,
		RootId: root, ParentId: parent, Body: body})
	if err != nil {
		e.t.Fatalf("CreateComment(note %d, user %d, root %d) = %v", noteID, user, root, err)
	}
	if r.GetState() != "pending" || r.GetId() <= 0 {
		e.t.Fatalf("CreateComment = %v; want an id in state pending", r)
	}
	return r.GetId()
}

// written waits until the consumer has written comment id.
func (e *env) written(id int64) *commentv1.CommentInfo {
	e.t.Helper()
	var got *commentv1.CommentInfo
	eventually(e.t, "comment not written by the consumer", func() bool {
		var err error
		got, err = e.svc.GetComment(context.Background(), &commentv1.GetCommentRequest{Id: id})
		return err == nil
	})
	return got
}

// create creates a comment and waits until it is written and counted.
func (e *env) create(noteID, user, root, parent int64, body string) int64 {
	e.t.Helper()
	id := e.queue(noteID, user, root, parent, body)
	e.written(id)
	e.counted(id)
	return id
}

// counted waits until the interaction counter includes comment id.
func (e *env) counted(id int64) {
	e.t.Helper()
	eventually(e.t, "comment not counted", func() bool {
		var counted int
		err := e.db.QueryRowContext(context.Background(), `SELECT counted FROM comments WHERE id = ?`, id).Scan(&counted)
		return err == nil && counted == 1
	})
}

// comments returns the interaction service's comment count of note, pending changes
// included.
func (e *env) comments(noteID int64) int64 {
	e.t.Helper()
	r, err := e.inter.s.GetCounts(context.Background(), &interactionv1.GetCountsRequest{TargetIds: []int64{noteID}})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.GetCounts()[noteID].GetComments()
}

func (e *env) roots(noteID int64, order string, size int32, cursor string) *commentv1.ListRootsReply {
	e.t.Helper()
	r, err := e.svc.ListRoots(context.Background(), &commentv1.ListRootsRequest{NoteId: noteID, Order: order, PageSize: size, Cursor: cursor})
	if err != nil {
		e.t.Fatalf("ListRoots(%d, %q) = %v", noteID, order, err)
	}
	return r
}

func reason(err error) string { return errs.Reason(err) }
