// Package service maps the inventory service's gRPC API onto biz.
package service

import (
	"context"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	"github.com/redline-dev/redline/services/inventory/internal/biz"
)

// Service implements inventoryv1.InventoryServer.
type Service struct {
	inventoryv1.UnimplementedInventoryServer
	uc *biz.Usecase
}

var _ inventoryv1.InventoryServer = (*Service)(nil)

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

var statePB = map[biz.State]inventoryv1.ReservationState{
	biz.StateReserved:  inventoryv1.ReservationState_RESERVATION_STATE_RESERVED,
	biz.StateConfirmed: inventoryv1.ReservationState_RESERVATION_STATE_CONFIRMED,
	biz.StateReleased:  inventoryv1.ReservationState_RESERVATION_STATE_RELEASED,
}

func stockPB(s biz.Stock) *inventoryv1.StockLevel {
	return &inventoryv1.StockLevel{SkuId: s.SKU, Available: s.Available, Reserved: s.Reserved}
}

func reservationPB(r *biz.Reservation, err error) (*inventoryv1.Reservation, error) {
	if err != nil {
		return nil, err
	}
	out := &inventoryv1.Reservation{OrderId: r.OrderID, State: statePB[r.State],
		Items:       make([]*inventoryv1.Item, 0, len(r.Items)),
		CreatedAtMs: r.CreatedAt.UnixMilli(), UpdatedAtMs: r.UpdatedAt.UnixMilli()}
	for _, it := range r.Items {
		out.Items = append(out.Items, &inventoryv1.Item{SkuId: it.SKU, Quantity: it.Quantity})
	}
	return out, nil
}

// SetStock implements inventoryv1.InventoryServer.
func (s *Service) SetStock(ctx context.Context, in *inventoryv1.SetStockRequest) (*inventoryv1.StockLevel, error) {
	st, err := s.uc.SetStock(ctx, in.GetSkuId(), in.GetQuantity())
	if err != nil {
		return nil, err
	}
	return stockPB(st), nil
}

// GetStock implements inventoryv1.InventoryServer.
func (s *Service) GetStock(ctx context.Context, in *inventoryv1.GetStockRequest) (*inventoryv1.GetStockReply, error) {
	levels, err := s.uc.GetStock(ctx, in.GetSkuIds())
	if err != nil {
		return nil, err
	}
	out := &inventoryv1.GetStockReply{Stocks: make([]*inventoryv1.StockLevel, 0, len(levels))}
	for _, l := range levels {
		out.Stocks = append(out.Stocks, stockPB(l))
	}
	return out, nil
}

// Reserve implements inventoryv1.InventoryServer.
func (s *Service) Reserve(ctx context.Context, in *inventoryv1.ReserveRequest) (*inventoryv1.Reservation, error) {
	items := make([]biz.Item, 0, min(len(in.GetItems()), biz.MaxItems+1))
	for _, it := range in.GetItems() {
		items = append(items, biz.Item{SKU: it.GetSkuId(), Quantity: it.GetQuantity()})
	}
	return reservationPB(s.uc.Reserve(ctx, in.GetOrderId(), items))
}

// Confirm implements inventoryv1.InventoryServer.
func (s *Service) Confirm(ctx context.Context, in *inventoryv1.ConfirmRequest) (*inventoryv1.Reservation, error) {
	return reservationPB(s.uc.Confirm(ctx, in.GetOrderId()))
}

// Release implements inventoryv1.InventoryServer.
func (s *Service) Release(ctx context.Context, in *inventoryv1.ReleaseRequest) (*inventoryv1.Reservation, error) {
	return reservationPB(s.uc.Release(ctx, in.GetOrderId()))
}
