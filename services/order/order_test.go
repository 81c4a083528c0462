package order_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	orderv1 "github.com/redline-dev/redline/api/order/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/order"
	"github.com/redline-dev/redline/services/order/ordertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var engines = []string{ordertest.SQLite, ordertest.Postgres}

// onEngines runs test on a fresh Shop per engine.
func onEngines(t *testing.T, test func(t *testing.T, s *ordertest.Shop), opts ...order.Option) {
	for _, e := range engines {
		t.Run(e, func(t *testing.T) { test(t, ordertest.Start(t, e, opts...)) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createReq(user int64, key string, skuQty ...int64) *orderv1.CreateOrderRequest {
	req := &orderv1.CreateOrderRequest{UserId: user, IdempotencyKey: key}
	for i := 0; i+1 < len(skuQty); i += 2 {
		req.Items = append(req.Items, &orderv1.OrderItemRequest{SkuId: skuQty[i], Quantity: skuQty[i+1]})
	}
	return req
}

func wantErr(t *testing.T, call string, err error, code codes.Code, reason string) {
	t.Helper()
	if errs.Code(err) != code || errs.Reason(err) != reason {
		t.Fatalf("%s = %v; want %v %s", call, err, code, reason)
	}
}

func mustCreate(t *testing.T, s *ordertest.Shop, req *orderv1.CreateOrderRequest) *orderv1.OrderInfo {
	t.Helper()
	o, err := s.Orders.CreateOrder(ctxT(t), req)
	if err != nil {
		t.Fatalf("CreateOrder(%v) = %v", req, err)
	}
	return o
}

func get(t *testing.T, s *ordertest.Shop, user, orderID int64) *orderv1.OrderInfo {
	t.Helper()
	o, err := s.Orders.GetOrder(ctxT(t), &orderv1.GetOrderRequest{OrderId: orderID, UserId: user})
	if err != nil {
		t.Fatalf("GetOrder(%d) = %v", orderID, err)
	}
	return o
}

// TestStockNeverOversold is the acceptance test of the shop's stock: 200 concurrent orders
// for one unit each of a SKU with 50 in stock, through the real inventory service over gRPC.
func TestStockNeverOversold(t *testing.T) {
	const stock, buyers = 50, 200
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 1999, "USD", stock)
		var (
			wg      sync.WaitGroup
			won     atomic.Int64
			mu      sync.Mutex
			others  []error
			winners []int64
		)
		start := make(chan struct{})
		for i := range buyers {
			wg.Go(func() {
				<-start
				o, err := s.Orders.CreateOrder(ctxT(t), createReq(int64(1000+i), "buy-"+strconv.Itoa(i), sku, 1))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					others = append(others, err)
					return
				}
				won.Add(1)
				winners = append(winners, o.GetId())
				if o.GetState() != orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT || o.GetTotal() != 1999 {
					t.Errorf("winning order = %v; want PENDING_PAYMENT with total 1999", o)
				}
			})
		}
		close(start)
		wg.Wait()
		if won.Load() != stock {
			t.Fatalf("%d of %d orders succeeded; want exactly %d (errors: %v)", won.Load(), buyers, stock, others)
		}
		for _, err := range others {
			wantErr(t, "losing CreateOrder", err, codes.FailedPrecondition, "OUT_OF_STOCK")
			if got := errs.From(err).Metadata["sku_id"]; got != strconv.FormatInt(sku, 10) {
				t.Fatalf("OUT_OF_STOCK sku_id = %q; want %d", got, sku)
			}
		}
		s.WantLevels(t, sku, 0, stock)
		// The losers are closed and hold nothing; every closed one had its release recorded.
		var closed int
		if err := s.OrderDB.QueryRowContext(ctxT(t), `SELECT COUNT(*) FROM orders WHERE state = 'CLOSED'
			AND close_reason = 'OUT_OF_STOCK' AND settle_pending = 0`).Scan(&closed); err != nil || closed != buyers-stock {
			t.Fatalf("closed OUT_OF_STOCK orders = %d (%v); want %d", closed, err, buyers-stock)
		}
	})
}

