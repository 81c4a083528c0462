package stack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/admin"
	"github.com/redline-dev/redline/kit/errs"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/comment"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/history"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/inventory"
	"github.com/redline-dev/redline/services/note"
	"github.com/redline-dev/redline/services/order"
	"github.com/redline-dev/redline/services/payment"
	"github.com/redline-dev/redline/services/product"
	"github.com/redline-dev/redline/services/search"
	"github.com/redline-dev/redline/services/user"
)

// The checkout audit: is every order consistent with its stock and its payment? It reads
// the three databases of the checkout, which belong to three services, so no tool has to
// know their schemas, and no caller has to know the initial stock. The admin endpoint
// serves it in both ways of running the stack:
//
//	GET /chaos/audit/checkout    200 with a CheckoutAudit
//
// `redline up` reads the services' own databases; the supervisor of `redline up --procs`
// opens them read-only itself (CheckoutAuditor).

// States of the checkout's rows, as the order, inventory and payment services store them
// (their biz packages are internal to each service).
const (
	orderCreating = "CREATING"
	orderPending  = "PENDING_PAYMENT"
	orderPaid     = "PAID"
	orderClosed   = "CLOSED"

	resReserved  = "reserved"
	resConfirmed = "confirmed"
	resReleased  = "released"

	payPending   = "PENDING"
	paySucceeded = "SUCCEEDED"
)

// MaxProblems bounds CheckoutAudit.Problems, so a shop broken everywhere still answers
// with a response of a readable size; Omitted counts the rest.
const MaxProblems = 1000

// ReasonAuditFailed is the errs reason of an audit that could not read a database
// (Unavailable: ask again).
const ReasonAuditFailed = "CHECKOUT_AUDIT_FAILED"

// checkoutServices are the services whose databases the audit reads, in the order
// AuditCheckout takes them.
var checkoutServices = []string{order.Name, inventory.Name, payment.Name}

// AuditDB is what AuditCheckout reads through: a *sql.DB, or a service's *sqldb.DB. The
// audit's SQL is constant (no placeholders), so it runs the same on SQLite and PostgreSQL
// through either.
type AuditDB interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// CheckoutAudit is what AuditCheckout found.
type CheckoutAudit struct {
	// Settled: nothing is on its way between two services. No order is CREATING or owes
	// its reservation's Confirm or Release (settle_pending); no payment is PENDING or owes
	// its order the news (mark_paid_owed). A PENDING_PAYMENT order waiting for its buyer
	// is settled: its stock is reserved, and that is where it rests.
	Settled bool `json:"settled"`
	// Unsettled says what is not settled ("3 orders creating"), sorted; empty when Settled.
	Unsettled []string `json:"unsettled"`
	// Orders and Payments count the rows by state.
	Orders   map[string]int `json:"orders"`
	Payments map[string]int `json:"payments"`
	// SKUs are the stock rows, sorted by SKU, each read with its reservations in one
	// statement, so Total is exact even while orders move.
	SKUs []SKUStock `json:"skus"`
	// InFlight counts the orders that changed while the audit read them: counted above
	// but not judged, since the three databases were read at different moments.
	InFlight int `json:"in_flight"`
	// Problems are the inconsistencies found, sorted; empty when every order agrees with
	// its stock and its payment. At most MaxProblems.
	Problems []string `json:"problems"`
	// Omitted counts the problems beyond MaxProblems.
	Omitted int `json:"omitted,omitempty"`

	// OrderRows and PaymentRows are the rows the audit read (orders as of its last read),
	// by order id, for a caller's own checks (a test's: is every order a client was told
	// about there?). They are not in the JSON, so an audit decoded from the endpoint has
	// none.
	OrderRows   map[int64]OrderRow     `json:"-"`
	PaymentRows map[int64][]PaymentRow `json:"-"`
}

// SKUStock is one SKU's stock: available to buy, reserved by open orders, and sold (the
// quantities of confirmed reservations).
type SKUStock struct {
	SKU       int64 `json:"sku"`
	Available int64 `json:"available"`
	Reserved  int64 `json:"reserved"`
	Sold      int64 `json:"sold"`
}

