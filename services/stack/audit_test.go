package stack_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/kit/admin"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	inventorymig "github.com/redline-dev/redline/services/inventory/migrations"
	ordermig "github.com/redline-dev/redline/services/order/migrations"
	paymentmig "github.com/redline-dev/redline/services/payment/migrations"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// shop is the checkout's three databases, on the services' real migrations.
type shop struct {
	t                     *testing.T
	orders, inv, payments *sqldb.DB
}

// opener opens an empty database for a service.
type opener func(t *testing.T, service string) *sqldb.DB

func sqliteMemory(t *testing.T, _ string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func postgresSchema(t *testing.T, service string) *sqldb.DB {
	t.Helper()
	db, _ := sqldbtest.Postgres(t, "audit_"+service)
	return db
}

// engines are what the audit's SQL must run on. PostgreSQL skips itself under
// REDLINE_SKIP_INTEGRATION=1.
var engines = []struct {
	name string
	open opener
}{{"sqlite", sqliteMemory}, {"postgres", postgresSchema}}

var migrations = map[string]fs.FS{"order": ordermig.FS, "inventory": inventorymig.FS, "payment": paymentmig.FS}

func newShop(t *testing.T, open opener) *shop {
	t.Helper()
	s := &shop{t: t, orders: open(t, "order"), inv: open(t, "inventory"), payments: open(t, "payment")}
	for name, db := range map[string]*sqldb.DB{"order": s.orders, "inventory": s.inv, "payment": s.payments} {
		if err := sqldb.Migrate(context.Background(), db, migrations[name]); err != nil {
			t.Fatalf("migrate %s: %v", name, err)
		}
	}
	return s
}

// healthyShop is a settled shop with one order in each resting state:
//
//	100 PAID by payment 7: 2 of SKU 1 sold
//	101 CLOSED (expired) after its payment 8 came too late: refund required, 1 of SKU 2 back
//	102 PENDING_PAYMENT, its payment 9 declined: 1 of SKU 1 reserved
//	103 CLOSED out of stock: its release found nothing reserved
//
// SKU 1 started with 10 units (7 available, 1 reserved, 2 sold), SKU 2 with 5.
func healthyShop(t *testing.T, open opener) *shop {
	t.Helper()
	s := newShop(t, open)
	s.order(100, "PAID", 7, false, map[int64]int64{1: 2})
	s.order(101, "CLOSED", 0, false, map[int64]int64{2: 1})
	s.order(102, "PENDING_PAYMENT", 0, false, map[int64]int64{1: 1})
	s.order(103, "CLOSED", 0, false, map[int64]int64{2: 9})
	s.reservation(100, "confirmed", map[int64]int64{1: 2})
	s.reservation(101, "released", map[int64]int64{2: 1})
	s.reservation(102, "reserved", map[int64]int64{1: 1})
	s.reservation(103, "released", nil)
	s.stock(1, 7, 1)
	s.stock(2, 5, 0)
	s.payment(7, 100, "SUCCEEDED", false)
	s.payment(8, 101, "REFUND_REQUIRED", false)
	s.payment(9, 102, "FAILED", false)
	return s
}

func (s *shop) exec(db *sqldb.DB, q string, args ...any) {
	s.t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		s.t.Fatalf("%s %v: %v", q, args, err)
	}
}

func (s *shop) order(id int64, state string, paymentID int64, settlePending bool, items map[int64]int64) {
	s.t.Helper()
	settle := 0
	if settlePending {
		settle = 1
	}
	s.exec(s.orders, `INSERT INTO orders (id, user_id, idempotency_key, request_hash, state, total, currency, payment_id,
		settle_pending, created_at, updated_at, expires_at) VALUES (?, 1, ?, 'h', ?, 100, 'CNY', ?, ?, 0, 0, 0)`,
		id, fmt.Sprint("key-", id), state, paymentID, settle)
	for sku, q := range items {
		s.exec(s.orders, `INSERT INTO order_items (order_id, sku_id, spu_id, title, attributes, unit_price, quantity)
			VALUES (?, ?, 1, 't', '{}', 50, ?)`, id, sku, q)
	}
}

