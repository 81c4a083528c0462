// Package service implements the BFF's public JSON API under /v1: it checks tokens,
// validates input at the edge, calls the domain services over gRPC with batched calls, and
// shapes their answers for clients. Ids are strings in JSON, so JavaScript clients keep all
// 64 bits.
//
// Degradation: a list or a note is the essential part of an answer; its author, counters
// and the viewer's state are not. When one of those calls fails in a way the HA suite calls
// degradable (unavailable, slow, shed, breaker open, or switched off with
// ha.degrade.forced), the answer goes out without it and names it in "degraded". A failure
// of the essential call is the edge's to handle: it serves the route's last good answer
// (ha/degrade.LastGood) or the error.
package service

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	historyv1 "github.com/redline-dev/redline/api/history/v1"
	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	orderv1 "github.com/redline-dev/redline/api/order/v1"
	paymentv1 "github.com/redline-dev/redline/api/payment/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	searchv1 "github.com/redline-dev/redline/api/search/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// Clients are the downstream services the BFF calls. Users and Notes are required; a route
// group whose client is nil is not registered, so a partial stack serves what it can.
type Clients struct {
	Users        userv1.UserClient
	Notes        notev1.NoteClient
	Interactions interactionv1.InteractionClient
	Products     productv1.ProductClient
	Carts        productv1.CartClient
	Inventory    inventoryv1.InventoryClient
	Orders       orderv1.OrderClient
	Payments     paymentv1.PaymentClient
	Comments     commentv1.CommentClient
	History      historyv1.HistoryClient
	Search       searchv1.SearchClient
	Feed         feedv1.FeedClient
}

// BFF holds the clients the routes call.
type BFF struct {
	Clients
	signer *auth.Signer
}

// New returns the BFF over its downstream clients.
func New(c Clients, signer *auth.Signer) *BFF {
	return &BFF{Clients: c, signer: signer}
}

// Register adds the /v1 routes to s; after runs on every route after its own middleware.
func (b *BFF) Register(s *kithttp.Server, after ...middleware.Middleware) {
	open := after
	authed := append([]middleware.Middleware{auth.Require(b.signer)}, after...)
	// Anyone may read these; a signed-in caller also gets their own state (liked, collected).
	viewer := append([]middleware.Middleware{auth.Optional(b.signer)}, after...)
	kithttp.Route(s, "POST /v1/users", b.register, open...)
	kithttp.Route(s, "POST /v1/sessions", b.login, open...)
	kithttp.Route(s, "GET /v1/me", b.me, authed...)
	kithttp.Route(s, "PATCH /v1/me", b.updateMe, authed...)
	kithttp.Route(s, "GET /v1/users/{id}", b.user, open...)
	kithttp.Route(s, "GET /v1/users/{id}/notes", b.notesByAuthor, viewer...)
	kithttp.Route(s, "POST /v1/notes", b.createNote, authed...)
	kithttp.Route(s, "GET /v1/notes/{id}", b.note, viewer...)
	kithttp.Route(s, "PATCH /v1/notes/{id}", b.updateNote, authed...)
	kithttp.Route(s, "DELETE /v1/notes/{id}", b.deleteNote, authed...)
	kithttp.Route(s, "GET /v1/tags/{tag}/notes", b.notesByTag, viewer...)
	kithttp.Route(s, "PUT /v1/me/following/{id}", b.follow, authed...)
	kithttp.Route(s, "DELETE /v1/me/following/{id}", b.unfollow, authed...)
	kithttp.Route(s, "GET /v1/users/{id}/followers", b.followers, open...)
	kithttp.Route(s, "GET /v1/users/{id}/following", b.following, open...)
	if b.Interactions != nil {
		kithttp.Route(s, "PUT /v1/notes/{id}/like", b.like, authed...)
		kithttp.Route(s, "DELETE /v1/notes/{id}/like", b.unlike, authed...)
		kithttp.Route(s, "PUT /v1/notes/{id}/collect", b.collect, authed...)
		kithttp.Route(s, "DELETE /v1/notes/{id}/collect", b.uncollect, authed...)
	}
	if b.Feed != nil {
		kithttp.Route(s, "GET /v1/feed", b.home, authed...)
		kithttp.Route(s, "GET /v1/explore", b.explore, viewer...)
	}
	if b.Comments != nil {
		kithttp.Route(s, "POST /v1/notes/{id}/comments", b.createComment, authed...)
		kithttp.Route(s, "GET /v1/notes/{id}/comments", b.threads, open...)
		kithttp.Route(s, "GET /v1/comments/{id}", b.comment, open...)
		kithttp.Route(s, "GET /v1/comments/{id}/replies", b.replies, open...)
		kithttp.Route(s, "DELETE /v1/comments/{id}", b.deleteComment, authed...)
	}
	if b.History != nil {
		kithttp.Route(s, "GET /v1/me/history", b.history, authed...)
		kithttp.Route(s, "DELETE /v1/me/history", b.clearHistory, authed...)
	}
	if b.Search != nil {
		kithttp.Route(s, "GET /v1/search", b.search, open...)
	}
	if b.Products != nil {
		kithttp.Route(s, "GET /v1/products", b.products, open...)
		kithttp.Route(s, "GET /v1/products/{id}", b.product, open...)
	}
	if b.Carts != nil {
		kithttp.Route(s, "GET /v1/cart", b.cart, authed...)
		kithttp.Route(s, "PUT /v1/cart/items/{sku_id}", b.putCartItem, authed...)
		kithttp.Route(s, "DELETE /v1/cart/items/{sku_id}", b.deleteCartItem, authed...)
	}
	if b.Orders != nil {
		kithttp.Route(s, "POST /v1/orders", b.createOrder, authed...)
		kithttp.Route(s, "GET /v1/orders", b.orders, authed...)
		kithttp.Route(s, "GET /v1/orders/{id}", b.order, authed...)
		kithttp.Route(s, "POST /v1/orders/{id}/cancel", b.cancelOrder, authed...)
	}
	if b.Payments != nil {
		kithttp.Route(s, "POST /v1/orders/{id}/pay", b.pay, authed...)
		kithttp.Route(s, "GET /v1/orders/{id}/payment", b.payment, authed...)
		// The provider calls this; the payment service checks the signature.
		kithttp.Route(s, "POST /v1/payments/callback", b.paymentCallback, open...)
	}
}