func TestCreateOrderIsIdempotent(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		a, b := s.SKU(t, 500, "EUR", 10), s.SKU(t, 250, "EUR", 10)
		req := createReq(7, "key-1", b, 2, a, 1)
		first := mustCreate(t, s, req)
		if first.GetTotal() != 1000 || first.GetCurrency() != "EUR" || len(first.GetItems()) != 2 ||
			first.GetItems()[0].GetSkuId() != min(a, b) || first.GetItems()[0].GetTitle() != "Test product" {
			t.Fatalf("CreateOrder = %v; want 2 items sorted by sku, total 1000 EUR", first)
		}
		want := s.Clock.Now().Add(15 * time.Minute).UnixMilli()
		if first.GetExpiresAtMs() != want {
			t.Fatalf("expires_at_ms = %d; want now + 15m = %d", first.GetExpiresAtMs(), want)
		}
		// Repeats, sequential and concurrent, get the same answer and reserve nothing more.
		if again := mustCreate(t, s, createReq(7, "key-1", a, 1, b, 2)); !proto.Equal(again, first) {
			t.Fatalf("repeated CreateOrder = %v; want %v", again, first)
		}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if again, err := s.Orders.CreateOrder(ctxT(t), req); err != nil || !proto.Equal(again, first) {
					t.Errorf("concurrent repeat = %v, %v; want %v", again, err, first)
				}
			})
		}
		wg.Wait()
		s.WantLevels(t, a, 9, 1)
		s.WantLevels(t, b, 8, 2)
		list, err := s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 7})
		if err != nil || len(list.GetOrders()) != 1 {
			t.Fatalf("ListOrders = %v, %v; want exactly one order", list, err)
		}
		// A price change after the order does not touch its snapshot.
		p, err := s.Products.GetSKUs(ctxT(t), &productv1.GetSKUsRequest{SkuIds: []int64{a}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Products.UpdateProduct(ctxT(t), &productv1.UpdateProductRequest{SpuId: p.GetSkus()[0].GetSpuId(),
			Title: "Renamed", Prices: []*productv1.SKUPrice{{SkuId: a, Price: 9}}}); err != nil {
			t.Fatal(err)
		}
		if again := mustCreate(t, s, req); !proto.Equal(again, first) {
			t.Fatalf("repeat after a price change = %v; want the snapshot %v", again, first)
		}

		_, err = s.Orders.CreateOrder(ctxT(t), createReq(7, "key-1", a, 2))
		wantErr(t, "CreateOrder reusing a key with other items", err, codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")
		// The key is per user: another user's same key is another order.
		if other := mustCreate(t, s, createReq(8, "key-1", a, 1)); other.GetId() == first.GetId() {
			t.Fatal("another user's order with the same key returned the first user's order")
		}
	})
}

func TestOutOfStockIsAnsweredAgain(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		a, b := s.SKU(t, 100, "USD", 5), s.SKU(t, 100, "USD", 1)
		_, err := s.Orders.CreateOrder(ctxT(t), createReq(3, "k", a, 2, b, 2))
		wantErr(t, "CreateOrder short", err, codes.FailedPrecondition, "OUT_OF_STOCK")
		if got := errs.From(err).Metadata["sku_id"]; got != strconv.FormatInt(b, 10) {
			t.Fatalf("OUT_OF_STOCK sku_id = %q; want %d", got, b)
		}
		s.WantLevels(t, a, 5, 0)
		// The repeat gets the same error even once stock is back: the first answer stands.
		if _, err := s.Inventory.SetStock(ctxT(t), setStock(b, 10)); err != nil {
			t.Fatal(err)
		}
		_, err2 := s.Orders.CreateOrder(ctxT(t), createReq(3, "k", a, 2, b, 2))
		wantErr(t, "repeated CreateOrder", err2, codes.FailedPrecondition, "OUT_OF_STOCK")
		if errs.From(err2).Metadata["sku_id"] != strconv.FormatInt(b, 10) {
			t.Fatalf("repeat's sku_id = %q; want %d", errs.From(err2).Metadata["sku_id"], b)
		}
		s.WantLevels(t, a, 5, 0)
		s.WantLevels(t, b, 10, 0)
		list, err := s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 3})
		if err != nil || len(list.GetOrders()) != 1 || list.Orders[0].GetState() != orderv1.OrderState_ORDER_STATE_CLOSED ||
			list.Orders[0].GetCloseReason() != "OUT_OF_STOCK" {
			t.Fatalf("ListOrders = %v, %v; want one order CLOSED OUT_OF_STOCK", list, err)
		}
	})
}

