// Package payment wires the payment service: at most one payment per order, charged through
// a third-party provider (a mock, package provider) that answers with an HMAC-signed
// callback.
//
// Guarantees: a unique index makes one payment per order whatever races; Pay checks the
// order is the user's and awaits payment before anything is charged. Callback verifies the
// signature in constant time before it reads the body (a bad one changes nothing) and
// applies a callback with one conditional update, so a replay changes nothing and answers
// the payment as it stands. A succeeded payment is handed to the order service (MarkPaid,
// which confirms the stock); if that call fails the payment stays marked as owing it and the
// retry loop, driven from the database, calls again until the order service answers (a
// replay of the callback does too). When the order closed first, the payment becomes
// REFUND_REQUIRED.
//
// The callback reaches the service through the BFF's public POST /v1/payments/callback,
// which passes the raw body and the SignatureHeader value to Payment.Callback.
package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	orderv1 "github.com/redline-dev/redline/api/order/v1"
	paymentv1 "github.com/redline-dev/redline/api/payment/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/payment/internal/biz"
	"github.com/redline-dev/redline/services/payment/internal/data"
	"github.com/redline-dev/redline/services/payment/internal/service"
	"github.com/redline-dev/redline/services/payment/migrations"
	"github.com/redline-dev/redline/services/payment/provider"
)

// Name is the service's name in the registry and in metrics.
const Name = "payment"

// SignatureHeader is the HTTP header of the provider's callback that carries its signature:
// the BFF passes its value as CallbackRequest.signature.
const SignatureHeader = provider.SignatureHeader

// MaxCallbackBytes bounds the callback body the BFF should read and pass on.
const MaxCallbackBytes = provider.MaxBody

// Idempotent lists the methods callers may retry: all of them. Pay is idempotent per
// order, Callback per payment.
var Idempotent = []string{
	paymentv1.Payment_Pay_FullMethodName, paymentv1.Payment_Callback_FullMethodName,
	paymentv1.Payment_GetPayment_FullMethodName,
}

// OrderClient is what the payment service needs of the order service; an
// orderv1.OrderClient satisfies it.
type OrderClient interface {
	GetOrder(ctx context.Context, in *orderv1.GetOrderRequest, opts ...grpc.CallOption) (*orderv1.OrderInfo, error)
	MarkPaid(ctx context.Context, in *orderv1.MarkPaidRequest, opts ...grpc.CallOption) (*orderv1.OrderInfo, error)
}

var _ OrderClient = orderv1.OrderClient(nil)

// Charger asks the payment provider to charge; *provider.Client satisfies it.
type Charger interface {
	Charge(ctx context.Context, req provider.ChargeRequest) error
}

var _ Charger = (*provider.Client)(nil)

// Config is what New needs to talk to the provider.
type Config struct {
	// Secret is the HMAC-SHA256 key shared with the provider: at least 16 bytes.
	Secret []byte
	// CallbackURL returns the absolute URL the provider calls back: the BFF's
	// POST /v1/payments/callback. It is asked at every charge, so a process whose BFF
	// learns its port only once it listens can answer.
	CallbackURL func() string
}

// Option configures New.
type Option func(*options)

type options struct {
	clock         clock.Clock
	logger        *slog.Logger
	retryInterval time.Duration
	retryGrace    time.Duration
	retryTimeout  time.Duration
}

// RetryInterval is how often the retry loop looks for MarkPaid calls and charges owed.
// Default 5s.
func RetryInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.retryInterval = d
		}
	}
}

// RetryGrace is how long after a change the retry loop leaves its calls to the request that
// made it. Default 10s.
func RetryGrace(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.retryGrace = d
		}
	}
}

// WithClock sets the clock that stamps payments and ages them for the retry loop. Default
// the wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where refunds required and failed retries are reported. Default
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New migrates db and returns the gRPC service and its retry loop, already running. Close
// the loop after the gRPC server stops taking calls.
func New(ctx context.Context, db *sqldb.DB, orders OrderClient, charger Charger, cfg Config, opts ...Option) (paymentv1.PaymentServer, *Retrier, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), retryInterval: 5 * time.Second,
		retryGrace: 10 * time.Second, retryTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case orders == nil || charger == nil:
		return nil, nil, errors.New("payment: the order client and the provider are required")
	case len(cfg.Secret) < 16:
		return nil, nil, errors.New("payment: the provider secret must be at least 16 bytes")
	case cfg.CallbackURL == nil:
		return nil, nil, errors.New("payment: the callback URL is required")
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("payment: migrate: %w", err)
	}
	uc := biz.NewUsecase(data.NewRepo(db), orderPort{orders}, charger, biz.Config{Secret: cfg.Secret,
		CallbackURL: cfg.CallbackURL, RetryGrace: o.retryGrace, Clock: o.clock, Logger: o.logger})
	r := &Retrier{uc: uc}
	r.Periodic = app.StartPeriodic("payment retrier", o.retryInterval, o.retryTimeout, o.logger, func(ctx context.Context) error {
		_, err := uc.Retry(ctx)
		return err
	})
	return service.New(uc), r, nil
}

// Retrier is the loop that retries MarkPaid for succeeded payments the order service has
// not taken, and charges the provider has not accepted.
type Retrier struct {
	*app.Periodic // Close stops the loop after the round in progress
	uc            *biz.Usecase
}

// Retry runs one round now and returns how many payments it looked at.
func (r *Retrier) Retry(ctx context.Context) (int, error) { return r.uc.Retry(ctx) }

// orderPort adapts the order client to biz.Orders.
type orderPort struct{ c OrderClient }

func (p orderPort) Get(ctx context.Context, orderID, user int64) (biz.Order, error) {
	o, err := p.c.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: orderID, UserId: user})
	if err != nil {
		return biz.Order{}, err
	}
	return biz.Order{UserID: o.GetUserId(), Pending: o.GetState() == orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT,
		Total: o.GetTotal(), Currency: o.GetCurrency()}, nil
}

func (p orderPort) MarkPaid(ctx context.Context, orderID, paymentID int64) error {
	_, err := p.c.MarkPaid(ctx, &orderv1.MarkPaidRequest{OrderId: orderID, PaymentId: paymentID})
	return err
}
