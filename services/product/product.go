// Package product wires the product service: the SPU/SKU catalog and each user's cart.
//
// Guarantees: a product and its SKUs are created in one transaction; every SKU of a product
// shares one currency, and prices are integer minor units (0..10^12). Every create, update
// and delete writes a services/event ProductEvent to an outbox table in the transaction of
// the change, and a relay publishes the outbox to the queue after the commit, so a crash
// between commit and publish loses no event (the next relay round, in this process or the
// next, publishes it). Delivery is at least once: consumers drop repeats by Version, which
// strictly increases per product. GetSKUs answers up to 100 SKUs in request order and is
// what orders snapshot prices from.
package product

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/product/internal/biz"
	"github.com/redline-dev/redline/services/product/internal/data"
	"github.com/redline-dev/redline/services/product/internal/service"
	"github.com/redline-dev/redline/services/product/migrations"
)

// Name is the service's name in the registry and in metrics. The Cart gRPC service is
// served by the same process under the same name.
const Name = "product"

// Idempotent lists the methods callers may retry: the reads, UpdateProduct and
// DeleteProduct (absolute state), and the cart's writes (they set a quantity or remove).
// CreateProduct is safe to repeat only with an idempotency_key, so it is not listed.
var Idempotent = []string{
	productv1.Product_GetProduct_FullMethodName, productv1.Product_ListProducts_FullMethodName,
	productv1.Product_GetSKUs_FullMethodName, productv1.Product_UpdateProduct_FullMethodName,
	productv1.Product_DeleteProduct_FullMethodName,
	productv1.Cart_UpsertItem_FullMethodName, productv1.Cart_GetCart_FullMethodName,
	productv1.Cart_RemoveItems_FullMethodName,
}

// Option configures New.
type Option func(*options)

type options struct {
	clock         clock.Clock
	logger        *slog.Logger
	relayInterval time.Duration
	relayTimeout  time.Duration
}

// WithClock sets the clock that stamps products, versions and cart items. Default the wall
// clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where failed outbox relay rounds are reported. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// RelayInterval is how often the outbox relay looks for unpublished events besides the
// nudge every change gives it; it bounds how late an event is after a publish failure or a
// restart. Default 1s.
func RelayInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.relayInterval = d
		}
	}
}

// Service is the product service: the Product and Cart gRPC servers and the outbox relay.
type Service struct {
	Product productv1.ProductServer
	Cart    productv1.CartServer
	relay   *biz.Relay
}

// Register registers both gRPC services on s.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	productv1.RegisterProductServer(r, s.Product)
	productv1.RegisterCartServer(r, s.Cart)
}

// Close stops the outbox relay; events not yet published stay in the outbox for the next
// start. Close it after the gRPC server stops taking calls. Safe to call more than once.
func (s *Service) Close() error {
	if s.relay == nil {
		return nil
	}
	return s.relay.Close()
}

// New migrates db and returns the service. Product events go to q through the outbox; with
// a nil q no events are written or published and no relay runs.
func New(ctx context.Context, db *sqldb.DB, q mq.Queue, opts ...Option) (*Service, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), relayInterval: time.Second, relayTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, fmt.Errorf("product: migrate: %w", err)
	}
	repo := data.NewRepo(db)
	s := &Service{}
	events := q != nil
	var kick func()
	if events {
		s.relay = biz.NewRelay(repo, q, o.relayInterval, o.relayTimeout, o.logger)
		kick = s.relay.Kick
	}
	s.Product = service.NewProduct(biz.NewUsecase(repo, o.clock, events, kick))
	s.Cart = service.NewCart(biz.NewCart(repo, repo, o.clock.Now))
	return s, nil
}
