// Package biz holds the payment service's rules: one payment per order, a charge asked of
// the provider, and the provider's signed callback applied once. It owns the repository
// interface that data implements and the ports to the order service and the provider.
package biz

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/payment/provider"
)

// State is where a payment is.
type State string

// The states. PENDING moves once, to SUCCEEDED or FAILED; SUCCEEDED moves to
// REFUND_REQUIRED when the order turns out to have closed first.
const (
	StatePending        State = "PENDING"
	StateSucceeded      State = "SUCCEEDED"
	StateFailed         State = "FAILED"
	StateRefundRequired State = "REFUND_REQUIRED"
)

// Payment is the payment of one order.
type Payment struct {
	ID          int64
	OrderID     int64
	UserID      int64
	Amount      int64
	Currency    string
	State       State
	ProviderRef string
	// ChargeSent says the provider accepted the charge.
	ChargeSent bool
	// MarkPaidOwed says the payment succeeded and the order service has not yet been told.
	MarkPaidOwed bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Order is what the payment service needs to know of an order.
type Order struct {
	UserID   int64
	Pending  bool
	Total    int64
	Currency string
}

// Orders is the order service.
type Orders interface {
	// Get returns an order of user; its errors are the order service's (ORDER_NOT_FOUND).
	Get(ctx context.Context, orderID, user int64) (Order, error)
	// MarkPaid tells the order service paymentID paid orderID; its errors are the order
	// service's (ORDER_CLOSED, ORDER_PAID_BY_OTHER).
	MarkPaid(ctx context.Context, orderID, paymentID int64) error
}

// Charger asks the provider to charge; provider.Client satisfies it.
type Charger interface {
	Charge(ctx context.Context, req provider.ChargeRequest) error
}

// Repo stores payments. Every method is atomic.
type Repo interface {
	// Insert stores p unless its order already has a payment; it returns the order's
	// payment and whether it is p.
	Insert(ctx context.Context, p *Payment) (*Payment, bool, error)
	// ByOrder returns an order's payment; ErrNotFound when none.
	ByOrder(ctx context.Context, orderID int64) (*Payment, error)
	// Get returns a payment; ErrNotFound when absent.
	Get(ctx context.Context, id int64) (*Payment, error)
	// ChargeSent records that the provider accepted the charge.
	ChargeSent(ctx context.Context, id int64) error
	// Resolve moves a PENDING payment to to (SUCCEEDED or FAILED) with the provider's ref,
	// owing MarkPaid when it succeeded; false when it was not PENDING.
	Resolve(ctx context.Context, id int64, to State, ref string, at time.Time) (bool, error)
	// MarkPaidDone records that the order service took the payment; with refund, the order
	// had closed and the payment becomes REFUND_REQUIRED at at.
	MarkPaidDone(ctx context.Context, id int64, refund bool, at time.Time) error
	// Owed returns up to limit payments last changed at or before before that owe MarkPaid
	// or whose charge the provider has not accepted.
	Owed(ctx context.Context, before time.Time, limit int) ([]*Payment, error)
}

// Errors callers branch on.
var (
	ErrNotFound         = errs.NotFound("PAYMENT_NOT_FOUND", "no such payment")
	ErrOrderNotFound    = errs.NotFound("ORDER_NOT_FOUND", "no such order")
	ErrOrderNotPending  = errs.New(codes.FailedPrecondition, "ORDER_NOT_PENDING", "the order is not awaiting payment")
	ErrProvider         = errs.New(codes.Unavailable, "PROVIDER_UNAVAILABLE", "the payment provider did not accept the charge: try again")
	ErrBadSignature     = errs.Unauthenticated("BAD_SIGNATURE", "the callback's signature does not match")
	ErrBadCallback      = errs.InvalidArgument("BAD_CALLBACK", "the body is not a payment callback")
	errUnexpectedAnswer = errors.New("order service answered MarkPaid unexpectedly")
)

// Config is the payment logic's settings.
type Config struct {
	// Secret is the HMAC key shared with the provider.
	Secret []byte
	// CallbackURL returns where the provider calls back.
	CallbackURL func() string
	// RetryGrace is how long after a change the retry loop leaves a payment's owed calls
	// to the call that made the change.
	RetryGrace time.Duration
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Usecase is the payment service's logic.
type Usecase struct {
	repo    Repo
	orders  Orders
	charger Charger
	cfg     Config
}

// NewUsecase returns the logic.
func NewUsecase(repo Repo, orders Orders, charger Charger, cfg Config) *Usecase {
	return &Usecase{repo: repo, orders: orders, charger: charger, cfg: cfg}
}

func (uc *Usecase) now() time.Time { return uc.cfg.Clock.Now().UTC().Truncate(time.Millisecond) }

func validIDs(orderID, user int64) error {
	if orderID <= 0 {
		return errs.InvalidArgument("INVALID_ORDER_ID", "order_id must be positive")
	}
	if user <= 0 {
		return errs.InvalidArgument("INVALID_USER_ID", "user_id must be positive")
	}
	return nil
}

// Pay starts the payment of a user's pending order, once per order.
func (uc *Usecase) Pay(ctx context.Context, orderID, user int64) (*Payment, error) {
	if err := validIDs(orderID, user); err != nil {
		return nil, err
	}
	p, err := uc.repo.ByOrder(ctx, orderID)
	switch {
	case err == nil:
		if p.UserID != user {
			return nil, ErrOrderNotFound
		}
		return uc.charge(ctx, p)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	o, err := uc.orders.Get(ctx, orderID, user)
	if err != nil {
		if errs.Reason(err) == ErrOrderNotFound.Reason {
			return nil, ErrOrderNotFound
		}
		return nil, downstream(err)
	}
	if !o.Pending {
		return nil, ErrOrderNotPending
	}
	now := uc.now()
	p = &Payment{ID: id.New(), OrderID: orderID, UserID: user, Amount: o.Total, Currency: o.Currency,
		State: StatePending, CreatedAt: now, UpdatedAt: now}
	stored, _, err := uc.repo.Insert(ctx, p)
	if err != nil {
		return nil, err
	}
	if stored.UserID != user {
		return nil, ErrOrderNotFound
	}
	return uc.charge(ctx, stored)
}

// downstream keeps the code of an order service failure that callers may retry and hides
// anything else as internal.
func downstream(err error) error {
	e := errs.From(err)
	switch e.Code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled, codes.Aborted:
		return e
	}
	return errs.Internal(errors.New("order: " + err.Error()))
}

// charge asks the provider to charge a PENDING payment. The provider knows payments by id:
// asking again while its callback is pending changes nothing, and after it called back it
// calls back again, which is how a lost callback is recovered.
func (uc *Usecase) charge(ctx context.Context, p *Payment) (*Payment, error) {
	if p.State != StatePending {
		return p, nil
	}
	err := uc.charger.Charge(ctx, provider.ChargeRequest{PaymentID: p.ID, Amount: p.Amount, Currency: p.Currency,
		CallbackURL: uc.cfg.CallbackURL()})
	if err != nil {
		return nil, ErrProvider.WithCause(err)
	}
	if !p.ChargeSent {
		if err := uc.repo.ChargeSent(ctx, p.ID); err != nil {
			return nil, err
		}
		p.ChargeSent = true
	}
	return p, nil
}

// Callback applies a provider callback: verified, then applied once.
func (uc *Usecase) Callback(ctx context.Context, payload []byte, sig string) (*Payment, error) {
	if len(payload) > provider.MaxBody {
		return nil, ErrBadCallback
	}
	if !provider.Verify(uc.cfg.Secret, payload, sig) {
		return nil, ErrBadSignature
	}
	cb, err := provider.DecodeCallback(payload)
	if err != nil {
		return nil, ErrBadCallback.WithCause(err)
	}
	to := StateFailed
	if cb.Status == provider.StatusSucceeded {
		to = StateSucceeded
	}
	if _, err := uc.repo.Resolve(ctx, cb.PaymentID, to, cb.ProviderRef, uc.now()); err != nil {
		return nil, err
	}
	// Whether this call or an earlier one resolved it, the payment as it stands is the answer.
	p, err := uc.repo.Get(ctx, cb.PaymentID)
	if err != nil {
		return nil, err
	}
	if p.MarkPaidOwed {
		return uc.markPaid(ctx, p)
	}
	return p, nil
}

// markPaid tells the order service about a succeeded payment and records the answer. A
// transient failure leaves it owed, for the retry loop or the callback's replay.
func (uc *Usecase) markPaid(ctx context.Context, p *Payment) (*Payment, error) {
	err := uc.orders.MarkPaid(ctx, p.OrderID, p.ID)
	refund := false
	switch reason := errs.Reason(err); {
	case err == nil:
	case reason == "ORDER_CLOSED" || reason == "ORDER_PAID_BY_OTHER" || reason == "ORDER_NOT_FOUND" ||
		reason == "ORDER_NOT_PENDING":
		// The order cannot take this payment (it expired or was cancelled first): the money
		// goes back.
		refund = true
		uc.cfg.Logger.Warn("payment: charged for an order that cannot be paid; refund required",
			"payment_id", p.ID, "order_id", p.OrderID, "reason", reason)
	default:
		uc.cfg.Logger.Warn("payment: MarkPaid failed; the retry loop will try again", "payment_id", p.ID,
			"order_id", p.OrderID, "err", errors.Join(errUnexpectedAnswer, err))
		return p, nil
	}
	now := uc.now()
	if err := uc.repo.MarkPaidDone(ctx, p.ID, refund, now); err != nil {
		return nil, err
	}
	p.MarkPaidOwed = false
	if refund && p.State != StateRefundRequired {
		p.State, p.UpdatedAt = StateRefundRequired, now
	}
	return p, nil
}

// Get returns the payment of an order, checking its owner unless user is 0.
func (uc *Usecase) Get(ctx context.Context, orderID, user int64) (*Payment, error) {
	if orderID <= 0 {
		return nil, errs.InvalidArgument("INVALID_ORDER_ID", "order_id must be positive")
	}
	if user < 0 {
		return nil, errs.InvalidArgument("INVALID_USER_ID", "user_id must not be negative")
	}
	p, err := uc.repo.ByOrder(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if user != 0 && p.UserID != user {
		return nil, ErrNotFound
	}
	return p, nil
}

// retryBatch is how many payments one retry round handles.
const retryBatch = 100

// Retry runs one round of the calls owed: MarkPaid for succeeded payments the order service
// has not taken, and charges the provider has not accepted. It returns how many payments it
// looked at.
func (uc *Usecase) Retry(ctx context.Context) (int, error) {
	owed, err := uc.repo.Owed(ctx, uc.now().Add(-uc.cfg.RetryGrace), retryBatch)
	if err != nil {
		return 0, err
	}
	for _, p := range owed {
		var err error
		if p.MarkPaidOwed {
			_, err = uc.markPaid(ctx, p)
		} else {
			_, err = uc.charge(ctx, p)
		}
		if err != nil {
			uc.cfg.Logger.Warn("payment: retry failed; the next round tries again", "payment_id", p.ID, "err", err)
		}
	}
	return len(owed), ctx.Err()
}
