// Package biz holds the feed service's rules: fan-out of new notes to followers' inboxes in
// batches, the pull of big authors' notes at read time and its merge with the inbox, inbox
// caps, explore orders and hot scores. It owns the interfaces that data and the wiring
// implement.
package biz

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/page"
)

// Entry is a note in a feed.
type Entry struct {
	NoteID, AuthorID, CreatedMS int64
	// Score is the hot score; set on hot pages only.
	Score float64
}

// Pos is a position in a list ordered by (Major desc, NoteID desc): Major is created_ms in
// the home and recent feeds and the score's float64 bits in the hot feed, which order like
// the scores since scores are positive. Items strictly after Pos come next.
type Pos struct{ Major, NoteID int64 }

// Start is the position before the first item.
var Start = Pos{math.MaxInt64, math.MaxInt64}

// after reports whether e comes after p in (CreatedMS desc, NoteID desc) order.
func (e Entry) after(p Pos) bool {
	return e.CreatedMS < p.Major || e.CreatedMS == p.Major && e.NoteID < p.NoteID
}

// NoteState is what the feed keeps of a note after an event.
type NoteState struct {
	NoteID, AuthorID, CreatedMS, Version int64
	Deleted                              bool
	// Score is the initial hot score, for a note not yet scored with counters.
	Score float64
}

// Delivery is a note to put in the inboxes of Users.
type Delivery struct {
	Entry
	Users []int64
}

// Store keeps the feed's notes and inboxes.
type Store interface {
	// ApplyNotes stores each state unless the stored one has the same or a higher version,
	// removes the deleted notes from every inbox, and returns the notes among states' ids
	// that are live and not yet fanned out, all in one transaction.
	ApplyNotes(ctx context.Context, states []NoteState) ([]Entry, error)
	// BigAuthors returns which of authors are marked big.
	BigAuthors(ctx context.Context, authors []int64) (map[int64]bool, error)
	// MarkBig marks author big, having seen more than followers followers.
	MarkBig(ctx context.Context, author int64, followers int, at time.Time) error
	// Deliver writes the inbox rows of every delivery whose note is still live, marks the
	// notes fanned out, and trims every inbox that grew past limit+slack rows since its last
	// trim back to its newest limit rows, in one transaction. Rows already there are kept.
	Deliver(ctx context.Context, ds []Delivery, limit, slack int) error
	// Inbox returns up to limit rows of user's inbox after p, in feed order.
	Inbox(ctx context.Context, user int64, p Pos, limit int) ([]Entry, error)
	// RemoveFromInbox deletes notes from user's inbox.
	RemoveFromInbox(ctx context.Context, user int64, notes []int64) error
	// ByAuthors returns up to limit live notes of authors after p, in feed order.
	ByAuthors(ctx context.Context, authors []int64, p Pos, limit int) ([]Entry, error)
	// Recent returns up to limit live notes after p, in feed order.
	Recent(ctx context.Context, p Pos, limit int) ([]Entry, error)
	// Hot returns up to limit live notes with a score > 0 after p in (score desc, note_id
	// desc) order, p.Major being the score's bits.
	Hot(ctx context.Context, p Pos, limit int) ([]Entry, error)
	// HotCandidates returns up to limit live notes created at or after sinceMS, newest first.
	HotCandidates(ctx context.Context, sinceMS int64, limit int) ([]Entry, error)
	// SetScores stores the scores of notes.
	SetScores(ctx context.Context, scores map[int64]float64) error
	// ClearScores sets the score of every note created before beforeMS to 0, which takes
	// it off the hot feed.
	ClearScores(ctx context.Context, beforeMS int64) error
}

// FollowGraph is who follows whom, from the user service.
type FollowGraph interface {
	// Followers returns who follows user, at most limit+1 of them; more than limit says the
	// user has more than limit followers.
	Followers(ctx context.Context, user int64, limit int) ([]int64, error)
	// Following returns whom user follows, at most limit of them; complete says that is all.
	Following(ctx context.Context, user int64, limit int) (ids []int64, complete bool, err error)
}

// Counts are a note's interaction counters.
type Counts struct{ Likes, Collects, Comments int64 }

// CountSource reads interaction counters, at most MaxCountBatch notes per call.
type CountSource interface {
	Counts(ctx context.Context, notes []int64) (map[int64]Counts, error)
}

// MaxCountBatch is the most notes one CountSource call asks about (the interaction
// service's limit).
const MaxCountBatch = 100

// Score is a note's hot score: (likes + 2·collects + 3·comments + 1) / (age_hours + 2)^1.5.
// Engagement raises it, age lowers it, and the +1 and +2 give a new note without any
// engagement a positive score that a few hours of age outweigh.
func Score(c Counts, createdMS int64, now time.Time) float64 {
	ageHours := max(float64(now.UnixMilli()-createdMS)/float64(time.Hour.Milliseconds()), 0)
	engagement := float64(max(c.Likes, 0) + 2*max(c.Collects, 0) + 3*max(c.Comments, 0) + 1)
	return engagement / math.Pow(ageHours+2, 1.5)
}

// Errors callers branch on.
var (
	ErrInvalidUser = errs.InvalidArgument("INVALID_USER", "user_id must be > 0")
	ErrInvalidKind = errs.InvalidArgument("INVALID_KIND", "kind must be RECENT or HOT")
	ErrBadCursor   = page.ErrBadCursor
)

// Kind is an explore order.
type Kind int

// The explore orders.
const (
	Recent Kind = iota + 1
	Hot
)

