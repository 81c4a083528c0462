// Package service maps the product service's gRPC APIs, Product and Cart, onto biz.
package service

import (
	"context"

	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/services/product/internal/biz"
)

// Product implements productv1.ProductServer.
type Product struct {
	productv1.UnimplementedProductServer
	uc *biz.Usecase
}

var _ productv1.ProductServer = (*Product)(nil)

// NewProduct returns the catalog's gRPC service over uc.
func NewProduct(uc *biz.Usecase) *Product { return &Product{uc: uc} }

func skuPB(s *biz.SKU) *productv1.SKUInfo {
	return &productv1.SKUInfo{Id: s.ID, SpuId: s.SPUID, Title: s.Title, Attributes: s.Attributes,
		Price: s.Price, Currency: s.Currency}
}

func productPB(p *biz.SPU) *productv1.ProductInfo {
	out := &productv1.ProductInfo{Id: p.ID, Title: p.Title, Description: p.Description, Tags: p.Tags,
		Skus: make([]*productv1.SKUInfo, 0, len(p.SKUs)), MinPrice: p.MinPrice, Currency: p.Currency,
		CreatedAtMs: p.CreatedAt.UnixMilli(), UpdatedAtMs: p.UpdatedAt.UnixMilli()}
	for i := range p.SKUs {
		out.Skus = append(out.Skus, skuPB(&p.SKUs[i]))
	}
	return out
}

func reply(p *biz.SPU, err error) (*productv1.ProductInfo, error) {
	if err != nil {
		return nil, err
	}
	return productPB(p), nil
}

// CreateProduct implements productv1.ProductServer.
func (s *Product) CreateProduct(ctx context.Context, in *productv1.CreateProductRequest) (*productv1.ProductInfo, error) {
	p := &biz.SPU{Title: in.GetTitle(), Description: in.GetDescription(), Tags: in.GetTags(),
		IdempotencyKey: in.GetIdempotencyKey(), SKUs: make([]biz.SKU, 0, min(len(in.GetSkus()), biz.MaxSKUs+1))}
	for _, k := range in.GetSkus() {
		p.SKUs = append(p.SKUs, biz.SKU{Attributes: k.GetAttributes(), Price: k.GetPrice(), Currency: k.GetCurrency()})
	}
	return reply(s.uc.Create(ctx, p))
}

// GetProduct implements productv1.ProductServer.
func (s *Product) GetProduct(ctx context.Context, in *productv1.GetProductRequest) (*productv1.ProductInfo, error) {
	return reply(s.uc.Get(ctx, in.GetSpuId()))
}

// ListProducts implements productv1.ProductServer.
func (s *Product) ListProducts(ctx context.Context, in *productv1.ListProductsRequest) (*productv1.ListProductsReply, error) {
	ps, next, err := s.uc.List(ctx, int(in.GetPageSize()), in.GetCursor())
	if err != nil {
		return nil, err
	}
	out := &productv1.ListProductsReply{Products: make([]*productv1.ProductInfo, 0, len(ps)), NextCursor: next}
	for _, p := range ps {
		out.Products = append(out.Products, productPB(p))
	}
	return out, nil
}

// UpdateProduct implements productv1.ProductServer.
func (s *Product) UpdateProduct(ctx context.Context, in *productv1.UpdateProductRequest) (*productv1.ProductInfo, error) {
	prices := make(map[int64]int64, len(in.GetPrices()))
	for _, p := range in.GetPrices() {
		prices[p.GetSkuId()] = p.GetPrice()
	}
	return reply(s.uc.Update(ctx, in.GetSpuId(), in.GetTitle(), in.GetDescription(), in.GetTags(), prices))
}

// DeleteProduct implements productv1.ProductServer.
func (s *Product) DeleteProduct(ctx context.Context, in *productv1.DeleteProductRequest) (*productv1.DeleteProductReply, error) {
	changed, err := s.uc.Delete(ctx, in.GetSpuId())
	if err != nil {
		return nil, err
	}
	return &productv1.DeleteProductReply{Changed: changed}, nil
}

// GetSKUs implements productv1.ProductServer.
func (s *Product) GetSKUs(ctx context.Context, in *productv1.GetSKUsRequest) (*productv1.GetSKUsReply, error) {
	skus, missing, err := s.uc.GetSKUs(ctx, in.GetSkuIds())
	if err != nil {
		return nil, err
	}
	out := &productv1.GetSKUsReply{Skus: make([]*productv1.SKUInfo, 0, len(skus)), MissingSkuIds: missing}
	for i := range skus {
		out.Skus = append(out.Skus, skuPB(&skus[i]))
	}
	return out, nil
}

// Cart implements productv1.CartServer.
type Cart struct {
	productv1.UnimplementedCartServer
	cart *biz.Cart
}

var _ productv1.CartServer = (*Cart)(nil)

// NewCart returns the cart's gRPC service over cart.
func NewCart(cart *biz.Cart) *Cart { return &Cart{cart: cart} }

func cartReply(user int64, items []biz.CartItem, err error) (*productv1.CartInfo, error) {
	if err != nil {
		return nil, err
	}
	out := &productv1.CartInfo{UserId: user, Items: make([]*productv1.CartItem, 0, len(items))}
	for _, it := range items {
		item := &productv1.CartItem{SkuId: it.SKUID, Quantity: it.Quantity, AddedAtMs: it.AddedAt.UnixMilli(),
			Available: it.SKU != nil}
		if it.SKU != nil {
			item.Sku = skuPB(it.SKU)
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}

// UpsertItem implements productv1.CartServer.
func (s *Cart) UpsertItem(ctx context.Context, in *productv1.UpsertCartItemRequest) (*productv1.CartInfo, error) {
	items, err := s.cart.Upsert(ctx, in.GetUserId(), in.GetSkuId(), in.GetQuantity())
	return cartReply(in.GetUserId(), items, err)
}

// GetCart implements productv1.CartServer.
func (s *Cart) GetCart(ctx context.Context, in *productv1.GetCartRequest) (*productv1.CartInfo, error) {
	items, err := s.cart.Get(ctx, in.GetUserId())
	return cartReply(in.GetUserId(), items, err)
}

// RemoveItems implements productv1.CartServer.
func (s *Cart) RemoveItems(ctx context.Context, in *productv1.RemoveCartItemsRequest) (*productv1.CartInfo, error) {
	items, err := s.cart.Remove(ctx, in.GetUserId(), in.GetSkuIds())
	return cartReply(in.GetUserId(), items, err)
}
