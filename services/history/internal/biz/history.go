// Package biz holds the history service's rules: what a request may contain, the cursor of a
// user's history, and the buffer that coalesces views in memory (last write wins per user
// and note) and writes them back in batches. It owns the Store interface that data
// implements.
package biz

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/page"
)

// View is one user's latest view of one note.
type View struct {
	UserID, NoteID int64
	// At is when the view happened, in unix milliseconds.
	At int64
}

// Entry is one line of a user's history.
type Entry struct {
	NoteID int64
	At     int64 // unix milliseconds
}

// Pos is a place in a user's history, which is ordered by (At, NoteID) descending. A page
// holds the entries strictly after Pos in that order, that is (At, NoteID) < Pos.
type Pos struct{ At, NoteID int64 }

// Start is the position before the first entry.
var Start = Pos{At: 1<<63 - 1, NoteID: 1<<63 - 1}

// Before reports whether e comes after p in history order ((e.At, e.NoteID) < p).
func (p Pos) Before(e Entry) bool {
	return e.At < p.At || e.At == p.At && e.NoteID < p.NoteID
}

// Store holds the written history.
type Store interface {
	// Upsert writes views sorted by (user, note), distinct, each keeping the later of its At
	// and the stored one, then trims each of those users to their keep newest entries; all
	// or nothing.
	Upsert(ctx context.Context, views []View, keep int) error
	// List returns up to limit of user's entries after p, newest first, leaving out those at
	// or before the user's last Clear, and the time of that Clear (0 for none).
	List(ctx context.Context, user int64, p Pos, limit int) ([]Entry, int64, error)
	// Clear deletes user's history and records at as the user's last clear, atomically.
	Clear(ctx context.Context, user int64, at int64) error
}

// Errors callers branch on.
var (
	ErrInvalidUser = errs.InvalidArgument("INVALID_USER", "user_id must be > 0")
	ErrInvalidNote = errs.InvalidArgument("INVALID_NOTE", "note_id must be > 0")
	ErrBadCursor   = page.ErrBadCursor
	// ErrBufferFull answers a view that does not fit in memory because the database is not
	// keeping up: overloaded, don't retry; the view is dropped and counted.
	ErrBufferFull = errs.Overloaded("HISTORY_BUFFER_FULL", "history buffer full: view dropped")
)

// ValidateView checks the ids of a RecordView.
func ValidateView(user, note int64) error {
	if user <= 0 {
		return ErrInvalidUser
	}
	if note <= 0 {
		return ErrInvalidNote
	}
	return nil
}

const cursorKind = "h1"

// EncodeCursor makes the opaque cursor that resumes after p.
func EncodeCursor(p Pos) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorKind + ":" + strconv.FormatInt(p.At, 10) + ":" +
		strconv.FormatInt(p.NoteID, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor; "" is Start and anything else is
// ErrBadCursor.
func DecodeCursor(c string) (Pos, error) {
	if c == "" {
		return Start, nil
	}
	if len(c) > 96 {
		return Pos{}, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return Pos{}, ErrBadCursor
	}
	rest, ok := strings.CutPrefix(string(raw), cursorKind+":")
	if !ok {
		return Pos{}, ErrBadCursor
	}
	at, note, ok := strings.Cut(rest, ":")
	if !ok {
		return Pos{}, ErrBadCursor
	}
	var p Pos
	if p.At, err = strconv.ParseInt(at, 10, 64); err != nil || p.At < 0 {
		return Pos{}, ErrBadCursor
	}
	if p.NoteID, err = strconv.ParseInt(note, 10, 64); err != nil || p.NoteID <= 0 {
		return Pos{}, ErrBadCursor
	}
	return p, nil
}

// Usecase is the history service's logic.
type Usecase struct {
	buf   *Buffer
	store Store
	clock clock.Clock
}

// NewUsecase returns the logic over store, buffering views in buf; c stamps views and
// clears.
func NewUsecase(store Store, buf *Buffer, c clock.Clock) *Usecase {
	return &Usecase{buf: buf, store: store, clock: c}
}

// RecordView buffers user's view of note, stamped now.
func (uc *Usecase) RecordView(user, note int64) error {
	if err := ValidateView(user, note); err != nil {
		return err
	}
	return uc.buf.Add(user, note, uc.clock.Now().UnixMilli())
}

// List returns a page of user's history, buffered views included, and the next cursor (""
// at the end).
func (uc *Usecase) List(ctx context.Context, user int64, pageSize int, cursor string) ([]Entry, string, error) {
	if user <= 0 {
		return nil, "", ErrInvalidUser
	}
	pos, err := DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	size := page.Size(pageSize)
	// The buffer first, the database second: a view a flush moves between the two in the
	// meantime is then in the snapshot or already in the database, never in neither.
	buffered := uc.buf.Snapshot(user)
	// Each buffered note can stand in for at most one stored row, so this many rows leave
	// size+1 after the merge.
	stored, clearedAt, err := uc.store.List(ctx, user, pos, size+1+len(buffered))
	if err != nil {
		return nil, "", err
	}
	latest := make(map[int64]int64, len(stored)+len(buffered))
	for _, e := range stored {
		latest[e.NoteID] = e.At
	}
	for note, at := range buffered {
		// A buffered view at or before the user's last clear (made by another instance, or
		// in the clear's millisecond) is cleared too.
		if at > clearedAt && at > latest[note] {
			latest[note] = at
		}
	}
	out := make([]Entry, 0, min(len(latest), size+1))
	for note, at := range latest {
		if e := (Entry{NoteID: note, At: at}); pos.Before(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(b.At, a.At), cmp.Compare(b.NoteID, a.NoteID))
	})
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = EncodeCursor(Pos{At: last.At, NoteID: last.NoteID})
	}
	return out, next, nil
}

// Clear removes user's history: what is stored and what is buffered.
func (uc *Usecase) Clear(ctx context.Context, user int64) error {
	if user <= 0 {
		return ErrInvalidUser
	}
	return uc.buf.Clear(ctx, user, uc.clock.Now().UnixMilli())
}
