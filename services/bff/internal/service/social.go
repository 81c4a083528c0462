package service

import (
	"context"
	"net/http"
	"strconv"
	"time"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	historyv1 "github.com/redline-dev/redline/api/history/v1"
	searchv1 "github.com/redline-dev/redline/api/search/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
)

// CommentView is a written comment.
type CommentView struct {
	ID         string    `json:"id"`
	NoteID     string    `json:"note_id"`
	UserID     string    `json:"user_id"`
	RootID     string    `json:"root_id,omitempty"`
	ParentID   string    `json:"parent_id,omitempty"`
	Body       string    `json:"body"`
	ReplyCount int64     `json:"reply_count"`
	CreatedAt  time.Time `json:"created_at"`
	// User is the author's profile; left out when the user service cannot answer.
	User *UserView `json:"user,omitempty"`
	uid  int64
}

func idOrEmpty(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

func commentView(c *commentv1.CommentInfo) *CommentView {
	return &CommentView{ID: strconv.FormatInt(c.GetId(), 10), NoteID: strconv.FormatInt(c.GetNoteId(), 10),
		UserID: strconv.FormatInt(c.GetUserId(), 10), RootID: idOrEmpty(c.GetRootId()), ParentID: idOrEmpty(c.GetParentId()),
		Body: c.GetBody(), ReplyCount: c.GetReplyCount(), CreatedAt: time.UnixMilli(c.GetCreatedAtMs()).UTC(), uid: c.GetUserId()}
}

// withAuthors fills the authors of comments with one batched call; on failure they are
// left out and the part "user" is returned for the answer's degraded list.
func (b *BFF) withAuthors(ctx context.Context, cs []*CommentView) ([]string, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.uid
	}
	users, err := b.profiles(ctx, ids)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return []string{"user"}, nil
	}
	for _, c := range cs {
		c.User = users[c.uid]
	}
	return nil, nil
}

// CommentRequest is the body of POST /v1/notes/{id}/comments. A reply names its root
// comment, and optionally the reply it answers.
type CommentRequest struct {
	Body     string `json:"body"`
	RootID   string `json:"root_id"`
	ParentID string `json:"parent_id"`
	note     int64
	root     int64
	parent   int64
}

// Bind implements kithttp.Binder.
func (c *CommentRequest) Bind(r *http.Request) (err error) {
	if c.note, err = pathID(r, "id"); err != nil {
		return err
	}
	if c.root, err = optionalID("root_id", c.RootID); err != nil {
		return err
	}
	c.parent, err = optionalID("parent_id", c.ParentID)
	return err
}

func optionalID(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.InvalidArgument("INVALID_ID", "%s %q is not an id: ids are positive integers", name, v)
	}
	return id, nil
}

// PendingComment answers POST /v1/notes/{id}/comments with 202: the comment is queued and
// GET /v1/comments/{id} finds it once written.
type PendingComment struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// Accepted implements kithttp.Accepted.
func (PendingComment) Accepted() bool { return true }

func (b *BFF) createComment(ctx context.Context, in *CommentRequest) (*PendingComment, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Comments.CreateComment(ctx, &commentv1.CreateCommentRequest{NoteId: in.note, UserId: sub, RootId: in.root,
		ParentId: in.parent, Body: in.Body})
	if err != nil {
		return nil, err
	}
	return &PendingComment{ID: strconv.FormatInt(r.GetId(), 10), State: r.GetState()}, nil
}

func (b *BFF) comment(ctx context.Context, in *ByID) (*CommentView, error) {
	c, err := b.Comments.GetComment(ctx, &commentv1.GetCommentRequest{Id: in.ID})
	if err != nil {
		return nil, err
	}
	v := commentView(c)
	if _, err := b.withAuthors(ctx, []*CommentView{v}); err != nil {
		return nil, err
	}
	return v, nil
}

func (b *BFF) deleteComment(ctx context.Context, in *ByID) (*Deleted, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Comments.DeleteComment(ctx, &commentv1.DeleteCommentRequest{Id: in.ID, UserId: sub})
	if err != nil {
		return nil, err
	}
	return &Deleted{Deleted: true, Changed: r.GetChanged()}, nil
}

// ThreadsQuery is GET /v1/notes/{id}/comments?order=hot|new&cursor=&limit=.
type ThreadsQuery struct {
	ListQuery
	Order string
}

// Bind implements kithttp.Binder.
func (q *ThreadsQuery) Bind(r *http.Request) error {
	q.Order = r.URL.Query().Get("order")
	return q.ListQuery.Bind(r)
}

// ThreadView is a root comment with its first replies.
type ThreadView struct {
	*CommentView
	Replies       []*CommentView `json:"replies"`
	RepliesCursor string         `json:"replies_cursor,omitempty"`
}

// ThreadPage is one page of a note's comment threads.
type ThreadPage struct {
	Threads    []*ThreadView `json:"threads"`
	NextCursor string        `json:"next_cursor,omitempty"`
	Degraded   []string      `json:"degraded,omitempty"`
}

