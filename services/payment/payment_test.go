package payment_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	orderv1 "github.com/redline-dev/redline/api/order/v1"
	paymentv1 "github.com/redline-dev/redline/api/payment/v1"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/order/ordertest"
	"github.com/redline-dev/redline/services/payment"
	"github.com/redline-dev/redline/services/payment/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("shared-secret-0123456789")

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t *testing.T, call string, err error, code codes.Code, reason string) {
	t.Helper()
	if errs.Code(err) != code || errs.Reason(err) != reason {
		t.Fatalf("%s = %v; want %v %s", call, err, code, reason)
	}
}

// recorder is the provider as a test drives it by hand: it takes every charge and calls
// nothing back; the test signs callbacks itself.
type recorder struct {
	mu      sync.Mutex
	charges []provider.ChargeRequest
	fail    atomic.Bool
}

func (r *recorder) Charge(_ context.Context, req provider.ChargeRequest) error {
	if r.fail.Load() {
		return errors.New("provider down")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.charges = append(r.charges, req)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.charges)
}

// orders wraps the order client, counting MarkPaid calls and failing them on demand.
type orders struct {
	payment.OrderClient
	markPaid atomic.Int64
	fail     atomic.Bool
}

func (o *orders) MarkPaid(ctx context.Context, in *orderv1.MarkPaidRequest, opts ...grpc.CallOption) (*orderv1.OrderInfo, error) {
	o.markPaid.Add(1)
	if o.fail.Load() {
		return nil, errs.New(codes.Unavailable, "UNAVAILABLE", "order service down")
	}
	return o.OrderClient.MarkPaid(ctx, in, opts...)
}

type fixture struct {
	shop    *ordertest.Shop
	svc     paymentv1.PaymentServer
	retrier *payment.Retrier
	charger *recorder
	orders  *orders
	db      *sqldb.DB
}

func start(t *testing.T, engine string, charger payment.Charger, callbackURL string) *fixture {
	t.Helper()
	f := &fixture{shop: ordertest.Start(t, engine)}
	if engine == ordertest.Postgres {
		f.db, _ = sqldbtest.Postgres(t, "payment")
	} else {
		db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "payment.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		f.db = db
	}
	if charger == nil {
		f.charger = &recorder{}
		charger = f.charger
	}
	f.orders = &orders{OrderClient: f.shop.Orders}
	svc, retrier, err := payment.New(context.Background(), f.db, f.orders, charger,
		payment.Config{Secret: secret, CallbackURL: func() string { return callbackURL }},
		payment.WithClock(f.shop.Clock), payment.RetryInterval(time.Hour), payment.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("payment.New = %v", err)
	}
	t.Cleanup(func() { _ = retrier.Close() })
	f.svc, f.retrier = svc, retrier
	return f
}

