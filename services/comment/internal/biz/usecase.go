package biz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/kit/page"
	"github.com/redline-dev/redline/services/event"
)

// Usecase is the comment service's logic: the API, the consumer of queued comments and the
// counter sync.
type Usecase struct {
	repo    Repo
	notes   Notes
	counter Counter
	queue   Publisher
	clock   clock.Clock
	logger  *slog.Logger
	top     int
	lease   time.Duration

	written, duplicates, invalid, synced, syncFailed, lostLease atomic.Uint64
}

// Config holds the Usecase's knobs.
type Config struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// TopReplies is how many replies ListRoots shows under each root.
	TopReplies int
	// CountLease is how long a counter sync owns a comment; the RecordComment call it makes
	// times out at half of it, so a lease outlives its call.
	CountLease time.Duration
}

// NewUsecase returns the logic over its dependencies.
func NewUsecase(repo Repo, notes Notes, counter Counter, queue Publisher, cfg Config) *Usecase {
	return &Usecase{repo: repo, notes: notes, counter: counter, queue: queue, clock: cfg.Clock,
		logger: cfg.Logger, top: cfg.TopReplies, lease: cfg.CountLease}
}

// Stats counts what the consumer and the counter sync did since the start.
type Stats struct {
	Written    uint64 // comments the consumer wrote
	Duplicates uint64 // redelivered commands that found their comment written
	Invalid    uint64 // commands that could never be applied; acknowledged and dropped
	Synced     uint64 // RecordComment calls that succeeded
	SyncFailed uint64 // RecordComment calls that failed; the relay retries them
	// LostLease counts syncs whose lease ran out during the call: another syncer may have
	// sent the same delta, so the counter may be off by one per case.
	LostLease uint64
}

// Stats returns the counters.
func (uc *Usecase) Stats() Stats {
	return Stats{Written: uc.written.Load(), Duplicates: uc.duplicates.Load(), Invalid: uc.invalid.Load(),
		Synced: uc.synced.Load(), SyncFailed: uc.syncFailed.Load(), LostLease: uc.lostLease.Load()}
}

func (uc *Usecase) now() int64 { return uc.clock.Now().UnixMilli() }

// Create validates c, checks that its note, root and parent exist, assigns its id and puts
// it on the queue. The comment is pending until the consumer writes it.
func (uc *Usecase) Create(ctx context.Context, c *Comment) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if _, err := uc.notes.Author(ctx, c.NoteID); err != nil {
		return 0, err
	}
	if c.RootID != 0 {
		root, err := uc.repo.Get(ctx, c.RootID)
		switch {
		case errors.Is(err, ErrCommentNotFound):
			return 0, ErrRootNotFound
		case err != nil:
			return 0, err
		case !root.IsRoot() || root.NoteID != c.NoteID:
			return 0, ErrInvalidRoot
		case root.DeletedAt != 0:
			return 0, ErrRootNotFound
		}
	}
	if c.ParentID != 0 {
		parent, err := uc.repo.Get(ctx, c.ParentID)
		switch {
		case errors.Is(err, ErrCommentNotFound):
			return 0, ErrParentNotFound
		case err != nil:
			return 0, err
		case parent.RootID != c.RootID:
			return 0, ErrInvalidParent
		case parent.DeletedAt != 0:
			return 0, ErrParentNotFound
		}
	}
	c.ID = id.New()
	c.CreatedAt = uc.now()
	data, err := event.Encode(event.CommentCommand{Op: event.Created, ID: c.ID, NoteID: c.NoteID, UserID: c.UserID,
		RootID: c.RootID, ParentID: c.ParentID, Body: c.Body, AtMS: c.CreatedAt})
	if err != nil {
		return 0, fmt.Errorf("comment: encode command: %w", err)
	}
	if err := uc.queue.Publish(ctx, event.Comment, data); err != nil {
		return 0, ErrQueue.WithCause(err)
	}
	return c.ID, nil
}

// Get returns a written, visible comment.
func (uc *Usecase) Get(ctx context.Context, id int64) (*Comment, error) {
	if id <= 0 {
		return nil, ErrInvalidID
	}
	c, err := uc.repo.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.DeletedAt != 0 {
		return nil, ErrCommentDeleted
	}
	return c, nil
}

