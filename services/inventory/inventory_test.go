package inventory_test

import (
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/inventory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type backend struct {
	name string
	open func(t *testing.T) *sqldb.DB
}

var (
	memory   = backend{"sqlite-memory", func(t *testing.T) *sqldb.DB { return open(t, "sqlite::memory:") }}
	file     = backend{"sqlite-file", func(t *testing.T) *sqldb.DB { return open(t, "sqlite:"+filepath.Join(t.TempDir(), "inventory.db")) }}
	postgres = backend{"postgres", openPostgres}
)

func open(t *testing.T, dsn string, opts ...sqldb.Option) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("sqldb.Open(%q) = %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens real PostgreSQL in a schema of this test's own, dropped at cleanup.
func openPostgres(t *testing.T) *sqldb.DB {
	t.Helper()
	db, _ := sqldbtest.Postgres(t, "inventory")
	return db
}

func newService(t *testing.T, db *sqldb.DB) inventoryv1.InventoryServer {
	t.Helper()
	svc, err := inventory.New(t.Context(), db)
	if err != nil {
		t.Fatalf("inventory.New = %v", err)
	}
	return svc
}

// fixture is a service plus helpers that fail the test on unexpected errors.
type fixture struct {
	t   *testing.T
	svc inventoryv1.InventoryServer
}

func (f fixture) stock(sku, qty int64) {
	f.t.Helper()
	if _, err := f.svc.SetStock(f.t.Context(), &inventoryv1.SetStockRequest{SkuId: sku, Quantity: qty}); err != nil {
		f.t.Fatalf("SetStock(%d, %d) = %v", sku, qty, err)
	}
}

// levels returns available and reserved of sku.
func (f fixture) levels(sku int64) (int64, int64) {
	f.t.Helper()
	r, err := f.svc.GetStock(f.t.Context(), &inventoryv1.GetStockRequest{SkuIds: []int64{sku}})
	if err != nil || len(r.GetStocks()) != 1 {
		f.t.Fatalf("GetStock(%d) = %v, %v", sku, r, err)
	}
	return r.Stocks[0].GetAvailable(), r.Stocks[0].GetReserved()
}

func (f fixture) wantLevels(sku, available, reserved int64) {
	f.t.Helper()
	if a, r := f.levels(sku); a != available || r != reserved {
		f.t.Fatalf("sku %d: available, reserved = %d, %d; want %d, %d", sku, a, r, available, reserved)
	}
}

func reserveReq(order int64, skuQty ...int64) *inventoryv1.ReserveRequest {
	req := &inventoryv1.ReserveRequest{OrderId: order}
	for i := 0; i+1 < len(skuQty); i += 2 {
		req.Items = append(req.Items, &inventoryv1.Item{SkuId: skuQty[i], Quantity: skuQty[i+1]})
	}
	return req
}

func (f fixture) reserve(order int64, skuQty ...int64) (*inventoryv1.Reservation, error) {
	return f.svc.Reserve(f.t.Context(), reserveReq(order, skuQty...))
}

func (f fixture) confirm(order int64) (*inventoryv1.Reservation, error) {
	return f.svc.Confirm(f.t.Context(), &inventoryv1.ConfirmRequest{OrderId: order})
}

func (f fixture) release(order int64) (*inventoryv1.Reservation, error) {
	return f.svc.Release(f.t.Context(), &inventoryv1.ReleaseRequest{OrderId: order})
}

func (f fixture) must(r *inventoryv1.Reservation, err error) *inventoryv1.Reservation {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func wantErr(t *testing.T, call string, err error, code codes.Code, reason string) {
	t.Helper()
	if errs.Code(err) != code || errs.Reason(err) != reason {
		t.Fatalf("%s = %v; want %v %s", call, err, code, reason)
	}
}

func wantState(t *testing.T, r *inventoryv1.Reservation, s inventoryv1.ReservationState) {
	t.Helper()
	if r.GetState() != s {
		t.Fatalf("reservation %d state = %v; want %v", r.GetOrderId(), r.GetState(), s)
	}
}

func wantSame(t *testing.T, call string, got, want *inventoryv1.Reservation) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s = %v; want the earlier outcome %v", call, got, want)
	}
}

// TestInventory runs the behaviour of every call on in-memory SQLite and on PostgreSQL.
// Each case owns its SKUs and orders through fresh ids.
func TestInventory(t *testing.T) {
	for _, b := range []backend{memory, postgres} {
		t.Run(b.name, func(t *testing.T) {
			svc := newService(t, b.open(t))
			for name, tc := range behaviour {
				t.Run(name, func(t *testing.T) { tc(fixture{t: t, svc: svc}) })
			}
		})
	}
}

var behaviour = map[string]func(f fixture){
	"reserve then confirm, each idempotent": func(f fixture) {
		t, sku, order := f.t, id.New(), id.New()
		f.stock(sku, 10)
		first := f.must(f.reserve(order, sku, 3))
		wantState(t, first, inventoryv1.ReservationState_RESERVATION_STATE_RESERVED)
		f.wantLevels(sku, 7, 3)
		wantSame(t, "Reserve again", f.must(f.reserve(order, sku, 3)), first)
		f.wantLevels(sku, 7, 3)

		confirmed := f.must(f.confirm(order))
		wantState(t, confirmed, inventoryv1.ReservationState_RESERVATION_STATE_CONFIRMED)
		f.wantLevels(sku, 7, 0)
		wantSame(t, "Confirm again", f.must(f.confirm(order)), confirmed)
		f.wantLevels(sku, 7, 0)
		// A late repeat of the Reserve reports the order as it stands and takes nothing.
		wantSame(t, "Reserve after Confirm", f.must(f.reserve(order, sku, 3)), confirmed)
		_, err := f.release(order)
		wantErr(t, "Release after Confirm", err, codes.FailedPrecondition, "RESERVATION_CONFIRMED")
		f.wantLevels(sku, 7, 0)
	},
	"reserve then release, each idempotent": func(f fixture) {
		t, a, b, order := f.t, id.New(), id.New(), id.New()
		f.stock(a, 10)
		f.stock(b, 5)
		first := f.must(f.reserve(order, b, 5, a, 4))
		if it := first.GetItems(); len(it) != 2 || it[0].GetSkuId() != a || it[1].GetSkuId() != b {
			t.Fatalf("Reserve items = %v; want sorted by sku", it)
		}
		f.wantLevels(a, 6, 4)
		f.wantLevels(b, 0, 5)
		// The same items in another order are the same request.
		wantSame(t, "Reserve again", f.must(f.reserve(order, a, 4, b, 5)), first)

		released := f.must(f.release(order))
		wantState(t, released, inventoryv1.ReservationState_RESERVATION_STATE_RELEASED)
		f.wantLevels(a, 10, 0)
		f.wantLevels(b, 5, 0)
		wantSame(t, "Release again", f.must(f.release(order)), released)
		wantSame(t, "Reserve after Release", f.must(f.reserve(order, a, 4, b, 5)), released)
		f.wantLevels(a, 10, 0)
		f.wantLevels(b, 5, 0)
		_, err := f.confirm(order)
		wantErr(t, "Confirm after Release", err, codes.FailedPrecondition, "RESERVATION_RELEASED")
		f.wantLevels(a, 10, 0)
	},
	"all or nothing": func(f fixture) {
		t, a, b, unknown, order := f.t, id.New(), id.New(), id.New(), id.New()
		f.stock(a, 5)
		f.stock(b, 1)
		_, err := f.reserve(order, a, 2, b, 2)
		wantErr(t, "Reserve short", err, codes.FailedPrecondition, "OUT_OF_STOCK")
		if got := errs.From(err).Metadata["sku_id"]; got != strconv.FormatInt(b, 10) {
			t.Fatalf("OUT_OF_STOCK sku_id = %q; want %d", got, b)
		}
		f.wantLevels(a, 5, 0)
		f.wantLevels(b, 1, 0)
		_, err = f.confirm(order)
		wantErr(t, "Confirm after failed Reserve", err, codes.NotFound, "RESERVATION_NOT_FOUND")
		_, err = f.reserve(order, a, 1, unknown, 1)
		wantErr(t, "Reserve of an unstocked sku", err, codes.FailedPrecondition, "OUT_OF_STOCK")
		f.wantLevels(a, 5, 0)
		// A failure records nothing, so the order may try again once there is stock.
		f.stock(b, 2)
		f.must(f.reserve(order, a, 2, b, 2))
		f.wantLevels(a, 3, 2)
		f.wantLevels(b, 0, 2)
	},
	"different items for one order": func(f fixture) {
		t, sku, order := f.t, id.New(), id.New()
		f.stock(sku, 10)
		f.must(f.reserve(order, sku, 1))
		_, err := f.reserve(order, sku, 2)
		wantErr(t, "Reserve with other items", err, codes.FailedPrecondition, "RESERVATION_MISMATCH")
		f.wantLevels(sku, 9, 1)
	},
	"release before reserve": func(f fixture) {
		t, sku, order := f.t, id.New(), id.New()
		f.stock(sku, 10)
		r := f.must(f.release(order))
		wantState(t, r, inventoryv1.ReservationState_RESERVATION_STATE_RELEASED)
		if len(r.GetItems()) != 0 {
			t.Fatalf("Release of an unknown order items = %v; want none", r.GetItems())
		}
		wantSame(t, "Release again", f.must(f.release(order)), r)
		_, err := f.reserve(order, sku, 1)
		wantErr(t, "Reserve after Release", err, codes.FailedPrecondition, "RESERVATION_RELEASED")
		f.wantLevels(sku, 10, 0)
		_, err = f.confirm(id.New())
		wantErr(t, "Confirm of an unknown order", err, codes.NotFound, "RESERVATION_NOT_FOUND")
	},
	"stock levels": func(f fixture) {
		t, a, b, order := f.t, id.New(), id.New(), id.New()
		f.stock(a, 10)
		f.must(f.reserve(order, a, 3))
		// SetStock sets available; reserved units stay held.
		f.stock(a, 20)
		f.wantLevels(a, 20, 3)
		r, err := f.svc.GetStock(t.Context(), &inventoryv1.GetStockRequest{SkuIds: []int64{b, a}})
		if err != nil {
			t.Fatal(err)
		}
		want := &inventoryv1.GetStockReply{Stocks: []*inventoryv1.StockLevel{{SkuId: b}, {SkuId: a, Available: 20, Reserved: 3}}}
		if !proto.Equal(r, want) {
			t.Fatalf("GetStock(%d, %d) = %v; want %v", b, a, r, want)
		}
	},
	"validation": func(f fixture) {
		t, ctx := f.t, f.t.Context()
		many := make([]int64, 0, 2*51)
		for i := range 51 {
			many = append(many, int64(i+1), 1)
		}
		tooManySKUs := make([]int64, 101)
		for i := range tooManySKUs {
			tooManySKUs[i] = int64(i + 1)
		}
		cases := []struct {
			name, reason string
			call         func() error
		}{
			{"SetStock sku 0", "INVALID_SKU_ID", func() error {
				_, err := f.svc.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: 0, Quantity: 1})
				return err
			}},
			{"SetStock negative", "INVALID_QUANTITY", func() error {
				_, err := f.svc.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: 1, Quantity: -1})
				return err
			}},
			{"GetStock empty", "NO_SKUS", func() error {
				_, err := f.svc.GetStock(ctx, &inventoryv1.GetStockRequest{})
				return err
			}},
			{"GetStock 101", "TOO_MANY_SKUS", func() error {
				_, err := f.svc.GetStock(ctx, &inventoryv1.GetStockRequest{SkuIds: tooManySKUs})
				return err
			}},
			{"GetStock sku -1", "INVALID_SKU_ID", func() error {
				_, err := f.svc.GetStock(ctx, &inventoryv1.GetStockRequest{SkuIds: []int64{-1}})
				return err
			}},
			{"Reserve order 0", "INVALID_ORDER_ID", func() error { _, err := f.reserve(0, 1, 1); return err }},
			{"Reserve no items", "NO_ITEMS", func() error { _, err := f.reserve(1); return err }},
			{"Reserve 51 items", "TOO_MANY_ITEMS", func() error { _, err := f.reserve(1, many...); return err }},
			{"Reserve quantity 0", "INVALID_QUANTITY", func() error { _, err := f.reserve(1, 1, 0); return err }},
			{"Reserve quantity 1001", "INVALID_QUANTITY", func() error { _, err := f.reserve(1, 1, 1001); return err }},
			{"Reserve duplicate sku", "DUPLICATE_SKU", func() error { _, err := f.reserve(1, 1, 1, 1, 2); return err }},
			{"Reserve sku 0", "INVALID_SKU_ID", func() error { _, err := f.reserve(1, 0, 1); return err }},
			{"Confirm order 0", "INVALID_ORDER_ID", func() error { _, err := f.confirm(0); return err }},
			{"Release order -1", "INVALID_ORDER_ID", func() error { _, err := f.release(-1); return err }},
		}
		for _, c := range cases {
			wantErr(t, c.name, c.call(), codes.InvalidArgument, c.reason)
		}
	},
}