// order places a pending order of user for 2 units of a new SKU with 10 in stock.
func (f *fixture) order(t *testing.T, user int64) (*orderv1.OrderInfo, int64) {
	t.Helper()
	sku := f.shop.SKU(t, 1250, "USD", 10)
	o, err := f.shop.Orders.CreateOrder(ctxT(t), &orderv1.CreateOrderRequest{UserId: user, IdempotencyKey: "k" + time.Now().String(),
		Items: []*orderv1.OrderItemRequest{{SkuId: sku, Quantity: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	return o, sku
}

func (f *fixture) pay(t *testing.T, orderID, user int64) *paymentv1.PaymentInfo {
	t.Helper()
	p, err := f.svc.Pay(ctxT(t), &paymentv1.PayRequest{OrderId: orderID, UserId: user})
	if err != nil {
		t.Fatalf("Pay(%d) = %v", orderID, err)
	}
	return p
}

// callback signs a provider callback for payment.
func callback(paymentID int64, status string) ([]byte, string) {
	body, _ := json.Marshal(provider.Callback{PaymentID: paymentID, ProviderRef: "ch_test", Status: status,
		At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	return body, provider.Sign(secret, body)
}

func (f *fixture) orderState(t *testing.T, user, orderID int64) orderv1.OrderState {
	t.Helper()
	o, err := f.shop.Orders.GetOrder(ctxT(t), &orderv1.GetOrderRequest{OrderId: orderID, UserId: user})
	if err != nil {
		t.Fatal(err)
	}
	return o.GetState()
}

func onEngines(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, e := range []string{ordertest.SQLite, ordertest.Postgres} {
		t.Run(e, func(t *testing.T) { test(t, start(t, e, nil, "http://bff.invalid/v1/payments/callback")) })
	}
}

// TestReplayedCallback pays an order and replays the provider's callback: one payment, one
// MarkPaid, one Confirm, and every replay answers the same.
func TestReplayedCallback(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, sku := f.order(t, 1)
		p := f.pay(t, o.GetId(), 1)
		if p.GetState() != paymentv1.PaymentState_PAYMENT_STATE_PENDING || p.GetAmount() != 2500 || p.GetCurrency() != "USD" {
			t.Fatalf("Pay = %v; want PENDING 2500 USD", p)
		}
		if f.charger.count() != 1 || f.charger.charges[0].PaymentID != p.GetId() || f.charger.charges[0].Amount != 2500 ||
			f.charger.charges[0].CallbackURL != "http://bff.invalid/v1/payments/callback" {
			t.Fatalf("charges = %+v; want one of payment %d for 2500", f.charger.charges, p.GetId())
		}
		body, sig := callback(p.GetId(), provider.StatusSucceeded)
		first, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig})
		if err != nil || first.GetState() != paymentv1.PaymentState_PAYMENT_STATE_SUCCEEDED || first.GetProviderRef() != "ch_test" {
			t.Fatalf("Callback = %v, %v; want SUCCEEDED", first, err)
		}
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				again, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig})
				if err != nil || !proto.Equal(again, first) {
					t.Errorf("replayed Callback = %v, %v; want %v", again, err, first)
				}
			})
		}
		wg.Wait()
		// A late "failed" for the same payment changes nothing either.
		failed, fsig := callback(p.GetId(), provider.StatusFailed)
		if again, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: failed, Signature: fsig}); err != nil ||
			!proto.Equal(again, first) {
			t.Fatalf("a late failed callback = %v, %v; want %v", again, err, first)
		}
		if f.orderState(t, 1, o.GetId()) != orderv1.OrderState_ORDER_STATE_PAID {
			t.Fatal("order not PAID after the callback")
		}
		if n := f.orders.markPaid.Load(); n != 1 {
			t.Fatalf("%d MarkPaid calls; want 1", n)
		}
		if n := f.shop.Stock.Confirms.Load(); n != 1 {
			t.Fatalf("%d inventory Confirm calls; want 1", n)
		}
		f.shop.WantLevels(t, sku, 8, 0)
		// Pay again: the same payment, nothing charged again.
		if again := f.pay(t, o.GetId(), 1); again.GetId() != p.GetId() || f.charger.count() != 1 {
			t.Fatalf("Pay after success = %v with %d charges; want payment %d and 1 charge", again, f.charger.count(), p.GetId())
		}
		got, err := f.svc.GetPayment(ctxT(t), &paymentv1.GetPaymentRequest{OrderId: o.GetId(), UserId: 1})
		if err != nil || !proto.Equal(got, first) {
			t.Fatalf("GetPayment = %v, %v; want %v", got, err, first)
		}
	})
}

func TestOnePaymentPerOrder(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, _ := f.order(t, 2)
		var wg sync.WaitGroup
		ids := make([]int64, 10)
		for i := range ids {
			wg.Go(func() {
				p, err := f.svc.Pay(ctxT(t), &paymentv1.PayRequest{OrderId: o.GetId(), UserId: 2})
				if err != nil {
					t.Errorf("Pay = %v", err)
					return
				}
				ids[i] = p.GetId()
			})
		}
		wg.Wait()
		for _, got := range ids {
			if got != ids[0] {
				t.Fatalf("concurrent Pay returned payments %v; want one", ids)
			}
		}
		var n int
		if err := f.db.QueryRowContext(ctxT(t), `SELECT COUNT(*) FROM payments WHERE order_id = ?`, o.GetId()).Scan(&n); err != nil || n != 1 {
			t.Fatalf("payments of the order = %d (%v); want 1", n, err)
		}
	})
}