func TestSnapshotFailuresStoreNothing(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		usd, eur := s.SKU(t, 100, "USD", 5), s.SKU(t, 100, "EUR", 5)
		unknown := id.New()
		_, err := s.Orders.CreateOrder(ctxT(t), createReq(4, "k1", usd, 1, unknown, 1))
		wantErr(t, "CreateOrder of an unknown sku", err, codes.FailedPrecondition, "SKU_NOT_FOUND")
		if got := errs.From(err).Metadata["sku_id"]; got != strconv.FormatInt(unknown, 10) {
			t.Fatalf("SKU_NOT_FOUND sku_id = %q; want %d", got, unknown)
		}
		_, err = s.Orders.CreateOrder(ctxT(t), createReq(4, "k2", usd, 1, eur, 1))
		wantErr(t, "CreateOrder in two currencies", err, codes.FailedPrecondition, "MIXED_CURRENCY")
		list, err := s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 4})
		if err != nil || len(list.GetOrders()) != 0 {
			t.Fatalf("ListOrders = %v, %v; want none", list, err)
		}
		s.WantLevels(t, usd, 5, 0)
		if n := s.Stock.Reserves.Load(); n != 0 {
			t.Fatalf("%d Reserve calls; want none", n)
		}
	})
}

// TestUnpaidOrdersClose moves the fake clock past the payment timeout: the closer closes the
// order and its stock returns; a payment arriving after that is refused.
func TestUnpaidOrdersClose(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 10)
		o := mustCreate(t, s, createReq(5, "k", sku, 4))
		paid := mustCreate(t, s, createReq(5, "k2", sku, 1))
		if _, err := s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: paid.GetId(), PaymentId: 77}); err != nil {
			t.Fatal(err)
		}
		s.WantLevels(t, sku, 5, 4)
		s.Clock.Advance(15*time.Minute - time.Millisecond)
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Sweep before expiry = %d, %v; want 0 closed", n, err)
		}
		s.Clock.Advance(time.Millisecond)
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 1 {
			t.Fatalf("Sweep at expiry = %d, %v; want 1 closed", n, err)
		}
		got := get(t, s, 5, o.GetId())
		if got.GetState() != orderv1.OrderState_ORDER_STATE_CLOSED || got.GetCloseReason() != "EXPIRED" {
			t.Fatalf("expired order = %v; want CLOSED EXPIRED", got)
		}
		s.WantLevels(t, sku, 9, 0)
		if got := get(t, s, 5, paid.GetId()); got.GetState() != orderv1.OrderState_ORDER_STATE_PAID {
			t.Fatalf("paid order after the sweep = %v; want PAID", got)
		}
		_, err := s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o.GetId(), PaymentId: 78})
		wantErr(t, "MarkPaid after close", err, codes.FailedPrecondition, "ORDER_CLOSED")
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("second Sweep = %d, %v; want 0 closed", n, err)
		}
		s.WantLevels(t, sku, 9, 0)
	})
}

