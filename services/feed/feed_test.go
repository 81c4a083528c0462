package feed_test

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/feed/internal/biz"
	"github.com/redline-dev/redline/services/feed/internal/data"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// engines returns the databases the suite runs on: SQLite, and real PostgreSQL in a schema
// of the test's own unless REDLINE_SKIP_INTEGRATION=1.
func engines() map[string]func(t testing.TB) *sqldb.DB {
	return map[string]func(t testing.TB) *sqldb.DB{
		"sqlite": func(t testing.TB) *sqldb.DB {
			db, err := sqldb.Open(context.Background(), "sqlite:"+t.TempDir()+"/feed.db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		"postgres": func(t testing.TB) *sqldb.DB {
			db, _ := sqldbtest.Postgres(t, "feed")
			return db
		},
	}
}

func onEngines(t *testing.T, test func(t *testing.T, db *sqldb.DB)) {
	for name, open := range engines() {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}

// graph is a follow graph that pages like the user service: feed.Users, hand-written.
type graph struct {
	mu        sync.Mutex
	following map[int64][]int64 // follower → followees
}

func newGraph() *graph { return &graph{following: map[int64][]int64{}} }

func (g *graph) follow(follower int64, followees ...int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range followees {
		if !slices.Contains(g.following[follower], f) {
			g.following[follower] = append(g.following[follower], f)
		}
	}
}

func (g *graph) unfollow(follower, followee int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.following[follower] = slices.DeleteFunc(g.following[follower], func(f int64) bool { return f == followee })
}

// pageOf pages ids with an offset cursor.
func pageOf(ids []int64, in *userv1.ListFollowsRequest) (*userv1.ListFollowsReply, error) {
	slices.Sort(ids)
	size := int(in.GetPageSize())
	if size <= 0 {
		size = 20
	}
	from := 0
	if in.GetCursor() != "" {
		from, _ = strconv.Atoi(in.GetCursor())
	}
	to := min(from+size, len(ids))
	out := &userv1.ListFollowsReply{}
	for _, id := range ids[min(from, to):to] {
		out.Users = append(out.Users, &userv1.UserInfo{Id: id})
	}
	if to < len(ids) {
		out.NextCursor = strconv.Itoa(to)
	}
	return out, nil
}

func (g *graph) ListFollowers(_ context.Context, in *userv1.ListFollowsRequest, _ ...grpc.CallOption) (*userv1.ListFollowsReply, error) {
	g.mu.Lock()
	var ids []int64
	for follower, followees := range g.following {
		if slices.Contains(followees, in.GetUserId()) {
			ids = append(ids, follower)
		}
	}
	g.mu.Unlock()
	return pageOf(ids, in)
}

func (g *graph) ListFollowing(_ context.Context, in *userv1.ListFollowsRequest, _ ...grpc.CallOption) (*userv1.ListFollowsReply, error) {
	g.mu.Lock()
	ids := slices.Clone(g.following[in.GetUserId()])
	g.mu.Unlock()
	return pageOf(ids, in)
}

var _ feed.Users = (*graph)(nil)

// harness is the feed's read side from New, and a fan-out over the same database that the
// test drives event by event.
type harness struct {
	t     *testing.T
	db    *sqldb.DB
	svc   feedv1.FeedServer
	loops *feed.Loops
	fan   *biz.FanOut
	g     *graph
	clk   *clock.Fake
}

func newHarness(t *testing.T, db *sqldb.DB, cfg biz.FanOutConfig, opts ...feed.Option) *harness {
	t.Helper()
	h := &harness{t: t, db: db, g: newGraph(), clk: clock.NewFake(time.Time{})}
	svc, loops, err := feed.New(context.Background(), db, nil, h.g,
		append([]feed.Option{feed.WithClock(h.clk), feed.WithLogger(log.Discard()), feed.FollowTTL(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.svc, h.loops = svc, loops
	t.Cleanup(func() { loops.Close() })
	h.fan = biz.NewFanOut(data.NewStore(db), data.NewGraph(h.g), h.clk, cfg, log.Discard())
	t.Cleanup(func() { h.fan.Close() })
	return h
}

func created(id, author, createdMS int64) event.NoteEvent {
	return event.NoteEvent{Op: event.Created, ID: id, AuthorID: author, CreatedMS: createdMS, Version: createdMS}
}

func deleted(id, author, version int64) event.NoteEvent {
	return event.NoteEvent{Op: event.Deleted, ID: id, AuthorID: author, Version: version}
}

func (h *harness) apply(evs ...event.NoteEvent) {
	h.t.Helper()
	if err := h.fan.Process(context.Background(), evs); err != nil {
		h.t.Fatalf("Process(%v) = %v", evs, err)
	}
}

// home reads user's whole home feed in pages of size, checking that every page but the last
// is full and that the pages end.
func (h *harness) home(user int64, size int) []int64 {
	h.t.Helper()
	var ids []int64
	cursor := ""
	for range 1000 {
		r, err := h.svc.HomeFeed(context.Background(), &feedv1.HomeFeedRequest{UserId: user, PageSize: int32(size), Cursor: cursor})
		if err != nil {
			h.t.Fatalf("HomeFeed(%d, %q) = %v", user, cursor, err)
		}
		for _, it := range r.GetItems() {
			ids = append(ids, it.GetNoteId())
		}
		if r.GetNextCursor() == "" {
			return ids
		}
		if len(r.GetItems()) != size {
			h.t.Fatalf("HomeFeed(%d) page of %d items with a next cursor; want %d", user, len(r.GetItems()), size)
		}
		cursor = r.GetNextCursor()
	}
	h.t.Fatal("HomeFeed never ended")
	return nil
}

func (h *harness) explore(kind feedv1.ExploreKind, size int) []*feedv1.FeedItem {
	h.t.Helper()
	var items []*feedv1.FeedItem
	cursor := ""
	for range 1000 {
		r, err := h.svc.Explore(context.Background(), &feedv1.ExploreRequest{Kind: kind, PageSize: int32(size), Cursor: cursor})
		if err != nil {
			h.t.Fatalf("Explore(%v, %q) = %v", kind, cursor, err)
		}
		items = append(items, r.GetItems()...)
		if r.GetNextCursor() == "" {
			return items
		}
		cursor = r.GetNextCursor()
	}
	h.t.Fatal("Explore never ended")
	return nil
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestFanOutReachesFollowersAndTheAuthor(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{})
		h.g.follow(1, 10)
		h.g.follow(2, 10, 11)
		h.apply(created(100, 10, 1000), created(101, 11, 2000))
		for user, want := range map[int64][]int64{1: {100}, 2: {101, 100}, 10: {100}, 11: {101}, 3: nil} {
			if got := h.home(user, 20); !slices.Equal(got, want) {
				t.Errorf("home feed of %d = %v; want %v", user, got, want)
			}
		}
		rows := h.count(`SELECT COUNT(*) FROM inbox`)
		h.apply(created(100, 10, 1000), created(101, 11, 2000)) // redelivered
		if again := h.count(`SELECT COUNT(*) FROM inbox`); again != rows {
			t.Fatalf("inbox rows after a redelivery = %d; want %d", again, rows)
		}
	})
}

func TestDeletedNotesVanish(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{Threshold: 1})
		h.g.follow(1, 10, 20)
		h.g.follow(2, 20) // 20 has two followers: big
		h.apply(created(100, 10, 1000), created(101, 10, 1001), created(200, 20, 1002))
		if got := h.home(1, 20); !slices.Equal(got, []int64{200, 101, 100}) {
			t.Fatalf("home feed = %v; want [200 101 100]", got)
		}
		h.apply(deleted(100, 10, 5000), deleted(200, 20, 5000))
		if got := h.home(1, 20); !slices.Equal(got, []int64{101}) {
			t.Fatalf("home feed after deletes = %v; want [101]: inbox and pulled notes both gone", got)
		}
		if n := h.count(`SELECT COUNT(*) FROM inbox WHERE note_id = 100`); n != 0 {
			t.Fatalf("inbox rows of the deleted note = %d; want 0", n)
		}
		if got := h.explore(feedv1.ExploreKind_EXPLORE_KIND_RECENT, 10); len(got) != 1 || got[0].GetNoteId() != 101 {
			t.Fatalf("explore after deletes = %v; want only 101", got)
		}
		// Out of order: the delete arrives before the create, and a stale update after.
		h.apply(deleted(300, 10, 9000))
		h.apply(created(300, 10, 8000), event.NoteEvent{Op: event.Updated, ID: 300, AuthorID: 10, CreatedMS: 8000, Version: 8500})
		if got := h.home(1, 20); !slices.Equal(got, []int64{101}) {
			t.Fatalf("home feed after a late create of a deleted note = %v; want [101]", got)
		}
	})
}

func TestBigAuthorsArePulledAndMergedAcrossPages(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{Threshold: 3})
		const reader = 1
		h.g.follow(reader, 10, 11, 20)
		h.g.follow(2, 20)
		// 20 has two followers: its first note is fanned out.
		h.apply(created(500, 20, 1_000))
		h.g.follow(3, 20)
		h.g.follow(4, 20) // now four, more than 3: big from its next note on
		want := []biz.Entry{{NoteID: 500, CreatedMS: 1_000}}
		authors := []int64{10, 11, 20, 21, reader} // the reader does not follow 21
		var evs []event.NoteEvent
		for i := range int64(60) {
			author := authors[i%int64(len(authors))]
			// Every third pair shares a millisecond: the note id breaks the tie.
			ev := created(1000+i*7%60, author, 2_000+i/2*10)
			evs = append(evs, ev)
			if author != 21 {
				want = append(want, biz.Entry{NoteID: ev.ID, CreatedMS: ev.CreatedMS})
			}
		}
		h.apply(evs[:30]...)
		h.apply(evs[30:]...)
		slices.SortFunc(want, func(a, b biz.Entry) int {
			return cmp.Or(-cmp.Compare(a.CreatedMS, b.CreatedMS), -cmp.Compare(a.NoteID, b.NoteID))
		})
		var wantIDs []int64
		for _, e := range want {
			wantIDs = append(wantIDs, e.NoteID)
		}
		if n := h.count(`SELECT COUNT(*) FROM big_authors WHERE author_id = 20`); n != 1 {
			t.Fatal("author 20 with 4 followers is not marked big")
		}
		// The reader's inbox holds 20's first note only: the rest is pulled.
		if n := h.count(`SELECT COUNT(*) FROM inbox WHERE user_id = ? AND author_id = 20`, reader); n != 1 {
			t.Fatalf("reader's inbox holds %d notes of the big author; want 1 (the one from before)", n)
		}
		for _, size := range []int{1, 3, 7, 50} {
			got := h.home(reader, size)
			if !slices.Equal(got, wantIDs) {
				t.Fatalf("home feed in pages of %d =\n%v\nwant\n%v", size, got, wantIDs)
			}
		}
		// The big author sees their own notes, through their own inbox.
		if got := h.home(20, 50); len(got) != 13 {
			t.Fatalf("big author's own home feed has %d notes; want their 13", len(got))
		}
	})
}

