package scenario

import "strings"

// RedNoteRoutes is the public API of the RedNote BFF (the README's route table, and
// services/bff's Register), as mux patterns for Routes.
var RedNoteRoutes = []string{
	"POST /v1/users",
	"POST /v1/sessions",
	"GET /v1/me",
	"PATCH /v1/me",
	"GET /v1/users/{id}",
	"GET /v1/users/{id}/notes",
	"POST /v1/notes",
	"GET /v1/notes/{id}",
	"PATCH /v1/notes/{id}",
	"DELETE /v1/notes/{id}",
	"GET /v1/tags/{tag}/notes",
	"PUT /v1/me/following/{id}",
	"DELETE /v1/me/following/{id}",
	"GET /v1/users/{id}/followers",
	"GET /v1/users/{id}/following",
	"GET /v1/feed",
	"GET /v1/explore",
	"PUT /v1/notes/{id}/like",
	"DELETE /v1/notes/{id}/like",
	"PUT /v1/notes/{id}/collect",
	"DELETE /v1/notes/{id}/collect",
	"POST /v1/notes/{id}/comments",
	"GET /v1/notes/{id}/comments",
	"GET /v1/comments/{id}",
	"GET /v1/comments/{id}/replies",
	"DELETE /v1/comments/{id}",
	"GET /v1/me/history",
	"DELETE /v1/me/history",
	"GET /v1/search",
	"GET /v1/products",
	"GET /v1/products/{id}",
	"GET /v1/cart",
	"PUT /v1/cart/items/{sku_id}",
	"DELETE /v1/cart/items/{sku_id}",
	"POST /v1/orders",
	"GET /v1/orders",
	"GET /v1/orders/{id}",
	"POST /v1/orders/{id}/cancel",
	"POST /v1/orders/{id}/pay",
	"GET /v1/orders/{id}/payment",
	"POST /v1/payments/callback",
}

// route is a parsed pattern: a method and path segments, "" for a {wildcard}.
type route struct {
	method string
	segs   []string
}

func parseRoute(p string) route {
	method, path, _ := strings.Cut(p, " ")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = ""
		}
	}
	return route{method: method, segs: segs}
}

// matchRoute reports whether a step's method and path template match one of routes. A
// segment with a template action in it matches only a wildcard; a literal segment must be
// spelled out.
func matchRoute(routes []route, method, pathTemplate string) bool {
	segs := strings.Split(strings.Trim(staticPath(pathTemplate), "/"), "/")
	for _, r := range routes {
		if r.method != method || len(r.segs) != len(segs) {
			continue
		}
		ok := true
		for i, s := range segs {
			switch {
			case r.segs[i] == "":
				ok = s != ""
			case strings.Contains(s, dynamic):
				ok = false
			default:
				ok = s == r.segs[i]
			}
			if !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
