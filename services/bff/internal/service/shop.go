package service

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	orderv1 "github.com/redline-dev/redline/api/order/v1"
	paymentv1 "github.com/redline-dev/redline/api/payment/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/payment"
)

// Money is an amount in minor units (cents, fen) of an ISO 4217 currency. Amount is a
// JSON number: minor units stay far below 2^53.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// SKUView is a sellable variant of a product.
type SKUView struct {
	ID         string            `json:"id"`
	ProductID  string            `json:"product_id"`
	Title      string            `json:"title"`
	Attributes map[string]string `json:"attributes"`
	Price      Money             `json:"price"`
	// Stock is the number available to order now; left out (and the product's degraded
	// says "stock") when the inventory service cannot answer.
	Stock *int64 `json:"stock,omitempty"`
}

func skuView(s *productv1.SKUInfo) *SKUView {
	attrs := s.GetAttributes()
	if attrs == nil {
		attrs = map[string]string{}
	}
	return &SKUView{ID: strconv.FormatInt(s.GetId(), 10), ProductID: strconv.FormatInt(s.GetSpuId(), 10), Title: s.GetTitle(),
		Attributes: attrs, Price: Money{s.GetPrice(), s.GetCurrency()}}
}

// ProductView is a product (SPU) with its SKUs.
type ProductView struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Tags        []string   `json:"tags"`
	MinPrice    Money      `json:"min_price"`
	SKUs        []*SKUView `json:"skus"`
	Degraded    []string   `json:"degraded,omitempty"`
}