// Total is every unit of the SKU: available, reserved and sold. Checkout only moves units
// between the three, so the total changes only when stock is set (SetStock).
func (s SKUStock) Total() int64 { return s.Available + s.Reserved + s.Sold }

// OrderRow is an order as the order database holds it.
type OrderRow struct {
	ID            int64
	State         string
	CloseReason   string
	PaymentID     int64
	SettlePending bool
	Items         map[int64]int64 // sku: quantity
}

// PaymentRow is a payment as the payment database holds it.
type PaymentRow struct {
	ID           int64
	OrderID      int64
	State        string
	MarkPaidOwed bool
}

// reservation is an order's reservation as the inventory database holds it.
type reservation struct {
	state string
	items map[int64]int64 // sku: quantity; none for a release that found nothing reserved
}

// skuRow is a stock row and what the reservations in state reserved hold of it.
type skuRow struct {
	SKUStock
	held int64
}

// AuditCheckout reads the order, inventory and payment databases and reports whether
// every order agrees with its reservation and its payment, and the stock with the
// reservations:
//
//   - a PAID order has a confirmed reservation of exactly its items and its SUCCEEDED
//     payment;
//   - a CLOSED order's reservation is released (or was never made), and no payment of it
//     SUCCEEDED without being marked REFUND_REQUIRED;
//   - a PENDING_PAYMENT order's reservation is reserved; a CREATING order's is not yet
//     confirmed or released;
//   - every reservation and payment has its order;
//   - no stock level is negative; per SKU, reserved equals what reservations in state
//     reserved hold, and the confirmed reservations equal what PAID orders hold.
//
// What is legal on the way is not a problem: a PAID or CLOSED order that still owes its
// Confirm or Release, a succeeded payment the order service has not taken yet. The reads
// are not one snapshot (three databases), so the orders are read first and last, and an
// order that changed in between is counted in InFlight instead of judged. Payments and
// reservations are judged against the last read: an order is always stored before them.
func AuditCheckout(ctx context.Context, orders, inventory, payments AuditDB) (*CheckoutAudit, error) {
	first, err := readOrders(ctx, orders)
	if err != nil {
		return nil, fmt.Errorf("order database: %w", err)
	}
	pays, err := readPayments(ctx, payments)
	if err != nil {
		return nil, fmt.Errorf("payment database: %w", err)
	}
	res, err := readReservations(ctx, inventory)
	if err != nil {
		return nil, fmt.Errorf("inventory database: %w", err)
	}
	// After the reservations: a reservation's stock row is stored before it, and never
	// removed, so every SKU a reservation holds is here.
	stock, err := readStock(ctx, inventory)
	if err != nil {
		return nil, fmt.Errorf("inventory database: %w", err)
	}
	last, err := readOrders(ctx, orders)
	if err != nil {
		return nil, fmt.Errorf("order database: %w", err)
	}

	a := &CheckoutAudit{Unsettled: []string{}, Orders: map[string]int{}, Payments: map[string]int{},
		SKUs: []SKUStock{}, Problems: []string{}, OrderRows: map[int64]OrderRow{}, PaymentRows: pays}
	var creating, owingStock, pending, owingOrders int
	for id, o := range last {
		a.OrderRows[id] = *o
		a.Orders[o.State]++
		if o.State == orderCreating {
			creating++
		}
		if o.SettlePending {
			owingStock++
		}
	}
	for _, ps := range pays {
		for _, p := range ps {
			a.Payments[p.State]++
			if p.State == payPending {
				pending++
			}
			if p.MarkPaidOwed {
				owingOrders++
			}
		}
	}
	for _, u := range []struct {
		n    int
		what string
	}{{creating, "orders creating"}, {owingStock, "orders owing stock"}, {pending, "payments pending"}, {owingOrders, "payments owing orders"}} {
		if u.n > 0 {
			a.Unsettled = append(a.Unsettled, fmt.Sprintf("%d %s", u.n, u.what))
		}
	}
	slices.Sort(a.Unsettled)
	a.Settled = len(a.Unsettled) == 0
	for _, s := range stock {
		a.SKUs = append(a.SKUs, s.SKUStock)
	}

	problems, inFlight := judge(first, last, res, pays, stock)
	a.InFlight = inFlight
	slices.Sort(problems)
	if len(problems) > MaxProblems {
		a.Omitted = len(problems) - MaxProblems
		problems = problems[:MaxProblems]
	}
	a.Problems = append(a.Problems, problems...)
	return a, nil
}

