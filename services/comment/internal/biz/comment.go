// Package biz holds the comment service's rules: what a comment may contain, who may delete
// one, how roots and replies relate, the cursors of its lists, the consumer that writes
// queued comments idempotently, and the sync that keeps the interaction service's comment
// counter in step with the comments written. It owns the interfaces that data and the
// wiring implement.
package biz

import (
	"context"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

// Comment is a root comment (RootID 0) or a reply under a root.
type Comment struct {
	ID     int64
	NoteID int64
	UserID int64
	RootID int64
	// ParentID is the reply this reply answers, for display; 0 answers the root.
	ParentID int64
	Body     string
	// ReplyCount is the number of visible replies of a root.
	ReplyCount int64
	CreatedAt  int64 // unix ms
	// DeletedAt is when the comment, or its root, was deleted (unix ms); 0 while visible.
	DeletedAt int64
}

// IsRoot reports whether c is a root comment.
func (c *Comment) IsRoot() bool { return c.RootID == 0 }

// Order is the order of a note's root comments.
type Order int

// The orders.
const (
	// Hot ranks roots by reply count, then newest first.
	Hot Order = iota + 1
	// New is newest first.
	New
)

// ParseOrder reads "hot" (also "") or "new"; anything else is ErrInvalidOrder.
func ParseOrder(s string) (Order, error) {
	switch s {
	case "", "hot":
		return Hot, nil
	case "new":
		return New, nil
	}
	return 0, ErrInvalidOrder
}

// RootPos is a place in a note's roots: Replies is used by Hot only. A page holds the roots
// strictly after it, in (ReplyCount, ID) descending order for Hot and ID descending for New.
type RootPos struct{ Replies, ID int64 }

// Repo stores comments.
type Repo interface {
	// Insert writes c unless a comment with c.ID exists, and reports whether it wrote. A
	// reply adds one to its root's reply count, all or nothing; a reply whose root is
	// deleted is written hidden (DeletedAt of its root) and counts nothing.
	Insert(ctx context.Context, c *Comment) (bool, error)
	// Get returns a comment, deleted or not; ErrCommentNotFound when absent.
	Get(ctx context.Context, id int64) (*Comment, error)
	// Delete hides c at at and, when c is a root, its visible replies; a reply takes one
	// from its root's reply count. It returns the ids it hid, empty when c was already
	// hidden.
	Delete(ctx context.Context, c *Comment, at int64) ([]int64, error)
	// ListRoots returns up to limit visible roots of note after p in order.
	ListRoots(ctx context.Context, note int64, order Order, p RootPos, limit int) ([]*Comment, error)
	// FirstReplies returns up to n visible replies of each root, oldest first, in one query.
	FirstReplies(ctx context.Context, roots []int64, n int) (map[int64][]*Comment, error)
	// ListReplies returns up to limit visible replies of root with id > after, oldest first.
	ListReplies(ctx context.Context, root, after int64, limit int) ([]*Comment, error)
	CountLedger
}

// CountLedger records, per comment, whether the interaction service's comment counter
// includes it, so the service calls RecordComment exactly once per change. A comment needs
// a sync when it is visible and not counted (+1) or hidden and counted (-1). A sync claims
// the comment with a lease first, so of concurrent syncers (the consumer, Delete, the
// relay on every instance) one calls and the others stand aside.
type CountLedger interface {
	// ClaimCount leases comment id until lease when it needs a sync and no unexpired lease
	// holds it at now; it returns the comment's note and the delta to send, ok false when
	// there is nothing to do or someone else holds it.
	ClaimCount(ctx context.Context, id, now, lease int64) (note int64, delta int32, ok bool, err error)
	// SettleCount records that the delta sent under lease was applied (counted is the new
	// state) and drops the lease; false when the lease was no longer held.
	SettleCount(ctx context.Context, id, lease int64, counted bool) (bool, error)
	// ReleaseCount drops the lease after a failed call, so the next syncer may try at once.
	ReleaseCount(ctx context.Context, id, lease int64) error
	// UnsyncedCounts returns up to limit comments needing a sync whose lease ran out by now,
	// oldest first.
	UnsyncedCounts(ctx context.Context, now int64, limit int) ([]int64, error)
}

// Notes answers questions about notes.
type Notes interface {
	// Author returns the note's author; ErrNoteNotFound when the note does not exist.
	Author(ctx context.Context, note int64) (int64, error)
}

// Counter is the interaction service's comment counter.
type Counter interface {
	// RecordComment moves note's comment count by delta, +1 or -1. It is not idempotent.
	RecordComment(ctx context.Context, note int64, delta int32) error
}

// Publisher puts a message on the queue.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte) error
}

// Limits.
const (
	MaxBody = 2000
	// DefaultTopReplies is how many replies ListRoots shows under each root.
	DefaultTopReplies = 3
)

// Errors callers branch on.
var (
	ErrInvalidUser     = errs.InvalidArgument("INVALID_USER", "user_id must be > 0")
	ErrInvalidNote     = errs.InvalidArgument("INVALID_NOTE", "note_id must be > 0")
	ErrInvalidID       = errs.InvalidArgument("INVALID_ID", "id must be > 0")
	ErrInvalidBody     = errs.InvalidArgument("INVALID_BODY", "body must be 1 to %d characters of UTF-8 text", MaxBody)
	ErrInvalidRoot     = errs.InvalidArgument("INVALID_ROOT", "root_id must name a root comment of the note")
	ErrInvalidParent   = errs.InvalidArgument("INVALID_PARENT", "parent_id must name a reply under root_id")
	ErrInvalidOrder    = errs.InvalidArgument("INVALID_ORDER", `order must be "hot" or "new"`)
	ErrNoteNotFound    = errs.NotFound("NOTE_NOT_FOUND", "no such note")
	ErrRootNotFound    = errs.NotFound("ROOT_NOT_FOUND", "no such root comment")
	ErrParentNotFound  = errs.NotFound("PARENT_NOT_FOUND", "no such reply to answer")
	ErrCommentNotFound = errs.NotFound("COMMENT_NOT_FOUND", "no such comment (it may still be pending)")
	ErrCommentDeleted  = errs.NotFound("COMMENT_DELETED", "the comment was deleted")
	ErrNotAllowed      = errs.PermissionDenied("NOT_ALLOWED", "only the comment's author or the note's author may delete it")
	ErrQueue           = errs.New(codes.Unavailable, "QUEUE_UNAVAILABLE", "the comment queue did not take the comment").NoRetry()
)

// Validate checks a comment to be created and trims its body. Ids must be positive, a reply
// names its root, a parent needs a root, and the body is 1 to MaxBody characters of UTF-8
// without NUL (which PostgreSQL cannot store) once surrounding blanks are trimmed.
func (c *Comment) Validate() error {
	switch {
	case c.UserID <= 0:
		return ErrInvalidUser
	case c.NoteID <= 0:
		return ErrInvalidNote
	case c.RootID < 0:
		return ErrInvalidRoot
	case c.ParentID < 0, c.ParentID > 0 && c.RootID == 0:
		return ErrInvalidParent
	}
	if c.ParentID == c.RootID {
		c.ParentID = 0 // answering the root is the default
	}
	if len(c.Body) > 4*MaxBody+64 {
		return ErrInvalidBody // long before trimming could matter
	}
	c.Body = strings.TrimSpace(c.Body)
	if c.Body == "" || !utf8.ValidString(c.Body) || strings.IndexByte(c.Body, 0) >= 0 ||
		utf8.RuneCountInString(c.Body) > MaxBody {
		return ErrInvalidBody
	}
	return nil
}
