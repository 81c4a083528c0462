package biz

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

// Limits of a cart.
const (
	MaxCartItems    = 100
	MaxCartQuantity = 1000
)

// CartItem is a SKU in a cart. SKU is nil when the SKU or its SPU was deleted since.
type CartItem struct {
	SKUID    int64
	Quantity int64
	AddedAt  time.Time
	SKU      *SKU
}

// CartRepo stores carts.
type CartRepo interface {
	// SetItem sets the quantity of sku in user's cart, adding it at at when absent, in one
	// transaction that first checks the SKU exists and its SPU is not deleted
	// (ErrSKUNotFound) and that a new item fits in MaxCartItems (ErrCartFull).
	SetItem(ctx context.Context, user, sku, quantity int64, at time.Time) error
	// RemoveItems removes skus from user's cart; absent ones are ignored.
	RemoveItems(ctx context.Context, user int64, skus []int64) error
	// Items returns user's cart, newest first, without SKU details.
	Items(ctx context.Context, user int64) ([]CartItem, error)
}

// ErrCartFull answers an item that does not fit.
var ErrCartFull = errs.New(codes.FailedPrecondition, "CART_FULL", "the cart holds at most 100 different skus")

// ValidateCartItem checks the arguments of UpsertItem.
func ValidateCartItem(user, sku, quantity int64) error {
	switch {
	case user <= 0:
		return invalid("INVALID_USER_ID", "user_id must be positive")
	case sku <= 0:
		return invalid("INVALID_SKU_ID", "sku_id must be positive")
	case quantity < 0 || quantity > MaxCartQuantity:
		return invalid("INVALID_QUANTITY", "quantity must be 0 to %d", MaxCartQuantity)
	}
	return nil
}

// Cart is the cart's logic. It reads SKUs through the catalog's repository.
type Cart struct {
	repo    CartRepo
	catalog Repo
	now     func() time.Time
}

// NewCart returns the cart logic over repo, reading SKUs from catalog.
func NewCart(repo CartRepo, catalog Repo, now func() time.Time) *Cart {
	return &Cart{repo: repo, catalog: catalog, now: now}
}

// Upsert sets a SKU's quantity in the user's cart (0 removes it) and returns the cart.
func (c *Cart) Upsert(ctx context.Context, user, sku, quantity int64) ([]CartItem, error) {
	if err := ValidateCartItem(user, sku, quantity); err != nil {
		return nil, err
	}
	var err error
	if quantity == 0 {
		err = c.repo.RemoveItems(ctx, user, []int64{sku})
	} else {
		err = c.repo.SetItem(ctx, user, sku, quantity, c.now().UTC().Truncate(time.Millisecond))
	}
	if err != nil {
		return nil, err
	}
	return c.Get(ctx, user)
}

// Remove removes skus from the user's cart and returns the cart.
func (c *Cart) Remove(ctx context.Context, user int64, skus []int64) ([]CartItem, error) {
	if user <= 0 {
		return nil, invalid("INVALID_USER_ID", "user_id must be positive")
	}
	if err := ValidateSKUIDs(skus); err != nil {
		return nil, err
	}
	if err := c.repo.RemoveItems(ctx, user, skus); err != nil {
		return nil, err
	}
	return c.Get(ctx, user)
}

// Get returns the user's cart with each SKU as it is now.
func (c *Cart) Get(ctx context.Context, user int64) ([]CartItem, error) {
	if user <= 0 {
		return nil, invalid("INVALID_USER_ID", "user_id must be positive")
	}
	items, err := c.repo.Items(ctx, user)
	if err != nil || len(items) == 0 {
		return items, err
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.SKUID
	}
	skus, err := c.catalog.GetSKUs(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range items {
		if s, ok := skus[items[i].SKUID]; ok {
			items[i].SKU = &s
		}
	}
	return items, nil
}