// judge returns the problems of the shop read, and how many orders it left unjudged
// because they changed between the first and the last read of the orders.
func judge(first, last map[int64]*OrderRow, res map[int64]*reservation, pays map[int64][]PaymentRow, stock []skuRow) ([]string, int) {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	// An order's state and settle flag only move forward, so an order that reads the same
	// first and last was so while its reservation and payment were read.
	moved := map[int64]bool{}
	for id, o := range last {
		if f := first[id]; f == nil || f.State != o.State || f.SettlePending != o.SettlePending {
			moved[id] = true
			continue
		}
		judgeOrder(fail, o, res[id], pays[id])
	}
	for id, r := range res {
		if last[id] == nil {
			fail("reservation of order %d (%s) has no order", id, r.state)
		}
	}
	for id, ps := range pays {
		if last[id] == nil {
			for _, p := range ps {
				fail("payment %d (%s) of order %d has no order", p.ID, p.State, id)
			}
		}
	}

	// Sold and paid-for per SKU, over the orders at rest: one that moved, or still owes
	// its Confirm or Release, may hold either side for a moment.
	atRest := func(id int64) bool { o := last[id]; return o == nil || (!moved[id] && !o.SettlePending) }
	sold, paid := map[int64]int64{}, map[int64]int64{}
	unstocked := map[int64]bool{}
	for id, r := range res {
		for sku := range r.items {
			unstocked[sku] = true
		}
		if r.state == resConfirmed && atRest(id) {
			for sku, q := range r.items {
				sold[sku] += q
			}
		}
	}
	for id, o := range last {
		if o.State == orderPaid && atRest(id) {
			for sku, q := range o.Items {
				paid[sku] += q
			}
		}
	}
	for _, s := range stock {
		delete(unstocked, s.SKU)
		if s.Available < 0 || s.Reserved < 0 {
			fail("SKU %d: available %d, reserved %d: negative", s.SKU, s.Available, s.Reserved)
		}
		if s.Reserved != s.held {
			fail("SKU %d: reserved %d; the reservations in state reserved hold %d", s.SKU, s.Reserved, s.held)
		}
	}
	for sku := range unstocked {
		fail("SKU %d: reservations hold it, but it has no stock row", sku)
	}
	for sku := range sold {
		if _, ok := paid[sku]; !ok {
			paid[sku] = 0 // compared below, with every SKU PAID orders hold
		}
	}
	for sku, p := range paid {
		if sold[sku] != p {
			fail("SKU %d: confirmed reservations sold %d; PAID orders hold %d", sku, sold[sku], p)
		}
	}
	return out, len(moved)
}

