package bff_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/kit/data/mq/mqtest"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestJourney is the README's walk-through as a test: follow, post, see it in a feed, like,
// comment, search, add to cart, order, pay.
func TestJourney(t *testing.T) {
	journey(t, stacktest.Start(t, func(c *stack.Config) { c.Provider.Delay = 0 }), journeyIn{ctx: context.Background(), tag: "x"})
}

// TestJourneyOnPostgresRedisNATS runs the journey on the production stores: every service
// on its own PostgreSQL schema, the cache in Redis, the queue on the NATS server, each
// under a prefix of this test's own.
func TestJourneyOnPostgresRedisNATS(t *testing.T) {
	dsns := map[string]string{}
	for _, svc := range []string{"user", "note", "interaction", "inventory", "product", "order", "payment", "feed",
		"comment", "history", "search"} {
		_, schema := sqldbtest.Postgres(t, "journey_"+svc)
		dsns[svc] = sqldbtest.PostgresURL() + "&search_path=" + schema
	}
	suffix := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_")) + fmt.Sprint(time.Now().UnixNano()%1e9)
	stream := "JOURNEY_" + fmt.Sprint(time.Now().UnixNano()%1e9)
	mqtest.DeleteStreamAtCleanup(t, mqtest.URL, stream)
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Provider.Delay = 0
		c.User.DB, c.Note.DB, c.Interaction.DB, c.Inventory.DB = dsns["user"], dsns["note"], dsns["interaction"], dsns["inventory"]
		c.Product.DB, c.Order.DB, c.Payment.DB, c.Feed.DB = dsns["product"], dsns["order"], dsns["payment"], dsns["feed"]
		c.Comment.DB, c.History.DB, c.Search.DB = dsns["comment"], dsns["history"], dsns["search"]
		c.Cache, c.CachePrefix = "redis://127.0.0.1:6379/0", "journey:"+suffix+":"
		c.Queue, c.QueuePrefix, c.QueueStream = mqtest.URL, "j"+suffix, stream
	})
	journey(t, s, journeyIn{ctx: context.Background(), tag: "x"})
}

// journeyIn is where a journey runs: the baseline, or a lane (its token in lane, its
// baggage in ctx's outgoing gRPC metadata). tag goes into the note's title.
type journeyIn struct {
	lane []string
	ctx  context.Context
	tag  string
}

