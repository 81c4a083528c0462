// Package biz holds the inventory service's rules: what a request may contain, and how a
// reservation moves from reserved to confirmed or released, idempotently per order. It owns
// the repository interface that data implements.
package biz

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

// Limits of a request.
const (
	MaxItems    = 50
	MaxQuantity = 1000
	MaxGetSKUs  = 100
	// MaxStock bounds SetStock, far below int64 so sums of levels cannot overflow.
	MaxStock = 1_000_000_000
)

// State is where a reservation is in its life.
type State string

// The states of a reservation. Reserved is the only one that moves: to Confirmed or to
// Released, once.
const (
	StateReserved  State = "reserved"
	StateConfirmed State = "confirmed"
	StateReleased  State = "released"
)

// Stock is one SKU's levels.
type Stock struct {
	SKU       int64
	Available int64
	Reserved  int64
}

// Item is a quantity of one SKU.
type Item struct {
	SKU      int64
	Quantity int64
}

// Reservation is the stock an order holds, and what became of it.
type Reservation struct {
	OrderID int64
	State   State
	// Items are sorted by SKU; a Release of an order that never reserved leaves none.
	Items     []Item
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Errors callers branch on. ErrOutOfStock is returned with metadata sku_id naming the short
// SKU.
var (
	ErrOutOfStock = errs.New(codes.FailedPrecondition, "OUT_OF_STOCK", "not enough stock")
	ErrNotFound   = errs.NotFound("RESERVATION_NOT_FOUND", "the order has no reservation")
	ErrReleased   = errs.New(codes.FailedPrecondition, "RESERVATION_RELEASED", "the order's reservation was released")
	ErrConfirmed  = errs.New(codes.FailedPrecondition, "RESERVATION_CONFIRMED", "the order's reservation was confirmed")
	ErrMismatch   = errs.New(codes.FailedPrecondition, "RESERVATION_MISMATCH",
		"the order already reserved different items")
)

// OutOfStock returns ErrOutOfStock naming sku.
func OutOfStock(sku int64) error {
	return ErrOutOfStock.WithMetadata("sku_id", strconv.FormatInt(sku, 10))
}

// Repo stores stock and reservations. Every method is atomic.
type Repo interface {
	// SetStock sets a SKU's available level, leaving reserved as it is.
	SetStock(ctx context.Context, sku, available int64) (Stock, error)
	// GetStock returns the levels of skus in order; an unknown SKU reads as zero.
	GetStock(ctx context.Context, skus []int64) ([]Stock, error)
	// Reserve records r (state reserved, items sorted by SKU and distinct) and moves its
	// items from available to reserved, all or nothing; OutOfStock(sku) when one is short.
	// When r.OrderID already has a reservation, it changes nothing and returns that one.
	Reserve(ctx context.Context, r *Reservation) (*Reservation, error)
	// Settle moves an order's reservation from reserved to to (confirmed: its units leave
	// reserved; released: they return to available) and returns it as it then stands. A
	// reservation not in reserved is returned unchanged. With no reservation, to=released
	// records an empty released one and returns it; to=confirmed returns ErrNotFound.
	Settle(ctx context.Context, orderID int64, to State, at time.Time) (*Reservation, error)
}

// Usecase is the inventory service's logic.
type Usecase struct{ repo Repo }

// NewUsecase returns the logic over repo.
func NewUsecase(repo Repo) *Usecase { return &Usecase{repo: repo} }

func invalid(reason, format string, args ...any) error {
	return errs.InvalidArgument(reason, format, args...)
}

func validOrder(orderID int64) error {
	if orderID <= 0 {
		return invalid("INVALID_ORDER_ID", "order_id must be positive")
	}
	return nil
}

func validSKU(sku int64) error {
	if sku <= 0 {
		return invalid("INVALID_SKU_ID", "sku_id must be positive")
	}
	return nil
}

// ValidateReserve checks a reservation request and returns its items sorted by SKU, the
// order in which Reserve locks stock rows, so concurrent reservations cannot deadlock.
func ValidateReserve(orderID int64, items []Item) ([]Item, error) {
	if err := validOrder(orderID); err != nil {
		return nil, err
	}
	switch {
	case len(items) == 0:
		return nil, invalid("NO_ITEMS", "a reservation needs at least one item")
	case len(items) > MaxItems:
		return nil, invalid("TOO_MANY_ITEMS", "at most %d items", MaxItems)
	}
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b Item) int { return cmp.Compare(a.SKU, b.SKU) })
	for i, it := range sorted {
		if err := validSKU(it.SKU); err != nil {
			return nil, err
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return nil, errs.InvalidArgument("INVALID_QUANTITY", "quantity must be 1 to %d", MaxQuantity).
				WithMetadata("sku_id", strconv.FormatInt(it.SKU, 10))
		}
		if i > 0 && sorted[i-1].SKU == it.SKU {
			return nil, errs.InvalidArgument("DUPLICATE_SKU", "sku %d appears twice", it.SKU).
				WithMetadata("sku_id", strconv.FormatInt(it.SKU, 10))
		}
	}
	return sorted, nil
}

