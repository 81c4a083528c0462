package product_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/product"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sqlite(t *testing.T) *sqldb.DB {
	db, err := sqldb.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// engines are the databases the suite runs on: in-memory SQLite, and real PostgreSQL in a
// schema of the test's own.
var engines = map[string]func(t *testing.T) *sqldb.DB{
	"sqlite":   sqlite,
	"postgres": func(t *testing.T) *sqldb.DB { db, _ := sqldbtest.Postgres(t, "product"); return db },
}

func newService(t *testing.T, db *sqldb.DB, q mq.Queue, opts ...product.Option) *product.Service {
	t.Helper()
	s, err := product.New(context.Background(), db, q, opts...)
	if err != nil {
		t.Fatalf("product.New = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func onEngines(t *testing.T, test func(t *testing.T, s *product.Service)) {
	for name, open := range engines {
		t.Run(name, func(t *testing.T) { test(t, newService(t, open(t), nil)) })
	}
}

func wantErr(t *testing.T, call string, err error, code codes.Code, reason string) {
	t.Helper()
	if errs.Code(err) != code || errs.Reason(err) != reason {
		t.Fatalf("%s = %v; want %v %s", call, err, code, reason)
	}
}

func shirt(key string) *productv1.CreateProductRequest {
	return &productv1.CreateProductRequest{Title: "  T-shirt ", Description: "cotton", Tags: []string{"tee", " tee", "summer"},
		IdempotencyKey: key, Skus: []*productv1.SKUInput{
			{Attributes: map[string]string{"color": "red", "size": "M"}, Price: 1999, Currency: "USD"},
			{Attributes: map[string]string{"color": "blue", "size": "M"}, Price: 1499, Currency: "USD"},
		}}
}

func create(t *testing.T, s *product.Service, req *productv1.CreateProductRequest) *productv1.ProductInfo {
	t.Helper()
	p, err := s.Product.CreateProduct(ctxT(t), req)
	if err != nil {
		t.Fatalf("CreateProduct = %v", err)
	}
	return p
}

func TestCatalog(t *testing.T) {
	onEngines(t, func(t *testing.T, s *product.Service) {
		ctx := ctxT(t)
		p := create(t, s, shirt("seed-1"))
		if p.GetTitle() != "T-shirt" || len(p.GetSkus()) != 2 || p.GetMinPrice() != 1499 || p.GetCurrency() != "USD" ||
			strings.Join(p.GetTags(), ",") != "tee,summer" || p.GetSkus()[0].GetAttributes()["color"] != "red" ||
			p.GetSkus()[1].GetTitle() != "T-shirt" || p.GetSkus()[0].GetSpuId() != p.GetId() {
			t.Fatalf("CreateProduct = %v", p)
		}
		if again := create(t, s, shirt("seed-1")); !proto.Equal(again, p) {
			t.Fatalf("CreateProduct with the same key = %v; want %v", again, p)
		}
		got, err := s.Product.GetProduct(ctx, &productv1.GetProductRequest{SpuId: p.GetId()})
		if err != nil || !proto.Equal(got, p) {
			t.Fatalf("GetProduct = %v, %v; want %v", got, err, p)
		}
		_, err = s.Product.GetProduct(ctx, &productv1.GetProductRequest{SpuId: id.New()})
		wantErr(t, "GetProduct of an unknown id", err, codes.NotFound, "PRODUCT_NOT_FOUND")

		// GetSKUs answers in request order, repeats included, and lists the missing.
		a, b, unknown := p.GetSkus()[0].GetId(), p.GetSkus()[1].GetId(), id.New()
		r, err := s.Product.GetSKUs(ctx, &productv1.GetSKUsRequest{SkuIds: []int64{b, unknown, a, b}})
		if err != nil || len(r.GetSkus()) != 3 || r.Skus[0].GetId() != b || r.Skus[1].GetId() != a || r.Skus[2].GetId() != b ||
			len(r.GetMissingSkuIds()) != 1 || r.MissingSkuIds[0] != unknown || r.Skus[1].GetPrice() != 1999 {
			t.Fatalf("GetSKUs = %v, %v", r, err)
		}

		up, err := s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: p.GetId(), Title: "Tee",
			Description: "organic", Tags: []string{"tee"}, Prices: []*productv1.SKUPrice{{SkuId: a, Price: 999}}})
		if err != nil || up.GetTitle() != "Tee" || up.GetMinPrice() != 999 || up.GetSkus()[0].GetPrice() != 999 ||
			up.GetSkus()[1].GetPrice() != 1499 || up.GetSkus()[0].GetTitle() != "Tee" {
			t.Fatalf("UpdateProduct = %v, %v", up, err)
		}
		if got, _ := s.Product.GetProduct(ctx, &productv1.GetProductRequest{SpuId: p.GetId()}); !proto.Equal(got, up) {
			t.Fatalf("GetProduct after update = %v; want %v", got, up)
		}
		other := create(t, s, shirt(""))
		_, err = s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: p.GetId(), Title: "x",
			Prices: []*productv1.SKUPrice{{SkuId: other.GetSkus()[0].GetId(), Price: 1}}})
		wantErr(t, "UpdateProduct with another product's sku", err, codes.InvalidArgument, "SKU_NOT_IN_PRODUCT")
		_, err = s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: p.GetId(), Title: "x",
			Prices: []*productv1.SKUPrice{{SkuId: a, Price: -1}}})
		wantErr(t, "UpdateProduct with a negative price", err, codes.InvalidArgument, "INVALID_PRICE")
		_, err = s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: id.New(), Title: "x"})
		wantErr(t, "UpdateProduct of an unknown id", err, codes.NotFound, "PRODUCT_NOT_FOUND")

		del, err := s.Product.DeleteProduct(ctx, &productv1.DeleteProductRequest{SpuId: p.GetId()})
		if err != nil || !del.GetChanged() {
			t.Fatalf("DeleteProduct = %v, %v; want changed", del, err)
		}
		del, err = s.Product.DeleteProduct(ctx, &productv1.DeleteProductRequest{SpuId: p.GetId()})
		if err != nil || del.GetChanged() {
			t.Fatalf("DeleteProduct again = %v, %v; want unchanged", del, err)
		}
		_, err = s.Product.DeleteProduct(ctx, &productv1.DeleteProductRequest{SpuId: id.New()})
		wantErr(t, "DeleteProduct of an unknown id", err, codes.NotFound, "PRODUCT_NOT_FOUND")
		_, err = s.Product.GetProduct(ctx, &productv1.GetProductRequest{SpuId: p.GetId()})
		wantErr(t, "GetProduct after delete", err, codes.NotFound, "PRODUCT_NOT_FOUND")
		_, err = s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: p.GetId(), Title: "x"})
		wantErr(t, "UpdateProduct after delete", err, codes.NotFound, "PRODUCT_NOT_FOUND")
		r, err = s.Product.GetSKUs(ctx, &productv1.GetSKUsRequest{SkuIds: []int64{a}})
		if err != nil || len(r.GetSkus()) != 0 || len(r.GetMissingSkuIds()) != 1 {
			t.Fatalf("GetSKUs after delete = %v, %v; want it missing", r, err)
		}
	})
}

