// Package service maps the comment service's gRPC API onto biz.
package service

import (
	"context"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	"github.com/redline-dev/redline/services/comment/internal/biz"
)

// StatePending is the state of a comment CreateComment has queued.
const StatePending = "pending"

// Service implements commentv1.CommentServer.
type Service struct {
	commentv1.UnimplementedCommentServer
	uc *biz.Usecase
}

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

func toPB(c *biz.Comment) *commentv1.CommentInfo {
	return &commentv1.CommentInfo{Id: c.ID, NoteId: c.NoteID, UserId: c.UserID, RootId: c.RootID, ParentId: c.ParentID,
		Body: c.Body, ReplyCount: c.ReplyCount, CreatedAtMs: c.CreatedAt}
}

func toPBs(cs []*biz.Comment) []*commentv1.CommentInfo {
	out := make([]*commentv1.CommentInfo, len(cs))
	for i, c := range cs {
		out[i] = toPB(c)
	}
	return out
}

// CreateComment implements commentv1.CommentServer.
func (s *Service) CreateComment(ctx context.Context, in *commentv1.CreateCommentRequest) (*commentv1.CreateCommentReply, error) {
	id, err := s.uc.Create(ctx, &biz.Comment{NoteID: in.GetNoteId(), UserID: in.GetUserId(), RootID: in.GetRootId(),
		ParentID: in.GetParentId(), Body: in.GetBody()})
	if err != nil {
		return nil, err
	}
	return &commentv1.CreateCommentReply{Id: id, State: StatePending}, nil
}

// GetComment implements commentv1.CommentServer.
func (s *Service) GetComment(ctx context.Context, in *commentv1.GetCommentRequest) (*commentv1.CommentInfo, error) {
	c, err := s.uc.Get(ctx, in.GetId())
	if err != nil {
		return nil, err
	}
	return toPB(c), nil
}

// DeleteComment implements commentv1.CommentServer.
func (s *Service) DeleteComment(ctx context.Context, in *commentv1.DeleteCommentRequest) (*commentv1.DeleteCommentReply, error) {
	changed, err := s.uc.Delete(ctx, in.GetId(), in.GetUserId())
	if err != nil {
		return nil, err
	}
	return &commentv1.DeleteCommentReply{Changed: changed}, nil
}

// ListRoots implements commentv1.CommentServer.
func (s *Service) ListRoots(ctx context.Context, in *commentv1.ListRootsRequest) (*commentv1.ListRootsReply, error) {
	threads, next, err := s.uc.ListRoots(ctx, in.GetNoteId(), in.GetOrder(), int(in.GetPageSize()), in.GetCursor())
	if err != nil {
		return nil, err
	}
	out := &commentv1.ListRootsReply{Threads: make([]*commentv1.Thread, len(threads)), NextCursor: next}
	for i, t := range threads {
		out.Threads[i] = &commentv1.Thread{Root: toPB(t.Root), Replies: toPBs(t.Replies), RepliesCursor: t.RepliesCursor}
	}
	return out, nil
}

// ListReplies implements commentv1.CommentServer.
func (s *Service) ListReplies(ctx context.Context, in *commentv1.ListRepliesRequest) (*commentv1.ListRepliesReply, error) {
	replies, next, err := s.uc.ListReplies(ctx, in.GetRootId(), int(in.GetPageSize()), in.GetCursor())
	if err != nil {
		return nil, err
	}
	return &commentv1.ListRepliesReply{Replies: toPBs(replies), NextCursor: next}, nil
}