func TestUnfollowedAuthorsLeaveTheHomeFeed(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{Threshold: 1})
		h.g.follow(1, 10, 20)
		h.g.follow(2, 20) // big
		h.apply(created(100, 10, 1000), created(200, 20, 2000), created(300, 1, 3000))
		if got := h.home(1, 20); !slices.Equal(got, []int64{300, 200, 100}) {
			t.Fatalf("home feed = %v; want [300 200 100]", got)
		}
		h.g.unfollow(1, 10)
		h.g.unfollow(1, 20)
		if got := h.home(1, 20); len(got) != 3 {
			t.Fatalf("home feed within FollowTTL of the unfollows = %v; want unchanged (cached)", got)
		}
		h.clk.Advance(time.Minute + time.Second)
		if got := h.home(1, 20); !slices.Equal(got, []int64{300}) {
			t.Fatalf("home feed after FollowTTL = %v; want only the reader's own note", got)
		}
		if n := h.count(`SELECT COUNT(*) FROM inbox WHERE user_id = 1 AND author_id = 10`); n != 0 {
			t.Fatalf("inbox rows of the unfollowed author = %d; want them deleted by the read", n)
		}
	})
}

func TestInboxesAreCapped(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{InboxCap: 10}) // trimmed past 11
		h.g.follow(1, 10)
		var want []int64
		for i := range int64(40) {
			h.apply(created(100+i, 10, 1000+i))
			if n := h.count(`SELECT COUNT(*) FROM inbox WHERE user_id = 1`); n > 11 {
				t.Fatalf("inbox after %d notes has %d rows; want at most 11", i+1, n)
			}
			want = append([]int64{100 + i}, want...)
		}
		got := h.home(1, 50)
		if len(got) < 10 || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("capped home feed = %v; want the newest 10 or 11 of %v", got, want)
		}
	})
}

