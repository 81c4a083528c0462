package service

import (
	"context"

	"google.golang.org/grpc"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/kit/auth"
)

// Reaction answers a like, unlike, collect or uncollect: where things stand, and whether
// this call changed them (a repeat does not).
type Reaction struct {
	Liked     *bool `json:"liked,omitempty"`
	Collected *bool `json:"collected,omitempty"`
	Changed   bool  `json:"changed"`
}

type reactFunc func(context.Context, *interactionv1.ReactRequest, ...grpc.CallOption) (*interactionv1.ReactReply, error)

// react checks that the note exists (NOTE_NOT_FOUND otherwise: nobody likes a note that is
// not there), then sets the reaction.
func (b *BFF) react(ctx context.Context, noteID int64, call reactFunc) (bool, error) {
	if _, err := b.Notes.GetNote(ctx, &notev1.GetNoteRequest{Id: noteID}); err != nil {
		return false, err
	}
	sub, _ := auth.Subject(ctx)
	r, err := call(ctx, &interactionv1.ReactRequest{UserId: sub, TargetId: noteID})
	if err != nil {
		return false, err
	}
	return r.GetChanged(), nil
}

func (b *BFF) like(ctx context.Context, in *ByID) (*Reaction, error) {
	changed, err := b.react(ctx, in.ID, b.Interactions.Like)
	if err != nil {
		return nil, err
	}
	return &Reaction{Liked: ptr(true), Changed: changed}, nil
}

func (b *BFF) unlike(ctx context.Context, in *ByID) (*Reaction, error) {
	changed, err := b.react(ctx, in.ID, b.Interactions.Unlike)
	if err != nil {
		return nil, err
	}
	return &Reaction{Liked: ptr(false), Changed: changed}, nil
}

func (b *BFF) collect(ctx context.Context, in *ByID) (*Reaction, error) {
	changed, err := b.react(ctx, in.ID, b.Interactions.Collect)
	if err != nil {
		return nil, err
	}
	return &Reaction{Collected: ptr(true), Changed: changed}, nil
}

func (b *BFF) uncollect(ctx context.Context, in *ByID) (*Reaction, error) {
	changed, err := b.react(ctx, in.ID, b.Interactions.Uncollect)
	if err != nil {
		return nil, err
	}
	return &Reaction{Collected: ptr(false), Changed: changed}, nil
}

func ptr[T any](v T) *T { return &v }