// TestCloserLoop lets the closer's own loop (every 5ms) find the expired order.
func TestCloserLoop(t *testing.T) {
	s := ordertest.Start(t, ordertest.SQLite, order.CloseInterval(5*time.Millisecond), order.PaymentTimeout(time.Minute))
	sku := s.SKU(t, 100, "USD", 3)
	o := mustCreate(t, s, createReq(6, "k", sku, 3))
	s.Clock.Advance(time.Minute)
	ctx := ctxT(t)
	// The order closes first and its stock returns right after: wait for both.
	for {
		available, _ := s.Levels(t, sku)
		if get(t, s, 6, o.GetId()).GetState() == orderv1.OrderState_ORDER_STATE_CLOSED && available == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the closer loop did not close the expired order and return its stock within 30s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.WantLevels(t, sku, 3, 0)
}

// TestPaymentRacesTheCloser runs MarkPaid and the closer at the same time on expired
// orders: each ends PAID with its stock sold or CLOSED with its stock back, never both.
func TestPaymentRacesTheCloser(t *testing.T) {
	const orders = 20
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", orders)
		ids := make([]int64, orders)
		for i := range ids {
			ids[i] = mustCreate(t, s, createReq(9, "k"+strconv.Itoa(i), sku, 1)).GetId()
		}
		s.Clock.Advance(15 * time.Minute)
		var wg sync.WaitGroup
		paid := make([]bool, orders)
		for i, o := range ids {
			wg.Go(func() {
				_, err := s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o, PaymentId: int64(i + 1)})
				switch {
				case err == nil:
					paid[i] = true
				case errs.Reason(err) != "ORDER_CLOSED":
					t.Errorf("MarkPaid(%d) = %v", o, err)
				}
			})
		}
		wg.Go(func() {
			if _, err := s.Closer.Sweep(ctxT(t)); err != nil {
				t.Errorf("Sweep = %v", err)
			}
		})
		wg.Wait()
		nPaid := int64(0)
		for i, o := range ids {
			got := get(t, s, 9, o)
			want := orderv1.OrderState_ORDER_STATE_CLOSED
			if paid[i] {
				want = orderv1.OrderState_ORDER_STATE_PAID
				nPaid++
			}
			if got.GetState() != want {
				t.Fatalf("order %d = %v; MarkPaid succeeded: %v", o, got.GetState(), paid[i])
			}
		}
		s.WantLevels(t, sku, orders-nPaid, 0)
		if c, r := s.Stock.Confirms.Load(), s.Stock.Releases.Load(); c != nPaid || r != orders-nPaid {
			t.Fatalf("Confirm, Release calls = %d, %d; want %d, %d (one per order)", c, r, nPaid, orders-nPaid)
		}
	})
}

func TestMarkPaid(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 10)
		o := mustCreate(t, s, createReq(11, "k", sku, 2))
		first, err := s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o.GetId(), PaymentId: 500})
		if err != nil || first.GetState() != orderv1.OrderState_ORDER_STATE_PAID || first.GetPaymentId() != 500 {
			t.Fatalf("MarkPaid = %v, %v; want PAID by 500", first, err)
		}
		s.WantLevels(t, sku, 8, 0)
		again, err := s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o.GetId(), PaymentId: 500})
		if err != nil || !proto.Equal(again, first) {
			t.Fatalf("repeated MarkPaid = %v, %v; want %v", again, err, first)
		}
		_, err = s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o.GetId(), PaymentId: 501})
		wantErr(t, "MarkPaid by another payment", err, codes.FailedPrecondition, "ORDER_PAID_BY_OTHER")
		if n := s.Stock.Confirms.Load(); n != 1 {
			t.Fatalf("%d Confirm calls; want 1", n)
		}
		s.WantLevels(t, sku, 8, 0)
		_, err = s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: id.New(), PaymentId: 1})
		wantErr(t, "MarkPaid of an unknown order", err, codes.NotFound, "ORDER_NOT_FOUND")
		_, err = s.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: o.GetId(), UserId: 11})
		wantErr(t, "CancelOrder after payment", err, codes.FailedPrecondition, "ORDER_PAID")
	})
}

func TestCancelOrder(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 10)
		o := mustCreate(t, s, createReq(12, "k", sku, 3))
		_, err := s.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: o.GetId(), UserId: 13})
		wantErr(t, "CancelOrder by another user", err, codes.NotFound, "ORDER_NOT_FOUND")
		s.WantLevels(t, sku, 7, 3)
		first, err := s.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: o.GetId(), UserId: 12})
		if err != nil || first.GetState() != orderv1.OrderState_ORDER_STATE_CLOSED || first.GetCloseReason() != "CANCELED" {
			t.Fatalf("CancelOrder = %v, %v; want CLOSED CANCELED", first, err)
		}
		s.WantLevels(t, sku, 10, 0)
		again, err := s.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: o.GetId(), UserId: 12})
		if err != nil || !proto.Equal(again, first) {
			t.Fatalf("repeated CancelOrder = %v, %v; want %v", again, err, first)
		}
		_, err = s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o.GetId(), PaymentId: 1})
		wantErr(t, "MarkPaid after cancel", err, codes.FailedPrecondition, "ORDER_CLOSED")
		s.Clock.Advance(time.Hour)
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Sweep = %d, %v; want nothing to close", n, err)
		}
		expired := mustCreate(t, s, createReq(12, "k2", sku, 1))
		s.Clock.Advance(time.Hour)
		if _, err := s.Closer.Sweep(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		_, err = s.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: expired.GetId(), UserId: 12})
		wantErr(t, "CancelOrder after expiry", err, codes.FailedPrecondition, "ORDER_CLOSED")
		_, err = s.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: id.New(), UserId: 12})
		wantErr(t, "CancelOrder of an unknown order", err, codes.NotFound, "ORDER_NOT_FOUND")
	})
}