// Delete hides comment id, and a root's replies with it, when user wrote the comment or its
// note. Deleting a hidden comment changes nothing and returns false.
func (uc *Usecase) Delete(ctx context.Context, id, user int64) (bool, error) {
	if id <= 0 {
		return false, ErrInvalidID
	}
	if user <= 0 {
		return false, ErrInvalidUser
	}
	c, err := uc.repo.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if c.UserID != user {
		author, err := uc.notes.Author(ctx, c.NoteID)
		if errors.Is(err, ErrNoteNotFound) {
			return false, ErrNotAllowed // no note, no owner: only the comment's author may
		}
		if err != nil {
			return false, err
		}
		if author != user {
			return false, ErrNotAllowed
		}
	}
	if c.DeletedAt != 0 {
		return false, nil
	}
	hidden, err := uc.repo.Delete(ctx, c, uc.now())
	if err != nil {
		return false, err
	}
	// The delete is committed; the counter follows, here for the first comments and by the
	// relay for whatever this leaves (a failed call, or a root with very many replies).
	for i, h := range hidden {
		if i == maxInlineSyncs {
			break
		}
		uc.syncLogged(ctx, h)
	}
	return len(hidden) > 0, nil
}

// maxInlineSyncs bounds the counter calls a Delete makes before answering.
const maxInlineSyncs = 20

// ListRoots returns a page of note's roots in order, each with its first replies, and the
// next cursor ("" at the end).
func (uc *Usecase) ListRoots(ctx context.Context, note int64, order string, pageSize int, cursor string) ([]Thread, string, error) {
	if note <= 0 {
		return nil, "", ErrInvalidNote
	}
	o, err := ParseOrder(order)
	if err != nil {
		return nil, "", err
	}
	pos, err := DecodeRootCursor(o, cursor)
	if err != nil {
		return nil, "", err
	}
	size := page.Size(pageSize)
	roots, err := uc.repo.ListRoots(ctx, note, o, pos, size+1)
	if err != nil {
		return nil, "", err
	}
	if len(roots) == 0 {
		if cursor == "" {
			// Only an empty first page pays for telling "no comments" from "no note".
			if _, err := uc.notes.Author(ctx, note); err != nil {
				return nil, "", err
			}
		}
		return nil, "", nil
	}
	next := ""
	if len(roots) > size {
		roots = roots[:size]
		last := roots[size-1]
		next = EncodeRootCursor(o, RootPos{Replies: last.ReplyCount, ID: last.ID})
	}
	ids := make([]int64, len(roots))
	for i, r := range roots {
		ids[i] = r.ID
	}
	replies, err := uc.repo.FirstReplies(ctx, ids, uc.top)
	if err != nil {
		return nil, "", err
	}
	threads := make([]Thread, len(roots))
	for i, r := range roots {
		rs := replies[r.ID]
		threads[i] = Thread{Root: r, Replies: rs}
		if len(rs) > 0 && int64(len(rs)) < r.ReplyCount {
			threads[i].RepliesCursor = EncodeRepliesCursor(rs[len(rs)-1].ID)
		}
	}
	return threads, next, nil
}

// Thread is a root with its first replies.
type Thread struct {
	Root    *Comment
	Replies []*Comment
	// RepliesCursor continues ListReplies after Replies; "" when there are no more.
	RepliesCursor string
}

// ListReplies returns a page of root's replies, oldest first, and the next cursor.
func (uc *Usecase) ListReplies(ctx context.Context, root int64, pageSize int, cursor string) ([]*Comment, string, error) {
	if root <= 0 {
		return nil, "", ErrInvalidRoot
	}
	after, err := DecodeRepliesCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	size := page.Size(pageSize)
	replies, err := uc.repo.ListReplies(ctx, root, after, size+1)
	if err != nil {
		return nil, "", err
	}
	if len(replies) == 0 {
		// Only an empty page pays for telling "no more replies" from "no such root".
		r, err := uc.repo.Get(ctx, root)
		switch {
		case errors.Is(err, ErrCommentNotFound):
			return nil, "", ErrRootNotFound
		case err != nil:
			return nil, "", err
		case !r.IsRoot() || r.DeletedAt != 0:
			return nil, "", ErrRootNotFound
		}
		return nil, "", nil
	}
	next := ""
	if len(replies) > size {
		replies = replies[:size]
		next = EncodeRepliesCursor(replies[size-1].ID)
	}
	return replies, next, nil
}

