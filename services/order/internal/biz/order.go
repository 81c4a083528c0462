// Package biz holds the order service's rules: what an order request may contain, how an
// order moves from CREATING to PENDING_PAYMENT and then to PAID or CLOSED, and how its
// stock reservation in the inventory service follows. It owns the repository interface that
// data implements and the ports to the product and inventory services.
//
// Every state change is a conditional update in the order database (WHERE state IN ...), so
// of two racing changes (a payment and the expiry closer, say) exactly one wins, and only
// the winner's inventory effect happens: Confirm for PAID, Release for CLOSED. That effect
// runs after the state change; if it fails the order is left marked unsettled and the closer
// loop retries it, so the inventory always ends where the order state says.
package biz

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/kit/page"
)

// Limits of a request, matching the inventory service's.
const (
	MaxItems    = 50
	MaxQuantity = 1000
	MaxIdemKey  = 128
	cursorKind  = "o1"
)

// State is where an order is in its life.
type State string

// The states. CREATING moves to PENDING_PAYMENT or CLOSED; PENDING_PAYMENT to PAID or
// CLOSED; PAID and CLOSED are final.
const (
	StateCreating State = "CREATING"
	StatePending  State = "PENDING_PAYMENT"
	StatePaid     State = "PAID"
	StateClosed   State = "CLOSED"
)

// Why an order closed.
const (
	ReasonCanceled   = "CANCELED"
	ReasonExpired    = "EXPIRED"
	ReasonOutOfStock = "OUT_OF_STOCK"
)

// Item is a line of an order, with the SKU's title, attributes and price as they were when
// the order was placed.
type Item struct {
	SKUID      int64
	SPUID      int64
	Title      string
	Attributes map[string]string
	UnitPrice  int64
	Quantity   int64
}

// Order is an order and its items, sorted by SKU.
type Order struct {
	ID             int64
	UserID         int64
	IdempotencyKey string
	// RequestHash fingerprints the requested items, to tell a repeat from a reused key.
	RequestHash string
	State       State
	Items       []Item
	Total       int64
	Currency    string
	PaymentID   int64
	CloseReason string
	// CloseDetail is the short SKU's id when CloseReason is OUT_OF_STOCK.
	CloseDetail string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ExpiresAt   time.Time
}

// Line is a requested item.
type Line struct {
	SKUID    int64
	Quantity int64
}

// SKU is what the catalog says of a SKU now.
type SKU struct {
	ID         int64
	SPUID      int64
	Title      string
	Attributes map[string]string
	Price      int64
	Currency   string
}

// Catalog reads SKUs from the product service.
type Catalog interface {
	// SKUs returns the SKUs among ids that exist, keyed by id.
	SKUs(ctx context.Context, ids []int64) (map[int64]SKU, error)
}

// Stock holds stock in the inventory service, idempotently per order id. Its errors are
// the inventory's (errs reasons OUT_OF_STOCK, RESERVATION_RELEASED, ...).
type Stock interface {
	Reserve(ctx context.Context, orderID int64, items []Line) error
	Confirm(ctx context.Context, orderID int64) error
	Release(ctx context.Context, orderID int64) error
}

// Change is a state change: to To, stamped At, with the fields To needs.
type Change struct {
	To          State
	At          time.Time
	PaymentID   int64
	CloseReason string
	CloseDetail string
	// Settle marks the order as owing its inventory effect (Confirm or Release).
	Settle bool
	// ExpiredBy, when set, also requires expires_at <= ExpiredBy, or, with CreatingBefore
	// set, the order CREATING and last changed at or before CreatingBefore.
	ExpiredBy      time.Time
	CreatingBefore time.Time
}