// judgeOrder checks an order that did not move while the audit read, against its
// reservation (nil: none) and payments.
func judgeOrder(fail func(string, ...any), o *OrderRow, r *reservation, ps []PaymentRow) {
	rs := "none"
	if r != nil {
		rs = r.state
		// A release that found nothing reserved leaves an empty released reservation;
		// any other holds the order's items, since Reserve takes them all or nothing.
		if (r.state != resReleased || len(r.items) > 0) && !maps.Equal(r.items, o.Items) {
			fail("order %d (%s): reserved %v; the order holds %v", o.ID, o.State, r.items, o.Items)
		}
	}
	switch o.State {
	case orderCreating:
		// Its Reserve may have landed or not; nothing confirms or releases it before the
		// order moves on.
		if rs == resConfirmed || rs == resReleased {
			fail("order %d is CREATING; its reservation is %s, want none or reserved", o.ID, rs)
		}
	case orderPending:
		if rs != resReserved {
			fail("order %d is PENDING_PAYMENT; its reservation is %s, want reserved", o.ID, rs)
		}
	case orderPaid:
		switch {
		case !o.SettlePending && rs != resConfirmed:
			fail("order %d is PAID; its reservation is %s, want confirmed", o.ID, rs)
		case o.SettlePending && rs != resReserved && rs != resConfirmed:
			fail("order %d is PAID, confirming; its reservation is %s, want reserved or confirmed", o.ID, rs)
		}
		if !slices.ContainsFunc(ps, func(p PaymentRow) bool { return p.ID == o.PaymentID && p.State == paySucceeded }) {
			fail("order %d is PAID by payment %d; no such succeeded payment (it has %s)", o.ID, o.PaymentID, describePayments(ps))
		}
	case orderClosed:
		switch {
		case !o.SettlePending && rs != "none" && rs != resReleased:
			fail("order %d is CLOSED; its reservation is %s, want released", o.ID, rs)
		case o.SettlePending && rs == resConfirmed:
			fail("order %d is CLOSED, releasing; its reservation is %s, want reserved or released", o.ID, rs)
		}
	default:
		fail("order %d: unknown state %q", o.ID, o.State)
	}
	for _, p := range ps {
		// A payment that succeeded for an order it cannot pay turns REFUND_REQUIRED once
		// the payment service hears so; until then it owes the order (mark_paid_owed).
		if p.State == paySucceeded && !p.MarkPaidOwed && (o.State != orderPaid || o.PaymentID != p.ID) {
			fail("order %d is %s, but payment %d SUCCEEDED and is settled (want REFUND_REQUIRED)", o.ID, o.State, p.ID)
		}
	}
}

func describePayments(ps []PaymentRow) string {
	if len(ps) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("payment %d %s", p.ID, p.State))
	}
	return strings.Join(parts, ", ")
}

