// Package service maps the feed service's gRPC API onto biz.
package service

import (
	"context"

	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	"github.com/redline-dev/redline/services/feed/internal/biz"
)

// Service implements feedv1.FeedServer.
type Service struct {
	feedv1.UnimplementedFeedServer
	uc *biz.Usecase
}

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

// HomeFeed implements feedv1.FeedServer.
func (s *Service) HomeFeed(ctx context.Context, in *feedv1.HomeFeedRequest) (*feedv1.FeedReply, error) {
	items, next, err := s.uc.HomeFeed(ctx, in.GetUserId(), int(in.GetPageSize()), in.GetCursor())
	return reply(items, next, err)
}

// Explore implements feedv1.FeedServer.
func (s *Service) Explore(ctx context.Context, in *feedv1.ExploreRequest) (*feedv1.FeedReply, error) {
	var kind biz.Kind // an unknown kind stays 0, which biz refuses
	switch in.GetKind() {
	case feedv1.ExploreKind_EXPLORE_KIND_UNSPECIFIED, feedv1.ExploreKind_EXPLORE_KIND_RECENT:
		kind = biz.Recent
	case feedv1.ExploreKind_EXPLORE_KIND_HOT:
		kind = biz.Hot
	}
	items, next, err := s.uc.Explore(ctx, kind, int(in.GetPageSize()), in.GetCursor())
	return reply(items, next, err)
}

func reply(items []biz.Entry, next string, err error) (*feedv1.FeedReply, error) {
	if err != nil {
		return nil, err
	}
	out := &feedv1.FeedReply{NextCursor: next, Items: make([]*feedv1.FeedItem, 0, len(items))}
	for _, e := range items {
		out.Items = append(out.Items, &feedv1.FeedItem{NoteId: e.NoteID, AuthorId: e.AuthorID, CreatedMs: e.CreatedMS, Score: e.Score})
	}
	return out, nil
}
