// Package service maps the interaction service's gRPC API onto biz.
package service

import (
	"context"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	"github.com/redline-dev/redline/services/interaction/internal/biz"
)

// Service implements interactionv1.InteractionServer.
type Service struct {
	interactionv1.UnimplementedInteractionServer
	uc *biz.Usecase
}

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

func (s *Service) react(ctx context.Context, kind biz.Kind, in *interactionv1.ReactRequest, on bool) (*interactionv1.ReactReply, error) {
	changed, err := s.uc.React(ctx, kind, in.GetUserId(), in.GetTargetId(), on)
	if err != nil {
		return nil, err
	}
	return &interactionv1.ReactReply{Changed: changed}, nil
}

// Like implements interactionv1.InteractionServer.
func (s *Service) Like(ctx context.Context, in *interactionv1.ReactRequest) (*interactionv1.ReactReply, error) {
	return s.react(ctx, biz.Like, in, true)
}

// Unlike implements interactionv1.InteractionServer.
func (s *Service) Unlike(ctx context.Context, in *interactionv1.ReactRequest) (*interactionv1.ReactReply, error) {
	return s.react(ctx, biz.Like, in, false)
}

// Collect implements interactionv1.InteractionServer.
func (s *Service) Collect(ctx context.Context, in *interactionv1.ReactRequest) (*interactionv1.ReactReply, error) {
	return s.react(ctx, biz.Collect, in, true)
}

// Uncollect implements interactionv1.InteractionServer.
func (s *Service) Uncollect(ctx context.Context, in *interactionv1.ReactRequest) (*interactionv1.ReactReply, error) {
	return s.react(ctx, biz.Collect, in, false)
}

// RecordView implements interactionv1.InteractionServer.
func (s *Service) RecordView(_ context.Context, in *interactionv1.RecordViewRequest) (*interactionv1.RecordViewReply, error) {
	if err := s.uc.RecordView(in.GetTargetId()); err != nil {
		return nil, err
	}
	return &interactionv1.RecordViewReply{}, nil
}

// RecordComment implements interactionv1.InteractionServer.
func (s *Service) RecordComment(_ context.Context, in *interactionv1.RecordCommentRequest) (*interactionv1.RecordCommentReply, error) {
	if err := s.uc.RecordComment(in.GetTargetId(), in.GetDelta()); err != nil {
		return nil, err
	}
	return &interactionv1.RecordCommentReply{}, nil
}

// GetCounts implements interactionv1.InteractionServer.
func (s *Service) GetCounts(ctx context.Context, in *interactionv1.GetCountsRequest) (*interactionv1.GetCountsReply, error) {
	counts, err := s.uc.Counts(ctx, in.GetTargetIds())
	if err != nil {
		return nil, err
	}
	out := &interactionv1.GetCountsReply{Counts: make(map[int64]*interactionv1.Counts, len(counts))}
	for t, c := range counts {
		out.Counts[t] = &interactionv1.Counts{Likes: c.Likes, Collects: c.Collects, Comments: c.Comments, Views: c.Views}
	}
	return out, nil
}

// GetViewerState implements interactionv1.InteractionServer.
func (s *Service) GetViewerState(ctx context.Context, in *interactionv1.GetViewerStateRequest) (*interactionv1.GetViewerStateReply, error) {
	states, err := s.uc.ViewerStates(ctx, in.GetUserId(), in.GetTargetIds())
	if err != nil {
		return nil, err
	}
	out := &interactionv1.GetViewerStateReply{States: make(map[int64]*interactionv1.ViewerState, len(states))}
	for t, v := range states {
		out.States[t] = &interactionv1.ViewerState{Liked: v.Liked, Collected: v.Collected}
	}
	return out, nil
}