func productView(p *productv1.ProductInfo) *ProductView {
	v := &ProductView{ID: strconv.FormatInt(p.GetId(), 10), Title: p.GetTitle(), Description: p.GetDescription(),
		Tags: nonNil(p.GetTags()), MinPrice: Money{p.GetMinPrice(), p.GetCurrency()}, SKUs: make([]*SKUView, 0, len(p.GetSkus()))}
	for _, s := range p.GetSkus() {
		v.SKUs = append(v.SKUs, skuView(s))
	}
	return v
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ProductPage is one page of the catalog.
type ProductPage struct {
	Products   []*ProductView `json:"products"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// PageQuery is ?cursor=&limit= on a list with no path id.
type PageQuery struct{ ListQuery }

// Bind implements kithttp.Binder.
func (q *PageQuery) Bind(r *http.Request) error { return q.bindPage(r) }

func (b *BFF) products(ctx context.Context, in *PageQuery) (*ProductPage, error) {
	r, err := b.Products.ListProducts(ctx, &productv1.ListProductsRequest{PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	p := &ProductPage{Products: make([]*ProductView, 0, len(r.GetProducts())), NextCursor: r.GetNextCursor()}
	for _, x := range r.GetProducts() {
		p.Products = append(p.Products, productView(x))
	}
	return p, nil
}

// product answers a product with the stock of each SKU, degrading to no stock when the
// inventory service cannot answer.
func (b *BFF) product(ctx context.Context, in *ByID) (*ProductView, error) {
	p, err := b.Products.GetProduct(ctx, &productv1.GetProductRequest{SpuId: in.ID})
	if err != nil {
		return nil, err
	}
	v := productView(p)
	if len(p.GetSkus()) == 0 || b.Inventory == nil {
		return v, nil
	}
	ids := make([]int64, len(p.GetSkus()))
	for i, s := range p.GetSkus() {
		ids[i] = s.GetId()
	}
	st, err := b.Inventory.GetStock(ctx, &inventoryv1.GetStockRequest{SkuIds: ids})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		v.Degraded = append(v.Degraded, "stock")
		return v, nil
	}
	for i, lvl := range st.GetStocks() {
		if i < len(v.SKUs) {
			v.SKUs[i].Stock = ptr(lvl.GetAvailable())
		}
	}
	return v, nil
}

// CartItemView is a line of the cart with the SKU's current price.
type CartItemView struct {
	SKU       *SKUView  `json:"sku"`
	Quantity  int64     `json:"quantity"`
	Available bool      `json:"available"`
	AddedAt   time.Time `json:"added_at"`
}

// CartView is the caller's cart.
type CartView struct {
	Items []*CartItemView `json:"items"`
	// Totals are the sums of available items per currency.
	Totals []Money `json:"totals"`
}

func cartView(c *productv1.CartInfo) *CartView {
	v := &CartView{Items: make([]*CartItemView, 0, len(c.GetItems())), Totals: []Money{}}
	totals := map[string]int64{}
	var order []string
	for _, it := range c.GetItems() {
		sku := it.GetSku()
		if sku == nil {
			sku = &productv1.SKUInfo{Id: it.GetSkuId()}
		}
		v.Items = append(v.Items, &CartItemView{SKU: skuView(sku), Quantity: it.GetQuantity(), Available: it.GetAvailable(),
			AddedAt: time.UnixMilli(it.GetAddedAtMs()).UTC()})
		if it.GetAvailable() {
			if _, ok := totals[sku.GetCurrency()]; !ok {
				order = append(order, sku.GetCurrency())
			}
			totals[sku.GetCurrency()] += sku.GetPrice() * it.GetQuantity()
		}
	}
	for _, cur := range order {
		v.Totals = append(v.Totals, Money{totals[cur], cur})
	}
	return v
}

func (b *BFF) cart(ctx context.Context, _ *Empty) (*CartView, error) {
	sub, _ := auth.Subject(ctx)
	c, err := b.Carts.GetCart(ctx, &productv1.GetCartRequest{UserId: sub})
	if err != nil {
		return nil, err
	}
	return cartView(c), nil
}

// CartItemRequest is PUT /v1/cart/items/{sku_id} {"quantity": n}; 0 removes the item.
type CartItemRequest struct {
	Quantity *int64 `json:"quantity"`
	sku      int64
}

// Bind implements kithttp.Binder.
func (c *CartItemRequest) Bind(r *http.Request) (err error) {
	c.sku, err = pathID(r, "sku_id")
	return err
}

// Validate implements kithttp.Validator.
func (c *CartItemRequest) Validate() error {
	if c.Quantity == nil {
		return errs.InvalidArgument("QUANTITY_REQUIRED", `send {"quantity": n}; 0 removes the item`)
	}
	return nil
}

func (b *BFF) putCartItem(ctx context.Context, in *CartItemRequest) (*CartView, error) {
	sub, _ := auth.Subject(ctx)
	c, err := b.Carts.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: sub, SkuId: in.sku, Quantity: *in.Quantity})
	if err != nil {
		return nil, err
	}
	return cartView(c), nil
}

// SKUPath is a request naming a SKU in its path.
type SKUPath struct{ SKU int64 }

// Bind implements kithttp.Binder.
func (p *SKUPath) Bind(r *http.Request) (err error) {
	p.SKU, err = pathID(r, "sku_id")
	return err
}

func (b *BFF) deleteCartItem(ctx context.Context, in *SKUPath) (*CartView, error) {
	sub, _ := auth.Subject(ctx)
	c, err := b.Carts.RemoveItems(ctx, &productv1.RemoveCartItemsRequest{UserId: sub, SkuIds: []int64{in.SKU}})
	if err != nil {
		return nil, err
	}
	return cartView(c), nil
}

// OrderItemView is a line of an order, priced when the order was placed.
type OrderItemView struct {
	SKUID      string            `json:"sku_id"`
	ProductID  string            `json:"product_id"`
	Title      string            `json:"title"`
	Attributes map[string]string `json:"attributes"`
	UnitPrice  Money             `json:"unit_price"`
	Quantity   int64             `json:"quantity"`
}

// OrderView is an order. State is pending_payment, paid or closed; a closed order says
// why in close_reason (canceled, expired, out_of_stock...).
type OrderView struct {
	ID          string           `json:"id"`
	State       string           `json:"state"`
	Items       []*OrderItemView `json:"items"`
	Total       Money            `json:"total"`
	PaymentID   string           `json:"payment_id,omitempty"`
	CloseReason string           `json:"close_reason,omitempty"`
	CreatedAt   time.Time        `json:"created_at"`
	// ExpiresAt is when an unpaid order closes by itself and its stock returns.
	ExpiresAt time.Time `json:"expires_at"`
	created   bool
}

// Created implements kithttp.Created: placing an order answers 201, a replay too.
func (o *OrderView) Created() bool { return o.created }

func orderView(o *orderv1.OrderInfo) *OrderView {
	v := &OrderView{ID: strconv.FormatInt(o.GetId(), 10),
		State: enumName(o.GetState(), "ORDER_STATE_"),
		Items: make([]*OrderItemView, 0, len(o.GetItems())), Total: Money{o.GetTotal(), o.GetCurrency()},
		CloseReason: strings.ToLower(o.GetCloseReason()), CreatedAt: time.UnixMilli(o.GetCreatedAtMs()).UTC(),
		ExpiresAt: time.UnixMilli(o.GetExpiresAtMs()).UTC()}
	if o.GetPaymentId() != 0 {
		v.PaymentID = strconv.FormatInt(o.GetPaymentId(), 10)
	}
	for _, it := range o.GetItems() {
		attrs := it.GetAttributes()
		if attrs == nil {
			attrs = map[string]string{}
		}
		v.Items = append(v.Items, &OrderItemView{SKUID: strconv.FormatInt(it.GetSkuId(), 10), ProductID: strconv.FormatInt(it.GetSpuId(), 10),
			Title: it.GetTitle(), Attributes: attrs, UnitPrice: Money{it.GetUnitPrice(), o.GetCurrency()}, Quantity: it.GetQuantity()})
	}
	return v
}

// OrderLine is one line of POST /v1/orders.
type OrderLine struct {
	SKUID    string `json:"sku_id"`
	Quantity int64  `json:"quantity"`
}

// CreateOrderRequest is the body of POST /v1/orders. The Idempotency-Key header is
// required: a retry with the same key returns the same order instead of a second one.
type CreateOrderRequest struct {
	Items []OrderLine `json:"items"`
	// FromCart removes the ordered SKUs from the caller's cart once the order is placed.
	FromCart bool `json:"from_cart"`
	key      string
	skus     []int64
}

// Bind implements kithttp.Binder.
func (c *CreateOrderRequest) Bind(r *http.Request) error {
	c.key = r.Header.Get("Idempotency-Key")
	return nil
}

// Validate implements kithttp.Validator.
func (c *CreateOrderRequest) Validate() error {
	if c.key == "" {
		return errs.InvalidArgument("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header (a UUID per checkout), so a retry cannot order twice")
	}
	if len(c.Items) == 0 {
		return errs.InvalidArgument("NO_ITEMS", `send {"items": [{"sku_id": "...", "quantity": 1}]}`)
	}
	c.skus = make([]int64, len(c.Items))
	for i, it := range c.Items {
		id, err := strconv.ParseInt(it.SKUID, 10, 64)
		if err != nil || id <= 0 {
			return errs.InvalidArgument("INVALID_SKU_ID", "items[%d].sku_id %q is not an id", i, it.SKUID)
		}
		c.skus[i] = id
	}
	return nil
}

func (b *BFF) createOrder(ctx context.Context, in *CreateOrderRequest) (*OrderView, error) {
	sub, _ := auth.Subject(ctx)
	req := &orderv1.CreateOrderRequest{UserId: sub, IdempotencyKey: in.key}
	for i, it := range in.Items {
		req.Items = append(req.Items, &orderv1.OrderItemRequest{SkuId: in.skus[i], Quantity: it.Quantity})
	}
	o, err := b.Orders.CreateOrder(ctx, req)
	if err != nil {
		return nil, err
	}
	if in.FromCart && b.Carts != nil {
		// The order stands whether or not the cart is tidied; a failure leaves the items.
		_, _ = b.Carts.RemoveItems(ctx, &productv1.RemoveCartItemsRequest{UserId: sub, SkuIds: in.skus})
	}
	v := orderView(o)
	// A replay returns the order created the first time, and the same response: 201 again.
	v.created = true
	return v, nil
}

// OrderPage is one page of the caller's orders.
type OrderPage struct {
	Orders     []*OrderView `json:"orders"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

func (b *BFF) orders(ctx context.Context, in *PageQuery) (*OrderPage, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Orders.ListOrders(ctx, &orderv1.ListOrdersRequest{UserId: sub, PageSize: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	p := &OrderPage{Orders: make([]*OrderView, 0, len(r.GetOrders())), NextCursor: r.GetNextCursor()}
	for _, o := range r.GetOrders() {
		p.Orders = append(p.Orders, orderView(o))
	}
	return p, nil
}

func (b *BFF) order(ctx context.Context, in *ByID) (*OrderView, error) {
	sub, _ := auth.Subject(ctx)
	o, err := b.Orders.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: in.ID, UserId: sub})
	if err != nil {
		return nil, err
	}
	return orderView(o), nil
}

// OrderAction is a POST on an order that needs nothing but its id: cancel, pay.
type OrderAction struct{ ByID }

// Bodiless implements kithttp.Bodiless.
func (OrderAction) Bodiless() {}

func (b *BFF) cancelOrder(ctx context.Context, in *OrderAction) (*OrderView, error) {
	sub, _ := auth.Subject(ctx)
	o, err := b.Orders.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderId: in.ID, UserId: sub})
	if err != nil {
		return nil, err
	}
	return orderView(o), nil
}

