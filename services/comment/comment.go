// Package comment wires the comment service: two-level comments on notes (roots, and
// replies under a root that may name the reply they answer), written through the queue,
// listed hot or new with each root's first replies.
//
// Writes. CreateComment validates the comment, checks its note (through the note service)
// and its root and parent, assigns the id and publishes an event.CommentCommand on
// event.Comment; it answers the id in state "pending" (the BFF answers 202), and GetComment
// says NOT_FOUND until the consumer has written it. The consumer is a durable subscription
// shared by every instance; it inserts the comment if its id is absent, so a redelivered
// command changes nothing, and a reply bumps its root's reply count in the same
// transaction.
//
// Deletes are direct, not queued: the caller learns at once whether they were allowed (the
// comment's author or the note's author) and the comment is hidden when DeleteComment
// returns. Deletes are soft; deleting a root hides its replies, and a reply queued before
// its root was deleted is written hidden.
//
// The interaction service's comment counter. RecordComment adds to a counter and is not
// idempotent, so each comment row records whether the counter includes it (counted) and
// who is sending the change (count_lease). A sync claims the row, calls RecordComment once
// (+1 for a written comment, -1 for a hidden one) and records the result; the consumer
// syncs after its insert commits (also on a redelivery, which repairs a crash between the
// insert and the call), DeleteComment syncs what it hid, and a relay on every instance
// retries what is left every RelayInterval. The count is exact except for a crash (or a
// call outliving its CountLease) after RecordComment succeeded and before that was
// recorded: then the change is sent again, off by one per case (Stats().LostLease counts
// the lease case). Counter changes lag comments by at most a relay interval when the
// interaction service is down.
//
// Lists. Hot ranks roots by reply count, then newest first (comment likes are not
// implemented); new is newest first. Each root comes with its first TopReplies replies,
// oldest first, and a cursor to continue them with ListReplies.
package comment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/comment/internal/biz"
	"github.com/redline-dev/redline/services/comment/internal/data"
	"github.com/redline-dev/redline/services/comment/internal/service"
	"github.com/redline-dev/redline/services/comment/migrations"
	"github.com/redline-dev/redline/services/event"
)

// Name is the service's name in the registry and in metrics.
const Name = "comment"

// Idempotent lists the methods callers may retry: the reads, and DeleteComment, which sets
// absolute state. CreateComment queues a new comment on every call.
var Idempotent = []string{
	commentv1.Comment_GetComment_FullMethodName,
	commentv1.Comment_DeleteComment_FullMethodName,
	commentv1.Comment_ListRoots_FullMethodName,
	commentv1.Comment_ListReplies_FullMethodName,
}

// NoteClient is what the service needs of the note service; notev1.NoteClient has it.
type NoteClient interface {
	GetNote(ctx context.Context, in *notev1.GetNoteRequest, opts ...grpc.CallOption) (*notev1.NoteInfo, error)
}

// InteractionClient is what the service needs of the interaction service;
// interactionv1.InteractionClient has it.
type InteractionClient interface {
	RecordComment(ctx context.Context, in *interactionv1.RecordCommentRequest, opts ...grpc.CallOption) (*interactionv1.RecordCommentReply, error)
}

var (
	_ NoteClient        = notev1.NoteClient(nil)
	_ InteractionClient = interactionv1.InteractionClient(nil)
)

// Option configures New.
type Option func(*options)

type options struct {
	clock         clock.Clock
	logger        *slog.Logger
	top           int
	durable       string
	relayInterval time.Duration
	lease         time.Duration
}

// WithClock sets the clock that stamps comments and deletes and times counter leases.
// Default the wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where dropped commands and failed counter syncs are reported. Default
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// TopReplies is how many replies ListRoots shows under each root. Default 3; 0 shows none.
func TopReplies(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.top = n
		}
	}
}

// Durable names the queue consumer that writes comments; instances with the same name share
// the commands. Default "comment-writer".
func Durable(name string) Option { return func(o *options) { o.durable = name } }

// RelayInterval is how often the relay retries counter syncs that did not happen inline.
// Default 5s.
func RelayInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.relayInterval = d
		}
	}
}

// CountLease is how long a counter sync owns a comment before another may take over; the
// RecordComment call times out at half of it. Default 30s.
func CountLease(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lease = d
		}
	}
}

// Stats counts what the consumer and the counter sync did since New.
type Stats = biz.Stats

// Worker owns the service's background work: the queue consumer and the counter relay.
type Worker struct {
	sub   mq.Subscription
	relay *biz.Relay
	uc    *biz.Usecase
}

// Close stops the consumer, waiting for a command in progress, then the relay. Close it
// after the gRPC server stops and before the queue, the interaction client and the
// database close.
func (w *Worker) Close() error {
	err := w.sub.Stop()
	return errors.Join(err, w.relay.Close())
}

// Stats returns the consumer's and the counter sync's counters.
func (w *Worker) Stats() Stats { return w.uc.Stats() }

// New migrates db, subscribes the consumer to event.Comment on q and starts the counter
// relay. It returns the gRPC service and the Worker to close.
func New(ctx context.Context, db *sqldb.DB, notes NoteClient, counter InteractionClient, q mq.Queue, opts ...Option) (commentv1.CommentServer, *Worker, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), top: biz.DefaultTopReplies, durable: "comment-writer",
		relayInterval: 5 * time.Second, lease: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("comment: migrate: %w", err)
	}
	uc := biz.NewUsecase(data.NewRepo(db), noteAuthors{notes}, commentCounter{counter}, q, biz.Config{
		Clock: o.clock, Logger: o.logger, TopReplies: o.top, CountLease: o.lease})
	sub, err := q.Subscribe(ctx, event.Comment, o.durable, func(ctx context.Context, m mq.Message) error {
		return uc.Apply(ctx, m.Data)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("comment: subscribe: %w", err)
	}
	return service.New(uc), &Worker{sub: sub, relay: biz.NewRelay(uc, o.relayInterval), uc: uc}, nil
}

// noteAuthors adapts the note client to biz.Notes.
type noteAuthors struct{ c NoteClient }

func (n noteAuthors) Author(ctx context.Context, note int64) (int64, error) {
	info, err := n.c.GetNote(ctx, &notev1.GetNoteRequest{Id: note})
	if errs.Code(err) == codes.NotFound {
		return 0, biz.ErrNoteNotFound
	}
	if err != nil {
		return 0, errs.From(err)
	}
	return info.GetAuthorId(), nil
}

// commentCounter adapts the interaction client to biz.Counter.
type commentCounter struct{ c InteractionClient }

func (c commentCounter) RecordComment(ctx context.Context, note int64, delta int32) error {
	_, err := c.c.RecordComment(ctx, &interactionv1.RecordCommentRequest{TargetId: note, Delta: delta})
	return err
}