// Repo stores orders. Every method is atomic.
type Repo interface {
	// Insert stores o with its items unless the user already has an order with o's
	// idempotency key; it returns the stored order for the key and whether it is o.
	Insert(ctx context.Context, o *Order) (*Order, bool, error)
	// ByKey returns the user's order with an idempotency key; ErrNotFound when none.
	ByKey(ctx context.Context, user int64, key string) (*Order, error)
	// Get returns an order; ErrNotFound when absent.
	Get(ctx context.Context, id int64) (*Order, error)
	// List returns up to limit orders of user with id < before, newest first.
	List(ctx context.Context, user, before int64, limit int) ([]*Order, error)
	// Transition applies c if the order is in one of from (and expired by c.ExpiredBy when
	// set); false when it is not.
	Transition(ctx context.Context, id int64, from []State, c Change) (bool, error)
	// Settled records that the order's inventory effect is done.
	Settled(ctx context.Context, id int64) error
	// Expired returns up to limit CREATING or PENDING_PAYMENT orders with expires_at <= now,
	// and CREATING orders last changed at or before creatingBefore.
	Expired(ctx context.Context, now, creatingBefore time.Time, limit int) ([]int64, error)
	// Unsettled returns up to limit PAID or CLOSED orders that still owe their inventory
	// effect and changed state at or before before, with their state.
	Unsettled(ctx context.Context, before time.Time, limit int) (map[int64]State, error)
}

// Errors callers branch on. OutOfStock and SKUNotFound carry metadata sku_id.
var (
	ErrNotFound       = errs.NotFound("ORDER_NOT_FOUND", "no such order")
	ErrKeyReused      = errs.New(codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for an order with other items")
	ErrOutOfStock     = errs.New(codes.FailedPrecondition, "OUT_OF_STOCK", "not enough stock")
	ErrSKUNotFound    = errs.New(codes.FailedPrecondition, "SKU_NOT_FOUND", "a sku of the order does not exist")
	ErrMixedCurrency  = errs.New(codes.FailedPrecondition, "MIXED_CURRENCY", "the skus of one order must share a currency")
	ErrPaid           = errs.New(codes.FailedPrecondition, "ORDER_PAID", "the order is paid")
	ErrClosed         = errs.New(codes.FailedPrecondition, "ORDER_CLOSED", "the order is closed")
	ErrNotPending     = errs.New(codes.FailedPrecondition, "ORDER_NOT_PENDING", "the order is not awaiting payment")
	ErrPaidByOther    = errs.New(codes.FailedPrecondition, "ORDER_PAID_BY_OTHER", "another payment paid the order")
	ErrBadCursor      = page.ErrBadCursor
	errInventoryState = errors.New("inventory reservation in an unexpected state")
)

func skuErr(e *errs.Error, sku string) error { return e.WithMetadata("sku_id", sku) }

func invalid(reason, format string, args ...any) *errs.Error {
	return errs.InvalidArgument(reason, format, args...)
}

// ValidateCreate checks a CreateOrder request and returns its lines sorted by SKU.
func ValidateCreate(user int64, key string, lines []Line) ([]Line, error) {
	switch {
	case user <= 0:
		return nil, invalid("INVALID_USER_ID", "user_id must be positive")
	case len(key) == 0 || len(key) > MaxIdemKey:
		return nil, invalid("INVALID_IDEMPOTENCY_KEY", "idempotency_key must be 1 to %d printable ASCII bytes", MaxIdemKey)
	case len(lines) == 0:
		return nil, invalid("NO_ITEMS", "an order needs at least one item")
	case len(lines) > MaxItems:
		return nil, invalid("TOO_MANY_ITEMS", "at most %d items", MaxItems)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return nil, invalid("INVALID_IDEMPOTENCY_KEY", "idempotency_key must be 1 to %d printable ASCII bytes", MaxIdemKey)
		}
	}
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b Line) int { return cmp.Compare(a.SKUID, b.SKUID) })
	for i, l := range sorted {
		sku := strconv.FormatInt(l.SKUID, 10)
		switch {
		case l.SKUID <= 0:
			return nil, invalid("INVALID_SKU_ID", "sku_id must be positive")
		case l.Quantity < 1 || l.Quantity > MaxQuantity:
			return nil, invalid("INVALID_QUANTITY", "quantity must be 1 to %d", MaxQuantity).WithMetadata("sku_id", sku)
		case i > 0 && sorted[i-1].SKUID == l.SKUID:
			return nil, invalid("DUPLICATE_SKU", "sku %d appears twice", l.SKUID).WithMetadata("sku_id", sku)
		}
	}
	return sorted, nil
}