// each runs q and calls scan for every row.
func each(ctx context.Context, db AuditDB, q string, scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readOrders reads every order with its items, in one statement.
func readOrders(ctx context.Context, db AuditDB) (map[int64]*OrderRow, error) {
	out := map[int64]*OrderRow{}
	err := each(ctx, db, `SELECT o.id, o.state, o.close_reason, o.payment_id, o.settle_pending, i.sku_id, i.quantity
		FROM orders o LEFT JOIN order_items i ON i.order_id = o.id`, func(r *sql.Rows) error {
		var o OrderRow
		var settle int64
		var sku, qty sql.NullInt64
		if err := r.Scan(&o.ID, &o.State, &o.CloseReason, &o.PaymentID, &settle, &sku, &qty); err != nil {
			return err
		}
		row := out[o.ID]
		if row == nil {
			o.SettlePending, o.Items = settle != 0, map[int64]int64{}
			row = &o
			out[o.ID] = row
		}
		if sku.Valid {
			row.Items[sku.Int64] = qty.Int64
		}
		return nil
	})
	return out, err
}

// readPayments reads every payment, by order.
func readPayments(ctx context.Context, db AuditDB) (map[int64][]PaymentRow, error) {
	out := map[int64][]PaymentRow{}
	err := each(ctx, db, `SELECT id, order_id, state, mark_paid_owed FROM payments`, func(r *sql.Rows) error {
		var p PaymentRow
		var owed int64
		if err := r.Scan(&p.ID, &p.OrderID, &p.State, &owed); err != nil {
			return err
		}
		p.MarkPaidOwed = owed != 0
		out[p.OrderID] = append(out[p.OrderID], p)
		return nil
	})
	return out, err
}

// readReservations reads every reservation with its items, in one statement.
func readReservations(ctx context.Context, db AuditDB) (map[int64]*reservation, error) {
	out := map[int64]*reservation{}
	err := each(ctx, db, `SELECT r.order_id, r.state, i.sku_id, i.quantity
		FROM reservations r LEFT JOIN reservation_items i ON i.order_id = r.order_id`, func(r *sql.Rows) error {
		var id int64
		var state string
		var sku, qty sql.NullInt64
		if err := r.Scan(&id, &state, &sku, &qty); err != nil {
			return err
		}
		res := out[id]
		if res == nil {
			res = &reservation{state: state, items: map[int64]int64{}}
			out[id] = res
		}
		if sku.Valid {
			res.items[sku.Int64] = qty.Int64
		}
		return nil
	})
	return out, err
}

// readStock reads every stock row with what the reservations hold of it, in one statement:
// one snapshot, so a Confirm (reserved to sold) or a Release (reserved to available) is
// either wholly in it or not at all. The sums are cast because PostgreSQL sums BIGINTs
// as NUMERIC.
func readStock(ctx context.Context, db AuditDB) ([]skuRow, error) {
	var out []skuRow
	err := each(ctx, db, `SELECT s.sku_id, s.available, s.reserved, COALESCE(h.held, 0), COALESCE(h.sold, 0)
		FROM stock s LEFT JOIN (
			SELECT i.sku_id,
				CAST(SUM(CASE WHEN r.state = 'reserved' THEN i.quantity ELSE 0 END) AS BIGINT) AS held,
				CAST(SUM(CASE WHEN r.state = 'confirmed' THEN i.quantity ELSE 0 END) AS BIGINT) AS sold
			FROM reservation_items i JOIN reservations r ON r.order_id = i.order_id
			GROUP BY i.sku_id
		) h ON h.sku_id = s.sku_id
		ORDER BY s.sku_id`, func(r *sql.Rows) error {
		var s skuRow
		if err := r.Scan(&s.SKU, &s.Available, &s.Reserved, &s.held, &s.Sold); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// Conserved compares the stock with an earlier audit's: it lists every SKU whose total
// (available + reserved + sold) changed, appeared or vanished, sorted; none when every
// unit is where checkout may have moved it. Setting stock (SetStock) between the two
// audits changes a total on purpose.
func (a *CheckoutAudit) Conserved(before *CheckoutAudit) []string {
	was := map[int64]SKUStock{}
	for _, s := range before.SKUs {
		was[s.SKU] = s
	}
	out := []string{}
	for _, s := range a.SKUs {
		b, ok := was[s.SKU]
		delete(was, s.SKU)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("SKU %d is new: total %d (available %d, reserved %d, sold %d)",
				s.SKU, s.Total(), s.Available, s.Reserved, s.Sold))
		case b.Total() != s.Total():
			out = append(out, fmt.Sprintf("SKU %d: total %d → %d (available %d → %d, reserved %d → %d, sold %d → %d)",
				s.SKU, b.Total(), s.Total(), b.Available, s.Available, b.Reserved, s.Reserved, b.Sold, s.Sold))
		}
	}
	for _, b := range was {
		out = append(out, fmt.Sprintf("SKU %d is gone: its total was %d", b.SKU, b.Total()))
	}
	slices.Sort(out)
	return out
}

// serveCheckoutAudit adds GET /chaos/audit/checkout to adm (behind its token), answering
// with what audit returns.
func serveCheckoutAudit(adm *admin.Server, audit func(context.Context) (*CheckoutAudit, error)) {
	adm.Handle("GET /chaos/audit/checkout", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := audit(r.Context())
		if err != nil {
			kithttp.WriteError(w, auditError(err))
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, a)
	}))
}

// auditError is what the endpoint answers for err: the request's own end as such, and
// anything else as Unavailable saying what could not be read (the admin endpoint is the
// operator's, so the message may name a database).
func auditError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.Internal(err)
	}
	return errs.New(codes.Unavailable, ReasonAuditFailed, "checkout audit: "+err.Error()).WithCause(err)
}

// auditCheckout audits the baseline databases of this process's order, inventory and
// payment services. It goes through the services' own pools, so an SQL fault set on one
// of them (chaos) fails the audit too: audit once the faults are cleared.
func (s *Stack) auditCheckout(ctx context.Context) (*CheckoutAudit, error) {
	dbs := make([]AuditDB, len(checkoutServices))
	for i, name := range checkoutServices {
		db := s.dbPairs[name][0]
		if db == nil {
			return nil, fmt.Errorf("%s has no database in this process", name)
		}
		dbs[i] = db
	}
	return AuditCheckout(ctx, dbs[0], dbs[1], dbs[2])
}

