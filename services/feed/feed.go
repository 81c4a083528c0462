// Package feed wires the feed service: each user's home feed and the explore feeds, as note
// ids with their author and creation time for the BFF to hydrate.
//
// # Home feed
//
// The home feed is a per-user inbox filled by fan-out on write. A fan-out consumer follows
// event.Note under a durable name, so the feed instances share the events; it applies them
// in batches (the events that queue up while one batch is written form the next), looks up
// each author's followers in the user service, and writes one inbox row per follower in
// multi-row INSERTs, plus one for the author, who sees their own notes. Inbox rows are keyed
// (user_id, note_id) and inserted if absent, and notes are versioned, so a redelivered or
// late event changes nothing. An inbox keeps its newest InboxCap rows: it is trimmed when it
// has grown by a tenth of the cap since its last trim, so a trim costs one index walk per
// InboxCap/10 rows delivered.
//
// An author with more followers than BigAuthorThreshold is not fanned out (beyond their own
// inbox) but marked big, and a home-feed read pulls the notes of the big authors the reader
// follows and merges them with the inbox in (created_ms desc, note_id desc) order. The pull
// reads feed_notes, the feed's own table of every note it has heard of (id, author, time,
// version, score), not the note service: one indexed query covers all of a reader's big
// authors in feed order with the same cursor as the inbox, where ListByAuthor would cost a
// call per author, page by id only and need a cursor per author. The same table serves the
// explore feeds and keeps deleted notes as tombstones so a late event cannot revive them.
//
// A deleted note is removed from every inbox when its event is applied, and leaves the pull
// and explore reads at once. An unfollowed author's notes leave the reader's home feed once
// the reader's cached followee list expires (FollowTTL): reads skip, and delete, inbox rows
// of authors the reader no longer follows. When the user service does not answer, a read
// degrades to the inbox alone (nothing pulled, nothing filtered) instead of failing.
//
// # Explore
//
// Recent lists every live note newest first. Hot orders the notes of the last HotWindow by
// (likes + 2·collects + 3·comments + 1) / (age_hours + 2)^1.5. Counters come from the
// interaction service's GetCounts, read in batches of 100 by a refresh loop every
// HotInterval, because the interaction service publishes no events and counters move on
// every like; between refreshes the order, and so its cursors, stand still. A new note
// enters the hot feed at once with the score of no engagement. Without WithCounters, there
// is no refresh and hot orders by age alone.
//
// # Stopping
//
// New returns the server and the Loops it started. Stop in this order: the gRPC server
// (no more reads), then Loops.Close (the fan-out consumer first: its subscription stops and
// waits for the handlers, which wait for their batch; then the fan-out batcher; then the
// refresh loop), then the queue, then the database.
package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/feed/internal/biz"
	"github.com/redline-dev/redline/services/feed/internal/data"
	"github.com/redline-dev/redline/services/feed/internal/service"
	"github.com/redline-dev/redline/services/feed/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "feed"

// Idempotent lists the methods callers may retry: both, which only read.
var Idempotent = []string{feedv1.Feed_HomeFeed_FullMethodName, feedv1.Feed_Explore_FullMethodName}

// Users is what the feed needs of the user service; userv1.UserClient satisfies it.
type Users interface {
	ListFollowers(ctx context.Context, in *userv1.ListFollowsRequest, opts ...grpc.CallOption) (*userv1.ListFollowsReply, error)
	ListFollowing(ctx context.Context, in *userv1.ListFollowsRequest, opts ...grpc.CallOption) (*userv1.ListFollowsReply, error)
}

// Counters is what the feed needs of the interaction service;
// interactionv1.InteractionClient satisfies it.
type Counters interface {
	GetCounts(ctx context.Context, in *interactionv1.GetCountsRequest, opts ...grpc.CallOption) (*interactionv1.GetCountsReply, error)
}

// Option configures New.
type Option func(*options)

type options struct {
	clock    clock.Clock
	logger   *slog.Logger
	counters Counters
	durable  string
	cache    cache.Cache
	fanout   biz.FanOutConfig
	hot      biz.HotConfig
	read     biz.Config
}

// WithClock sets the clock of hot scores, big-author marks and the followee cache.
// Default the wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where background failures are reported. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCounters sets the interaction counters that hot scores are refreshed from. Default
// nil: no refresh loop, and hot orders by age alone.
func WithCounters(c Counters) Option { return func(o *options) { o.counters = c } }

// Durable names the fan-out's durable consumer; feed instances with the same name share the
// events. Default "feed-fanout".
func Durable(name string) Option { return func(o *options) { o.durable = name } }

// BigAuthorThreshold is the most followers an author may have and still be fanned out to;
// an author with more is marked big, for good, and pulled at read time. Default 1000.
func BigAuthorThreshold(n int) Option { return func(o *options) { o.fanout.Threshold = n } }

