// Package ordertest starts the shop's order path for tests: the product, inventory and
// order services, each on its own database and its own loopback gRPC server, with the order
// service calling the other two through real gRPC clients. The order and payment tests and
// the order benchmark use it.
package ordertest

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	orderv1 "github.com/redline-dev/redline/api/order/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/services/inventory"
	"github.com/redline-dev/redline/services/order"
	"github.com/redline-dev/redline/services/product"
)

// Engines a Shop runs on.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// MaxConcurrentCalls bounds the calls each test server handles at once (more wait in the
// client's queue), keeping the three PostgreSQL pools under the server's connection limit.
const MaxConcurrentCalls = 32

// Catalog wraps the product client the order service uses, counting GetSKUs calls and the
// time spent in them.
type Catalog struct {
	productv1.ProductClient
	Calls, Nanos atomic.Int64
}

// GetSKUs implements order.ProductClient.
func (c *Catalog) GetSKUs(ctx context.Context, in *productv1.GetSKUsRequest, opts ...grpc.CallOption) (*productv1.GetSKUsReply, error) {
	start := time.Now()
	defer func() { c.Calls.Add(1); c.Nanos.Add(int64(time.Since(start))) }()
	return c.ProductClient.GetSKUs(ctx, in, opts...)
}

// Counting wraps an inventory client and counts the calls that change reservations, and
// the time spent in Reserve.
type Counting struct {
	inventoryv1.InventoryClient
	Reserves, Confirms, Releases atomic.Int64
	ReserveNanos                 atomic.Int64
	// FailReserve, when set, is called before each Reserve; a non-nil error fails the call,
	// after it reached the inventory when after is true (a lost reply).
	FailReserve func() (err error, after bool)
	// FailConfirm, when set, fails Confirm calls before they reach the inventory.
	FailConfirm func() error
}

// Reserve implements order.InventoryClient.
func (c *Counting) Reserve(ctx context.Context, in *inventoryv1.ReserveRequest, opts ...grpc.CallOption) (*inventoryv1.Reservation, error) {
	c.Reserves.Add(1)
	start := time.Now()
	defer func() { c.ReserveNanos.Add(int64(time.Since(start))) }()
	if c.FailReserve != nil {
		if err, after := c.FailReserve(); err != nil {
			if after {
				_, _ = c.InventoryClient.Reserve(ctx, in, opts...)
			}
			return nil, err
		}
	}
	return c.InventoryClient.Reserve(ctx, in, opts...)
}

// Confirm implements order.InventoryClient.
func (c *Counting) Confirm(ctx context.Context, in *inventoryv1.ConfirmRequest, opts ...grpc.CallOption) (*inventoryv1.Reservation, error) {
	c.Confirms.Add(1)
	if c.FailConfirm != nil {
		if err := c.FailConfirm(); err != nil {
			return nil, err
		}
	}
	return c.InventoryClient.Confirm(ctx, in, opts...)
}

// Release implements order.InventoryClient.
func (c *Counting) Release(ctx context.Context, in *inventoryv1.ReleaseRequest, opts ...grpc.CallOption) (*inventoryv1.Reservation, error) {
	c.Releases.Add(1)
	return c.InventoryClient.Release(ctx, in, opts...)
}

// Shop is the running order path.
type Shop struct {
	Products  productv1.ProductClient
	Cart      productv1.CartClient
	Inventory inventoryv1.InventoryClient
	// Catalog and Stock are the clients the order service uses, counting their calls.
	Catalog *Catalog
	Stock   *Counting
	Orders  orderv1.OrderClient
	Closer  *order.Closer
	Clock   *clock.Fake
	// OrderDB is the order service's database.
	OrderDB *sqldb.DB
}