// Config holds the usecase's knobs; zero fields take the documented defaults.
type Config struct {
	// MaxFollowing is the most followees a home-feed read considers (default 2000). For a
	// user who follows more, unfollowed authors are not filtered out of the inbox and big
	// authors past the limit are not pulled.
	MaxFollowing int
	// MaxPulledAuthors is the most big authors one home-feed read pulls (default 500).
	MaxPulledAuthors int
	// FollowTTL is how long a user's followees are cached (default 30s): an unfollow takes
	// up to this long to show in the home feed.
	FollowTTL time.Duration
}

// Usecase is the feed's read side.
type Usecase struct {
	store  Store
	graph  FollowGraph
	cache  cache.Cache
	clock  clock.Clock
	cfg    Config
	logger *slog.Logger
}

// NewUsecase returns the read side over store, with followees from graph cached in c.
func NewUsecase(store Store, graph FollowGraph, c cache.Cache, clk clock.Clock, cfg Config, logger *slog.Logger) *Usecase {
	if cfg.MaxFollowing <= 0 {
		cfg.MaxFollowing = 2000
	}
	if cfg.MaxPulledAuthors <= 0 {
		cfg.MaxPulledAuthors = 500
	}
	if cfg.FollowTTL <= 0 {
		cfg.FollowTTL = 30 * time.Second
	}
	return &Usecase{store: store, graph: graph, cache: c, clock: clk, cfg: cfg, logger: logger}
}

// HomeFeed returns a page of user's home feed and the cursor of the next ("" at the end):
// their inbox merged with the notes of the big authors they follow, newest first, without
// repeats (a note of an author who became big may be in both).
func (uc *Usecase) HomeFeed(ctx context.Context, user int64, size int, cursor string) ([]Entry, string, error) {
	if user <= 0 {
		return nil, "", ErrInvalidUser
	}
	size = page.Size(size)
	p, err := DecodeCursor(homeCursor, cursor)
	if err != nil {
		return nil, "", err
	}
	f, err := uc.follows(ctx, user)
	if err != nil {
		return nil, "", err
	}
	// One extra item of each source tells whether a next page exists.
	inbox, err := uc.inbox(ctx, user, f, p, size+1)
	if err != nil {
		return nil, "", err
	}
	var pulled []Entry
	if len(f.Big) > 0 {
		if pulled, err = uc.store.ByAuthors(ctx, f.Big, p, size+1); err != nil {
			return nil, "", err
		}
	}
	merged := Merge(inbox, pulled, size+1)
	return pageOf(merged, size, homeCursor)
}

// inbox returns up to limit rows of user's inbox after p, leaving out the notes of authors
// user no longer follows, which it deletes so the next read does not meet them again.
func (uc *Usecase) inbox(ctx context.Context, user int64, f *Follows, p Pos, limit int) ([]Entry, error) {
	var out []Entry
	for {
		rows, err := uc.store.Inbox(ctx, user, p, limit)
		if err != nil {
			return nil, err
		}
		var stale []int64
		for _, e := range rows {
			if e.AuthorID == user || !f.Complete || f.follows(e.AuthorID) {
				out = append(out, e)
			} else {
				stale = append(stale, e.NoteID)
			}
		}
		if len(stale) > 0 {
			if err := uc.store.RemoveFromInbox(ctx, user, stale); err != nil {
				// The page is right without the cleanup; the next read tries again.
				uc.logger.Warn("feed: removing unfollowed authors' notes from an inbox failed", "user", user, "err", err)
			}
		}
		if len(rows) < limit || len(out) >= limit {
			return out[:min(len(out), limit)], nil
		}
		last := rows[len(rows)-1]
		p = Pos{last.CreatedMS, last.NoteID}
	}
}

// Merge merges two lists in feed order into one of at most limit items, keeping the first
// of items with the same note id; a note is at the same place in both lists, so repeats
// are neighbours.
func Merge(a, b []Entry, limit int) []Entry {
	out := make([]Entry, 0, min(len(a)+len(b), limit))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		var e Entry
		switch {
		case len(b) == 0 || len(a) > 0 && !a[0].after(Pos{b[0].CreatedMS, b[0].NoteID}):
			e, a = a[0], a[1:]
		default:
			e, b = b[0], b[1:]
		}
		if n := len(out); n > 0 && out[n-1].NoteID == e.NoteID {
			continue
		}
		out = append(out, e)
	}
	return out
}

// pageOf cuts items, fetched with one extra, to size and makes the next cursor.
func pageOf(items []Entry, size int, kind string) ([]Entry, string, error) {
	if len(items) <= size {
		return items, "", nil
	}
	items = items[:size]
	last := items[size-1]
	major := last.CreatedMS
	if kind == hotCursor {
		major = int64(math.Float64bits(last.Score))
	}
	return items, EncodeCursor(kind, Pos{major, last.NoteID}), nil
}

// Explore returns a page of every live note in kind's order, and the next cursor.
func (uc *Usecase) Explore(ctx context.Context, kind Kind, size int, cursor string) ([]Entry, string, error) {
	size = page.Size(size)
	var (
		ck   string
		list func(context.Context, Pos, int) ([]Entry, error)
	)
	switch kind {
	case Recent:
		ck, list = recentCursor, uc.store.Recent
	case Hot:
		ck, list = hotCursor, uc.store.Hot
	default:
		return nil, "", ErrInvalidKind
	}
	p, err := DecodeCursor(ck, cursor)
	if err != nil {
		return nil, "", err
	}
	items, err := list(ctx, p, size+1)
	if err != nil {
		return nil, "", err
	}
	return pageOf(items, size, ck)
}