// InboxCap is how many of the newest rows an inbox keeps (it may hold a tenth more between
// trims). Default 1000.
func InboxCap(n int) Option { return func(o *options) { o.fanout.InboxCap = n } }

// MaxBatch is the most note events written in one fan-out batch. Batches form from the
// events handled at once, so let the queue run several handlers (mq.WithConcurrency) for
// them to be larger than one. Default 64.
func MaxBatch(n int) Option { return func(o *options) { o.fanout.MaxBatch = n } }

// FanOutTimeout bounds one fan-out batch; keep it below the queue's ack wait. Default 20s.
func FanOutTimeout(d time.Duration) Option { return func(o *options) { o.fanout.Timeout = d } }

// HotInterval is how often hot scores are refreshed. Default 1m.
func HotInterval(d time.Duration) Option { return func(o *options) { o.hot.Interval = d } }

// HotWindow is how old a note may be and still be hot. Default 72h.
func HotWindow(d time.Duration) Option { return func(o *options) { o.hot.Window = d } }

// HotCandidates is the most notes, the newest of the window, scored per refresh. Default
// 5000.
func HotCandidates(n int) Option { return func(o *options) { o.hot.Candidates = n } }

// FollowTTL is how long a reader's followee list is cached: an unfollow or a newly big
// author takes up to this long to show in a home feed. Default 30s.
func FollowTTL(d time.Duration) Option { return func(o *options) { o.read.FollowTTL = d } }

// MaxFollowing is the most followees a home-feed read considers. Default 2000.
func MaxFollowing(n int) Option { return func(o *options) { o.read.MaxFollowing = n } }

// WithFollowCache sets where followee lists are cached, for example a Redis cache shared by
// the feed instances; the caller closes it. Default an in-process cache of 10000 readers,
// closed by Loops.Close.
func WithFollowCache(c cache.Cache) Option { return func(o *options) { o.cache = c } }

// Loops are the feed's background loops. Close them after the gRPC server stops and before
// the queue closes.
type Loops struct {
	// FanOut stops the fan-out consumer: the subscription, waiting for its handlers, then
	// the batcher. Nil when New got no queue.
	FanOut io.Closer
	// Refresh stops the hot-score refresh loop. Nil without WithCounters.
	Refresh io.Closer
	owned   io.Closer // the default followee cache
}

// Close stops FanOut, then Refresh, then releases what New created for itself.
func (l *Loops) Close() error {
	var errs []error
	for _, c := range []io.Closer{l.FanOut, l.Refresh, l.owned} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// fanOutCloser stops a subscription, then the batcher it feeds.
type fanOutCloser struct {
	sub mq.Subscription
	fan *biz.FanOut
}

func (c fanOutCloser) Close() error { return errors.Join(c.sub.Stop(), c.fan.Close()) }

// New migrates db and returns the feed service and its background loops: the fan-out
// consumer of q's event.Note (none when q is nil, for a read-only instance) and, with
// WithCounters, the hot-score refresh loop. users gives followers for the fan-out and
// followees for the reads.
func New(ctx context.Context, db *sqldb.DB, q mq.Queue, users Users, opts ...Option) (feedv1.FeedServer, *Loops, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), durable: "feed-fanout"}
	for _, opt := range opts {
		opt(&o)
	}
	if users == nil {
		return nil, nil, errors.New("feed: New needs the user service (users is nil)")
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("feed: migrate: %w", err)
	}
	store := data.NewStore(db)
	g := data.NewGraph(users)
	loops := &Loops{}
	if o.cache == nil {
		// No janitor goroutine: expired entries go when read or evicted by the LRU.
		m := cache.NewMemory(cache.WithClock(o.clock), cache.WithMaxEntries(10_000), cache.WithJanitorInterval(0))
		o.cache, loops.owned = m, m
	}
	if q != nil {
		fan := biz.NewFanOut(store, g, o.clock, o.fanout, o.logger)
		sub, err := q.Subscribe(ctx, event.Note, o.durable, func(ctx context.Context, m mq.Message) error {
			return fan.Handle(ctx, m.Data)
		})
		if err != nil {
			fan.Close()
			loops.Close()
			return nil, nil, fmt.Errorf("feed: subscribe to %s: %w", event.Note, err)
		}
		loops.FanOut = fanOutCloser{sub: sub, fan: fan}
	}
	if o.counters != nil {
		r := biz.NewRefresher(store, data.NewCounts(o.counters), o.clock, o.hot, o.logger)
		r.Start()
		loops.Refresh = r
	}
	uc := biz.NewUsecase(store, g, o.cache, o.clock, o.read, o.logger)
	return service.New(uc), loops, nil
}