// TestNeverOversold has 50 orders race for one unit each of a SKU with 20 in stock, on a
// SQLite file (many connections, one writer at a time) and on PostgreSQL (row locks).
func TestNeverOversold(t *testing.T) {
	const stock, buyers = 20, 50
	for _, b := range []backend{file, postgres} {
		t.Run(b.name, func(t *testing.T) {
			f := fixture{t: t, svc: newService(t, b.open(t))}
			sku := id.New()
			f.stock(sku, stock)
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				won    []int64
				others []error
			)
			for range buyers {
				order := id.New()
				wg.Go(func() {
					_, err := f.reserve(order, sku, 1)
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						won = append(won, order)
					} else {
						others = append(others, err)
					}
				})
			}
			wg.Wait()
			if len(won) != stock {
				t.Fatalf("%d of %d reservations succeeded; want exactly %d (errors: %v)", len(won), buyers, stock, others)
			}
			for _, err := range others {
				wantErr(t, "losing Reserve", err, codes.FailedPrecondition, "OUT_OF_STOCK")
			}
			f.wantLevels(sku, 0, stock)

			for _, order := range won {
				wg.Go(func() {
					if _, err := f.release(order); err != nil {
						t.Errorf("Release(%d) = %v", order, err)
					}
				})
			}
			wg.Wait()
			f.wantLevels(sku, stock, 0)
		})
	}
}

