// Package biz holds the note service's rules: what a note may contain, idempotent
// creation, cursor pagination, and the relay that publishes the note events written to the
// transactional outbox. It owns the repository interfaces that data implements.
package biz

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/kit/page"
)

// Note is a post.
type Note struct {
	ID       int64
	AuthorID int64
	Title    string
	Body     string
	Tags     []string
	Media    []string
	// ProductIDs are the linked products, in the author's order, without repeats.
	ProductIDs []int64
	CreatedAt  time.Time
	// IdempotencyKey makes creation safe to repeat; "" for none.
	IdempotencyKey string
	// Version is the millisecond of the note's last change, strictly increasing per note: two
	// changes in one millisecond get consecutive versions. Events carry it.
	Version int64
}

// Repo stores notes. When events are on, every change that stores something also writes
// its event to the outbox in the same transaction.
type Repo interface {
	// Create stores n, with Version set to its creation millisecond. If the author already
	// created a note with the same idempotency key, it stores nothing and returns that note.
	Create(ctx context.Context, n *Note) (*Note, error)
	// Get returns a note; ErrNotFound when absent.
	Get(ctx context.Context, id int64) (*Note, error)
	// GetMany returns the notes of ids that exist, in ids order, each once.
	GetMany(ctx context.Context, ids []int64) ([]*Note, error)
	// ListByAuthor returns up to limit notes of author with id < before, newest first.
	ListByAuthor(ctx context.Context, author, before int64, limit int) ([]*Note, error)
	// ListByTag returns up to limit notes tagged tag with id < before, newest first.
	ListByTag(ctx context.Context, tag string, before int64, limit int) ([]*Note, error)
	// Update stores n's title, body, tags, media and products, all at once, and sets
	// n.Version to the new version, the later of at and the old version + 1.
	Update(ctx context.Context, n *Note, at time.Time) error
	// Delete hides the note; false when it was already hidden.
	Delete(ctx context.Context, id int64, at time.Time) (bool, error)
}

// Patch is a partial update: nil fields stay as they are.
type Patch struct {
	Title, Body *string
	Tags, Media *[]string
	ProductIDs  *[]int64
}

// ErrNotOwner answers a change to someone else's note.
var ErrNotOwner = errs.PermissionDenied("NOT_OWNER", "only the author may change or delete a note")

// Update applies patch to the note, if author wrote it; the result is validated like a new
// note, and nothing is stored when it fails.
func (uc *Usecase) Update(ctx context.Context, noteID, author int64, patch Patch) (*Note, error) {
	n, err := uc.Get(ctx, noteID)
	if err != nil {
		return nil, err
	}
	if n.AuthorID != author {
		return nil, ErrNotOwner
	}
	if patch.Title != nil {
		n.Title = *patch.Title
	}
	if patch.Body != nil {
		n.Body = *patch.Body
	}
	if patch.Tags != nil {
		n.Tags = *patch.Tags
	}
	if patch.Media != nil {
		n.Media = *patch.Media
	}
	if patch.ProductIDs != nil {
		n.ProductIDs = *patch.ProductIDs
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	if err := uc.repo.Update(ctx, n, uc.clock.Now()); err != nil {
		return nil, err
	}
	uc.changed()
	return n, nil
}

// Delete hides the note, if author wrote it. Deleting a deleted note changes nothing.
func (uc *Usecase) Delete(ctx context.Context, noteID, author int64) (bool, error) {
	n, err := uc.Get(ctx, noteID)
	if errors.Is(err, ErrNotFound) {
		return false, nil // already gone (or never was): the caller's goal holds
	}
	if err != nil {
		return false, err
	}
	if n.AuthorID != author {
		return false, ErrNotOwner
	}
	changed, err := uc.repo.Delete(ctx, noteID, uc.clock.Now())
	if changed {
		uc.changed()
	}
	return changed, err
}

// ListByTag returns a page of the notes with a tag and the next cursor.
func (uc *Usecase) ListByTag(ctx context.Context, tag string, pageSize int, cursor string) ([]*Note, string, error) {
	tag = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(tag, "#")))
	if tag == "" || len(tag) > 4*MaxTagLen {
		return nil, "", invalid("INVALID_TAG", "tag must be 1 to %d characters", MaxTagLen)
	}
	return uc.list(func(before int64, limit int) ([]*Note, error) {
		return uc.repo.ListByTag(ctx, tag, before, limit)
	}, pageSize, cursor)
}

// Limits of a note.
const (
	MaxTitle    = 100
	MaxBody     = 10000
	MaxTags     = 10
	MaxTagLen   = 32
	MaxMedia    = 9
	MaxMediaRef = 512
	MaxProducts = 20
	maxIdemKey  = 128
	cursorKind  = "n1"
)

// Errors callers branch on.
var (
	ErrNotFound  = errs.NotFound("NOTE_NOT_FOUND", "no such note")
	ErrBadCursor = page.ErrBadCursor
)

// Usecase is the note service's logic.
type Usecase struct {
	repo    Repo
	clock   clock.Clock
	changed func()
}