// runsCheckout reports whether this process runs every service the audit reads.
func (s *Stack) runsCheckout() bool {
	for _, name := range checkoutServices {
		if !slices.Contains(s.services, name) {
			return false
		}
	}
	return true
}

// DSN returns the database of service: its configured db, or a SQLite file in data_dir.
// A service that keeps no database is an error.
func (c *Config) DSN(service string) (string, error) {
	configured, ok := map[string]string{user.Name: c.User.DB, note.Name: c.Note.DB, interaction.Name: c.Interaction.DB,
		inventory.Name: c.Inventory.DB, product.Name: c.Product.DB, order.Name: c.Order.DB, payment.Name: c.Payment.DB,
		feed.Name: c.Feed.DB, comment.Name: c.Comment.DB, history.Name: c.History.DB, search.Name: c.Search.DB,
		SREName: c.SRE.DB}[service]
	if !ok {
		return "", fmt.Errorf("%q keeps no database", service)
	}
	return c.dsn(service, configured), nil
}

// OpenServiceDB opens service's database read-only, for a process that does not run the
// service (the supervisor of `up --procs`): a SQLite file in read-only mode, or
// PostgreSQL with every transaction read-only. The caller closes it. A SQLite database in
// memory lives only inside its service's process, and is an error.
func OpenServiceDB(ctx context.Context, cfg *Config, service string) (*sql.DB, error) {
	dsn, err := cfg.DSN(service)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		switch {
		case path == ":memory:":
			return nil, fmt.Errorf("%s.db is in memory, inside the %s process: give it a file or PostgreSQL to read it from outside", service, service)
		case path == "" || strings.ContainsAny(path, "?#"):
			return nil, fmt.Errorf("%s.db: sqlite path %q is empty or has '?' or '#'", service, path)
		}
		if db, err = sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)"); err != nil {
			return nil, fmt.Errorf("%s.db: %w", service, err)
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("%s.db: %w", service, err)
		}
		pc.RuntimeParams["default_transaction_read_only"] = "on"
		db = stdlib.OpenDB(*pc)
		db.SetMaxOpenConns(2)
	default:
		return nil, fmt.Errorf("%s.db: want sqlite:PATH or postgres://", service)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%s.db: %w", service, err)
	}
	return db, nil
}

// CheckoutAuditor audits the checkout from outside the services' processes, for the
// supervisor of `redline up --procs`. It opens the order, inventory and payment databases
// of its config read-only on the first audit (the services may not have created them
// before), keeps them for the next, and closes them in Close. It is safe for concurrent
// use.
type CheckoutAuditor struct {
	cfg *Config

	mu     sync.Mutex
	dbs    []*sql.DB // by checkoutServices; nil until an audit opens them
	closed bool
}

// NewCheckoutAuditor returns an auditor of cfg's databases; it opens nothing yet.
func NewCheckoutAuditor(cfg *Config) *CheckoutAuditor { return &CheckoutAuditor{cfg: cfg} }

// Audit audits the checkout's databases, opening them first if no audit has yet.
func (a *CheckoutAuditor) Audit(ctx context.Context) (*CheckoutAudit, error) {
	dbs, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	return AuditCheckout(ctx, dbs[0], dbs[1], dbs[2])
}

func (a *CheckoutAuditor) open(ctx context.Context) ([]*sql.DB, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("the auditor is closed")
	}
	if a.dbs != nil {
		return a.dbs, nil
	}
	var dbs []*sql.DB
	for _, name := range checkoutServices {
		db, err := OpenServiceDB(ctx, a.cfg, name)
		if err != nil {
			for _, d := range dbs {
				_ = d.Close()
			}
			return nil, err // the next audit tries again
		}
		dbs = append(dbs, db)
	}
	a.dbs = dbs
	return dbs, nil
}

// Register adds GET /chaos/audit/checkout to adm, behind its token.
func (a *CheckoutAuditor) Register(adm *admin.Server) { serveCheckoutAudit(adm, a.Audit) }

// Close closes the databases; audits after it fail.
func (a *CheckoutAuditor) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	var errList []error
	for _, db := range a.dbs {
		errList = append(errList, db.Close())
	}
	a.dbs = nil
	return errors.Join(errList...)
}