func TestListProducts(t *testing.T) {
	onEngines(t, func(t *testing.T, s *product.Service) {
		var ids []int64
		for range 5 {
			ids = append(ids, create(t, s, shirt("")).GetId())
		}
		if _, err := s.Product.DeleteProduct(ctxT(t), &productv1.DeleteProductRequest{SpuId: ids[2]}); err != nil {
			t.Fatal(err)
		}
		var got []int64
		cursor := ""
		for range 5 {
			page, err := s.Product.ListProducts(ctxT(t), &productv1.ListProductsRequest{PageSize: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.GetProducts() {
				if len(p.GetSkus()) != 2 {
					t.Fatalf("listed product %d has %d skus; want 2", p.GetId(), len(p.GetSkus()))
				}
				got = append(got, p.GetId())
			}
			if cursor = page.GetNextCursor(); cursor == "" {
				break
			}
		}
		want := []int64{ids[4], ids[3], ids[1], ids[0]}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
			t.Fatalf("ListProducts = %v; want %v (newest first, deleted left out)", got, want)
		}
		_, err := s.Product.ListProducts(ctxT(t), &productv1.ListProductsRequest{Cursor: "bogus"})
		wantErr(t, "ListProducts with a bad cursor", err, codes.InvalidArgument, "BAD_CURSOR")
	})
}

func TestProductValidation(t *testing.T) {
	s := newService(t, sqlite(t), nil)
	ctx := ctxT(t)
	with := func(edit func(r *productv1.CreateProductRequest)) func() error {
		return func() error {
			r := shirt("")
			edit(r)
			_, err := s.Product.CreateProduct(ctx, r)
			return err
		}
	}
	manyTags := make([]string, 11)
	for i := range manyTags {
		manyTags[i] = string(rune('a' + i))
	}
	manySKUs := make([]*productv1.SKUInput, 51)
	for i := range manySKUs {
		manySKUs[i] = &productv1.SKUInput{Attributes: map[string]string{"n": string(rune('a'+i%26)) + string(rune('a'+i/26))}, Price: 1, Currency: "USD"}
	}
	hundredOne := make([]int64, 101)
	for i := range hundredOne {
		hundredOne[i] = int64(i + 1)
	}
	cases := []struct {
		name, reason string
		call         func() error
	}{
		{"empty title", "INVALID_TITLE", with(func(r *productv1.CreateProductRequest) { r.Title = "  " })},
		{"long title", "INVALID_TITLE", with(func(r *productv1.CreateProductRequest) { r.Title = strings.Repeat("x", 201) })},
		{"control in title", "INVALID_TITLE", with(func(r *productv1.CreateProductRequest) { r.Title = "a\x00b" })},
		{"long description", "INVALID_DESCRIPTION", with(func(r *productv1.CreateProductRequest) { r.Description = strings.Repeat("x", 5001) })},
		{"11 tags", "INVALID_TAGS", with(func(r *productv1.CreateProductRequest) { r.Tags = manyTags })},
		{"blank in tag", "INVALID_TAGS", with(func(r *productv1.CreateProductRequest) { r.Tags = []string{"a b"} })},
		{"no skus", "NO_SKUS", with(func(r *productv1.CreateProductRequest) { r.Skus = nil })},
		{"51 skus", "TOO_MANY_SKUS", with(func(r *productv1.CreateProductRequest) { r.Skus = manySKUs })},
		{"bad attribute name", "INVALID_ATTRIBUTES", with(func(r *productv1.CreateProductRequest) { r.Skus[0].Attributes = map[string]string{"Color": "red"} })},
		{"empty attribute value", "INVALID_ATTRIBUTES", with(func(r *productv1.CreateProductRequest) { r.Skus[0].Attributes = map[string]string{"color": ""} })},
		{"duplicate attributes", "DUPLICATE_ATTRIBUTES", with(func(r *productv1.CreateProductRequest) { r.Skus[1].Attributes = r.Skus[0].Attributes })},
		{"negative price", "INVALID_PRICE", with(func(r *productv1.CreateProductRequest) { r.Skus[0].Price = -1 })},
		{"huge price", "INVALID_PRICE", with(func(r *productv1.CreateProductRequest) { r.Skus[0].Price = 1_000_000_000_001 })},
		{"lower-case currency", "INVALID_CURRENCY", with(func(r *productv1.CreateProductRequest) { r.Skus[0].Currency = "usd" })},
		{"four-letter currency", "INVALID_CURRENCY", with(func(r *productv1.CreateProductRequest) { r.Skus[0].Currency = "USDX" })},
		{"mixed currency", "MIXED_CURRENCY", with(func(r *productv1.CreateProductRequest) { r.Skus[1].Currency = "EUR" })},
		{"long idempotency key", "INVALID_IDEMPOTENCY_KEY", with(func(r *productv1.CreateProductRequest) { r.IdempotencyKey = strings.Repeat("k", 129) })},
		{"GetProduct id 0", "INVALID_PRODUCT_ID", func() error {
			_, err := s.Product.GetProduct(ctx, &productv1.GetProductRequest{})
			return err
		}},
		{"DeleteProduct id 0", "INVALID_PRODUCT_ID", func() error {
			_, err := s.Product.DeleteProduct(ctx, &productv1.DeleteProductRequest{})
			return err
		}},
		{"UpdateProduct empty title", "INVALID_TITLE", func() error {
			_, err := s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: 1})
			return err
		}},
		{"GetSKUs none", "NO_SKUS", func() error {
			_, err := s.Product.GetSKUs(ctx, &productv1.GetSKUsRequest{})
			return err
		}},
		{"GetSKUs 101", "TOO_MANY_SKUS", func() error {
			_, err := s.Product.GetSKUs(ctx, &productv1.GetSKUsRequest{SkuIds: hundredOne})
			return err
		}},
		{"GetSKUs id 0", "INVALID_SKU_ID", func() error {
			_, err := s.Product.GetSKUs(ctx, &productv1.GetSKUsRequest{SkuIds: []int64{1, 0}})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErr(t, c.name, c.call(), codes.InvalidArgument, c.reason) })
	}
	// Nothing of the failed creations was stored.
	if page, err := s.Product.ListProducts(ctx, &productv1.ListProductsRequest{}); err != nil || len(page.GetProducts()) != 0 {
		t.Fatalf("ListProducts after failed creations = %v, %v; want none", page, err)
	}
}