// NewUsecase returns the logic over repo. c stamps creations and changes; changed, when not
// nil, is called after every committed change (the outbox relay's nudge).
func NewUsecase(repo Repo, c clock.Clock, changed func()) *Usecase {
	if changed == nil {
		changed = func() {}
	}
	return &Usecase{repo: repo, clock: c, changed: changed}
}

func invalid(reason, format string, args ...any) error {
	return errs.InvalidArgument(reason, format, args...)
}

// Validate checks a note to be created and normalizes its tags.
func (n *Note) Validate() error {
	n.Title = strings.TrimSpace(n.Title)
	switch {
	case n.AuthorID <= 0:
		return invalid("INVALID_AUTHOR", "author_id is required")
	case n.Title == "" || utf8.RuneCountInString(n.Title) > MaxTitle || !utf8.ValidString(n.Title):
		return invalid("INVALID_TITLE", "title must be 1 to %d characters", MaxTitle)
	case utf8.RuneCountInString(n.Body) > MaxBody || !utf8.ValidString(n.Body):
		return invalid("INVALID_BODY", "body must be at most %d characters", MaxBody)
	case len(n.Tags) > MaxTags:
		return invalid("TOO_MANY_TAGS", "at most %d tags", MaxTags)
	case len(n.Media) > MaxMedia:
		return invalid("TOO_MANY_MEDIA", "at most %d media references", MaxMedia)
	case len(n.ProductIDs) > MaxProducts:
		return invalid("TOO_MANY_PRODUCTS", "at most %d linked products", MaxProducts)
	case len(n.IdempotencyKey) > maxIdemKey:
		return invalid("INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be at most %d bytes", maxIdemKey)
	}
	seen := map[string]bool{}
	tags := n.Tags[:0:0]
	for _, t := range n.Tags {
		t = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(t, "#")))
		if t == "" || utf8.RuneCountInString(t) > MaxTagLen || strings.ContainsAny(t, " ,#") {
			return invalid("INVALID_TAG", "tag %q: 1 to %d characters, no spaces, commas or #", t, MaxTagLen)
		}
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	n.Tags = tags
	for _, m := range n.Media {
		if m == "" || len(m) > MaxMediaRef || strings.ContainsAny(m, " \n\t") {
			return invalid("INVALID_MEDIA", "media references must be 1 to %d bytes without spaces", MaxMediaRef)
		}
	}
	products := make([]int64, 0, len(n.ProductIDs))
	for _, p := range n.ProductIDs {
		if p <= 0 {
			return invalid("INVALID_PRODUCT", "product ids must be > 0")
		}
		if !slices.Contains(products, p) { // at most 20: a scan beats a map
			products = append(products, p)
		}
	}
	n.ProductIDs = products
	return nil
}

// Create validates and stores a note.
func (uc *Usecase) Create(ctx context.Context, n *Note) (*Note, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	n.ID = id.New()
	n.CreatedAt = uc.clock.Now().UTC().Truncate(time.Millisecond)
	n.Version = n.CreatedAt.UnixMilli()
	created, err := uc.repo.Create(ctx, n)
	if err != nil {
		return nil, err
	}
	uc.changed()
	return created, nil
}

// Get returns a note.
func (uc *Usecase) Get(ctx context.Context, noteID int64) (*Note, error) {
	if noteID <= 0 {
		return nil, ErrNotFound
	}
	return uc.repo.Get(ctx, noteID)
}

// MaxBatch is the most ids GetMany takes.
const MaxBatch = 100

// GetMany returns the notes of ids that exist and are not deleted, in ids order.
func (uc *Usecase) GetMany(ctx context.Context, ids []int64) ([]*Note, error) {
	if len(ids) > MaxBatch {
		return nil, invalid("TOO_MANY_IDS", "ask for at most %d notes at once", MaxBatch)
	}
	keep := ids[:0:0]
	for _, id := range ids {
		if id > 0 {
			keep = append(keep, id)
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	return uc.repo.GetMany(ctx, keep)
}

// ListByAuthor returns a page of an author's notes and the cursor of the next page ("" at
// the end).
func (uc *Usecase) ListByAuthor(ctx context.Context, author int64, pageSize int, cursor string) ([]*Note, string, error) {
	return uc.list(func(before int64, limit int) ([]*Note, error) {
		return uc.repo.ListByAuthor(ctx, author, before, limit)
	}, pageSize, cursor)
}

func (uc *Usecase) list(fetch func(before int64, limit int) ([]*Note, error), pageSize int, cursor string) ([]*Note, string, error) {
	pageSize = page.Size(pageSize)
	before, err := page.Decode(cursorKind, cursor)
	if err != nil {
		return nil, "", err
	}
	// One extra row tells whether a next page exists without a second query.
	notes, err := fetch(before, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(notes) > pageSize {
		notes = notes[:pageSize]
		next = EncodeCursor(notes[len(notes)-1].ID)
	}
	return notes, next, nil
}

// EncodeCursor makes the opaque cursor that resumes after the note with id.
func EncodeCursor(noteID int64) string { return page.Encode(cursorKind, noteID) }

// DecodeCursor reads a cursor made by EncodeCursor; anything else is ErrBadCursor.
func DecodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, ErrBadCursor
	}
	return page.Decode(cursorKind, c)
}
