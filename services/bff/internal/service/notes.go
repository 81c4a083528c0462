package service

import (
	"context"
	"net/http"
	"strconv"
	"time"

	historyv1 "github.com/redline-dev/redline/api/history/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
)

// NoteView is a note as clients see it.
type NoteView struct {
	ID       string   `json:"id"`
	AuthorID string   `json:"author_id"`
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	Tags     []string `json:"tags"`
	Media    []string `json:"media"`
	// ProductIDs are the products the note links to (GET /v1/products/{id}).
	ProductIDs []string  `json:"product_ids"`
	CreatedAt  time.Time `json:"created_at"`
	// Author, Counts and Viewer (the signed-in caller's likes and collects) complete a note
	// into a card on reads. Each is left out, and Degraded names it, when its service cannot
	// answer in time, rather than failing the whole read.
	Author   *UserView `json:"author,omitempty"`
	Counts   *Counts   `json:"counts,omitempty"`
	Viewer   *Viewer   `json:"viewer,omitempty"`
	Degraded []string  `json:"degraded,omitempty"`

	id, authorID int64
}

func noteView(n *notev1.NoteInfo) *NoteView {
	tags, media := n.GetTags(), n.GetMedia()
	if tags == nil {
		tags = []string{}
	}
	if media == nil {
		media = []string{}
	}
	return &NoteView{id: n.GetId(), authorID: n.GetAuthorId(), ID: strconv.FormatInt(n.GetId(), 10), AuthorID: strconv.FormatInt(n.GetAuthorId(), 10),
		Title: n.GetTitle(), Body: n.GetBody(), Tags: tags, Media: media, ProductIDs: idStrings(n.GetProductIds()),
		CreatedAt: time.UnixMilli(n.GetCreatedAtMs()).UTC()}
}

// CreateNoteRequest is the body of POST /v1/notes. An Idempotency-Key header makes a
// retried create return the first note instead of a duplicate.
type CreateNoteRequest struct {
	Title          string   `json:"title"`
	Body           string   `json:"body"`
	Tags           []string `json:"tags"`
	Media          []string `json:"media"`
	ProductIDs     []string `json:"product_ids"`
	products       []int64
	idempotencyKey string
}

// Bind implements kithttp.Binder.
func (c *CreateNoteRequest) Bind(r *http.Request) (err error) {
	c.idempotencyKey = r.Header.Get("Idempotency-Key")
	c.products, err = parseIDs("product_ids", c.ProductIDs)
	return err
}

// CreatedNote answers POST /v1/notes with 201.
type CreatedNote struct{ NoteView }

// Created implements kithttp.Created.
func (CreatedNote) Created() bool { return true }

func (b *BFF) createNote(ctx context.Context, in *CreateNoteRequest) (*CreatedNote, error) {
	sub, _ := auth.Subject(ctx)
	n, err := b.Notes.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: sub, Title: in.Title, Body: in.Body,
		Tags: in.Tags, Media: in.Media, ProductIds: in.products, IdempotencyKey: in.idempotencyKey})
	if err != nil {
		return nil, err
	}
	return &CreatedNote{*noteView(n)}, nil
}

func (b *BFF) note(ctx context.Context, in *ByID) (*NoteView, error) {
	n, err := b.Notes.GetNote(ctx, &notev1.GetNoteRequest{Id: in.ID})
	if err != nil {
		return nil, err
	}
	v := noteView(n)
	if v.Degraded, err = b.cards(ctx, []*NoteView{v}); err != nil {
		return nil, err
	}
	b.viewed(ctx, n.GetId())
	return v, nil
}

// NotePage is one page of note cards. Degraded names the card parts left out of every
// card of the page because their service could not answer.
type NotePage struct {
	Notes      []*NoteView `json:"notes"`
	NextCursor string      `json:"next_cursor,omitempty"`
	Degraded   []string    `json:"degraded,omitempty"`
}