func TestCart(t *testing.T) {
	onEngines(t, func(t *testing.T, s *product.Service) {
		ctx := ctxT(t)
		p := create(t, s, shirt(""))
		a, b := p.GetSkus()[0].GetId(), p.GetSkus()[1].GetId()
		upsert := func(user, sku, qty int64) (*productv1.CartInfo, error) {
			return s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: user, SkuId: sku, Quantity: qty})
		}
		if _, err := upsert(1, a, 2); err != nil {
			t.Fatal(err)
		}
		c, err := upsert(1, b, 1)
		if err != nil || len(c.GetItems()) != 2 || c.Items[0].GetSkuId() != b || c.Items[1].GetQuantity() != 2 ||
			c.Items[1].GetSku().GetPrice() != 1999 || !c.Items[0].GetAvailable() {
			t.Fatalf("cart = %v, %v; want b then a(2) with prices", c, err)
		}
		c, err = upsert(1, a, 5)
		if err != nil || c.Items[1].GetQuantity() != 5 {
			t.Fatalf("cart after setting a to 5 = %v, %v", c, err)
		}
		// Current prices show.
		if _, err := s.Product.UpdateProduct(ctx, &productv1.UpdateProductRequest{SpuId: p.GetId(), Title: "Tee",
			Prices: []*productv1.SKUPrice{{SkuId: a, Price: 5}}}); err != nil {
			t.Fatal(err)
		}
		c, err = s.Cart.GetCart(ctx, &productv1.GetCartRequest{UserId: 1})
		if err != nil || c.Items[1].GetSku().GetPrice() != 5 || c.Items[1].GetSku().GetTitle() != "Tee" {
			t.Fatalf("cart after a price change = %v, %v", c, err)
		}
		c, err = upsert(1, b, 0)
		if err != nil || len(c.GetItems()) != 1 || c.Items[0].GetSkuId() != a {
			t.Fatalf("cart after removing b = %v, %v", c, err)
		}
		_, err = upsert(1, id.New(), 1)
		wantErr(t, "UpsertItem of an unknown sku", err, codes.NotFound, "SKU_NOT_FOUND")
		if other, err := s.Cart.GetCart(ctx, &productv1.GetCartRequest{UserId: 2}); err != nil || len(other.GetItems()) != 0 {
			t.Fatalf("another user's cart = %v, %v; want empty", other, err)
		}
		// A deleted product stays in the cart, unavailable, and cannot be added again.
		if _, err := upsert(1, b, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Product.DeleteProduct(ctx, &productv1.DeleteProductRequest{SpuId: p.GetId()}); err != nil {
			t.Fatal(err)
		}
		c, err = s.Cart.GetCart(ctx, &productv1.GetCartRequest{UserId: 1})
		if err != nil || len(c.GetItems()) != 2 || c.Items[0].GetAvailable() || c.Items[0].GetSku() != nil {
			t.Fatalf("cart after delete = %v, %v; want both items unavailable", c, err)
		}
		_, err = upsert(1, a, 3)
		wantErr(t, "UpsertItem of a deleted product's sku", err, codes.NotFound, "SKU_NOT_FOUND")
		c, err = s.Cart.RemoveItems(ctx, &productv1.RemoveCartItemsRequest{UserId: 1, SkuIds: []int64{a, b, id.New()}})
		if err != nil || len(c.GetItems()) != 0 {
			t.Fatalf("RemoveItems = %v, %v; want an empty cart", c, err)
		}
	})
}