// Start starts a Shop on engine (SQLite files in a temporary directory, or PostgreSQL
// schemas of the test's own), with the order service on a fake clock and a closer loop that
// only runs when the test calls Sweep, unless opts say otherwise. Everything stops at the
// end of t.
func Start(t testing.TB, engine string, opts ...order.Option) *Shop {
	t.Helper()
	ctx := context.Background()
	open := func(name string) *sqldb.DB {
		if engine == Postgres {
			db, _ := sqldbtest.Postgres(t, name)
			return db
		}
		dsn := "sqlite:" + filepath.Join(t.TempDir(), name+".db")
		db, err := sqldb.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("sqldb.Open(%q) = %v", dsn, err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	s := &Shop{Clock: clock.NewFake(time.Time{})}

	prod, err := product.New(ctx, open("product"), nil)
	if err != nil {
		t.Fatalf("product.New = %v", err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	conn := serve(t, prod.Register)
	s.Products, s.Cart = productv1.NewProductClient(conn), productv1.NewCartClient(conn)
	s.Catalog = &Catalog{ProductClient: s.Products}

	inv, err := inventory.New(ctx, open("inventory"))
	if err != nil {
		t.Fatalf("inventory.New = %v", err)
	}
	s.Inventory = inventoryv1.NewInventoryClient(serve(t, func(r grpc.ServiceRegistrar) { inventoryv1.RegisterInventoryServer(r, inv) }))
	s.Stock = &Counting{InventoryClient: s.Inventory}

	s.OrderDB = open("order")
	opts = append([]order.Option{order.WithClock(s.Clock), order.CloseInterval(time.Hour)}, opts...)
	ord, closer, err := order.New(ctx, s.OrderDB, s.Catalog, s.Stock, opts...)
	if err != nil {
		t.Fatalf("order.New = %v", err)
	}
	// Registered after the servers' cleanups, so it runs before them: the loop stops while
	// the services it calls still answer.
	t.Cleanup(func() { _ = closer.Close() })
	s.Closer = closer
	s.Orders = orderv1.NewOrderClient(serve(t, func(r grpc.ServiceRegistrar) { orderv1.RegisterOrderServer(r, ord) }))
	return s
}

// serve starts a gRPC server on a loopback port with register's services and returns a
// client connection to it; both stop at the end of t.
func serve(t testing.TB, register func(grpc.ServiceRegistrar)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(MaxConcurrentCalls))
	register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", lis.Addr(), err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		<-done
	})
	return conn
}

// SKU creates a product with one SKU at price (minor units of currency) and stocks it with
// quantity; it returns the SKU's id.
func (s *Shop) SKU(t testing.TB, price int64, currency string, quantity int64) int64 {
	t.Helper()
	return s.SKUs(t, 1, price, currency, quantity)[0]
}

// SKUs creates a product with n SKUs (n <= 50) at price, each stocked with quantity.
func (s *Shop) SKUs(t testing.TB, n int, price int64, currency string, quantity int64) []int64 {
	t.Helper()
	ctx := context.Background()
	req := &productv1.CreateProductRequest{Title: "Test product", Description: "for tests", Tags: []string{"test"}}
	for i := range n {
		req.Skus = append(req.Skus, &productv1.SKUInput{Attributes: map[string]string{"variant": string(rune('a'+i%26)) + string(rune('a'+i/26))},
			Price: price, Currency: currency})
	}
	p, err := s.Products.CreateProduct(ctx, req)
	if err != nil {
		t.Fatalf("CreateProduct = %v", err)
	}
	ids := make([]int64, len(p.GetSkus()))
	for i, k := range p.GetSkus() {
		ids[i] = k.GetId()
		if _, err := s.Inventory.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: k.GetId(), Quantity: quantity}); err != nil {
			t.Fatalf("SetStock(%d) = %v", k.GetId(), err)
		}
	}
	return ids
}

// Levels returns a SKU's available and reserved stock.
func (s *Shop) Levels(t testing.TB, sku int64) (available, reserved int64) {
	t.Helper()
	r, err := s.Inventory.GetStock(context.Background(), &inventoryv1.GetStockRequest{SkuIds: []int64{sku}})
	if err != nil || len(r.GetStocks()) != 1 {
		t.Fatalf("GetStock(%d) = %v, %v", sku, r, err)
	}
	return r.GetStocks()[0].GetAvailable(), r.GetStocks()[0].GetReserved()
}

// WantLevels fails t unless a SKU's stock is as given.
func (s *Shop) WantLevels(t testing.TB, sku, available, reserved int64) {
	t.Helper()
	if a, r := s.Levels(t, sku); a != available || r != reserved {
		t.Fatalf("sku %d: available, reserved = %d, %d; want %d, %d", sku, a, r, available, reserved)
	}
}
