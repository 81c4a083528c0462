// Package service maps the order service's gRPC API onto biz.
package service

import (
	"context"

	orderv1 "github.com/redline-dev/redline/api/order/v1"
	"github.com/redline-dev/redline/services/order/internal/biz"
)

// Service implements orderv1.OrderServer.
type Service struct {
	orderv1.UnimplementedOrderServer
	uc *biz.Usecase
}

var _ orderv1.OrderServer = (*Service)(nil)

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

var statePB = map[biz.State]orderv1.OrderState{
	biz.StateCreating: orderv1.OrderState_ORDER_STATE_CREATING,
	biz.StatePending:  orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT,
	biz.StatePaid:     orderv1.OrderState_ORDER_STATE_PAID,
	biz.StateClosed:   orderv1.OrderState_ORDER_STATE_CLOSED,
}

// orderPB renders an order.
func orderPB(o *biz.Order) *orderv1.OrderInfo {
	out := &orderv1.OrderInfo{Id: o.ID, UserId: o.UserID, State: statePB[o.State],
		Items: make([]*orderv1.OrderItem, 0, len(o.Items)), Total: o.Total, Currency: o.Currency,
		PaymentId: o.PaymentID, CloseReason: o.CloseReason, CreatedAtMs: o.CreatedAt.UnixMilli(),
		UpdatedAtMs: o.UpdatedAt.UnixMilli(), ExpiresAtMs: o.ExpiresAt.UnixMilli()}
	for _, it := range o.Items {
		out.Items = append(out.Items, &orderv1.OrderItem{SkuId: it.SKUID, SpuId: it.SPUID, Title: it.Title,
			Attributes: it.Attributes, UnitPrice: it.UnitPrice, Quantity: it.Quantity})
	}
	return out
}

func reply(o *biz.Order, err error) (*orderv1.OrderInfo, error) {
	if err != nil {
		return nil, err
	}
	return orderPB(o), nil
}

// CreateOrder implements orderv1.OrderServer.
func (s *Service) CreateOrder(ctx context.Context, in *orderv1.CreateOrderRequest) (*orderv1.OrderInfo, error) {
	lines := make([]biz.Line, 0, min(len(in.GetItems()), biz.MaxItems+1))
	for _, it := range in.GetItems() {
		lines = append(lines, biz.Line{SKUID: it.GetSkuId(), Quantity: it.GetQuantity()})
	}
	return reply(s.uc.Create(ctx, in.GetUserId(), in.GetIdempotencyKey(), lines))
}

// GetOrder implements orderv1.OrderServer.
func (s *Service) GetOrder(ctx context.Context, in *orderv1.GetOrderRequest) (*orderv1.OrderInfo, error) {
	return reply(s.uc.Get(ctx, in.GetUserId(), in.GetOrderId()))
}

// ListOrders implements orderv1.OrderServer.
func (s *Service) ListOrders(ctx context.Context, in *orderv1.ListOrdersRequest) (*orderv1.ListOrdersReply, error) {
	orders, next, err := s.uc.List(ctx, in.GetUserId(), int(in.GetPageSize()), in.GetCursor())
	if err != nil {
		return nil, err
	}
	out := &orderv1.ListOrdersReply{Orders: make([]*orderv1.OrderInfo, 0, len(orders)), NextCursor: next}
	for _, o := range orders {
		out.Orders = append(out.Orders, orderPB(o))
	}
	return out, nil
}

// CancelOrder implements orderv1.OrderServer.
func (s *Service) CancelOrder(ctx context.Context, in *orderv1.CancelOrderRequest) (*orderv1.OrderInfo, error) {
	return reply(s.uc.Cancel(ctx, in.GetUserId(), in.GetOrderId()))
}

// MarkPaid implements orderv1.OrderServer.
func (s *Service) MarkPaid(ctx context.Context, in *orderv1.MarkPaidRequest) (*orderv1.OrderInfo, error) {
	return reply(s.uc.MarkPaid(ctx, in.GetOrderId(), in.GetPaymentId()))
}