// TestBadSignature sends callbacks that are not the provider's: refused, nothing changes.
func TestBadSignature(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, sku := f.order(t, 3)
		p := f.pay(t, o.GetId(), 3)
		body, sig := callback(p.GetId(), provider.StatusSucceeded)
		tampered := []byte(string(body[:len(body)-1]) + " }")
		other, _ := callback(p.GetId(), provider.StatusFailed)
		for name, req := range map[string]*paymentv1.CallbackRequest{
			"no signature":       {Payload: body},
			"wrong signature":    {Payload: body, Signature: provider.Sign([]byte("not-the-shared-secret"), body)},
			"tampered body":      {Payload: tampered, Signature: sig},
			"other body's sig":   {Payload: other, Signature: sig},
			"garbage signature":  {Payload: body, Signature: "zz"},
			"signature as bytes": {Payload: body, Signature: string(body)},
		} {
			_, err := f.svc.Callback(ctxT(t), req)
			wantErr(t, "Callback with "+name, err, codes.Unauthenticated, "BAD_SIGNATURE")
		}
		got, err := f.svc.GetPayment(ctxT(t), &paymentv1.GetPaymentRequest{OrderId: o.GetId()})
		if err != nil || !proto.Equal(got, p) {
			t.Fatalf("payment after bad callbacks = %v, %v; want unchanged %v", got, err, p)
		}
		if f.orderState(t, 3, o.GetId()) != orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT || f.orders.markPaid.Load() != 0 {
			t.Fatal("a bad callback reached the order")
		}
		f.shop.WantLevels(t, sku, 8, 2)
	})
}

func TestFailedPayment(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, sku := f.order(t, 4)
		p := f.pay(t, o.GetId(), 4)
		body, sig := callback(p.GetId(), provider.StatusFailed)
		got, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig})
		if err != nil || got.GetState() != paymentv1.PaymentState_PAYMENT_STATE_FAILED {
			t.Fatalf("Callback failed = %v, %v; want FAILED", got, err)
		}
		ok, osig := callback(p.GetId(), provider.StatusSucceeded)
		if again, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: ok, Signature: osig}); err != nil ||
			!proto.Equal(again, got) {
			t.Fatalf("a late succeeded callback = %v, %v; want %v", again, err, got)
		}
		if f.orderState(t, 4, o.GetId()) != orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT || f.orders.markPaid.Load() != 0 {
			t.Fatal("a failed payment reached the order")
		}
		f.shop.WantLevels(t, sku, 8, 2)
	})
}

// TestPaymentAfterClose has the order expire before the provider's success arrives: the
// order stays closed with its stock back, and the payment is recorded as owing a refund.
func TestPaymentAfterClose(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, sku := f.order(t, 5)
		p := f.pay(t, o.GetId(), 5)
		f.shop.Clock.Advance(15 * time.Minute)
		if n, err := f.shop.Closer.Sweep(ctxT(t)); err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v; want 1", n, err)
		}
		body, sig := callback(p.GetId(), provider.StatusSucceeded)
		got, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig})
		if err != nil || got.GetState() != paymentv1.PaymentState_PAYMENT_STATE_REFUND_REQUIRED {
			t.Fatalf("Callback after close = %v, %v; want REFUND_REQUIRED", got, err)
		}
		if again, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig}); err != nil ||
			!proto.Equal(again, got) {
			t.Fatalf("replay = %v, %v; want %v", again, err, got)
		}
		if f.orderState(t, 5, o.GetId()) != orderv1.OrderState_ORDER_STATE_CLOSED || f.shop.Stock.Confirms.Load() != 0 {
			t.Fatal("a payment after close changed the order or confirmed stock")
		}
		f.shop.WantLevels(t, sku, 10, 0)
		_, err = f.svc.Pay(ctxT(t), &paymentv1.PayRequest{OrderId: o.GetId(), UserId: 5})
		if err != nil {
			t.Fatalf("Pay of the closed order with a payment = %v; want the payment", err)
		}
		closed, _ := f.order(t, 5)
		if _, err := f.shop.Orders.CancelOrder(ctxT(t), &orderv1.CancelOrderRequest{OrderId: closed.GetId(), UserId: 5}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Pay(ctxT(t), &paymentv1.PayRequest{OrderId: closed.GetId(), UserId: 5})
		wantErr(t, "Pay of a cancelled order", err, codes.FailedPrecondition, "ORDER_NOT_PENDING")
	})
}