var errLost = errs.New(codes.Unavailable, "UNAVAILABLE", "connection lost")

// TestCrashBetweenInsertAndReserve covers an order stored but whose reservation failed or
// whose reply was lost: a repeat of the request finishes it; if nobody repeats it, the
// closer closes it at its expiry and whatever it reserved returns.
func TestCrashBetweenInsertAndReserve(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 10)
		var fail atomic.Int32 // 1: fail before reaching inventory; 2: fail after (lost reply)
		s.Stock.FailReserve = func() (error, bool) {
			switch fail.Swap(0) {
			case 1:
				return errLost, false
			case 2:
				return errLost, true
			}
			return nil, false
		}
		fail.Store(1)
		_, err := s.Orders.CreateOrder(ctxT(t), createReq(14, "k", sku, 2))
		wantErr(t, "CreateOrder with inventory down", err, codes.Unavailable, "UNAVAILABLE")
		list, _ := s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 14})
		if len(list.GetOrders()) != 1 || list.Orders[0].GetState() != orderv1.OrderState_ORDER_STATE_CREATING {
			t.Fatalf("orders after the failure = %v; want one CREATING", list)
		}
		s.WantLevels(t, sku, 10, 0)
		resumed := mustCreate(t, s, createReq(14, "k", sku, 2))
		if resumed.GetId() != list.Orders[0].GetId() || resumed.GetState() != orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT {
			t.Fatalf("repeat = %v; want order %d PENDING_PAYMENT", resumed, list.Orders[0].GetId())
		}
		s.WantLevels(t, sku, 8, 2)

		// The reply is lost after the stock was taken, and the client never comes back.
		fail.Store(2)
		_, err = s.Orders.CreateOrder(ctxT(t), createReq(14, "k2", sku, 3))
		wantErr(t, "CreateOrder with a lost reply", err, codes.Unavailable, "UNAVAILABLE")
		s.WantLevels(t, sku, 5, 5)
		// And one more fails before reaching the inventory: the closer's Release must stop a
		// late Reserve of it from taking stock.
		fail.Store(1)
		_, err = s.Orders.CreateOrder(ctxT(t), createReq(14, "k3", sku, 1))
		wantErr(t, "CreateOrder with inventory down", err, codes.Unavailable, "UNAVAILABLE")
		s.Clock.Advance(15 * time.Minute)
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 3 {
			t.Fatalf("Sweep = %d, %v; want 3 closed (the resumed order and the two stuck)", n, err)
		}
		s.WantLevels(t, sku, 10, 0)
		late := mustCreate(t, s, createReq(14, "k3", sku, 1))
		if late.GetState() != orderv1.OrderState_ORDER_STATE_CLOSED || late.GetCloseReason() != "EXPIRED" {
			t.Fatalf("repeat after the close = %v; want CLOSED EXPIRED", late)
		}
		s.WantLevels(t, sku, 10, 0)
	})
}

