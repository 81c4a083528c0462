package bff_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestEveryRouteRefusesBadCalls covers the failure answers of every public route: without a
// token (where one is needed), with invalid input, and for what does not exist. Each must be
// a 4xx with a reason; the journey and the other tests cover the successes.
func TestEveryRouteRefusesBadCalls(t *testing.T) {
	s := stacktest.Start(t, nil)
	bearer, _ := stacktest.Session(t, s.BFF, "carol")
	// Every route that needs a token refuses a call without one, and a forged one.
	authed := []string{"GET /v1/me", "PATCH /v1/me", "POST /v1/notes", "PATCH /v1/notes/1", "DELETE /v1/notes/1",
		"PUT /v1/me/following/1", "DELETE /v1/me/following/1", "PUT /v1/notes/1/like", "DELETE /v1/notes/1/like",
		"PUT /v1/notes/1/collect", "DELETE /v1/notes/1/collect", "GET /v1/feed", "POST /v1/notes/1/comments",
		"DELETE /v1/comments/1", "GET /v1/me/history", "DELETE /v1/me/history", "GET /v1/cart",
		"PUT /v1/cart/items/1", "DELETE /v1/cart/items/1", "POST /v1/orders", "GET /v1/orders", "GET /v1/orders/1",
		"POST /v1/orders/1/cancel", "POST /v1/orders/1/pay", "GET /v1/orders/1/payment"}
	for _, route := range authed {
		method, path, _ := strings.Cut(route, " ")
		for _, token := range []string{"", "Bearer v1.1.9999999999.forged"} {
			var h []string
			if token != "" {
				h = []string{"Authorization", token}
			}
			if r := stacktest.Do(t, method, s.BFF+path, nil, h...); r.Status != http.StatusUnauthorized || r.Reason() == "" {
				t.Errorf("%s with token %q = %d %s; want 401 with a reason", route, token, r.Status, r.Body)
			}
		}
	}

	a := []string{"Authorization", bearer}
	key := append([]string{"Idempotency-Key", "k1"}, a...)
	for _, tc := range []struct {
		route  string
		body   any
		h      []string
		status int
		reason string
	}{
		// Validation.
		{"GET /v1/explore?kind=viral", nil, nil, 400, "INVALID_KIND"},
		{"GET /v1/explore?limit=0", nil, nil, 400, "BAD_LIMIT"},
		{"GET /v1/feed?cursor=not%20ours", nil, a, 400, "BAD_CURSOR"},
		{"GET /v1/notes/x/comments", nil, nil, 400, "INVALID_ID"},
		{"POST /v1/notes/1/comments", map[string]any{"body": "hi", "root_id": "x"}, a, 400, "INVALID_ID"},
		{"POST /v1/notes/1/comments", map[string]any{"bdy": "hi"}, a, 400, "UNKNOWN_FIELD"},
		{"GET /v1/comments/0", nil, nil, 400, "INVALID_ID"},
		{"GET /v1/comments/x/replies", nil, nil, 400, "INVALID_ID"},
		{"GET /v1/me/history?limit=999", nil, a, 400, "BAD_LIMIT"},
		{"GET /v1/search?q=", nil, nil, 400, "INVALID_QUERY"},
		{"GET /v1/search?q=x&kind=people", nil, nil, 400, "INVALID_KIND"},
		{"GET /v1/search?q=%21%21%21", nil, nil, 400, "NO_TERMS"},
		{"GET /v1/products?limit=0", nil, nil, 400, "BAD_LIMIT"},
		{"GET /v1/products/x", nil, nil, 400, "INVALID_ID"},
		{"PUT /v1/cart/items/x", map[string]any{"quantity": 1}, a, 400, "INVALID_ID"},
		{"PUT /v1/cart/items/1", map[string]any{}, a, 400, "QUANTITY_REQUIRED"},
		{"PUT /v1/cart/items/1", map[string]any{"quantity": -1}, a, 400, "INVALID_QUANTITY"},
		{"POST /v1/orders", map[string]any{"items": []any{}}, key, 400, "NO_ITEMS"},
		{"POST /v1/orders", map[string]any{"items": []map[string]any{{"sku_id": "1", "quantity": 1}}}, a, 400, "IDEMPOTENCY_KEY_REQUIRED"},
		{"POST /v1/orders", map[string]any{"items": []map[string]any{{"sku_id": "abc", "quantity": 1}}}, key, 400, "INVALID_SKU_ID"},
		{"POST /v1/orders", map[string]any{"items": []map[string]any{{"sku_id": "1", "quantity": 0}}}, key, 400, "INVALID_QUANTITY"},
		{"POST /v1/orders/x/pay", nil, a, 400, "INVALID_ID"},
		{"POST /v1/orders/1/cancel", map[string]any{"why": "x"}, a, 400, "UNKNOWN_FIELD"},
		{"POST /v1/payments/callback", `{}`, nil, 401, "SIGNATURE_MISSING"},
		{"POST /v1/payments/callback", `{}`, []string{"X-Redline-Signature", "00"}, 401, "BAD_SIGNATURE"},
		// Not found.
		{"GET /v1/notes/404/comments", nil, nil, 404, "NOTE_NOT_FOUND"},
		{"POST /v1/notes/404/comments", map[string]any{"body": "hi"}, a, 404, "NOTE_NOT_FOUND"},
		{"GET /v1/comments/404", nil, nil, 404, "COMMENT_NOT_FOUND"},
		{"DELETE /v1/comments/404", nil, a, 404, "COMMENT_NOT_FOUND"},
		{"GET /v1/comments/404/replies", nil, nil, 404, "ROOT_NOT_FOUND"},
		{"GET /v1/products/404", nil, nil, 404, "PRODUCT_NOT_FOUND"},
		{"PUT /v1/cart/items/404", map[string]any{"quantity": 1}, a, 404, ""},
		{"POST /v1/orders", map[string]any{"items": []map[string]any{{"sku_id": "404", "quantity": 1}}}, key, 412, "SKU_NOT_FOUND"},
		{"GET /v1/orders/404", nil, a, 404, "ORDER_NOT_FOUND"},
		{"POST /v1/orders/404/cancel", nil, a, 404, "ORDER_NOT_FOUND"},
		{"POST /v1/orders/404/pay", nil, a, 404, "ORDER_NOT_FOUND"},
		{"GET /v1/orders/404/payment", nil, a, 404, "PAYMENT_NOT_FOUND"},
		{"PUT /v1/notes/404/collect", nil, a, 404, "NOTE_NOT_FOUND"},
	} {
		method, path, _ := strings.Cut(tc.route, " ")
		r := stacktest.Do(t, method, s.BFF+path, tc.body, tc.h...)
		if r.Status != tc.status || r.Reason() == "" || (tc.reason != "" && r.Reason() != tc.reason) {
			t.Errorf("%s %v = %d %s; want %d %s", tc.route, tc.body, r.Status, r.Body, tc.status, tc.reason)
		}
	}
}