// TestMarkPaidIsRetried has the order service down when the success arrives: the payment is
// SUCCEEDED and the retry loop delivers it to the order later.
func TestMarkPaidIsRetried(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, sku := f.order(t, 6)
		p := f.pay(t, o.GetId(), 6)
		f.orders.fail.Store(true)
		body, sig := callback(p.GetId(), provider.StatusSucceeded)
		got, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig})
		if err != nil || got.GetState() != paymentv1.PaymentState_PAYMENT_STATE_SUCCEEDED {
			t.Fatalf("Callback with the order service down = %v, %v; want SUCCEEDED", got, err)
		}
		if f.orderState(t, 6, o.GetId()) != orderv1.OrderState_ORDER_STATE_PENDING_PAYMENT {
			t.Fatal("order changed while its service was down")
		}
		f.orders.fail.Store(false)
		if n, err := f.retrier.Retry(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Retry within the grace = %d, %v; want nothing", n, err)
		}
		f.shop.Clock.Advance(10 * time.Second)
		if n, err := f.retrier.Retry(ctxT(t)); err != nil || n != 1 {
			t.Fatalf("Retry = %d, %v; want 1", n, err)
		}
		if f.orderState(t, 6, o.GetId()) != orderv1.OrderState_ORDER_STATE_PAID {
			t.Fatal("order not PAID after the retry")
		}
		f.shop.WantLevels(t, sku, 8, 0)
		if n, err := f.retrier.Retry(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Retry after success = %d, %v; want nothing", n, err)
		}
		if again, err := f.svc.Callback(ctxT(t), &paymentv1.CallbackRequest{Payload: body, Signature: sig}); err != nil ||
			!proto.Equal(again, got) {
			t.Fatalf("replay = %v, %v; want %v", again, err, got)
		}
		if n := f.orders.markPaid.Load(); n != 2 {
			t.Fatalf("%d MarkPaid calls; want 2 (the failed one and the retry)", n)
		}
	})
}

func TestProviderDown(t *testing.T) {
	onEngines(t, func(t *testing.T, f *fixture) {
		o, _ := f.order(t, 7)
		f.charger.fail.Store(true)
		_, err := f.svc.Pay(ctxT(t), &paymentv1.PayRequest{OrderId: o.GetId(), UserId: 7})
		wantErr(t, "Pay with the provider down", err, codes.Unavailable, "PROVIDER_UNAVAILABLE")
		f.charger.fail.Store(false)
		f.shop.Clock.Advance(10 * time.Second)
		if n, err := f.retrier.Retry(ctxT(t)); err != nil || n != 1 || f.charger.count() != 1 {
			t.Fatalf("Retry = %d, %v with %d charges; want the charge sent", n, err, f.charger.count())
		}
		if n, err := f.retrier.Retry(ctxT(t)); err != nil || n != 0 {
			t.Fatalf("Retry after the charge = %d, %v; want nothing", n, err)
		}
	})
}