// SetStock sets a SKU's available level.
func (uc *Usecase) SetStock(ctx context.Context, sku, quantity int64) (Stock, error) {
	if err := validSKU(sku); err != nil {
		return Stock{}, err
	}
	if quantity < 0 || quantity > MaxStock {
		return Stock{}, invalid("INVALID_QUANTITY", "quantity must be 0 to %d", MaxStock)
	}
	return uc.repo.SetStock(ctx, sku, quantity)
}

// GetStock returns the levels of skus, in order.
func (uc *Usecase) GetStock(ctx context.Context, skus []int64) ([]Stock, error) {
	switch {
	case len(skus) == 0:
		return nil, invalid("NO_SKUS", "sku_ids is empty")
	case len(skus) > MaxGetSKUs:
		return nil, invalid("TOO_MANY_SKUS", "at most %d sku_ids", MaxGetSKUs)
	}
	for _, s := range skus {
		if err := validSKU(s); err != nil {
			return nil, err
		}
	}
	return uc.repo.GetStock(ctx, skus)
}

// Reserve takes items for an order, all or nothing. A repeat with the same items returns the
// order's reservation as it stands, whatever its state, and changes nothing.
func (uc *Usecase) Reserve(ctx context.Context, orderID int64, items []Item) (*Reservation, error) {
	sorted, err := ValidateReserve(orderID, items)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	got, err := uc.repo.Reserve(ctx, &Reservation{OrderID: orderID, State: StateReserved, Items: sorted,
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return nil, err
	}
	switch {
	case slices.Equal(got.Items, sorted):
		return got, nil
	case got.State == StateReleased && len(got.Items) == 0:
		// Released before this Reserve arrived (an order closed while its Reserve was late).
		return nil, ErrReleased
	}
	return nil, ErrMismatch
}

// Confirm turns an order's reservation into a sale.
func (uc *Usecase) Confirm(ctx context.Context, orderID int64) (*Reservation, error) {
	return uc.settle(ctx, orderID, StateConfirmed, StateReleased, ErrReleased)
}

// Release returns an order's reserved units to available.
func (uc *Usecase) Release(ctx context.Context, orderID int64) (*Reservation, error) {
	return uc.settle(ctx, orderID, StateReleased, StateConfirmed, ErrConfirmed)
}

// settle moves the order's reservation to to. Finding it already in to is the idempotent
// repeat; finding it in the other final state, other, is errOther.
func (uc *Usecase) settle(ctx context.Context, orderID int64, to, other State, errOther error) (*Reservation, error) {
	if err := validOrder(orderID); err != nil {
		return nil, err
	}
	r, err := uc.repo.Settle(ctx, orderID, to, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	if r.State == other {
		return nil, errOther
	}
	return r, nil
}
