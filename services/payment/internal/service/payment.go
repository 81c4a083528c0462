// Package service maps the payment service's gRPC API onto biz.
package service

import (
	"context"

	paymentv1 "github.com/redline-dev/redline/api/payment/v1"
	"github.com/redline-dev/redline/services/payment/internal/biz"
)

// Service implements paymentv1.PaymentServer.
type Service struct {
	paymentv1.UnimplementedPaymentServer
	uc *biz.Usecase
}

var _ paymentv1.PaymentServer = (*Service)(nil)

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

var statePB = map[biz.State]paymentv1.PaymentState{
	biz.StatePending:        paymentv1.PaymentState_PAYMENT_STATE_PENDING,
	biz.StateSucceeded:      paymentv1.PaymentState_PAYMENT_STATE_SUCCEEDED,
	biz.StateFailed:         paymentv1.PaymentState_PAYMENT_STATE_FAILED,
	biz.StateRefundRequired: paymentv1.PaymentState_PAYMENT_STATE_REFUND_REQUIRED,
}

func reply(p *biz.Payment, err error) (*paymentv1.PaymentInfo, error) {
	if err != nil {
		return nil, err
	}
	return &paymentv1.PaymentInfo{Id: p.ID, OrderId: p.OrderID, UserId: p.UserID, Amount: p.Amount, Currency: p.Currency,
		State: statePB[p.State], ProviderRef: p.ProviderRef, CreatedAtMs: p.CreatedAt.UnixMilli(),
		UpdatedAtMs: p.UpdatedAt.UnixMilli()}, nil
}

// Pay implements paymentv1.PaymentServer.
func (s *Service) Pay(ctx context.Context, in *paymentv1.PayRequest) (*paymentv1.PaymentInfo, error) {
	return reply(s.uc.Pay(ctx, in.GetOrderId(), in.GetUserId()))
}

// Callback implements paymentv1.PaymentServer.
func (s *Service) Callback(ctx context.Context, in *paymentv1.CallbackRequest) (*paymentv1.PaymentInfo, error) {
	return reply(s.uc.Callback(ctx, in.GetPayload(), in.GetSignature()))
}

// GetPayment implements paymentv1.PaymentServer.
func (s *Service) GetPayment(ctx context.Context, in *paymentv1.GetPaymentRequest) (*paymentv1.PaymentInfo, error) {
	return reply(s.uc.Get(ctx, in.GetOrderId(), in.GetUserId()))
}