func TestValidationAndNotFound(t *testing.T) {
	f := start(t, ordertest.SQLite, nil, "http://bff.invalid/cb")
	ctx := ctxT(t)
	o, _ := f.order(t, 8)
	big := make([]byte, provider.MaxBody+1)
	unknown, usig := callback(id.New(), provider.StatusSucceeded)
	notJSON := []byte("not json")
	badStatus := []byte(`{"payment_id":"1","provider_ref":"x","status":"maybe","at":"2026-01-01T00:00:00Z"}`)
	cases := []struct {
		name   string
		code   codes.Code
		reason string
		call   func() error
	}{
		{"Pay order 0", codes.InvalidArgument, "INVALID_ORDER_ID", func() error {
			_, err := f.svc.Pay(ctx, &paymentv1.PayRequest{UserId: 8})
			return err
		}},
		{"Pay user 0", codes.InvalidArgument, "INVALID_USER_ID", func() error {
			_, err := f.svc.Pay(ctx, &paymentv1.PayRequest{OrderId: 1})
			return err
		}},
		{"Pay unknown order", codes.NotFound, "ORDER_NOT_FOUND", func() error {
			_, err := f.svc.Pay(ctx, &paymentv1.PayRequest{OrderId: id.New(), UserId: 8})
			return err
		}},
		{"Pay another user's order", codes.NotFound, "ORDER_NOT_FOUND", func() error {
			_, err := f.svc.Pay(ctx, &paymentv1.PayRequest{OrderId: o.GetId(), UserId: 9})
			return err
		}},
		{"Callback too big", codes.InvalidArgument, "BAD_CALLBACK", func() error {
			_, err := f.svc.Callback(ctx, &paymentv1.CallbackRequest{Payload: big, Signature: provider.Sign(secret, big)})
			return err
		}},
		{"Callback not JSON", codes.InvalidArgument, "BAD_CALLBACK", func() error {
			_, err := f.svc.Callback(ctx, &paymentv1.CallbackRequest{Payload: notJSON, Signature: provider.Sign(secret, notJSON)})
			return err
		}},
		{"Callback bad status", codes.InvalidArgument, "BAD_CALLBACK", func() error {
			_, err := f.svc.Callback(ctx, &paymentv1.CallbackRequest{Payload: badStatus, Signature: provider.Sign(secret, badStatus)})
			return err
		}},
		{"Callback unknown payment", codes.NotFound, "PAYMENT_NOT_FOUND", func() error {
			_, err := f.svc.Callback(ctx, &paymentv1.CallbackRequest{Payload: unknown, Signature: usig})
			return err
		}},
		{"GetPayment order 0", codes.InvalidArgument, "INVALID_ORDER_ID", func() error {
			_, err := f.svc.GetPayment(ctx, &paymentv1.GetPaymentRequest{})
			return err
		}},
		{"GetPayment user -1", codes.InvalidArgument, "INVALID_USER_ID", func() error {
			_, err := f.svc.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: 1, UserId: -1})
			return err
		}},
		{"GetPayment without one", codes.NotFound, "PAYMENT_NOT_FOUND", func() error {
			_, err := f.svc.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: o.GetId()})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErr(t, c.name, c.call(), c.code, c.reason) })
	}
	f.pay(t, o.GetId(), 8)
	_, err := f.svc.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: o.GetId(), UserId: 9})
	wantErr(t, "GetPayment of another user's order", err, codes.NotFound, "PAYMENT_NOT_FOUND")
	_, err = f.svc.Pay(ctx, &paymentv1.PayRequest{OrderId: o.GetId(), UserId: 9})
	wantErr(t, "Pay of another user's paid-for order", err, codes.NotFound, "ORDER_NOT_FOUND")
}

func TestNewChecksConfig(t *testing.T) {
	f := start(t, ordertest.SQLite, nil, "http://bff.invalid/cb")
	for name, cfg := range map[string]payment.Config{
		"short secret": {Secret: []byte("short"), CallbackURL: func() string { return "http://x/cb" }},
		"no url":       {Secret: secret},
	} {
		if _, _, err := payment.New(context.Background(), f.db, f.orders, f.charger, cfg); err == nil {
			t.Errorf("payment.New with %s = nil error", name)
		}
	}
}

