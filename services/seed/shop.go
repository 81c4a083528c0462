package seed

import (
	"context"
	"fmt"
	"math/rand/v2"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
)

// Catalog seeds products through the product and inventory services: SPUs with one to
// four SKUs, prices in CNY fen, and stock from a handful to a few hundred units.
type Catalog struct {
	Product   productv1.ProductClient
	Inventory inventoryv1.InventoryClient
}

var _ Shop = Catalog{}

type item struct {
	title, desc string
	tags        []string
	attr        string
	values      []string
	price       int64 // fen
}

var items = []item{
	{"高山乌龙茶 Oolong tea", "Floral high-mountain oolong, 2026 spring harvest.", []string{"coffee", "food"}, "size", []string{"100g", "250g"}, 6800},
	{"手冲咖啡壶 Pour-over kettle", "Gooseneck kettle, 0.6 L, stainless steel.", []string{"coffee"}, "color", []string{"silver", "black"}, 15900},
	{"防晒霜 SPF50 Sunscreen", "Light texture, no white cast.", []string{"skincare"}, "size", []string{"30ml", "50ml"}, 12800},
	{"瑜伽垫 Yoga mat", "6 mm, non-slip, with strap.", []string{"fitness"}, "color", []string{"purple", "grey", "green"}, 8900},
	{"机械键盘 Mechanical keyboard", "75% layout, hot-swap switches.", []string{"tech"}, "switch", []string{"red", "brown", "blue"}, 39900},
	{"猫抓板 Cat scratcher", "Corrugated cardboard, replaceable.", []string{"pets"}, "size", []string{"M", "L"}, 3900},
	{"亚麻衬衫 Linen shirt", "Relaxed fit, washed linen.", []string{"ootd"}, "size", []string{"S", "M", "L", "XL"}, 25900},
	{"旅行收纳袋 Packing cubes", "Set of 4, water resistant.", []string{"travel"}, "color", []string{"navy", "sand"}, 7900},
}

// Products implements Shop. SPUs are created with idempotency keys and stock is set, not
// added, so a rerun changes nothing.
func (c Catalog) Products(ctx context.Context, n int, r *rand.Rand) ([]int64, error) {
	ids := make([]int64, 0, n)
	for i := range n {
		it := items[i%len(items)]
		req := &productv1.CreateProductRequest{Title: it.title, Description: it.desc, Tags: it.tags,
			IdempotencyKey: fmt.Sprintf("seed-product-%d", i)}
		if i >= len(items) {
			req.Title = fmt.Sprintf("%s #%d", it.title, i/len(items)+1)
		}
		for j, v := range it.values {
			req.Skus = append(req.Skus, &productv1.SKUInput{Attributes: map[string]string{it.attr: v},
				Price: it.price + int64(j)*1000, Currency: "CNY"})
		}
		var p *productv1.ProductInfo
		err := withBackoff(ctx, func() (err error) { p, err = c.Product.CreateProduct(ctx, req); return err })
		if err != nil {
			return ids, err
		}
		for _, sku := range p.GetSkus() {
			qty := int64(5 + r.IntN(300))
			if err := withBackoff(ctx, func() error {
				_, err := c.Inventory.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: sku.GetId(), Quantity: qty})
				return err
			}); err != nil {
				return ids, err
			}
		}
		ids = append(ids, p.GetId())
	}
	return ids, nil
}