func (s *shop) reservation(order int64, state string, items map[int64]int64) {
	s.t.Helper()
	s.exec(s.inv, `INSERT INTO reservations (order_id, state, created_at, updated_at) VALUES (?, ?, 0, 0)`, order, state)
	for sku, q := range items {
		s.exec(s.inv, `INSERT INTO reservation_items (order_id, sku_id, quantity) VALUES (?, ?, ?)`, order, sku, q)
	}
}

// stock sets a SKU's levels, inserting its row when missing.
func (s *shop) stock(sku, available, reserved int64) {
	s.t.Helper()
	s.exec(s.inv, `INSERT INTO stock (sku_id, available, reserved, updated_at) VALUES (?, ?, ?, 0)
		ON CONFLICT (sku_id) DO UPDATE SET available = excluded.available, reserved = excluded.reserved`, sku, available, reserved)
}

func (s *shop) payment(id, order int64, state string, owed bool) {
	s.t.Helper()
	o := 0
	if owed {
		o = 1
	}
	s.exec(s.payments, `INSERT INTO payments (id, order_id, user_id, amount, currency, state, mark_paid_owed, created_at, updated_at)
		VALUES (?, ?, 1, 100, 'CNY', ?, ?, 0, 0)`, id, order, state, o)
}

// dropStockChecks lets stock go negative, as only a hand edit or a bug could make it.
func (s *shop) dropStockChecks() {
	s.t.Helper()
	if s.inv.Dialect() == sqldb.DialectSQLite {
		s.exec(s.inv, `PRAGMA ignore_check_constraints = 1`)
		return
	}
	s.exec(s.inv, `ALTER TABLE stock DROP CONSTRAINT stock_available_check`)
}

func (s *shop) audit() *stack.CheckoutAudit {
	s.t.Helper()
	return s.auditThrough(s.orders, s.inv, s.payments)
}

func (s *shop) auditThrough(orders, inv, payments stack.AuditDB) *stack.CheckoutAudit {
	s.t.Helper()
	a, err := stack.AuditCheckout(context.Background(), orders, inv, payments)
	if err != nil {
		s.t.Fatalf("AuditCheckout: %v", err)
	}
	return a
}

