// Package service maps the history service's gRPC API onto biz.
package service

import (
	"context"

	historyv1 "github.com/redline-dev/redline/api/history/v1"
	"github.com/redline-dev/redline/services/history/internal/biz"
)

// Service implements historyv1.HistoryServer.
type Service struct {
	historyv1.UnimplementedHistoryServer
	uc *biz.Usecase
}

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

// RecordView implements historyv1.HistoryServer.
func (s *Service) RecordView(_ context.Context, in *historyv1.RecordViewRequest) (*historyv1.RecordViewReply, error) {
	if err := s.uc.RecordView(in.GetUserId(), in.GetNoteId()); err != nil {
		return nil, err
	}
	return &historyv1.RecordViewReply{}, nil
}

// List implements historyv1.HistoryServer.
func (s *Service) List(ctx context.Context, in *historyv1.ListRequest) (*historyv1.ListReply, error) {
	entries, next, err := s.uc.List(ctx, in.GetUserId(), int(in.GetPageSize()), in.GetCursor())
	if err != nil {
		return nil, err
	}
	out := &historyv1.ListReply{Entries: make([]*historyv1.Entry, len(entries)), NextCursor: next}
	for i, e := range entries {
		out.Entries[i] = &historyv1.Entry{NoteId: e.NoteID, ViewedAtMs: e.At}
	}
	return out, nil
}

// Clear implements historyv1.HistoryServer.
func (s *Service) Clear(ctx context.Context, in *historyv1.ClearRequest) (*historyv1.ClearReply, error) {
	if err := s.uc.Clear(ctx, in.GetUserId()); err != nil {
		return nil, err
	}
	return &historyv1.ClearReply{}, nil
}