// counters is a hand-written interaction service: fixed counts per note.
type counters struct {
	counts map[int64]*interactionv1.Counts
}

func (c counters) GetCounts(_ context.Context, in *interactionv1.GetCountsRequest, _ ...grpc.CallOption) (*interactionv1.GetCountsReply, error) {
	out := &interactionv1.GetCountsReply{Counts: map[int64]*interactionv1.Counts{}}
	for _, id := range in.GetTargetIds() {
		if c, ok := c.counts[id]; ok {
			out.Counts[id] = c
		} else {
			out.Counts[id] = &interactionv1.Counts{}
		}
	}
	return out, nil
}

func TestExplore(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		c := counters{counts: map[int64]*interactionv1.Counts{
			1: {Likes: 50}, 2: {Collects: 3}, 3: {Comments: 40}, 5: {Likes: 1000},
		}}
		h := newHarness(t, db, biz.FanOutConfig{}, feed.WithCounters(c), feed.HotWindow(48*time.Hour), feed.HotInterval(time.Hour))
		now := h.clk.Now()
		ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
		h.apply(created(1, 10, ago(10*time.Hour)), created(2, 10, ago(time.Hour)), created(3, 11, ago(30*time.Hour)),
			created(4, 11, ago(5*time.Minute)), created(5, 12, ago(50*time.Hour)), created(6, 12, ago(2*time.Hour)))
		h.apply(deleted(6, 12, now.UnixMilli()))

		recent := h.explore(feedv1.ExploreKind_EXPLORE_KIND_RECENT, 2)
		var ids []int64
		for _, it := range recent {
			ids = append(ids, it.GetNoteId())
		}
		if !slices.Equal(ids, []int64{4, 2, 1, 3, 5}) {
			t.Fatalf("recent = %v; want [4 2 1 3 5] (newest first, deleted 6 left out)", ids)
		}

		if _, err := h.loops.Refresh.(*biz.Refresher).Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		hot := h.explore(feedv1.ExploreKind_EXPLORE_KIND_HOT, 2)
		type scored struct {
			id    int64
			score float64
		}
		var want []scored
		for id, age := range map[int64]time.Duration{1: 10 * time.Hour, 2: time.Hour, 3: 30 * time.Hour, 4: 5 * time.Minute} {
			cs := c.counts[id]
			want = append(want, scored{id, biz.Score(biz.Counts{Likes: cs.GetLikes(), Collects: cs.GetCollects(),
				Comments: cs.GetComments()}, ago(age), now)})
		}
		slices.SortFunc(want, func(a, b scored) int { return -cmp.Compare(a.score, b.score) })
		if len(hot) != len(want) {
			t.Fatalf("hot = %v; want %d notes (5 is older than the window, 6 deleted)", hot, len(want))
		}
		for i, it := range hot {
			if it.GetNoteId() != want[i].id || it.GetScore() != want[i].score {
				t.Fatalf("hot[%d] = %d (%v); want %d (%v)", i, it.GetNoteId(), it.GetScore(), want[i].id, want[i].score)
			}
		}

		ctx := context.Background()
		r, err := h.svc.Explore(ctx, &feedv1.ExploreRequest{Kind: feedv1.ExploreKind_EXPLORE_KIND_HOT, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Explore(ctx, &feedv1.ExploreRequest{Kind: feedv1.ExploreKind_EXPLORE_KIND_RECENT, Cursor: r.GetNextCursor()}); errs.Reason(err) != "BAD_CURSOR" {
			t.Fatalf("recent with a hot cursor = %v; want BAD_CURSOR", err)
		}
		if _, err := h.svc.Explore(ctx, &feedv1.ExploreRequest{Kind: 7}); errs.Reason(err) != "INVALID_KIND" {
			t.Fatalf("Explore(kind 7) = %v; want INVALID_KIND", err)
		}
	})
}