// Empty is a request with no body and no parameters.
type Empty struct{}

func pathID(r *http.Request, name string) (int64, error) {
	v, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || v <= 0 {
		return 0, errs.InvalidArgument("INVALID_ID", "%s %q is not an id: ids are positive integers", name, r.PathValue(name))
	}
	return v, nil
}

// ByID is a request for one resource by its path id.
type ByID struct{ ID int64 }

// Bind implements kithttp.Binder.
func (p *ByID) Bind(r *http.Request) (err error) {
	p.ID, err = pathID(r, "id")
	return err
}

// ListQuery is the query of a cursor-paginated list: ?cursor=&limit=.
type ListQuery struct {
	ID     int64
	Cursor string
	Limit  int32
}

// MaxLimit is the largest page a client may ask for.
const MaxLimit = 50

// Bind implements kithttp.Binder.
func (q *ListQuery) Bind(r *http.Request) (err error) {
	if q.ID, err = pathID(r, "id"); err != nil {
		return err
	}
	return q.bindPage(r)
}

// bindPage reads ?cursor= and ?limit=.
func (q *ListQuery) bindPage(r *http.Request) error {
	v := r.URL.Query()
	q.Cursor = v.Get("cursor")
	if len(q.Cursor) > 64 || strings.ContainsAny(q.Cursor, " \n") {
		return errs.InvalidArgument("BAD_CURSOR", "cursor is not one this API returned: start again without a cursor")
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return errs.InvalidArgument("BAD_LIMIT", "limit must be 1 to %d", MaxLimit)
		}
		q.Limit = int32(n)
	}
	return nil
}

// Deleted answers a delete: whether this call changed anything (a repeat does not).
type Deleted struct {
	Deleted bool `json:"deleted"`
	Changed bool `json:"changed"`
}

// enumName is how the API spells a protobuf enum value: ORDER_STATE_PENDING_PAYMENT is
// "pending_payment".
func enumName(v fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(v.String(), prefix))
}
