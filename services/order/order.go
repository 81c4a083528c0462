// Package order wires the order service: orders placed at a snapshot of their SKUs' prices
// with their stock reserved in the inventory service, paid through the payment service, and
// closed with their stock returned when they stay unpaid past their expiry.
//
// Guarantees:
//
//   - CreateOrder is idempotent per (user, idempotency key): racing or later repeats get the
//     same order, or the same OUT_OF_STOCK error, and reserve stock once (the reservation is
//     keyed by the order id).
//   - The order row is stored (state CREATING) before stock is reserved. Out of stock closes
//     it (close_reason OUT_OF_STOCK) and releases whatever the order id holds. A crash or a
//     failure between the insert and the reservation leaves it CREATING: a repeat of the
//     request finishes it, and otherwise the closer closes it at its expiry and releases its
//     stock, so no stock is held by an order nobody will pay.
//   - Every state change is a conditional UPDATE on the order row, so a payment racing the
//     closer (or a cancel) has exactly one winner, on one instance or many. Only the winner's
//     inventory effect runs (Confirm for PAID, Release for CLOSED); if that call fails the
//     order stays marked and the closer retries it until the inventory agrees. A payment that
//     loses to the closer gets ORDER_CLOSED and must be refunded by the payment service.
//   - The closer is driven by the database (expires_at), not by timers in memory, so it
//     survives restarts; its time comes from an injectable clock.
package order

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	orderv1 "github.com/redline-dev/redline/api/order/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/order/internal/biz"
	"github.com/redline-dev/redline/services/order/internal/data"
	"github.com/redline-dev/redline/services/order/internal/service"
	"github.com/redline-dev/redline/services/order/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "order"

// Idempotent lists the methods callers may retry: all of them. CreateOrder is idempotent
// per idempotency_key (required), CancelOrder and MarkPaid set final states.
var Idempotent = []string{
	orderv1.Order_CreateOrder_FullMethodName, orderv1.Order_GetOrder_FullMethodName,
	orderv1.Order_ListOrders_FullMethodName, orderv1.Order_CancelOrder_FullMethodName,
	orderv1.Order_MarkPaid_FullMethodName,
}

// ProductClient is what the order service needs of the product service; a
// productv1.ProductClient satisfies it.
type ProductClient interface {
	GetSKUs(ctx context.Context, in *productv1.GetSKUsRequest, opts ...grpc.CallOption) (*productv1.GetSKUsReply, error)
}

// InventoryClient is what the order service needs of the inventory service; an
// inventoryv1.InventoryClient satisfies it.
type InventoryClient interface {
	Reserve(ctx context.Context, in *inventoryv1.ReserveRequest, opts ...grpc.CallOption) (*inventoryv1.Reservation, error)
	Confirm(ctx context.Context, in *inventoryv1.ConfirmRequest, opts ...grpc.CallOption) (*inventoryv1.Reservation, error)
	Release(ctx context.Context, in *inventoryv1.ReleaseRequest, opts ...grpc.CallOption) (*inventoryv1.Reservation, error)
}

var (
	_ ProductClient   = productv1.ProductClient(nil)
	_ InventoryClient = inventoryv1.InventoryClient(nil)
)

// Option configures New.
type Option func(*options)

type options struct {
	clock          clock.Clock
	logger         *slog.Logger
	paymentTimeout time.Duration
	closeInterval  time.Duration
	sweepTimeout   time.Duration
	settleGrace    time.Duration
	createTimeout  time.Duration
}

// CreateTimeout is how long an order may stay CREATING (its stock not yet reserved, the
// call that creates it having failed half way: a crash, the inventory down) before the
// closer closes it and releases whatever it reserved, instead of holding that stock until
// the payment timeout. A repeat of the create (same idempotency key) within it finishes
// the order instead. Default 30s.
func CreateTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.createTimeout = d
		}
	}
}