func (b *BFF) notesByAuthor(ctx context.Context, in *ListQuery) (*NotePage, error) {
	r, err := b.Notes.ListByAuthor(ctx, &notev1.ListByAuthorRequest{AuthorId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	return b.notePage(ctx, r.GetNotes(), r.GetNextCursor())
}

// notePage turns notes into a page of cards.
func (b *BFF) notePage(ctx context.Context, notes []*notev1.NoteInfo, next string) (*NotePage, error) {
	page := &NotePage{Notes: make([]*NoteView, 0, len(notes)), NextCursor: next}
	for _, n := range notes {
		page.Notes = append(page.Notes, noteView(n))
	}
	var err error
	if page.Degraded, err = b.cards(ctx, page.Notes); err != nil {
		return nil, err
	}
	return page, nil
}

// UpdateNoteRequest is the body of PATCH /v1/notes/{id}: fields left out stay as they are.
type UpdateNoteRequest struct {
	Title *string   `json:"title"`
	Body  *string   `json:"body"`
	Tags  *[]string `json:"tags"`
	Media *[]string `json:"media"`
	// ProductIDs replaces the linked products.
	ProductIDs *[]string `json:"product_ids"`
	products   []int64
	id         int64
}

// Bind implements kithttp.Binder.
func (u *UpdateNoteRequest) Bind(r *http.Request) (err error) {
	if u.id, err = pathID(r, "id"); err != nil {
		return err
	}
	if u.ProductIDs != nil {
		u.products, err = parseIDs("product_ids", *u.ProductIDs)
	}
	return err
}

func (b *BFF) updateNote(ctx context.Context, in *UpdateNoteRequest) (*NoteView, error) {
	sub, _ := auth.Subject(ctx)
	req := &notev1.UpdateNoteRequest{Id: in.id, AuthorId: sub, Title: in.Title, Body: in.Body}
	if in.Tags != nil {
		req.SetTags, req.Tags = true, *in.Tags
	}
	if in.ProductIDs != nil {
		req.SetProductIds, req.ProductIds = true, in.products
	}
	if in.Media != nil {
		req.SetMedia, req.Media = true, *in.Media
	}
	n, err := b.Notes.UpdateNote(ctx, req)
	if err != nil {
		return nil, err
	}
	return noteView(n), nil
}

func (b *BFF) deleteNote(ctx context.Context, in *ByID) (*Deleted, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Notes.DeleteNote(ctx, &notev1.DeleteNoteRequest{Id: in.ID, AuthorId: sub})
	if err != nil {
		return nil, err
	}
	return &Deleted{Deleted: true, Changed: r.GetChanged()}, nil
}

// TagQuery is GET /v1/tags/{tag}/notes?limit=&cursor=.
type TagQuery struct {
	Tag    string
	Cursor string
	Limit  int32
}

// Bind implements kithttp.Binder.
func (q *TagQuery) Bind(r *http.Request) error {
	q.Tag = r.PathValue("tag")
	var lq ListQuery
	if err := lq.bindPage(r); err != nil {
		return err
	}
	q.Cursor, q.Limit = lq.Cursor, lq.Limit
	return nil
}

func (b *BFF) notesByTag(ctx context.Context, in *TagQuery) (*NotePage, error) {
	r, err := b.Notes.ListByTag(ctx, &notev1.ListByTagRequest{Tag: in.Tag, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	return b.notePage(ctx, r.GetNotes(), r.GetNextCursor())
}

// viewed counts a view of a note and puts it in a signed-in reader's history. Neither is
// worth failing a read for: they are not retried, and errors are only logged by the
// clients' middleware. Both services buffer, so the calls are cheap.
func (b *BFF) viewed(ctx context.Context, noteID int64) {
	if b.Interactions != nil {
		_, _ = b.Interactions.RecordView(ctx, &interactionv1.RecordViewRequest{TargetId: noteID})
	}
	if sub, ok := auth.Subject(ctx); ok && b.History != nil {
		_, _ = b.History.RecordView(ctx, &historyv1.RecordViewRequest{UserId: sub, NoteId: noteID})
	}
}

func idStrings(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}

// parseIDs reads ids sent as JSON strings (or nothing).
func parseIDs(field string, in []string) ([]int64, error) {
	out := make([]int64, len(in))
	for i, s := range in {
		id, err := optionalID(field, s)
		if err != nil || id == 0 {
			return nil, errs.InvalidArgument("INVALID_ID", "%s[%d] %q is not an id: ids are positive integers", field, i, s)
		}
		out[i] = id
	}
	return out, nil
}