// DecodeCommand reads a queued CommentCommand into the comment it creates, validated as
// Create validates. An error means the command can never be applied.
func DecodeCommand(data []byte) (*Comment, error) {
	var cmd event.CommentCommand
	if err := event.Decode(event.Comment, data, &cmd); err != nil {
		return nil, err
	}
	if cmd.Op != event.Created {
		return nil, fmt.Errorf("comment command op %q: only %q is queued", cmd.Op, event.Created)
	}
	if cmd.ID <= 0 || cmd.AtMS <= 0 {
		return nil, fmt.Errorf("comment command: id %d and at_ms %d must be > 0", cmd.ID, cmd.AtMS)
	}
	c := &Comment{ID: cmd.ID, NoteID: cmd.NoteID, UserID: cmd.UserID, RootID: cmd.RootID, ParentID: cmd.ParentID,
		Body: cmd.Body, CreatedAt: cmd.AtMS}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("comment command %d: %w", cmd.ID, err)
	}
	return c, nil
}

// Apply is the consumer's handler: it writes the queued comment in data unless it is
// written already, then brings the interaction counter up to date for it. A command that
// can never be applied is counted, logged and acknowledged (nil). An error asks the queue
// for a redelivery, which finds the comment written and changes nothing.
//
// The counter is exact across crashes: the comment row records whether the counter
// includes it, so a redelivery after a crash between the insert and RecordComment makes
// the call, and one after the call was recorded does not. The one window left is a crash
// after RecordComment returned and before that was recorded: one extra +1 (see
// CountLedger). A failed call does not fail the message: the comment is written, and the
// relay retries the call.
func (uc *Usecase) Apply(ctx context.Context, data []byte) error {
	c, err := DecodeCommand(data)
	if err != nil {
		uc.drop(err)
		return nil
	}
	if c.RootID != 0 {
		root, err := uc.repo.Get(ctx, c.RootID)
		switch {
		case errors.Is(err, ErrCommentNotFound):
			uc.drop(fmt.Errorf("reply %d: root %d does not exist", c.ID, c.RootID))
			return nil
		case err != nil:
			return err
		case !root.IsRoot() || root.NoteID != c.NoteID:
			uc.drop(fmt.Errorf("reply %d: %d is not a root of note %d", c.ID, c.RootID, c.NoteID))
			return nil
		}
	}
	inserted, err := uc.repo.Insert(ctx, c)
	if err != nil {
		return err
	}
	if inserted {
		uc.written.Add(1)
	} else {
		uc.duplicates.Add(1)
	}
	// Also when not inserted: a first delivery may have died before its call.
	uc.syncLogged(ctx, c.ID)
	return nil
}

func (uc *Usecase) drop(err error) {
	uc.invalid.Add(1)
	uc.logger.Warn("comment: dropping a command that can never be applied", "err", err)
}

// SyncCount brings the interaction counter up to date for comment id: when the comment
// needs a +1 or -1 and no one else is sending it, it claims the comment, calls
// RecordComment once and records the result. It returns the call's error, if any, after
// releasing the claim.
func (uc *Usecase) SyncCount(ctx context.Context, id int64) error {
	now := uc.now()
	lease := now + uc.lease.Milliseconds()
	note, delta, ok, err := uc.repo.ClaimCount(ctx, id, now, lease)
	if err != nil || !ok {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, uc.lease/2)
	err = uc.counter.RecordComment(callCtx, note, delta)
	cancel()
	// The outcome is recorded even when ctx has ended: the call happened or it did not.
	bg := context.WithoutCancel(ctx)
	if err != nil {
		uc.syncFailed.Add(1)
		if rerr := uc.repo.ReleaseCount(bg, id, lease); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	uc.synced.Add(1)
	held, err := uc.repo.SettleCount(bg, id, lease, delta > 0)
	if err != nil {
		return err
	}
	if !held {
		uc.lostLease.Add(1)
		uc.logger.Warn("comment: counter sync outlived its lease; the count may be off by one", "comment_id", id)
	}
	return nil
}

func (uc *Usecase) syncLogged(ctx context.Context, id int64) {
	if err := uc.SyncCount(ctx, id); err != nil {
		uc.logger.Warn("comment: counter sync failed; the relay retries it", "comment_id", id, "err", err)
	}
}

// SyncPending runs SyncCount for up to limit comments whose counter is behind and not
// leased, and returns how many it tried and the first error.
func (uc *Usecase) SyncPending(ctx context.Context, limit int) (int, error) {
	ids, err := uc.repo.UnsyncedCounts(ctx, uc.now(), limit)
	if err != nil {
		return 0, err
	}
	var first error
	for _, id := range ids {
		if err := uc.SyncCount(ctx, id); err != nil && first == nil {
			first = err
		}
	}
	return len(ids), first
}