// PaymentTimeout is how long a new order waits for payment before the closer closes it and
// returns its stock. Default 15m.
func PaymentTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.paymentTimeout = d
		}
	}
}

// CloseInterval is how often the closer looks for expired orders and for inventory calls
// to retry. Default 1s.
func CloseInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.closeInterval = d
		}
	}
}

// SettleGrace is how long after an order is paid or closed the closer leaves its inventory
// Confirm or Release to the call that changed it before retrying the call itself.
// Default 10s.
func SettleGrace(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.settleGrace = d
		}
	}
}

// WithClock sets the clock that stamps orders, sets their expiry and decides which expired.
// Default the wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where failed inventory calls and closer rounds are reported. Default
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New migrates db and returns the gRPC service and its closer, whose loop is already
// running. Close the closer after the gRPC server stops taking calls.
func New(ctx context.Context, db *sqldb.DB, products ProductClient, inventory InventoryClient, opts ...Option) (orderv1.OrderServer, *Closer, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), paymentTimeout: 15 * time.Minute,
		closeInterval: time.Second, sweepTimeout: 30 * time.Second, settleGrace: 10 * time.Second, createTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if products == nil || inventory == nil {
		return nil, nil, fmt.Errorf("order: the product and inventory clients are required")
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("order: migrate: %w", err)
	}
	uc := biz.NewUsecase(data.NewRepo(db), catalog{products}, stock{inventory}, biz.Config{
		PaymentTimeout: o.paymentTimeout, SettleGrace: o.settleGrace, CreateTimeout: o.createTimeout, Clock: o.clock, Logger: o.logger})
	c := &Closer{uc: uc}
	c.Periodic = app.StartPeriodic("order closer", o.closeInterval, o.sweepTimeout, o.logger, func(ctx context.Context) error {
		_, err := uc.Sweep(ctx)
		return err
	})
	return service.New(uc), c, nil
}

// Closer is the loop that closes unpaid orders at their expiry and releases their stock,
// and retries inventory calls that failed. Several order instances may run one each: every
// close is a conditional update, so each order closes once.
type Closer struct {
	*app.Periodic // Close stops the loop after the round in progress
	uc            *biz.Usecase
}

// Sweep runs one round now: it closes the orders expired by the clock's now and retries the
// inventory calls owed, and returns how many orders it closed.
func (c *Closer) Sweep(ctx context.Context) (int, error) { return c.uc.Sweep(ctx) }

// catalog adapts the product client to biz.Catalog.
type catalog struct{ c ProductClient }

func (p catalog) SKUs(ctx context.Context, ids []int64) (map[int64]biz.SKU, error) {
	r, err := p.c.GetSKUs(ctx, &productv1.GetSKUsRequest{SkuIds: ids})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]biz.SKU, len(r.GetSkus()))
	for _, s := range r.GetSkus() {
		out[s.GetId()] = biz.SKU{ID: s.GetId(), SPUID: s.GetSpuId(), Title: s.GetTitle(), Attributes: s.GetAttributes(),
			Price: s.GetPrice(), Currency: s.GetCurrency()}
	}
	return out, nil
}

// stock adapts the inventory client to biz.Stock.
type stock struct{ c InventoryClient }

func (s stock) Reserve(ctx context.Context, orderID int64, lines []biz.Line) error {
	items := make([]*inventoryv1.Item, len(lines))
	for i, l := range lines {
		items[i] = &inventoryv1.Item{SkuId: l.SKUID, Quantity: l.Quantity}
	}
	_, err := s.c.Reserve(ctx, &inventoryv1.ReserveRequest{OrderId: orderID, Items: items})
	return err
}

func (s stock) Confirm(ctx context.Context, orderID int64) error {
	_, err := s.c.Confirm(ctx, &inventoryv1.ConfirmRequest{OrderId: orderID})
	return err
}

func (s stock) Release(ctx context.Context, orderID int64) error {
	_, err := s.c.Release(ctx, &inventoryv1.ReleaseRequest{OrderId: orderID})
	return err
}