func TestRequestsAreValidated(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{})
		ctx := context.Background()
		if _, err := h.svc.HomeFeed(ctx, &feedv1.HomeFeedRequest{UserId: 0}); errs.Reason(err) != "INVALID_USER" {
			t.Fatalf("HomeFeed(0) = %v; want INVALID_USER", err)
		}
		if _, err := h.svc.HomeFeed(ctx, &feedv1.HomeFeedRequest{UserId: 1, Cursor: "junk"}); errs.Reason(err) != "BAD_CURSOR" {
			t.Fatalf("HomeFeed(bad cursor) = %v; want BAD_CURSOR", err)
		}
		// Nobody there: an unknown user and an empty service give empty pages, not errors.
		r, err := h.svc.HomeFeed(ctx, &feedv1.HomeFeedRequest{UserId: 404})
		if err != nil || len(r.GetItems()) != 0 || r.GetNextCursor() != "" {
			t.Fatalf("HomeFeed(unknown user) = %v, %v; want an empty last page", r, err)
		}
		for _, kind := range []feedv1.ExploreKind{feedv1.ExploreKind_EXPLORE_KIND_HOT, feedv1.ExploreKind_EXPLORE_KIND_UNSPECIFIED} {
			r, err := h.svc.Explore(ctx, &feedv1.ExploreRequest{Kind: kind})
			if err != nil || len(r.GetItems()) != 0 {
				t.Fatalf("Explore(%v) of an empty feed = %v, %v; want an empty page", kind, r, err)
			}
		}
		if err := h.fan.Handle(ctx, []byte(`{"op":"created","id":-1}`)); err != nil || h.fan.Rejected() != 1 {
			t.Fatalf("Handle(bad event) = %v, rejected %d; want it acknowledged and counted", err, h.fan.Rejected())
		}
	})
}

