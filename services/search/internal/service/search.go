// Package service maps the search service's transports onto biz: the gRPC API, and the note
// and product events of the queue.
package service

import (
	"context"

	searchv1 "github.com/redline-dev/redline/api/search/v1"
	"github.com/redline-dev/redline/services/search/internal/biz"
)

// Service implements searchv1.SearchServer.
type Service struct {
	searchv1.UnimplementedSearchServer
	uc *biz.Usecase
}

var _ searchv1.SearchServer = (*Service)(nil)

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

var (
	kindOf = map[searchv1.Kind]biz.Kind{
		searchv1.Kind_KIND_UNSPECIFIED: biz.KindAll,
		searchv1.Kind_KIND_NOTE:        biz.KindNote,
		searchv1.Kind_KIND_PRODUCT:     biz.KindProduct,
	}
	kindPB = map[biz.Kind]searchv1.Kind{biz.KindNote: searchv1.Kind_KIND_NOTE, biz.KindProduct: searchv1.Kind_KIND_PRODUCT}
)

// Search implements searchv1.SearchServer.
func (s *Service) Search(ctx context.Context, in *searchv1.SearchRequest) (*searchv1.SearchReply, error) {
	kind, ok := kindOf[in.GetKind()]
	if !ok {
		return nil, biz.ErrInvalidKind
	}
	hits, next, err := s.uc.Search(ctx, in.GetQ(), kind, int(in.GetPageSize()), in.GetCursor())
	if err != nil {
		return nil, err
	}
	out := &searchv1.SearchReply{Hits: make([]*searchv1.Hit, 0, len(hits)), NextCursor: next}
	for _, h := range hits {
		out.Hits = append(out.Hits, &searchv1.Hit{Kind: kindPB[h.Kind], Id: h.ID, Title: h.Title, AuthorId: h.AuthorID,
			MinPrice: h.MinPrice, Currency: h.Currency, RecencyMs: h.RecencyMS, Score: h.Score})
	}
	return out, nil
}
