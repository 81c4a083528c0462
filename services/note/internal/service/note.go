// Package service maps the note service's gRPC API onto biz.
package service

import (
	"context"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/services/note/internal/biz"
)

// Service implements notev1.NoteServer.
type Service struct {
	notev1.UnimplementedNoteServer
	uc *biz.Usecase
}

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

func toPB(n *biz.Note) *notev1.NoteInfo {
	return &notev1.NoteInfo{Id: n.ID, AuthorId: n.AuthorID, Title: n.Title, Body: n.Body,
		Tags: n.Tags, Media: n.Media, ProductIds: n.ProductIDs, CreatedAtMs: n.CreatedAt.UnixMilli()}
}

// CreateNote implements notev1.NoteServer.
func (s *Service) CreateNote(ctx context.Context, in *notev1.CreateNoteRequest) (*notev1.NoteInfo, error) {
	n, err := s.uc.Create(ctx, &biz.Note{AuthorID: in.GetAuthorId(), Title: in.GetTitle(), Body: in.GetBody(),
		Tags: in.GetTags(), Media: in.GetMedia(), ProductIDs: in.GetProductIds(), IdempotencyKey: in.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return toPB(n), nil
}

// GetNote implements notev1.NoteServer.
func (s *Service) GetNote(ctx context.Context, in *notev1.GetNoteRequest) (*notev1.NoteInfo, error) {
	n, err := s.uc.Get(ctx, in.GetId())
	if err != nil {
		return nil, err
	}
	return toPB(n), nil
}

// GetNotes implements notev1.NoteServer.
func (s *Service) GetNotes(ctx context.Context, in *notev1.GetNotesRequest) (*notev1.GetNotesReply, error) {
	notes, err := s.uc.GetMany(ctx, in.GetIds())
	if err != nil {
		return nil, err
	}
	out := &notev1.GetNotesReply{Notes: make([]*notev1.NoteInfo, len(notes))}
	for i, n := range notes {
		out.Notes[i] = toPB(n)
	}
	return out, nil
}

// ListByAuthor implements notev1.NoteServer.
func (s *Service) ListByAuthor(ctx context.Context, in *notev1.ListByAuthorRequest) (*notev1.ListNotesReply, error) {
	notes, next, err := s.uc.ListByAuthor(ctx, in.GetAuthorId(), int(in.GetPageSize()), in.GetCursor())
	return listReply(notes, next, err)
}

// UpdateNote implements notev1.NoteServer.
func (s *Service) UpdateNote(ctx context.Context, in *notev1.UpdateNoteRequest) (*notev1.NoteInfo, error) {
	var p biz.Patch
	p.Title, p.Body = in.Title, in.Body
	if in.GetSetTags() {
		tags := in.GetTags()
		p.Tags = &tags
	}
	if in.GetSetMedia() {
		media := in.GetMedia()
		p.Media = &media
	}
	if in.GetSetProductIds() {
		products := in.GetProductIds()
		p.ProductIDs = &products
	}
	n, err := s.uc.Update(ctx, in.GetId(), in.GetAuthorId(), p)
	if err != nil {
		return nil, err
	}
	return toPB(n), nil
}

// DeleteNote implements notev1.NoteServer.
func (s *Service) DeleteNote(ctx context.Context, in *notev1.DeleteNoteRequest) (*notev1.DeleteNoteReply, error) {
	changed, err := s.uc.Delete(ctx, in.GetId(), in.GetAuthorId())
	if err != nil {
		return nil, err
	}
	return &notev1.DeleteNoteReply{Changed: changed}, nil
}

// ListByTag implements notev1.NoteServer.
func (s *Service) ListByTag(ctx context.Context, in *notev1.ListByTagRequest) (*notev1.ListNotesReply, error) {
	notes, next, err := s.uc.ListByTag(ctx, in.GetTag(), int(in.GetPageSize()), in.GetCursor())
	return listReply(notes, next, err)
}

func listReply(notes []*biz.Note, next string, err error) (*notev1.ListNotesReply, error) {
	if err != nil {
		return nil, err
	}
	out := &notev1.ListNotesReply{NextCursor: next, Notes: make([]*notev1.NoteInfo, 0, len(notes))}
	for _, n := range notes {
		out.Notes = append(out.Notes, toPB(n))
	}
	return out, nil
}