// TestRaces checks the per-order guarantees under concurrency: racing repeats of one Reserve
// take stock once, and of a racing Confirm and Release exactly one wins.
func TestRaces(t *testing.T) {
	for _, b := range []backend{file, postgres} {
		t.Run(b.name, func(t *testing.T) {
			f := fixture{t: t, svc: newService(t, b.open(t))}
			sku, order := id.New(), id.New()
			f.stock(sku, 100)
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if r, err := f.reserve(order, sku, 7); err != nil || r.GetOrderId() != order {
						t.Errorf("repeated Reserve = %v, %v", r, err)
					}
				})
			}
			wg.Wait()
			f.wantLevels(sku, 93, 7)

			const orders = 10
			ids := make([]int64, orders)
			for i := range ids {
				ids[i] = id.New()
				f.must(f.reserve(ids[i], sku, 1))
			}
			var confirmed, released sync.Map
			for _, o := range ids {
				wg.Go(func() {
					if _, err := f.confirm(o); err == nil {
						confirmed.Store(o, true)
					} else if errs.Reason(err) != "RESERVATION_RELEASED" {
						t.Errorf("Confirm(%d) = %v", o, err)
					}
				})
				wg.Go(func() {
					if _, err := f.release(o); err == nil {
						released.Store(o, true)
					} else if errs.Reason(err) != "RESERVATION_CONFIRMED" {
						t.Errorf("Release(%d) = %v", o, err)
					}
				})
			}
			wg.Wait()
			nConfirmed := 0
			for _, o := range ids {
				_, c := confirmed.Load(o)
				_, r := released.Load(o)
				if c == r {
					t.Fatalf("order %d: confirmed %v, released %v; want exactly one", o, c, r)
				}
				if c {
					nConfirmed++
				}
			}
			// 93 after the first order; the 10 took 10 more; the released ones came back.
			f.wantLevels(sku, 93-int64(nConfirmed), 7)
		})
	}
}