func TestCartLimits(t *testing.T) {
	s := newService(t, sqlite(t), nil)
	ctx := ctxT(t)
	var skus []int64
	for range 3 {
		req := &productv1.CreateProductRequest{Title: "bulk"}
		for i := range 34 {
			req.Skus = append(req.Skus, &productv1.SKUInput{Attributes: map[string]string{"n": strconv.Itoa(i)}, Price: 1, Currency: "USD"})
		}
		for _, k := range create(t, s, req).GetSkus() {
			skus = append(skus, k.GetId())
		}
	}
	for _, sku := range skus[:100] {
		if _, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: 9, SkuId: sku, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: 9, SkuId: skus[100], Quantity: 1})
	wantErr(t, "UpsertItem of a 101st sku", err, codes.FailedPrecondition, "CART_FULL")
	// Changing an item already in a full cart is fine.
	if _, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: 9, SkuId: skus[0], Quantity: 7}); err != nil {
		t.Fatalf("UpsertItem of an item in a full cart = %v", err)
	}
	cases := []struct {
		name, reason string
		call         func() error
	}{
		{"UpsertItem user 0", "INVALID_USER_ID", func() error {
			_, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{SkuId: 1, Quantity: 1})
			return err
		}},
		{"UpsertItem sku 0", "INVALID_SKU_ID", func() error {
			_, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: 1, Quantity: 1})
			return err
		}},
		{"UpsertItem quantity -1", "INVALID_QUANTITY", func() error {
			_, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: 1, SkuId: 1, Quantity: -1})
			return err
		}},
		{"UpsertItem quantity 1001", "INVALID_QUANTITY", func() error {
			_, err := s.Cart.UpsertItem(ctx, &productv1.UpsertCartItemRequest{UserId: 1, SkuId: 1, Quantity: 1001})
			return err
		}},
		{"GetCart user 0", "INVALID_USER_ID", func() error {
			_, err := s.Cart.GetCart(ctx, &productv1.GetCartRequest{})
			return err
		}},
		{"RemoveItems none", "NO_SKUS", func() error {
			_, err := s.Cart.RemoveItems(ctx, &productv1.RemoveCartItemsRequest{UserId: 1})
			return err
		}},
		{"RemoveItems user 0", "INVALID_USER_ID", func() error {
			_, err := s.Cart.RemoveItems(ctx, &productv1.RemoveCartItemsRequest{SkuIds: []int64{1}})
			return err
		}},
	}
	for _, c := range cases {
		wantErr(t, c.name, c.call(), codes.InvalidArgument, c.reason)
	}
}

