package feed_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/middleware"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/note"
	"github.com/redline-dev/redline/services/user"
)

// stack is the real user service over gRPC, the real note service publishing through the
// queue, and the feed consuming it.
type stack struct {
	users userv1.UserClient
	notes *note.Server
	feed  feedv1.FeedServer
	feedD *sqldb.DB
	clk   *clock.Fake
}

// platform is the three databases and a queue URL of one engine.
type platform struct {
	userDB, noteDB, feedDB *sqldb.DB
	url                    string
}

func platforms() map[string]func(t *testing.T) platform {
	return map[string]func(t *testing.T) platform{
		"sqlite+embedded-nats": func(t *testing.T) platform {
			open := engines()["sqlite"]
			e, err := mq.StartEmbedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			return platform{open(t), open(t), open(t), e.URL()}
		},
		"postgres+nats": func(t *testing.T) platform {
			url := os.Getenv("REDLINE_TEST_NATS")
			if url == "" {
				url = "nats://127.0.0.1:4222"
			}
			u, _ := sqldbtest.Postgres(t, "feeduser")
			n, _ := sqldbtest.Postgres(t, "feednote")
			f, _ := sqldbtest.Postgres(t, "feed")
			return platform{u, n, f, url}
		},
	}
}

// openQueue opens a queue on stream, with a subject prefix of the same name, and deletes the
// stream at cleanup.
func openQueue(t *testing.T, url, stream string, opts ...mq.Option) *mq.JetStream {
	t.Helper()
	q, err := mq.Open(t.Context(), url, append([]mq.Option{mq.WithStream(stream),
		mq.WithSubjectPrefix(strings.ToLower(stream))}, opts...)...)
	if err != nil {
		t.Fatalf("mq.Open(%s) = %v (start NATS with scripts/services.sh)", url, err)
	}
	t.Cleanup(func() {
		q.Close()
		if nc, err := nats.Connect(url); err == nil {
			defer nc.Close()
			if js, err := jetstream.New(nc); err == nil {
				_ = js.DeleteStream(context.Background(), stream)
			}
		}
	})
	return q
}

func newStack(t *testing.T, p platform) *stack {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	stream := "FEED_" + hex.EncodeToString(b[:]) // the test's own stream and subjects
	noteQ := openQueue(t, p.url, stream)
	feedQ := openQueue(t, p.url, stream, mq.WithConcurrency(4))

	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	signer, _ := auth.NewSigner(strings.Repeat("k", 32), nil)
	usvc, err := user.New(ctx, p.userDB, c, signer, user.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	// Register hashes a password, slow under -race on a busy machine: generous budgets.
	budget := middleware.DeadlineConfig{Default: 10 * time.Second, Margin: time.Millisecond}
	srv := kitgrpc.NewServer(user.Name, kitgrpc.Logger(log.Discard()), kitgrpc.Deadline(budget))
	userv1.RegisterUserServer(srv, usvc)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	conn, err := kitgrpc.NewClient(srv.Endpoint(), kitgrpc.ClientLogger(log.Discard()), kitgrpc.ClientDeadline(budget))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	users := userv1.NewUserClient(conn)

	notes, err := note.New(ctx, p.noteDB, note.WithQueue(noteQ), note.WithLogger(log.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notes.Close() })

	clk := clock.NewFake(time.Now())
	fsvc, loops, err := feed.New(ctx, p.feedDB, feedQ, users, feed.BigAuthorThreshold(3), feed.WithClock(clk),
		feed.FollowTTL(time.Minute), feed.WithLogger(log.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the feed's loops stop before its queue closes.
	t.Cleanup(func() { loops.Close() })
	return &stack{users: users, notes: notes, feed: fsvc, feedD: p.feedDB, clk: clk}
}

func (s *stack) register(t *testing.T, name string) int64 {
	t.Helper()
	u, err := s.users.Register(context.Background(), &userv1.RegisterRequest{Username: name, Password: "correct horse battery"})
	if err != nil {
		t.Fatalf("Register(%s) = %v", name, err)
	}
	return u.GetId()
}

func (s *stack) follow(t *testing.T, follower, followee int64, on bool) {
	t.Helper()
	call := s.users.Follow
	if !on {
		call = s.users.Unfollow
	}
	if _, err := call(context.Background(), &userv1.FollowRequest{FollowerId: follower, FolloweeId: followee}); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) post(t *testing.T, author int64, title string) int64 {
	t.Helper()
	n, err := s.notes.CreateNote(context.Background(), &notev1.CreateNoteRequest{AuthorId: author, Title: title})
	if err != nil {
		t.Fatal(err)
	}
	return n.GetId()
}

func (s *stack) home(t *testing.T, user int64) []int64 {
	t.Helper()
	r, err := s.feed.HomeFeed(context.Background(), &feedv1.HomeFeedRequest{UserId: user, PageSize: 50})
	if err != nil {
		t.Fatalf("HomeFeed(%d) = %v", user, err)
	}
	var ids []int64
	for _, it := range r.GetItems() {
		ids = append(ids, it.GetNoteId())
	}
	return ids
}

// eventually polls cond every 10ms until it holds, failing the test after 20s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 20s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFolloweeNotesReachTheHomeFeedThroughTheQueue is the acceptance test: users
// from the real user service, notes from the real note service published through its
// outbox onto NATS, and the feed's fan-out consuming them.
func TestFolloweeNotesReachTheHomeFeedThroughTheQueue(t *testing.T) {
	for name, open := range platforms() {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, open(t))
			alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")
			s.follow(t, bob, alice, true)
			s.follow(t, bob, carol, true)
			for _, fan := range []string{"dan", "erin", "frank"} { // carol: 4 followers, more than 3
				s.follow(t, s.register(t, fan), carol, true)
			}

			a := s.post(t, alice, "from alice")
			eventually(t, "alice's note in bob's home feed", func() bool { return slices.Contains(s.home(t, bob), a) })
			if got := s.home(t, alice); !slices.Equal(got, []int64{a}) {
				t.Fatalf("alice's own home feed = %v; want her note", got)
			}

			c := s.post(t, carol, "from carol, who has many followers")
			eventually(t, "carol's note in the feed", func() bool {
				return count(t, s.feedD, `SELECT COUNT(*) FROM feed_notes WHERE note_id = ?`, c) == 1 &&
					count(t, s.feedD, `SELECT COUNT(*) FROM inbox WHERE note_id = ?`, c) == 1 // carol's own
			})
			if n := count(t, s.feedD, `SELECT COUNT(*) FROM big_authors WHERE author_id = ?`, carol); n != 1 {
				t.Fatal("carol, with more followers than the threshold, was not marked big")
			}
			s.clk.Advance(2 * time.Minute) // bob's cached followees expire: carol is now known big
			if got := s.home(t, bob); !slices.Equal(got, []int64{c, a}) {
				t.Fatalf("bob's home feed = %v; want [%d %d]: carol's note pulled, alice's from the inbox", got, c, a)
			}

			if _, err := s.notes.DeleteNote(context.Background(), &notev1.DeleteNoteRequest{Id: a, AuthorId: alice}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the deleted note to leave bob's home feed", func() bool { return !slices.Contains(s.home(t, bob), a) })

			s.follow(t, bob, carol, false)
			s.clk.Advance(2 * time.Minute)
			if got := s.home(t, bob); len(got) != 0 {
				t.Fatalf("bob's home feed after unfollowing carol and alice's delete = %v; want empty", got)
			}
		})
	}
}

func count(t *testing.T, db *sqldb.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