func TestAuditCheckoutHealthyShop(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			a := healthyShop(t, e.open).audit()
			if len(a.Problems) != 0 || !a.Settled || len(a.Unsettled) != 0 || a.InFlight != 0 {
				t.Fatalf("healthy shop: settled %v %q, in flight %d, problems %q; want settled, none in flight, no problems",
					a.Settled, a.Unsettled, a.InFlight, a.Problems)
			}
			wantOrders := map[string]int{"PAID": 1, "CLOSED": 2, "PENDING_PAYMENT": 1}
			wantPayments := map[string]int{"SUCCEEDED": 1, "REFUND_REQUIRED": 1, "FAILED": 1}
			if !mapsEqual(a.Orders, wantOrders) || !mapsEqual(a.Payments, wantPayments) {
				t.Errorf("orders %v, payments %v; want %v, %v", a.Orders, a.Payments, wantOrders, wantPayments)
			}
			wantSKUs := []stack.SKUStock{{SKU: 1, Available: 7, Reserved: 1, Sold: 2}, {SKU: 2, Available: 5}}
			if !slices.Equal(a.SKUs, wantSKUs) || a.SKUs[0].Total() != 10 || a.SKUs[1].Total() != 5 {
				t.Errorf("SKUs = %+v; want %+v (totals 10 and 5)", a.SKUs, wantSKUs)
			}
			if o := a.OrderRows[100]; o.State != "PAID" || o.PaymentID != 7 || o.Items[1] != 2 || len(a.PaymentRows[101]) != 1 {
				t.Errorf("rows: order 100 %+v, payments of 101 %+v; want PAID by 7 with 2 of SKU 1, one payment", o, a.PaymentRows[101])
			}
			raw, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"settled":true`, `"unsettled":[]`, `"problems":[]`, `{"sku":1,"available":7,"reserved":1,"sold":2}`} {
				if !strings.Contains(string(raw), want) {
					t.Errorf("JSON %s; want it to hold %s", raw, want)
				}
			}
			if strings.Contains(string(raw), "OrderRows") || strings.Contains(string(raw), "omitted") {
				t.Errorf("JSON %s holds the rows or an empty omitted", raw)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAuditCheckoutCatchesDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(s *shop)
		want   string
	}{
		{"paid but released", func(s *shop) { s.exec(s.inv, `UPDATE reservations SET state = 'released' WHERE order_id = 100`) },
			"order 100 is PAID; its reservation is released, want confirmed"},
		{"paid, other items reserved", func(s *shop) { s.exec(s.inv, `UPDATE reservation_items SET quantity = 3 WHERE order_id = 100`) },
			"order 100 (PAID): reserved map[1:3]; the order holds map[1:2]"},
		{"paid but its payment failed", func(s *shop) { s.exec(s.payments, `UPDATE payments SET state = 'FAILED' WHERE id = 7`) },
			"order 100 is PAID by payment 7; no such succeeded payment (it has payment 7 FAILED)"},
		{"paid by another payment", func(s *shop) { s.exec(s.orders, `UPDATE orders SET payment_id = 8 WHERE id = 100`) },
			"order 100 is PAID by payment 8; no such succeeded payment"},
		{"closed but charged", func(s *shop) { s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED' WHERE id = 8`) },
			"order 101 is CLOSED, but payment 8 SUCCEEDED and is settled (want REFUND_REQUIRED)"},
		{"closed, still reserved", func(s *shop) {
			s.exec(s.inv, `UPDATE reservations SET state = 'reserved' WHERE order_id = 101`)
			s.stock(2, 4, 1)
		}, "order 101 is CLOSED; its reservation is reserved, want released"},
		{"closed but sold", func(s *shop) {
			s.exec(s.inv, `UPDATE reservations SET state = 'confirmed' WHERE order_id = 101`)
			s.stock(2, 4, 0)
		}, "order 101 is CLOSED; its reservation is confirmed, want released"},
		{"closing but sold", func(s *shop) {
			s.exec(s.orders, `UPDATE orders SET settle_pending = 1 WHERE id = 101`)
			s.exec(s.inv, `UPDATE reservations SET state = 'confirmed' WHERE order_id = 101`)
			s.stock(2, 4, 0)
		}, "order 101 is CLOSED, releasing; its reservation is confirmed, want reserved or released"},
		{"pending but released", func(s *shop) {
			s.exec(s.inv, `UPDATE reservations SET state = 'released' WHERE order_id = 102`)
			s.stock(1, 8, 0)
		}, "order 102 is PENDING_PAYMENT; its reservation is released, want reserved"},
		{"pending without a reservation", func(s *shop) {
			s.exec(s.inv, `DELETE FROM reservation_items WHERE order_id = 102`)
			s.exec(s.inv, `DELETE FROM reservations WHERE order_id = 102`)
			s.stock(1, 8, 0)
		}, "order 102 is PENDING_PAYMENT; its reservation is none, want reserved"},
		{"pending but its payment taken", func(s *shop) { s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED' WHERE id = 9`) },
			"order 102 is PENDING_PAYMENT, but payment 9 SUCCEEDED and is settled"},
		{"creating but sold", func(s *shop) {
			s.order(104, "CREATING", 0, false, map[int64]int64{2: 1})
			s.reservation(104, "confirmed", map[int64]int64{2: 1})
			s.stock(2, 4, 0)
		}, "order 104 is CREATING; its reservation is confirmed, want none or reserved"},
		{"reservation without an order", func(s *shop) {
			s.reservation(998, "reserved", map[int64]int64{2: 1})
			s.stock(2, 4, 1)
		}, "reservation of order 998 (reserved) has no order"},
		{"payment without an order", func(s *shop) { s.payment(99, 999, "PENDING", false) },
			"payment 99 (PENDING) of order 999 has no order"},
		{"negative stock", func(s *shop) {
			s.dropStockChecks()
			s.stock(2, -1, 0)
		}, "SKU 2: available -1, reserved 0: negative"},
		{"reserved units no reservation holds", func(s *shop) { s.stock(1, 7, 2) },
			"SKU 1: reserved 2; the reservations in state reserved hold 1"},
		{"sold units no paid order holds", func(s *shop) { s.reservation(997, "confirmed", map[int64]int64{2: 1}) },
			"SKU 2: confirmed reservations sold 1; PAID orders hold 0"},
		{"reserved SKU without stock", func(s *shop) { s.reservation(996, "released", map[int64]int64{3: 1}) },
			"SKU 3: reservations hold it, but it has no stock row"},
		{"unknown order state", func(s *shop) { s.exec(s.orders, `UPDATE orders SET state = 'SHIPPED' WHERE id = 103`) },
			`order 103: unknown state "SHIPPED"`},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s := healthyShop(t, e.open)
					tc.damage(s)
					a := s.audit()
					if !slices.ContainsFunc(a.Problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
						t.Errorf("problems = %q; want one saying %q", a.Problems, tc.want)
					}
					if !slices.IsSorted(a.Problems) {
						t.Errorf("problems = %q; want them sorted", a.Problems)
					}
				})
			}
		})
	}
}