func journey(t *testing.T, s *stacktest.Running, in journeyIn) {
	lh := in.lane
	alice, aliceID := stacktest.Session(t, s.BFF, "alice", lh...)
	bob, _ := stacktest.Session(t, s.BFF, "bob", lh...)
	auth := func(b string) []string { return append([]string{"Authorization", b}, lh...) }

	// A product with stock, through the admin-side gRPC APIs the seed uses.
	ctx := in.ctx
	p, err := productv1.NewProductClient(s.Conn(t, "product")).CreateProduct(ctx, &productv1.CreateProductRequest{
		Title: "Oolong tea 250g", Description: "high-mountain oolong",
		Skus: []*productv1.SKUInput{{Attributes: map[string]string{"size": "250g"}, Price: 8800, Currency: "CNY"}}})
	if err != nil {
		t.Fatal(err)
	}
	sku := p.GetSkus()[0].GetId()
	if _, err := inventoryv1.NewInventoryClient(s.Conn(t, "inventory")).SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: sku, Quantity: 3}); err != nil {
		t.Fatal(err)
	}

	// Bob follows alice; alice posts a note linking the tea.
	if r := stacktest.Do(t, "PUT", s.BFF+"/v1/me/following/"+aliceID, nil, auth(bob)...); r.Status != 200 {
		t.Fatalf("follow = %d %s", r.Status, r.Body)
	}
	r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "高山乌龙 tasting notes " + in.tag, "body": "floral, buttery",
		"tags": []string{"tea"}, "product_ids": []string{fmt.Sprint(p.GetId())}}, auth(alice)...)
	var n card
	r.JSON(t, &n)
	if r.Status != http.StatusCreated || !strings.Contains(string(r.Body), fmt.Sprintf(`"product_ids":["%d"]`, p.GetId())) {
		t.Fatalf("create note = %d %s", r.Status, r.Body)
	}
	stacktest.Eventually(t, "the note in bob's home feed", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.BFF+"/v1/feed", nil, auth(bob)...)
		return r.Status == 200 && strings.Contains(string(r.Body), n.ID), string(r.Body)
	})
	if r := stacktest.Do(t, "PUT", s.BFF+"/v1/notes/"+n.ID+"/like", nil, auth(bob)...); r.Status != 200 {
		t.Fatalf("like = %d %s", r.Status, r.Body)
	}
	r = stacktest.Do(t, "POST", s.BFF+"/v1/notes/"+n.ID+"/comments", map[string]any{"body": "where do I buy it?"}, auth(bob)...)
	var pending struct{ ID, State string }
	r.JSON(t, &pending)
	if r.Status != http.StatusAccepted || pending.State != "pending" {
		t.Fatalf("comment = %d %s; want 202 pending", r.Status, r.Body)
	}
	stacktest.Eventually(t, "the comment written and listed", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID+"/comments?order=new", nil, lh...)
		return strings.Contains(string(r.Body), pending.ID) && strings.Contains(string(r.Body), `"username":"bob"`), string(r.Body)
	})
	stacktest.Eventually(t, "the note and the product searchable", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.BFF+"/v1/search?q=乌龙", nil, lh...)
		r2 := stacktest.Do(t, "GET", s.BFF+"/v1/search?q=oolong&kind=product", nil, lh...)
		return strings.Contains(string(r.Body), n.ID) && strings.Contains(string(r2.Body), fmt.Sprint(p.GetId())), string(r.Body) + string(r2.Body)
	})
	r = stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil, auth(bob)...)
	if !strings.Contains(string(r.Body), `"likes":1`) || !strings.Contains(string(r.Body), `"liked":true`) {
		t.Fatalf("note card = %s; want bob's like counted and shown", r.Body)
	}
	stacktest.Eventually(t, "the read in bob's history", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.BFF+"/v1/me/history", nil, auth(bob)...)
		return strings.Contains(string(r.Body), `"note_id":"`+n.ID+`"`), string(r.Body)
	})

	// Shop: product page with stock, cart, order (idempotent), pay, provider callback.
	r = stacktest.Do(t, "GET", fmt.Sprintf("%s/v1/products/%d", s.BFF, p.GetId()), nil, lh...)
	if !strings.Contains(string(r.Body), `"stock":3`) {
		t.Fatalf("product = %s; want stock 3", r.Body)
	}
	if r := stacktest.Do(t, "PUT", fmt.Sprintf("%s/v1/cart/items/%d", s.BFF, sku), map[string]any{"quantity": 2}, auth(bob)...); r.Status != 200 ||
		!strings.Contains(string(r.Body), `"totals":[{"amount":17600,"currency":"CNY"}]`) {
		t.Fatalf("cart = %d %s; want a total of 17600 CNY", r.Status, r.Body)
	}
	order := map[string]any{"items": []map[string]any{{"sku_id": fmt.Sprint(sku), "quantity": 2}}, "from_cart": true}
	first := stacktest.Do(t, "POST", s.BFF+"/v1/orders", order, append(auth(bob), "Idempotency-Key", "checkout-1")...)
	again := stacktest.Do(t, "POST", s.BFF+"/v1/orders", order, append(auth(bob), "Idempotency-Key", "checkout-1")...)
	if first.Status != http.StatusCreated || string(first.Body) != string(again.Body) || again.Status != first.Status {
		t.Fatalf("order twice with one key = %d %s / %d %s; want one order, the same response", first.Status, first.Body, again.Status, again.Body)
	}
	var o struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	first.JSON(t, &o)
	if o.State != "pending_payment" {
		t.Fatalf("order = %s; want pending_payment", first.Body)
	}
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/cart", nil, auth(bob)...); !strings.Contains(string(r.Body), `"items":[]`) {
		t.Fatalf("cart after ordering from it = %s; want empty", r.Body)
	}
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/orders", map[string]any{"items": []map[string]any{{"sku_id": fmt.Sprint(sku), "quantity": 2}}},
		append(auth(alice), "Idempotency-Key", "checkout-2")...); r.Status != http.StatusPreconditionFailed || r.Reason() != "OUT_OF_STOCK" {
		t.Fatalf("ordering more than the stock left = %d %s; want 412 OUT_OF_STOCK", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/orders/"+o.ID+"/pay", nil, auth(bob)...); r.Status != 200 {
		t.Fatalf("pay = %d %s", r.Status, r.Body)
	}
	stacktest.Eventually(t, "the provider's callback marking the order paid", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.BFF+"/v1/orders/"+o.ID, nil, auth(bob)...)
		return strings.Contains(string(r.Body), `"state":"paid"`), string(r.Body)
	})
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/orders/"+o.ID+"/payment", nil, auth(bob)...); !strings.Contains(string(r.Body), `"state":"succeeded"`) {
		t.Fatalf("payment = %s; want succeeded", r.Body)
	}
	st, err := inventoryv1.NewInventoryClient(s.Conn(t, "inventory")).GetStock(ctx, &inventoryv1.GetStockRequest{SkuIds: []int64{sku}})
	if err != nil || st.GetStocks()[0].GetAvailable() != 1 || st.GetStocks()[0].GetReserved() != 0 {
		t.Fatalf("stock after a paid order of 2 = %v, %v; want 1 available, 0 reserved", st, err)
	}
	// A forged callback is refused and changes nothing.
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/payments/callback", `{"payment_id":"1","status":"succeeded"}`,
		append([]string{"X-Redline-Signature", strings.Repeat("0", 64)}, lh...)...); r.Status != http.StatusUnauthorized {
		t.Fatalf("forged callback = %d %s; want 401", r.Status, r.Body)
	}
	// Someone else's order is not found, and routes need their token.
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/orders/"+o.ID, nil, auth(alice)...); r.Status != http.StatusNotFound {
		t.Fatalf("alice reading bob's order = %d %s; want 404", r.Status, r.Body)
	}
	for _, route := range []string{"GET /v1/feed", "GET /v1/cart", "GET /v1/orders", "GET /v1/me/history", "POST /v1/orders"} {
		method, path, _ := strings.Cut(route, " ")
		if r := stacktest.Do(t, method, s.BFF+path, nil, lh...); r.Status != http.StatusUnauthorized {
			t.Errorf("%s without a token = %d; want 401", route, r.Status)
		}
	}
}