// TestInventoryEffectsAreRetried fails the Confirm of a payment: the order is PAID at once
// and the closer confirms its stock later.
func TestInventoryEffectsAreRetried(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 10)
		o := mustCreate(t, s, createReq(15, "k", sku, 2))
		s.Stock.FailConfirm = func() error { return errLost }
		paid, err := s.Orders.MarkPaid(ctxT(t), &orderv1.MarkPaidRequest{OrderId: o.GetId(), PaymentId: 9})
		if err != nil || paid.GetState() != orderv1.OrderState_ORDER_STATE_PAID {
			t.Fatalf("MarkPaid with inventory down = %v, %v; want PAID", paid, err)
		}
		s.WantLevels(t, sku, 8, 2)
		s.Stock.FailConfirm = nil
		if _, err := s.Closer.Sweep(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		s.WantLevels(t, sku, 8, 2) // within the grace the call that paid it owns the Confirm
		s.Clock.Advance(10 * time.Second)
		if _, err := s.Closer.Sweep(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		s.WantLevels(t, sku, 8, 0)
		if _, err := s.Closer.Sweep(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if n := s.Stock.Confirms.Load(); n != 2 {
			t.Fatalf("%d Confirm calls; want 2 (the failed one and the retry)", n)
		}
	})
}

func TestGetAndList(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 100)
		var ids []int64
		for i := range 5 {
			ids = append(ids, mustCreate(t, s, createReq(16, fmt.Sprint("k", i), sku, 1)).GetId())
		}
		mustCreate(t, s, createReq(17, "other", sku, 1))
		o := get(t, s, 16, ids[0])
		if o.GetUserId() != 16 || len(o.GetItems()) != 1 || o.GetItems()[0].GetUnitPrice() != 100 {
			t.Fatalf("GetOrder = %v", o)
		}
		_, err := s.Orders.GetOrder(ctxT(t), &orderv1.GetOrderRequest{OrderId: ids[0], UserId: 17})
		wantErr(t, "GetOrder of another user's order", err, codes.NotFound, "ORDER_NOT_FOUND")
		_, err = s.Orders.GetOrder(ctxT(t), &orderv1.GetOrderRequest{OrderId: id.New(), UserId: 16})
		wantErr(t, "GetOrder of an unknown order", err, codes.NotFound, "ORDER_NOT_FOUND")

		var got []int64
		cursor := ""
		for range 4 {
			page, err := s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 16, PageSize: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.GetOrders() {
				got = append(got, o.GetId())
			}
			if cursor = page.GetNextCursor(); cursor == "" {
				break
			}
		}
		if len(got) != 5 || got[0] != ids[4] || got[4] != ids[0] {
			t.Fatalf("ListOrders pages = %v; want %v newest first", got, ids)
		}
		_, err = s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 16, Cursor: "nope"})
		wantErr(t, "ListOrders with a bad cursor", err, codes.InvalidArgument, "BAD_CURSOR")
	})
}

func TestValidation(t *testing.T) {
	s := ordertest.Start(t, ordertest.SQLite)
	ctx := ctxT(t)
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'k'
	}
	many := make([]int64, 0, 102)
	for i := range 51 {
		many = append(many, int64(i+1), 1)
	}
	cases := []struct {
		name, reason string
		call         func() error
	}{
		{"CreateOrder user 0", "INVALID_USER_ID", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(0, "k", 1, 1)); return err }},
		{"CreateOrder no key", "INVALID_IDEMPOTENCY_KEY", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "", 1, 1)); return err }},
		{"CreateOrder long key", "INVALID_IDEMPOTENCY_KEY", func() error {
			_, err := s.Orders.CreateOrder(ctx, createReq(1, string(long), 1, 1))
			return err
		}},
		{"CreateOrder control key", "INVALID_IDEMPOTENCY_KEY", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "a\nb", 1, 1)); return err }},
		{"CreateOrder no items", "NO_ITEMS", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "k")); return err }},
		{"CreateOrder 51 items", "TOO_MANY_ITEMS", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "k", many...)); return err }},
		{"CreateOrder sku 0", "INVALID_SKU_ID", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "k", 0, 1)); return err }},
		{"CreateOrder quantity 0", "INVALID_QUANTITY", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "k", 1, 0)); return err }},
		{"CreateOrder quantity 1001", "INVALID_QUANTITY", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "k", 1, 1001)); return err }},
		{"CreateOrder duplicate sku", "DUPLICATE_SKU", func() error { _, err := s.Orders.CreateOrder(ctx, createReq(1, "k", 1, 1, 1, 2)); return err }},
		{"GetOrder order 0", "INVALID_ORDER_ID", func() error {
			_, err := s.Orders.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: 0, UserId: 1})
			return err
		}},
		{"GetOrder user 0", "INVALID_USER_ID", func() error {
			_, err := s.Orders.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: 1})
			return err
		}},
		{"ListOrders user 0", "INVALID_USER_ID", func() error {
			_, err := s.Orders.ListOrders(ctx, &orderv1.ListOrdersRequest{})
			return err
		}},
		{"CancelOrder order -1", "INVALID_ORDER_ID", func() error {
			_, err := s.Orders.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderId: -1, UserId: 1})
			return err
		}},
		{"MarkPaid order 0", "INVALID_ORDER_ID", func() error {
			_, err := s.Orders.MarkPaid(ctx, &orderv1.MarkPaidRequest{PaymentId: 1})
			return err
		}},
		{"MarkPaid payment 0", "INVALID_PAYMENT_ID", func() error {
			_, err := s.Orders.MarkPaid(ctx, &orderv1.MarkPaidRequest{OrderId: 1})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErr(t, c.name, c.call(), codes.InvalidArgument, c.reason) })
	}
}