// TestAuditCheckoutAcceptsInFlightStates: what a shop passes through between two services
// is not a problem, only unsettled.
func TestAuditCheckoutAcceptsInFlightStates(t *testing.T) {
	for _, tc := range []struct {
		name      string
		move      func(s *shop)
		unsettled []string
	}{
		{"creating, not reserved yet", func(s *shop) { s.order(104, "CREATING", 0, false, map[int64]int64{2: 1}) },
			[]string{"1 orders creating"}},
		{"creating, reserved", func(s *shop) {
			s.order(104, "CREATING", 0, false, map[int64]int64{2: 1})
			s.reservation(104, "reserved", map[int64]int64{2: 1})
			s.stock(2, 4, 1)
		}, []string{"1 orders creating"}},
		{"paid, confirm owed", func(s *shop) {
			s.exec(s.orders, `UPDATE orders SET state = 'PAID', payment_id = 9, settle_pending = 1 WHERE id = 102`)
			s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED' WHERE id = 9`)
		}, []string{"1 orders owing stock"}},
		{"closed, release owed", func(s *shop) {
			s.exec(s.orders, `UPDATE orders SET state = 'CLOSED', settle_pending = 1 WHERE id = 102`)
		}, []string{"1 orders owing stock"}},
		{"payment succeeded, order not told yet", func(s *shop) {
			s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED', mark_paid_owed = 1 WHERE id = 9`)
		}, []string{"1 payments owing orders"}},
		{"charged for a closed order, refund not recorded yet", func(s *shop) {
			s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED', mark_paid_owed = 1 WHERE id = 8`)
		}, []string{"1 payments owing orders"}},
		{"payment pending", func(s *shop) { s.exec(s.payments, `UPDATE payments SET state = 'PENDING' WHERE id = 9`) },
			[]string{"1 payments pending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthyShop(t, sqliteMemory)
			tc.move(s)
			a := s.audit()
			if len(a.Problems) != 0 || a.Settled || !slices.Equal(a.Unsettled, tc.unsettled) {
				t.Errorf("settled %v %q, problems %q; want unsettled %q and no problems", a.Settled, a.Unsettled, a.Problems, tc.unsettled)
			}
		})
	}
}

// hooked runs a function before the nth query through it: a write landing while the audit
// reads.
type hooked struct {
	db     stack.AuditDB
	calls  int
	before map[int]func()
}

func (h *hooked) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	h.calls++
	if f := h.before[h.calls]; f != nil {
		f()
	}
	return h.db.QueryContext(ctx, q, args...)
}

