package data

import (
	"context"

	"google.golang.org/grpc"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/page"
	"github.com/redline-dev/redline/services/feed/internal/biz"
)

// UserLists is the part of the user service the feed reads: follow lists.
// userv1.UserClient satisfies it.
type UserLists interface {
	ListFollowers(ctx context.Context, in *userv1.ListFollowsRequest, opts ...grpc.CallOption) (*userv1.ListFollowsReply, error)
	ListFollowing(ctx context.Context, in *userv1.ListFollowsRequest, opts ...grpc.CallOption) (*userv1.ListFollowsReply, error)
}

// CounterReader is the part of the interaction service the feed reads: counters.
// interactionv1.InteractionClient satisfies it.
type CounterReader interface {
	GetCounts(ctx context.Context, in *interactionv1.GetCountsRequest, opts ...grpc.CallOption) (*interactionv1.GetCountsReply, error)
}

// Graph adapts the user service's follow lists to biz.FollowGraph, paging at the largest
// page size.
type Graph struct{ users UserLists }

var _ biz.FollowGraph = Graph{}

// NewGraph returns the follow graph of users.
func NewGraph(users UserLists) Graph { return Graph{users: users} }

// Followers implements biz.FollowGraph.
func (g Graph) Followers(ctx context.Context, user int64, limit int) ([]int64, error) {
	ids, _, err := g.list(ctx, g.users.ListFollowers, user, limit+1)
	return ids, err
}

// Following implements biz.FollowGraph.
func (g Graph) Following(ctx context.Context, user int64, limit int) ([]int64, bool, error) {
	ids, complete, err := g.list(ctx, g.users.ListFollowing, user, limit+1)
	if len(ids) > limit {
		return ids[:limit], false, err
	}
	return ids, complete, err
}

// list pages through a follow list until it has limit ids or the list ends; complete says it
// ended.
func (g Graph) list(ctx context.Context, call func(context.Context, *userv1.ListFollowsRequest, ...grpc.CallOption) (*userv1.ListFollowsReply, error),
	user int64, limit int) (ids []int64, complete bool, err error) {
	cursor := ""
	for {
		r, err := call(ctx, &userv1.ListFollowsRequest{UserId: user, PageSize: page.MaxSize, Cursor: cursor})
		if err != nil {
			return nil, false, err
		}
		for _, u := range r.GetUsers() {
			ids = append(ids, u.GetId())
		}
		if r.GetNextCursor() == "" {
			return ids, true, nil
		}
		if len(ids) >= limit {
			return ids, false, nil
		}
		cursor = r.GetNextCursor()
	}
}

// Counts adapts the interaction service's counters to biz.CountSource.
type Counts struct{ c CounterReader }

var _ biz.CountSource = Counts{}

// NewCounts returns the counter source of c.
func NewCounts(c CounterReader) Counts { return Counts{c: c} }

// Counts implements biz.CountSource.
func (c Counts) Counts(ctx context.Context, notes []int64) (map[int64]biz.Counts, error) {
	r, err := c.c.GetCounts(ctx, &interactionv1.GetCountsRequest{TargetIds: notes})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]biz.Counts, len(r.GetCounts()))
	for id, v := range r.GetCounts() {
		out[id] = biz.Counts{Likes: v.GetLikes(), Collects: v.GetCollects(), Comments: v.GetComments()}
	}
	return out, nil
}
