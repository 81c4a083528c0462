package service

import (
	"context"
	"net/http"

	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
)

// hydrate turns note ids, in feed order, into a page of cards: one GetNotes call, then the
// card parts. Notes deleted since the feed listed them are left out.
func (b *BFF) hydrate(ctx context.Context, ids []int64, next string) (*NotePage, error) {
	if len(ids) == 0 {
		return &NotePage{Notes: []*NoteView{}, NextCursor: next}, nil
	}
	r, err := b.Notes.GetNotes(ctx, &notev1.GetNotesRequest{Ids: ids})
	if err != nil {
		return nil, err
	}
	return b.notePage(ctx, r.GetNotes(), next)
}

func feedIDs(items []*feedv1.FeedItem) []int64 {
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.GetNoteId()
	}
	return ids
}

// home is the caller's home feed: notes of the people they follow and their own, newest
// first, as cards.
func (b *BFF) home(ctx context.Context, in *PageQuery) (*NotePage, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Feed.HomeFeed(ctx, &feedv1.HomeFeedRequest{UserId: sub, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	return b.hydrate(ctx, feedIDs(r.GetItems()), r.GetNextCursor())
}

// ExploreQuery is GET /v1/explore?kind=hot|recent&cursor=&limit=.
type ExploreQuery struct {
	PageQuery
	Kind feedv1.ExploreKind
}

// Bind implements kithttp.Binder.
func (q *ExploreQuery) Bind(r *http.Request) error {
	switch r.URL.Query().Get("kind") {
	case "", "hot":
		q.Kind = feedv1.ExploreKind_EXPLORE_KIND_HOT
	case "recent":
		q.Kind = feedv1.ExploreKind_EXPLORE_KIND_RECENT
	default:
		return errs.InvalidArgument("INVALID_KIND", "kind must be hot or recent")
	}
	return q.bindPage(r)
}

func (b *BFF) explore(ctx context.Context, in *ExploreQuery) (*NotePage, error) {
	r, err := b.Feed.Explore(ctx, &feedv1.ExploreRequest{Kind: in.Kind, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	return b.hydrate(ctx, feedIDs(r.GetItems()), r.GetNextCursor())
}
