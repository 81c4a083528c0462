package slo

import "time"

// Defaults returns the SLOs of the demo services' key routes: per service one availability
// SLO (99.9%) and one latency SLO (99% within a bucket bound) over its key routes, and for
// the BFF the same split into reads and writes. All use a rolling 30-day window,
// Occurrences budgeting and the workbook alerts.
//
// Of VALET, these cover Availability and Latency as objectives and Errors as their error
// ratio; Volume is the request rate the rules record (slo:sli_requests:rate5m) with no
// objective, and Tickets come from the incident store, not from metrics.
func Defaults() []SLO {
	const period = 30 * Day
	type group struct {
		service   string
		name      string // "" for the service alone
		routes    []string
		latency   time.Duration
		slowRoute []string // latency routes when they differ from routes
	}
	grpc := func(pkg, svc string, methods ...string) []string {
		out := make([]string, len(methods))
		for i, m := range methods {
			out[i] = "/" + pkg + ".v1." + svc + "/" + m
		}
		return out
	}
	groups := []group{
		{service: "bff", name: "read", latency: 250 * time.Millisecond, routes: []string{
			"GET /v1/notes/{id}", "GET /v1/feed", "GET /v1/explore", "GET /v1/search",
			"GET /v1/products/{id}", "GET /v1/notes/{id}/comments",
		}},
		{service: "bff", name: "write", latency: 500 * time.Millisecond, routes: []string{
			"POST /v1/notes", "POST /v1/sessions", "POST /v1/orders", "POST /v1/orders/{id}/pay",
			"PUT /v1/notes/{id}/like", "POST /v1/notes/{id}/comments",
		}},
		{service: "note", latency: 50 * time.Millisecond, routes: grpc("note", "Note", "GetNote", "GetNotes", "CreateNote")},
		// Login hashes with bcrypt, so it is out of the latency SLO.
		{service: "user", latency: 50 * time.Millisecond, routes: grpc("user", "User", "Login", "GetUser", "GetUsers"),
			slowRoute: grpc("user", "User", "GetUser", "GetUsers")},
		{service: "feed", latency: 100 * time.Millisecond, routes: grpc("feed", "Feed", "HomeFeed", "Explore")},
		{service: "comment", latency: 50 * time.Millisecond, routes: grpc("comment", "Comment", "CreateComment", "ListRoots")},
		{service: "interaction", latency: 25 * time.Millisecond, routes: grpc("interaction", "Interaction", "Like", "GetCounts", "GetViewerState")},
		{service: "history", latency: 50 * time.Millisecond, routes: grpc("history", "History", "RecordView", "List")},
		{service: "search", latency: 100 * time.Millisecond, routes: grpc("search", "Search", "Search")},
		{service: "product", latency: 50 * time.Millisecond, routes: append(grpc("product", "Product", "GetProduct", "GetSKUs"), grpc("product", "Cart", "GetCart")...)},
		{service: "inventory", latency: 50 * time.Millisecond, routes: grpc("inventory", "Inventory", "Reserve", "Confirm", "GetStock")},
		{service: "order", latency: 100 * time.Millisecond, routes: grpc("order", "Order", "CreateOrder", "GetOrder", "MarkPaid")},
		{service: "payment", latency: 250 * time.Millisecond, routes: grpc("payment", "Payment", "Pay", "Callback")},
	}
	var out []SLO
	for _, g := range groups {
		prefix := g.service
		if g.name != "" {
			prefix += "-" + g.name
		}
		lat := g.slowRoute
		if lat == nil {
			lat = g.routes
		}
		out = append(out,
			AvailabilitySLO(g.service, g.routes[0], 0.999, period, WithName(prefix+"-availability"), WithRoutes(g.routes[1:]...),
				WithDescription("99.9% of "+prefix+" key requests succeed (no server fault)")),
			LatencySLO(g.service, lat[0], g.latency, 0.99, period, WithName(prefix+"-latency"), WithRoutes(lat[1:]...),
				WithDescription("99% of "+prefix+" key requests finish within "+g.latency.String())),
		)
	}
	return out
}