// TestAuditCheckoutSkipsOrdersThatMoveWhileRead: the three databases are read one after
// another, so an order may move between the reads; judging it on a mix of before and after
// would report problems that never were.
func TestAuditCheckoutSkipsOrdersThatMoveWhileRead(t *testing.T) {
	newOrder := func(s *shop, id int64) {
		s.order(id, "PENDING_PAYMENT", 0, false, map[int64]int64{2: 1})
		s.reservation(id, "reserved", map[int64]int64{2: 1})
		s.stock(2, 4, 1)
	}
	for _, tc := range []struct {
		name string
		// during returns the three databases as the audit sees them.
		during func(s *shop) (orders, inv, payments stack.AuditDB)
		orders map[string]int
	}{
		{"placed after the reservations were read", func(s *shop) (stack.AuditDB, stack.AuditDB, stack.AuditDB) {
			// Read alone, the order would be PENDING_PAYMENT without a reservation.
			return &hooked{db: s.orders, before: map[int]func(){2: func() { newOrder(s, 105) }}}, s.inv, s.payments
		}, map[string]int{"PAID": 1, "CLOSED": 2, "PENDING_PAYMENT": 2}},
		{"placed and paid for after the orders were first read", func(s *shop) (stack.AuditDB, stack.AuditDB, stack.AuditDB) {
			// Read against the first read of the orders, the payment would have no order.
			return s.orders, s.inv, &hooked{db: s.payments, before: map[int]func(){1: func() {
				newOrder(s, 106)
				s.payment(10, 106, "PENDING", false)
			}}}
		}, map[string]int{"PAID": 1, "CLOSED": 2, "PENDING_PAYMENT": 2}},
		{"paid after the payments were read", func(s *shop) (stack.AuditDB, stack.AuditDB, stack.AuditDB) {
			// Read alone, the order would be PAID by a payment that failed.
			return s.orders, &hooked{db: s.inv, before: map[int]func(){1: func() {
				s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED' WHERE id = 9`)
				s.exec(s.orders, `UPDATE orders SET state = 'PAID', payment_id = 9 WHERE id = 102`)
				s.exec(s.inv, `UPDATE reservations SET state = 'confirmed' WHERE order_id = 102`)
				s.stock(1, 7, 0)
			}}}, s.payments
		}, map[string]int{"PAID": 2, "CLOSED": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthyShop(t, sqliteMemory)
			a := s.auditThrough(tc.during(s))
			if len(a.Problems) != 0 || a.InFlight != 1 || !mapsEqual(a.Orders, tc.orders) {
				t.Errorf("problems %q, in flight %d, orders %v; want no problems, 1 in flight, orders %v", a.Problems, a.InFlight, a.Orders, tc.orders)
			}
			// Read again at rest, every order is judged, and the shop is healthy.
			if a := s.audit(); len(a.Problems) != 0 || a.InFlight != 0 {
				t.Errorf("at rest: problems %q, in flight %d; want none", a.Problems, a.InFlight)
			}
		})
	}
}

func TestCheckoutAuditConserved(t *testing.T) {
	s := healthyShop(t, sqliteMemory)
	before := s.audit()
	// Order 102 is paid: its unit moves from reserved to sold. Order 104 is placed and
	// closed: its unit goes to reserved and back.
	s.exec(s.orders, `UPDATE orders SET state = 'PAID', payment_id = 9 WHERE id = 102`)
	s.exec(s.payments, `UPDATE payments SET state = 'SUCCEEDED' WHERE id = 9`)
	s.exec(s.inv, `UPDATE reservations SET state = 'confirmed' WHERE order_id = 102`)
	s.stock(1, 7, 0)
	s.order(104, "CLOSED", 0, false, map[int64]int64{2: 1})
	s.reservation(104, "released", map[int64]int64{2: 1})
	after := s.audit()
	if got := after.Conserved(before); len(got) != 0 || len(after.Problems) != 0 {
		t.Fatalf("after a payment and a closed order: Conserved = %q, problems %q; want none", got, after.Problems)
	}

	s.stock(2, 6, 0) // SetStock
	s.stock(3, 4, 0) // a new SKU
	s.exec(s.inv, `DELETE FROM stock WHERE sku_id = 1`)
	got := s.audit().Conserved(before)
	want := []string{"SKU 1 is gone: its total was 10", "SKU 2: total 5 → 6 (available 5 → 6, reserved 0 → 0, sold 0 → 0)",
		"SKU 3 is new: total 4 (available 4, reserved 0, sold 0)"}
	if !slices.Equal(got, want) {
		t.Errorf("Conserved = %q; want %q", got, want)
	}
	if got := before.Conserved(before); len(got) != 0 {
		t.Errorf("an audit against itself: Conserved = %q; want none", got)
	}
}