func TestNewNeedsClients(t *testing.T) {
	s := ordertest.Start(t, ordertest.SQLite)
	if _, _, err := order.New(context.Background(), s.OrderDB, nil, s.Stock); err == nil {
		t.Fatal("order.New without a product client = nil; want an error")
	}
}

func setStock(sku, qty int64) *inventoryv1.SetStockRequest {
	return &inventoryv1.SetStockRequest{SkuId: sku, Quantity: qty}
}

// TestStuckCreatingOrdersClose: an order left CREATING by a create that failed half way
// (its stock taken, the reply lost) is closed by the closer once the create timeout (30s)
// has passed, long before its payment timeout, and its stock comes back; an order a repeat
// finished meanwhile is left alone.
func TestStuckCreatingOrdersClose(t *testing.T) {
	onEngines(t, func(t *testing.T, s *ordertest.Shop) {
		sku := s.SKU(t, 100, "USD", 10)
		var lost atomic.Bool
		s.Stock.FailReserve = func() (error, bool) {
			if lost.Swap(false) {
				return errLost, true // the stock is taken, the reply lost
			}
			return nil, false
		}
		lost.Store(true)
		_, err := s.Orders.CreateOrder(ctxT(t), createReq(15, "stuck", sku, 3))
		wantErr(t, "CreateOrder with a lost reply", err, codes.Unavailable, "UNAVAILABLE")
		lost.Store(true)
		_, err = s.Orders.CreateOrder(ctxT(t), createReq(15, "repeated", sku, 2))
		wantErr(t, "CreateOrder with a lost reply", err, codes.Unavailable, "UNAVAILABLE")
		s.WantLevels(t, sku, 5, 5)

		s.Clock.Advance(20 * time.Second)
		repeated := mustCreate(t, s, createReq(15, "repeated", sku, 2)) // the client comes back
		if repeated.GetState() != orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT {
			t.Fatalf("repeat = %v; want PENDING_PAYMENT", repeated)
		}
		s.Clock.Advance(10*time.Second - time.Millisecond)
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Sweep before the create timeout = %d, %v; want 0 closed", n, err)
		}
		s.Clock.Advance(time.Millisecond)
		if n, err := s.Closer.Sweep(ctxT(t)); err != nil || n != 1 {
			t.Fatalf("Sweep at the create timeout = %d, %v; want the stuck order closed", n, err)
		}
		list, _ := s.Orders.ListOrders(ctxT(t), &orderv1.ListOrdersRequest{UserId: 15})
		var stuck, other string
		for _, o := range list.GetOrders() {
			if o.GetId() == repeated.GetId() {
				other = o.GetState().String()
			} else {
				stuck = o.GetState().String() + " " + o.GetCloseReason()
			}
		}
		if len(list.GetOrders()) != 2 || stuck != "ORDER_STATE_CLOSED EXPIRED" || other != "ORDER_STATE_PENDING_PAYMENT" {
			t.Fatalf("orders = %v; want the stuck one CLOSED EXPIRED, the repeated one PENDING_PAYMENT", list.GetOrders())
		}
		s.WantLevels(t, sku, 8, 2)
	})
}