// PaymentView is the payment of an order. State is pending until the provider calls
// back, then succeeded or failed.
type PaymentView struct {
	ID          string    `json:"id"`
	OrderID     string    `json:"order_id"`
	Amount      Money     `json:"amount"`
	State       string    `json:"state"`
	ProviderRef string    `json:"provider_ref,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func paymentView(p *paymentv1.PaymentInfo) *PaymentView {
	return &PaymentView{ID: strconv.FormatInt(p.GetId(), 10), OrderID: strconv.FormatInt(p.GetOrderId(), 10),
		Amount: Money{p.GetAmount(), p.GetCurrency()}, State: enumName(p.GetState(), "PAYMENT_STATE_"),
		ProviderRef: p.GetProviderRef(), CreatedAt: time.UnixMilli(p.GetCreatedAtMs()).UTC(), UpdatedAt: time.UnixMilli(p.GetUpdatedAtMs()).UTC()}
}

func (b *BFF) pay(ctx context.Context, in *OrderAction) (*PaymentView, error) {
	sub, _ := auth.Subject(ctx)
	p, err := b.Payments.Pay(ctx, &paymentv1.PayRequest{OrderId: in.ID, UserId: sub})
	if err != nil {
		return nil, err
	}
	return paymentView(p), nil
}

func (b *BFF) payment(ctx context.Context, in *ByID) (*PaymentView, error) {
	sub, _ := auth.Subject(ctx)
	p, err := b.Payments.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: in.ID, UserId: sub})
	if err != nil {
		return nil, err
	}
	return paymentView(p), nil
}

// CallbackRequest is the payment provider's callback: the exact body and its signature.
type CallbackRequest struct {
	body      []byte
	signature string
}

// SetRaw implements kithttp.Raw: the signature covers the exact bytes.
func (c *CallbackRequest) SetRaw(b []byte) { c.body = b }

// Bind implements kithttp.Binder.
func (c *CallbackRequest) Bind(r *http.Request) error {
	c.signature = r.Header.Get(payment.SignatureHeader)
	if c.signature == "" {
		return errs.Unauthenticated("SIGNATURE_MISSING", "a provider callback carries its signature in %s", payment.SignatureHeader)
	}
	return nil
}

func (b *BFF) paymentCallback(ctx context.Context, in *CallbackRequest) (*PaymentView, error) {
	p, err := b.Payments.Callback(ctx, &paymentv1.CallbackRequest{Payload: in.body, Signature: in.signature})
	if err != nil {
		return nil, err
	}
	return paymentView(p), nil
}