// fileShop builds the healthy shop in SQLite files under dataDir, where the services of
// `redline up --procs` keep them.
func fileShop(t *testing.T, dataDir string) *shop {
	t.Helper()
	return healthyShop(t, func(t *testing.T, service string) *sqldb.DB {
		db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, service+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestCheckoutAuditorServesFromOutside: the supervisor's auditor opens the databases
// read-only from the config on the first request (failing, and trying again on the next,
// while they are missing), sees what the services write after, and stops at Close.
func TestCheckoutAuditorServesFromOutside(t *testing.T) {
	const token = "admin-token-for-tests"
	cfg := stack.Default()
	cfg.DataDir = t.TempDir()
	auditor := stack.NewCheckoutAuditor(cfg)
	t.Cleanup(func() { _ = auditor.Close() })
	adm := admin.New(admin.Token(token))
	auditor.Register(adm)
	get := func(bearer string) (int, []byte) {
		req := httptest.NewRequest("GET", "/chaos/audit/checkout", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		adm.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}

	if code, body := get(token); code != http.StatusServiceUnavailable || !strings.Contains(string(body), stack.ReasonAuditFailed) ||
		!strings.Contains(string(body), "order.db") {
		t.Fatalf("before the services made their databases: %d %s; want 503 %s naming order.db", code, body, stack.ReasonAuditFailed)
	}
	s := fileShop(t, cfg.DataDir)
	code, body := get(token)
	var a stack.CheckoutAudit
	if err := json.Unmarshal(body, &a); code != http.StatusOK || err != nil || len(a.Problems) != 0 || a.Orders["PAID"] != 1 || len(a.SKUs) != 2 {
		t.Fatalf("GET = %d %s (%v); want 200, no problems, 1 paid order, 2 SKUs", code, body, err)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d; want 401", code)
	}
	s.exec(s.inv, `UPDATE reservations SET state = 'released' WHERE order_id = 100`)
	if code, body := get(token); code != http.StatusOK || !strings.Contains(string(body), "order 100 is PAID; its reservation is released") {
		t.Errorf("after damage: %d %s; want it reported", code, body)
	}

	if err := auditor.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := auditor.Audit(context.Background()); err == nil {
		t.Error("Audit after Close = nil; want an error")
	}
}

func TestOpenServiceDBIsReadOnly(t *testing.T) {
	ctx := context.Background()
	sqliteCfg := stack.Default()
	sqliteCfg.DataDir = t.TempDir()
	fileShop(t, sqliteCfg.DataDir)
	postgresCfg := stack.Default()
	for _, e := range []struct {
		name  string
		cfg   *stack.Config
		setup func(t *testing.T)
	}{
		{"sqlite", sqliteCfg, func(*testing.T) {}},
		{"postgres", postgresCfg, func(t *testing.T) {
			schemas := map[string]string{}
			healthyShop(t, func(t *testing.T, service string) *sqldb.DB {
				db, schema := sqldbtest.Postgres(t, "audit_"+service)
				schemas[service] = schema
				return db
			})
			postgresCfg.Order.DB = sqldbtest.PostgresURL() + "&search_path=" + schemas["order"]
			postgresCfg.Inventory.DB = sqldbtest.PostgresURL() + "&search_path=" + schemas["inventory"]
			postgresCfg.Payment.DB = sqldbtest.PostgresURL() + "&search_path=" + schemas["payment"]
		}},
	} {
		t.Run(e.name, func(t *testing.T) {
			e.setup(t)
			var dbs []stack.AuditDB
			for _, svc := range []string{"order", "inventory", "payment"} {
				db, err := stack.OpenServiceDB(ctx, e.cfg, svc)
				if err != nil {
					t.Fatalf("OpenServiceDB(%s) = %v", svc, err)
				}
				t.Cleanup(func() { db.Close() })
				if svc == "inventory" {
					if _, err := db.ExecContext(ctx, `DELETE FROM stock`); err == nil {
						t.Errorf("DELETE through OpenServiceDB(%s) = nil; want it refused", svc)
					}
				}
				dbs = append(dbs, db)
			}
			a, err := stack.AuditCheckout(ctx, dbs[0], dbs[1], dbs[2])
			if err != nil || len(a.Problems) != 0 || len(a.SKUs) != 2 || a.Orders["CLOSED"] != 2 {
				t.Fatalf("AuditCheckout through OpenServiceDB = %+v, %v; want the healthy shop", a, err)
			}
		})
	}
	mem := stack.Default()
	mem.Order.DB = "sqlite::memory:"
	if _, err := stack.OpenServiceDB(ctx, mem, "order"); err == nil || !strings.Contains(err.Error(), "in memory") {
		t.Errorf("OpenServiceDB of an in-memory database = %v; want an error saying it is in memory", err)
	}
	if _, err := stack.OpenServiceDB(ctx, mem, "bff"); err == nil || !strings.Contains(err.Error(), "keeps no database") {
		t.Errorf("OpenServiceDB(bff) = %v; want an error saying it keeps no database", err)
	}
}

// TestCheckoutAuditEndpoint: `redline up` serves the audit on its admin endpoint, behind
// the admin token; an order placed and paid through the BFF is counted, and the shop is
// healthy.
func TestCheckoutAuditEndpoint(t *testing.T) {
	const token = "admin-token-for-tests"
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Admin.Token = token
		c.Provider.Delay = 0
	})
	ctx := context.Background()
	p, err := productv1.NewProductClient(s.Conn(t, "product")).CreateProduct(ctx, &productv1.CreateProductRequest{
		Title: "Oolong tea 250g", Skus: []*productv1.SKUInput{{Attributes: map[string]string{"size": "250g"}, Price: 8800, Currency: "CNY"}}})
	if err != nil {
		t.Fatal(err)
	}
	sku := p.GetSkus()[0].GetId()
	if _, err := inventoryv1.NewInventoryClient(s.Conn(t, "inventory")).SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: sku, Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	bearer, _ := stacktest.Session(t, s.BFF, "bob")
	r := stacktest.Do(t, "POST", s.BFF+"/v1/orders", map[string]any{"items": []map[string]any{{"sku_id": fmt.Sprint(sku), "quantity": 2}}},
		"Authorization", bearer, "Idempotency-Key", "audit-1")
	var o struct{ ID string }
	r.JSON(t, &o)
	if r.Status != http.StatusCreated {
		t.Fatalf("order = %d %s", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/orders/"+o.ID+"/pay", nil, "Authorization", bearer); r.Status != http.StatusOK {
		t.Fatalf("pay = %d %s", r.Status, r.Body)
	}

	var a stack.CheckoutAudit
	stacktest.Eventually(t, "the audit settled after the provider's callback", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.Admin+"/chaos/audit/checkout", nil, "Authorization", "Bearer "+token)
		a = stack.CheckoutAudit{}
		r.JSON(t, &a)
		return r.Status == http.StatusOK && a.Settled && a.Orders["PAID"] == 1, fmt.Sprintf("%d %s", r.Status, r.Body)
	})
	want := stack.SKUStock{SKU: sku, Available: 1, Sold: 2}
	if len(a.Problems) != 0 || a.Payments["SUCCEEDED"] != 1 || !slices.Contains(a.SKUs, want) {
		t.Errorf("audit = %+v; want no problems, a succeeded payment, and %+v", a, want)
	}
	if r := stacktest.Do(t, "GET", s.Admin+"/chaos/audit/checkout", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d %s; want 401", r.Status, r.Body)
	}
}

// TestCheckoutAuditEndpointNeedsChaosAndTheCheckout: the endpoint is served only with chaos
// enabled, by a process that runs order, inventory and payment.
func TestCheckoutAuditEndpointNeedsChaosAndTheCheckout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(*stack.Config)
		services []string
	}{
		{"chaos off", func(c *stack.Config) { c.Chaos.Enabled = false }, nil},
		{"inventory alone", nil, []string{"inventory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stacktest.StartOnly(t, tc.edit, tc.services...)
			if r := stacktest.Do(t, "GET", s.Admin+"/chaos/audit/checkout", nil); r.Status != http.StatusNotFound {
				t.Errorf("GET /chaos/audit/checkout = %d %s; want 404", r.Status, r.Body)
			}
		})
	}
}

func TestAuditCheckoutBoundsProblems(t *testing.T) {
	s := healthyShop(t, sqliteMemory)
	for i := range int64(stack.MaxProblems + 5) {
		s.payment(1000+i, 5000+i, "FAILED", false) // no order
	}
	a := s.audit()
	if len(a.Problems) != stack.MaxProblems || a.Omitted != 5 || !slices.IsSorted(a.Problems) {
		t.Errorf("%d problems (sorted: %v), %d omitted; want %d sorted, 5 omitted", len(a.Problems), slices.IsSorted(a.Problems),
			a.Omitted, stack.MaxProblems)
	}
}