func (b *BFF) threads(ctx context.Context, in *ThreadsQuery) (*ThreadPage, error) {
	r, err := b.Comments.ListRoots(ctx, &commentv1.ListRootsRequest{NoteId: in.ID, Order: in.Order, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	p := &ThreadPage{Threads: make([]*ThreadView, 0, len(r.GetThreads())), NextCursor: r.GetNextCursor()}
	var all []*CommentView
	for _, th := range r.GetThreads() {
		t := &ThreadView{CommentView: commentView(th.GetRoot()), Replies: []*CommentView{}, RepliesCursor: th.GetRepliesCursor()}
		all = append(all, t.CommentView)
		for _, rep := range th.GetReplies() {
			v := commentView(rep)
			t.Replies = append(t.Replies, v)
			all = append(all, v)
		}
		p.Threads = append(p.Threads, t)
	}
	if p.Degraded, err = b.withAuthors(ctx, all); err != nil {
		return nil, err
	}
	return p, nil
}

// CommentPage is one page of replies.
type CommentPage struct {
	Comments   []*CommentView `json:"comments"`
	NextCursor string         `json:"next_cursor,omitempty"`
	Degraded   []string       `json:"degraded,omitempty"`
}

func (b *BFF) replies(ctx context.Context, in *ListQuery) (*CommentPage, error) {
	r, err := b.Comments.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	p := &CommentPage{Comments: make([]*CommentView, 0, len(r.GetReplies())), NextCursor: r.GetNextCursor()}
	for _, c := range r.GetReplies() {
		p.Comments = append(p.Comments, commentView(c))
	}
	if p.Degraded, err = b.withAuthors(ctx, p.Comments); err != nil {
		return nil, err
	}
	return p, nil
}

// HistoryEntry is a note the caller viewed, and when. Note is its card; it is left out
// for a note deleted since.
type HistoryEntry struct {
	NoteID   string    `json:"note_id"`
	ViewedAt time.Time `json:"viewed_at"`
	Note     *NoteView `json:"note,omitempty"`
}

// HistoryPage is one page of the caller's browsing history, newest first.
type HistoryPage struct {
	Entries    []*HistoryEntry `json:"entries"`
	NextCursor string          `json:"next_cursor,omitempty"`
	Degraded   []string        `json:"degraded,omitempty"`
}

func (b *BFF) history(ctx context.Context, in *PageQuery) (*HistoryPage, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.History.List(ctx, &historyv1.ListRequest{UserId: sub, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	p := &HistoryPage{Entries: make([]*HistoryEntry, 0, len(r.GetEntries())), NextCursor: r.GetNextCursor()}
	ids := make([]int64, len(r.GetEntries()))
	for i, e := range r.GetEntries() {
		ids[i] = e.GetNoteId()
		p.Entries = append(p.Entries, &HistoryEntry{NoteID: strconv.FormatInt(e.GetNoteId(), 10), ViewedAt: time.UnixMilli(e.GetViewedAtMs()).UTC()})
	}
	cards, err := b.hydrate(ctx, ids, "")
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		p.Degraded = []string{"note"}
		return p, nil
	}
	byID := make(map[string]*NoteView, len(cards.Notes))
	for _, n := range cards.Notes {
		byID[n.ID] = n
	}
	for _, e := range p.Entries {
		e.Note = byID[e.NoteID]
	}
	p.Degraded = cards.Degraded
	return p, nil
}

// Cleared answers DELETE /v1/me/history.
type Cleared struct {
	Cleared bool `json:"cleared"`
}

func (b *BFF) clearHistory(ctx context.Context, _ *Empty) (*Cleared, error) {
	sub, _ := auth.Subject(ctx)
	if _, err := b.History.Clear(ctx, &historyv1.ClearRequest{UserId: sub}); err != nil {
		return nil, err
	}
	return &Cleared{Cleared: true}, nil
}

// SearchQuery is GET /v1/search?q=&kind=note|product|all&cursor=&limit=.
type SearchQuery struct {
	PageQuery
	Q    string
	Kind searchv1.Kind
}

// Bind implements kithttp.Binder.
func (q *SearchQuery) Bind(r *http.Request) error {
	v := r.URL.Query()
	q.Q = v.Get("q")
	switch v.Get("kind") {
	case "", "all":
	case "note", "notes":
		q.Kind = searchv1.Kind_KIND_NOTE
	case "product", "products":
		q.Kind = searchv1.Kind_KIND_PRODUCT
	default:
		return errs.InvalidArgument("INVALID_KIND", "kind must be note, product or all")
	}
	return q.bindPage(r)
}

// SearchHit is one search result; fields that do not apply to its kind are left out.
type SearchHit struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"`
	Title    string `json:"title"`
	AuthorID string `json:"author_id,omitempty"`
	MinPrice *Money `json:"min_price,omitempty"`
	Score    int64  `json:"score"`
}

// SearchPage is one page of search results, best first.
type SearchPage struct {
	Hits       []*SearchHit `json:"hits"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

func (b *BFF) search(ctx context.Context, in *SearchQuery) (*SearchPage, error) {
	r, err := b.Search.Search(ctx, &searchv1.SearchRequest{Q: in.Q, Kind: in.Kind, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	p := &SearchPage{Hits: make([]*SearchHit, 0, len(r.GetHits())), NextCursor: r.GetNextCursor()}
	for _, h := range r.GetHits() {
		hit := &SearchHit{Kind: enumName(h.GetKind(), "KIND_"), ID: strconv.FormatInt(h.GetId(), 10),
			Title: h.GetTitle(), AuthorID: idOrEmpty(h.GetAuthorId()), Score: h.GetScore()}
		if h.GetKind() == searchv1.Kind_KIND_PRODUCT {
			hit.MinPrice = &Money{h.GetMinPrice(), h.GetCurrency()}
		}
		p.Hits = append(p.Hits, hit)
	}
	return p, nil
}