// fingerprint identifies a request's items (sorted) for the idempotency check.
func fingerprint(lines []Line) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write(strconv.AppendInt(nil, l.SKUID, 10))
		h.Write([]byte{':'})
		h.Write(strconv.AppendInt(nil, l.Quantity, 10))
		h.Write([]byte{';'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Config is the order logic's settings.
type Config struct {
	// PaymentTimeout is how long an order waits for payment before it closes.
	PaymentTimeout time.Duration
	// SettleGrace is how long after a state change the closer leaves its inventory effect
	// to the call that made the change before retrying it itself.
	SettleGrace time.Duration
	// CreateTimeout is how long an order may stay CREATING before the closer closes it
	// (0: until it expires).
	CreateTimeout time.Duration
	Clock         clock.Clock
	Logger        *slog.Logger
}

// Usecase is the order service's logic.
type Usecase struct {
	repo    Repo
	catalog Catalog
	stock   Stock
	cfg     Config
}

// NewUsecase returns the logic over repo, catalog and stock.
func NewUsecase(repo Repo, catalog Catalog, stock Stock, cfg Config) *Usecase {
	return &Usecase{repo: repo, catalog: catalog, stock: stock, cfg: cfg}
}

func (uc *Usecase) now() time.Time { return uc.cfg.Clock.Now().UTC().Truncate(time.Millisecond) }

// downstream maps an error of the product or inventory service that this logic does not
// branch on: overload and unavailability keep their code (and retryability), anything else
// is the order service's internal error.
func downstream(service string, err error) error {
	e := errs.From(err)
	switch e.Code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled, codes.Aborted:
		return e
	}
	return errs.Internal(errors.New(service + ": " + err.Error()))
}

// Create places an order: snapshot, insert, reserve. See the package comment for how a
// crash or a race at any step ends.
func (uc *Usecase) Create(ctx context.Context, user int64, key string, lines []Line) (*Order, error) {
	lines, err := ValidateCreate(user, key, lines)
	if err != nil {
		return nil, err
	}
	hash := fingerprint(lines)
	// A repeat is found by the insert's conflict, so a first attempt, the common case,
	// costs no lookup. Only when the snapshot fails (a SKU deleted since, say) is the key
	// looked up, so a repeat of an order that was placed still gets that order.
	o, err := uc.snapshot(ctx, lines)
	if err != nil {
		if stored, lookupErr := uc.repo.ByKey(ctx, user, key); lookupErr == nil {
			return uc.resume(ctx, stored, hash)
		}
		return nil, err
	}
	now := uc.now()
	o.ID, o.UserID, o.IdempotencyKey, o.RequestHash = id.New(), user, key, hash
	o.State, o.CreatedAt, o.UpdatedAt, o.ExpiresAt = StateCreating, now, now, now.Add(uc.cfg.PaymentTimeout)
	stored, created, err := uc.repo.Insert(ctx, o)
	if err != nil {
		return nil, err
	}
	if !created { // a concurrent repeat inserted first
		return uc.resume(ctx, stored, hash)
	}
	return uc.reserve(ctx, o)
}

// snapshot prices lines from the catalog into a new order's items and total.
func (uc *Usecase) snapshot(ctx context.Context, lines []Line) (*Order, error) {
	ids := make([]int64, len(lines))
	for i, l := range lines {
		ids[i] = l.SKUID
	}
	skus, err := uc.catalog.SKUs(ctx, ids)
	if err != nil {
		return nil, downstream("product", err)
	}
	o := &Order{Items: make([]Item, len(lines))}
	for i, l := range lines {
		s, ok := skus[l.SKUID]
		if !ok {
			return nil, skuErr(ErrSKUNotFound, strconv.FormatInt(l.SKUID, 10))
		}
		if i == 0 {
			o.Currency = s.Currency
		} else if s.Currency != o.Currency {
			return nil, ErrMixedCurrency
		}
		o.Items[i] = Item{SKUID: s.ID, SPUID: s.SPUID, Title: s.Title, Attributes: s.Attributes,
			UnitPrice: s.Price, Quantity: l.Quantity}
		o.Total += s.Price * l.Quantity // at most 50 * 1000 * 10^12: no overflow
	}
	return o, nil
}

// resume answers a repeat of a CreateOrder whose first attempt stored o.
func (uc *Usecase) resume(ctx context.Context, o *Order, hash string) (*Order, error) {
	if o.RequestHash != hash {
		return nil, ErrKeyReused
	}
	if o.State == StateCreating {
		return uc.reserve(ctx, o)
	}
	return answer(o)
}

// answer is what CreateOrder says about a stored order: the order, or the error its first
// attempt ended with.
func answer(o *Order) (*Order, error) {
	if o.State == StateClosed && o.CloseReason == ReasonOutOfStock {
		return nil, skuErr(ErrOutOfStock, o.CloseDetail)
	}
	return o, nil
}

func lines(o *Order) []Line {
	out := make([]Line, len(o.Items))
	for i, it := range o.Items {
		out[i] = Line{SKUID: it.SKUID, Quantity: it.Quantity}
	}
	return out
}

// reserve takes the stock of a CREATING order and moves it on: to PENDING_PAYMENT, or to
// CLOSED when stock is short. A transient failure leaves it CREATING for a repeat to finish
// or the closer to close when it expires.
func (uc *Usecase) reserve(ctx context.Context, o *Order) (*Order, error) {
	err := uc.stock.Reserve(ctx, o.ID, lines(o))
	switch reason := errs.Reason(err); {
	case err == nil:
		now := uc.now()
		ok, err := uc.repo.Transition(ctx, o.ID, []State{StateCreating}, Change{To: StatePending, At: now})
		if err != nil {
			return nil, err
		}
		if ok {
			o.State, o.UpdatedAt = StatePending, now
			return o, nil
		}
	case reason == ReasonOutOfStock:
		sku := errs.From(err).Metadata["sku_id"]
		closed, err := uc.close(ctx, o.ID, []State{StateCreating}, ReasonOutOfStock, sku, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		if closed {
			return nil, skuErr(ErrOutOfStock, sku)
		}
	case reason == "RESERVATION_RELEASED":
		// The closer closed the order (and released it) before the reservation arrived.
	default:
		return nil, downstream("inventory", err)
	}
	// Someone else moved the order meanwhile; answer with where it is now.
	cur, err := uc.repo.Get(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	if cur.State == StateCreating {
		return nil, errs.Internal(errors.New("order still creating after its reservation was answered"))
	}
	return answer(cur)
}

// close moves an order from one of from to CLOSED and releases its stock. It reports
// whether this call closed it.
func (uc *Usecase) close(ctx context.Context, orderID int64, from []State, reason, detail string, expiredBy, creatingBefore time.Time) (bool, error) {
	ok, err := uc.repo.Transition(ctx, orderID, from, Change{To: StateClosed, At: uc.now(), CloseReason: reason,
		CloseDetail: detail, Settle: true, ExpiredBy: expiredBy, CreatingBefore: creatingBefore})
	if err != nil || !ok {
		return false, err
	}
	uc.settle(ctx, orderID, StateClosed)
	return true, nil
}

// settle makes the inventory follow an order that became PAID (Confirm) or CLOSED
// (Release), and records it. A failure is logged and left for the closer to retry. The
// inventory answering that the reservation is already in the other final state cannot
// happen while only this logic moves it; it is logged as an error and not retried.
func (uc *Usecase) settle(ctx context.Context, orderID int64, state State) {
	var err error
	if state == StatePaid {
		err = uc.stock.Confirm(ctx, orderID)
	} else {
		err = uc.stock.Release(ctx, orderID)
	}
	switch reason := errs.Reason(err); {
	case err == nil:
	case reason == "RESERVATION_RELEASED" || reason == "RESERVATION_CONFIRMED" || reason == "RESERVATION_NOT_FOUND":
		uc.cfg.Logger.Error("order: inventory disagrees with the order's state", "order_id", orderID,
			"state", state, "err", errors.Join(errInventoryState, err))
	default:
		uc.cfg.Logger.Warn("order: inventory not settled; the closer will retry", "order_id", orderID,
			"state", state, "err", err)
		return
	}
	if err := uc.repo.Settled(ctx, orderID); err != nil {
		uc.cfg.Logger.Warn("order: could not record the inventory settled; the closer will retry", "order_id", orderID, "err", err)
	}
}

// Get returns an order of user.
func (uc *Usecase) Get(ctx context.Context, user, orderID int64) (*Order, error) {
	if user <= 0 {
		return nil, invalid("INVALID_USER_ID", "user_id must be positive")
	}
	if orderID <= 0 {
		return nil, invalid("INVALID_ORDER_ID", "order_id must be positive")
	}
	o, err := uc.repo.Get(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if o.UserID != user {
		return nil, ErrNotFound // another user's order does not exist for this one
	}
	return o, nil
}

// List returns a page of a user's orders, newest first, and the next cursor ("" at the end).
func (uc *Usecase) List(ctx context.Context, user int64, pageSize int, cursor string) ([]*Order, string, error) {
	if user <= 0 {
		return nil, "", invalid("INVALID_USER_ID", "user_id must be positive")
	}
	pageSize = page.Size(pageSize)
	before, err := page.Decode(cursorKind, cursor)
	if err != nil {
		return nil, "", err
	}
	out, err := uc.repo.List(ctx, user, before, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > pageSize {
		out = out[:pageSize]
		next = page.Encode(cursorKind, out[len(out)-1].ID)
	}
	return out, next, nil
}

// Cancel closes a user's unpaid order and releases its stock. Cancelling a cancelled order
// returns it.
func (uc *Usecase) Cancel(ctx context.Context, user, orderID int64) (*Order, error) {
	for range 2 {
		o, err := uc.Get(ctx, user, orderID)
		if err != nil {
			return nil, err
		}
		switch {
		case o.State == StatePaid:
			return nil, ErrPaid
		case o.State == StateClosed && o.CloseReason == ReasonCanceled:
			return o, nil
		case o.State == StateClosed:
			return nil, ErrClosed.WithMetadata("close_reason", o.CloseReason)
		}
		closed, err := uc.close(ctx, orderID, []State{StateCreating, StatePending}, ReasonCanceled, "", time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		if closed {
			return uc.repo.Get(ctx, orderID)
		}
		// Lost to a payment or the closer: the next round reports what won.
	}
	return nil, errs.Internal(errors.New("order kept changing during cancel"))
}

// MarkPaid records that paymentID paid an order and confirms its stock. A repeat with the
// same payment returns the paid order.
func (uc *Usecase) MarkPaid(ctx context.Context, orderID, paymentID int64) (*Order, error) {
	if orderID <= 0 {
		return nil, invalid("INVALID_ORDER_ID", "order_id must be positive")
	}
	if paymentID <= 0 {
		return nil, invalid("INVALID_PAYMENT_ID", "payment_id must be positive")
	}
	now := uc.now()
	ok, err := uc.repo.Transition(ctx, orderID, []State{StatePending},
		Change{To: StatePaid, At: now, PaymentID: paymentID, Settle: true})
	if err != nil {
		return nil, err
	}
	if ok {
		uc.settle(ctx, orderID, StatePaid)
	}
	o, err := uc.repo.Get(ctx, orderID)
	if err != nil {
		return nil, err
	}
	switch {
	case o.State == StatePaid && o.PaymentID == paymentID:
		return o, nil
	case o.State == StatePaid:
		return nil, ErrPaidByOther
	case o.State == StateClosed:
		return nil, ErrClosed.WithMetadata("close_reason", o.CloseReason)
	}
	return nil, ErrNotPending
}

// sweepBatch is how many orders one closer query handles.
const sweepBatch = 100

// Sweep closes the orders that expired by now and releases their stock, then retries the
// inventory effects that failed earlier. It returns how many orders it closed.
func (uc *Usecase) Sweep(ctx context.Context) (int, error) {
	closedN := 0
	for {
		now := uc.now()
		creatingBefore := time.Time{}
		if uc.cfg.CreateTimeout > 0 {
			creatingBefore = now.Add(-uc.cfg.CreateTimeout)
		}
		ids, err := uc.repo.Expired(ctx, now, creatingBefore, sweepBatch)
		if err != nil {
			return closedN, err
		}
		for _, orderID := range ids {
			// Expired, or stuck CREATING past the create timeout: the guard holds either
			// way, so an order reserved meanwhile (now PENDING_PAYMENT) is left alone.
			closed, err := uc.close(ctx, orderID, []State{StateCreating, StatePending}, ReasonExpired, "", now, creatingBefore)
			if err != nil {
				return closedN, err
			}
			if closed {
				closedN++
			}
		}
		if len(ids) < sweepBatch || ctx.Err() != nil {
			break
		}
	}
	// One batch of retries per sweep: while the inventory fails they stay owed, and the
	// next sweep tries again.
	owed, err := uc.repo.Unsettled(ctx, uc.now().Add(-uc.cfg.SettleGrace), sweepBatch)
	if err != nil {
		return closedN, err
	}
	for orderID, state := range owed {
		uc.settle(ctx, orderID, state)
	}
	return closedN, ctx.Err()
}