// failingQueue is a queue that is down: every publish fails.
type failingQueue struct{ mq.Queue }

func (failingQueue) Publish(context.Context, string, []byte) error { return errors.New("queue down") }

// collect subscribes to product events and returns a function that waits for n of them.
func collect(t *testing.T, q mq.Queue) func(n int) []event.ProductEvent {
	var mu sync.Mutex
	var got []event.ProductEvent
	sub, err := q.Subscribe(ctxT(t), event.Product, "product-test", func(_ context.Context, m mq.Message) error {
		var e event.ProductEvent
		if err := event.Decode(m.Subject, m.Data, &e); err != nil {
			return err
		}
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	t.Cleanup(func() { _ = sub.Stop() })
	return func(n int) []event.ProductEvent {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			out := append([]event.ProductEvent(nil), got...)
			mu.Unlock()
			if len(out) >= n {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %d product events within 20s; want %d: %v", len(out), n, out)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// openQueue opens a queue on url with a stream and subject prefix of the test's own.
func openQueue(t *testing.T, url string) mq.Queue {
	t.Helper()
	name := "PRODUCT_TEST_" + strings.ToUpper(strings.ReplaceAll(t.Name(), "/", "_")) + "_" + time.Now().Format("150405.000000")
	name = strings.NewReplacer(".", "_", "-", "_").Replace(name)
	q, err := mq.Open(ctxT(t), url, mq.WithStream(name), mq.WithSubjectPrefix(strings.ToLower(name)), mq.WithMaxAge(time.Hour))
	if err != nil {
		t.Fatalf("mq.Open(%s) = %v", url, err)
	}
	t.Cleanup(func() {
		_ = q.Close()
		nc, err := nats.Connect(url)
		if err != nil {
			t.Errorf("connect to delete stream %s: %v", name, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err == nil {
			err = js.DeleteStream(context.Background(), name)
		}
		if err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	return q
}

// queues are the NATS servers the event tests run on: an embedded one, and the real one
// (REDLINE_TEST_NATS or nats://127.0.0.1:4222) unless REDLINE_SKIP_INTEGRATION=1.
func queues(t *testing.T) map[string]func(t *testing.T) mq.Queue {
	return map[string]func(t *testing.T) mq.Queue{
		"embedded": func(t *testing.T) mq.Queue {
			e, err := mq.StartEmbedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			return openQueue(t, e.URL())
		},
		"nats": func(t *testing.T) mq.Queue {
			if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
				t.Skip("integration tests skipped (REDLINE_SKIP_INTEGRATION=1)")
			}
			url := os.Getenv("REDLINE_TEST_NATS")
			if url == "" {
				url = "nats://127.0.0.1:4222"
			}
			return openQueue(t, url)
		},
	}
}

// TestEvents checks that create, update and delete each publish a ProductEvent with a
// growing Version, and that an event whose publish failed when its change committed is
// published by the next relay to run on the database (as after a crash).
func TestEvents(t *testing.T) {
	for name, open := range queues(t) {
		t.Run(name, func(t *testing.T) {
			q := open(t)
			wait := collect(t, q)
			db := sqlite(t)

			// The queue is down when the product is created: the event waits in the outbox.
			down := newService(t, db, failingQueue{}, product.RelayInterval(time.Hour),
				product.WithLogger(slog.New(slog.DiscardHandler)))
			p := create(t, down, shirt(""))
			if err := down.Close(); err != nil {
				t.Fatal(err)
			}
			s := newService(t, db, q, product.RelayInterval(10*time.Millisecond))
			evs := wait(1)
			if e := evs[0]; e.Op != event.Created || e.ID != p.GetId() || e.Title != "T-shirt" || e.MinPrice != 1499 ||
				e.Currency != "USD" || e.Version != p.GetUpdatedAtMs() {
				t.Fatalf("created event = %+v; want one for %v", e, p)
			}
			if _, err := s.Product.UpdateProduct(ctxT(t), &productv1.UpdateProductRequest{SpuId: p.GetId(), Title: "Tee"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Product.DeleteProduct(ctxT(t), &productv1.DeleteProductRequest{SpuId: p.GetId()}); err != nil {
				t.Fatal(err)
			}
			evs = wait(3)
			if evs[1].Op != event.Updated || evs[1].Title != "Tee" || evs[2].Op != event.Deleted || evs[2].ID != p.GetId() ||
				!(evs[0].Version < evs[1].Version && evs[1].Version < evs[2].Version) {
				t.Fatalf("events = %+v; want created, updated, deleted with growing versions", evs)
			}
			// Nothing is left to publish. The relay removes a row after the server stored its
			// event, so a consumer may see the event a moment before the row goes.
			ctx := ctxT(t)
			for {
				var left int
				err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&left)
				if err == nil && left == 0 {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("outbox rows = %d (%v); want 0", left, err)
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
}

// TestNoQueueNoEvents checks a service without a queue writes nothing to the outbox.
func TestNoQueueNoEvents(t *testing.T) {
	db := sqlite(t)
	s := newService(t, db, nil)
	create(t, s, shirt(""))
	var n int
	if err := db.QueryRowContext(ctxT(t), `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("outbox rows = %d (%v); want 0", n, err)
	}
}

// TestConcurrentUpdates races updates of one product: every one succeeds or reports a
// conflict, and the product ends as one of them wrote it.
func TestConcurrentUpdates(t *testing.T) {
	onEngines(t, func(t *testing.T, s *product.Service) {
		p := create(t, s, shirt(""))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				_, err := s.Product.UpdateProduct(ctxT(t), &productv1.UpdateProductRequest{SpuId: p.GetId(),
					Title: "v" + string(rune('0'+i)), Prices: []*productv1.SKUPrice{{SkuId: p.GetSkus()[0].GetId(), Price: int64(100 + i)}}})
				if err != nil && errs.Reason(err) != "UPDATE_CONFLICT" {
					t.Errorf("UpdateProduct = %v", err)
				}
			})
		}
		wg.Wait()
		got, err := s.Product.GetProduct(ctxT(t), &productv1.GetProductRequest{SpuId: p.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		i := int(got.GetTitle()[1] - '0')
		if got.GetSkus()[0].GetPrice() != int64(100+i) {
			t.Fatalf("product = %v; title and price come from different updates", got)
		}
	})
}