func TestManyBigAuthorsMergeAcrossStatements(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{Threshold: 1})
		var evs []event.NoteEvent
		for a := range int64(130) { // more big authors than one pull statement takes
			author := 1000 + a
			h.g.follow(1, author)
			h.g.follow(2, author)
			evs = append(evs, created(10_000+2*a, author, 5_000+a%7), created(10_001+2*a, author, 9_000-a))
		}
		h.apply(evs...)
		slices.SortFunc(evs, func(a, b event.NoteEvent) int {
			return cmp.Or(-cmp.Compare(a.CreatedMS, b.CreatedMS), -cmp.Compare(a.ID, b.ID))
		})
		var want []int64
		for _, ev := range evs {
			want = append(want, ev.ID)
		}
		if n := h.count(`SELECT COUNT(*) FROM inbox WHERE user_id = 1`); n != 0 {
			t.Fatalf("reader's inbox has %d rows; want 0, every author is big", n)
		}
		if got := h.home(1, 17); !slices.Equal(got, want) {
			t.Fatalf("home feed over 130 big authors =\n%v\nwant\n%v", got, want)
		}
	})
}

// downUsers is a user service that does not answer.
type downUsers struct{ *graph }

func (downUsers) ListFollowing(context.Context, *userv1.ListFollowsRequest, ...grpc.CallOption) (*userv1.ListFollowsReply, error) {
	return nil, errs.New(codes.Unavailable, "UNAVAILABLE", "user service down")
}

func TestHomeFeedDegradesToTheInboxWithoutTheUserService(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, biz.FanOutConfig{Threshold: 1})
		h.g.follow(1, 10, 20)
		h.g.follow(2, 20) // big
		h.apply(created(100, 10, 1000), created(200, 20, 2000))
		svc, loops, err := feed.New(context.Background(), db, nil, downUsers{h.g}, feed.WithLogger(log.Discard()))
		if err != nil {
			t.Fatal(err)
		}
		defer loops.Close()
		r, err := svc.HomeFeed(context.Background(), &feedv1.HomeFeedRequest{UserId: 1})
		if err != nil || len(r.GetItems()) != 1 || r.GetItems()[0].GetNoteId() != 100 {
			t.Fatalf("HomeFeed without followees = %v, %v; want the inbox's note 100 (the pull needs followees)", r, err)
		}
	})
}