// TestEndToEnd runs the real mock provider over HTTP, calling back through an HTTP route
// that does what the BFF's POST /v1/payments/callback does: pass the raw body and the
// signature header to Payment.Callback.
func TestEndToEnd(t *testing.T) {
	var svc atomic.Pointer[paymentv1.PaymentServer]
	var replies atomic.Int64
	bff := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, payment.MaxCallbackBytes+1))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, err = (*svc.Load()).Callback(r.Context(), &paymentv1.CallbackRequest{Payload: body,
			Signature: r.Header.Get(payment.SignatureHeader)})
		if err != nil {
			w.WriteHeader(errs.From(err).HTTPStatus())
			return
		}
		replies.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer bff.Close()
	mock := provider.NewServer(secret, provider.WithLogger(slog.New(slog.DiscardHandler)))
	prov := httptest.NewServer(mock)
	defer func() {
		prov.Close()
		_ = mock.Close()
	}()
	f := start(t, ordertest.SQLite, provider.NewClient(prov.URL, prov.Client()), bff.URL+"/v1/payments/callback")
	s := f.svc
	svc.Store(&s)
	o, sku := f.order(t, 10)
	p := f.pay(t, o.GetId(), 10)
	ctx := ctxT(t)
	for f.orderState(t, 10, o.GetId()) != orderv1.OrderState_ORDER_STATE_PAID {
		select {
		case <-ctx.Done():
			t.Fatal("the order was not paid within 30s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// PAID is recorded before the inventory confirm; a confirm cut short (the callback's
	// request ended) is owed, and the order closer retries it once the settle grace has
	// passed on the shop's clock: the test moves the clock and runs the closer's round.
	for a, r := f.shop.Levels(t, sku); a != 8 || r != 0; a, r = f.shop.Levels(t, sku) {
		f.shop.Clock.Advance(time.Minute)
		if _, err := f.shop.Closer.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sku %d: available, reserved = %d, %d; want 8, 0", sku, a, r)
		case <-time.After(5 * time.Millisecond):
		}
	}
	// From here on nothing may confirm again: replays change nothing. (The first confirm may
	// have needed the closer's retry above, so count from now.)
	confirms := f.shop.Stock.Confirms.Load()
	waitDelivered := func(n uint64) {
		for mock.Stats().Delivered < n || replies.Load() < int64(n) {
			select {
			case <-ctx.Done():
				t.Fatalf("%d callbacks delivered within 30s; want %d", mock.Stats().Delivered, n)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitDelivered(1)
	// Pay again answers the payment and charges nothing; the provider replaying its
	// callback (asked to charge the payment again) changes nothing either.
	if again := f.pay(t, o.GetId(), 10); again.GetId() != p.GetId() || mock.Stats().Repeats != 0 {
		t.Fatalf("Pay again = %v (provider %+v); want payment %d and no new charge", again, mock.Stats(), p.GetId())
	}
	if err := provider.NewClient(prov.URL, prov.Client()).Charge(ctx, provider.ChargeRequest{PaymentID: p.GetId(),
		Amount: p.GetAmount(), Currency: p.GetCurrency(), CallbackURL: bff.URL + "/v1/payments/callback"}); err != nil {
		t.Fatal(err)
	}
	waitDelivered(2)
	got, err := f.svc.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: o.GetId(), UserId: 10})
	if err != nil || got.GetState() != paymentv1.PaymentState_PAYMENT_STATE_SUCCEEDED || got.GetProviderRef() == "" {
		t.Fatalf("GetPayment = %v, %v; want SUCCEEDED with the provider's ref", got, err)
	}
	if n := f.shop.Stock.Confirms.Load() - confirms; n != 0 || f.orders.markPaid.Load() != 1 {
		t.Fatalf("after the replays: %d more Confirm calls, %d MarkPaid calls; want 0 and 1", n, f.orders.markPaid.Load())
	}
}
