// Package meta carries the cross-hop request metadata of DESIGN.md section 5 — request id,
// criticality, retry attempt and lane — in a context.Context, and moves it over any
// string-keyed carrier (HTTP headers, gRPC metadata, NATS message headers).
//
// Deadlines travel with the context itself; the transports put them on the wire
// (grpc-timeout on gRPC, HeaderTimeout on HTTP). Trace context is kit/trace's business.
package meta

import (
	"context"
	"strconv"
	"strings"
)

// Wire names of the metadata. gRPC metadata keys are lower case; HTTP headers are
// case-insensitive, so the same names serve both.
const (
	HeaderRequestID   = "x-request-id"
	HeaderCriticality = "x-redline-criticality"
	HeaderAttempt     = "x-redline-attempt"
	// HeaderTimeout carries the remaining deadline over HTTP as a Go duration ("49.5ms").
	HeaderTimeout = "x-redline-timeout"
	// HeaderLaneToken carries a signed lane token (stress/lane) into the edge: the only way
	// a lane enters from outside.
	HeaderLaneToken = "x-redline-lane"
	// QueryLaneToken is the query parameter that carries a lane token where a caller cannot
	// set headers: a third party's webhook, such as the payment provider's callback.
	QueryLaneToken = "redline_lane"
	// HeaderBaggage is the W3C baggage header; the lane is its member "lane".
	HeaderBaggage = "baggage"
	// BaggageLane is the W3C baggage member that names the lane.
	BaggageLane = "lane"
)

// Criticality says how much a request matters when a server must shed load. The zero value
// is Critical, the default for requests that do not say.
type Criticality int8

// The four levels of the SRE book, highest first. Shedding drops the lowest first.
const (
	Critical      Criticality = 0
	CriticalPlus  Criticality = 1
	SheddablePlus Criticality = -1
	Sheddable     Criticality = -2
)

// String returns the wire name, e.g. "CRITICAL_PLUS".
func (c Criticality) String() string {
	switch c {
	case CriticalPlus:
		return "CRITICAL_PLUS"
	case SheddablePlus:
		return "SHEDDABLE_PLUS"
	case Sheddable:
		return "SHEDDABLE"
	default:
		return "CRITICAL"
	}
}

// ParseCriticality parses a wire name. Unknown names report ok=false.
func ParseCriticality(s string) (c Criticality, ok bool) {
	switch strings.ToUpper(s) {
	case "CRITICAL_PLUS":
		return CriticalPlus, true
	case "CRITICAL", "":
		return Critical, true
	case "SHEDDABLE_PLUS":
		return SheddablePlus, true
	case "SHEDDABLE":
		return Sheddable, true
	}
	return Critical, false
}

// MD is the metadata of one request.
type MD struct {
	RequestID   string
	Criticality Criticality
	// Attempt is 0 for a first try and n for the n-th retry.
	Attempt int
	// Lane is the traffic color; "" is the baseline.
	Lane string
}

type ctxKey struct{}

// mdCtx holds MD inline: one allocation per request instead of the two that
// context.WithValue would take (the value ctx and the boxed MD).
type mdCtx struct {
	context.Context
	md MD
}

func (c *mdCtx) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// NewContext returns ctx carrying md.
func NewContext(ctx context.Context, md MD) context.Context {
	return &mdCtx{Context: ctx, md: md}
}

// FromContext returns the metadata in ctx, or the zero MD.
func FromContext(ctx context.Context) MD {
	if c, ok := ctx.Value(ctxKey{}).(*mdCtx); ok {
		return c.md
	}
	return MD{}
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string { return FromContext(ctx).RequestID }

// Lane returns the lane in ctx, or "" for the baseline.
func Lane(ctx context.Context) string { return FromContext(ctx).Lane }

// ShadowLane is the lane of work on shadow data that no lane request started: a shadow
// service's background loops, a queued message that lost its lane. Routing treats it as any
// other lane, so it can only reach shadow data.
const ShadowLane = "shadow"

// WithLane returns ctx with its lane set to lane.
func WithLane(ctx context.Context, lane string) context.Context {
	md := FromContext(ctx)
	md.Lane = lane
	return NewContext(ctx, md)
}

// Carrier is a string map on the wire. http.Header and gRPC metadata adapt to it.
type Carrier interface {
	Get(key string) string
	Set(key, value string)
}

// MapCarrier adapts a map, such as NATS headers flattened to one value per key.
type MapCarrier map[string]string

// Get implements Carrier.
func (m MapCarrier) Get(k string) string { return m[strings.ToLower(k)] }

// Set implements Carrier.
func (m MapCarrier) Set(k, v string) { m[strings.ToLower(k)] = v }

// Inject writes the metadata of ctx to c. Defaults (critical, first attempt, baseline lane)
// are left off the wire.
func Inject(ctx context.Context, c Carrier) {
	md := FromContext(ctx)
	if md.RequestID != "" {
		c.Set(HeaderRequestID, md.RequestID)
	}
	if md.Criticality != Critical {
		c.Set(HeaderCriticality, md.Criticality.String())
	}
	if md.Attempt > 0 {
		c.Set(HeaderAttempt, strconv.Itoa(md.Attempt))
	}
	if md.Lane != "" {
		c.Set(HeaderBaggage, BaggageLane+"="+md.Lane)
	}
}

// Extract reads metadata from c. Values that do not parse are dropped, never trusted:
// a bad criticality becomes Critical, a bad attempt 0, a bad lane the baseline.
func Extract(c Carrier) MD {
	var md MD
	if id := c.Get(HeaderRequestID); ValidRequestID(id) {
		md.RequestID = id
	}
	if v := c.Get(HeaderCriticality); v != "" {
		md.Criticality, _ = ParseCriticality(v)
	}
	if v := c.Get(HeaderAttempt); v != "" { // Atoi("") would allocate its error
		if a, err := strconv.Atoi(v); err == nil && a > 0 && a < 100 {
			md.Attempt = a
		}
	}
	if v := c.Get(HeaderBaggage); v != "" {
		md.Lane = LaneFromBaggage(v)
	}
	return md
}

// ValidRequestID reports whether id is an acceptable inbound request id: 1 to 128 bytes of
// printable ASCII without spaces, so it is safe to log and to echo.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// ValidLane reports whether name is a lane name: 1 to 32 of [a-z0-9-], starting with a letter.
func ValidLane(name string) bool {
	if name == "" || len(name) > 32 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// LaneFromBaggage returns the lane member of a W3C baggage header, or "" when it is absent
// or invalid. Member properties (after ';') are ignored.
func LaneFromBaggage(baggage string) string {
	for baggage != "" {
		var member string
		member, baggage, _ = strings.Cut(baggage, ",")
		member, _, _ = strings.Cut(member, ";")
		k, v, ok := strings.Cut(member, "=")
		if !ok || strings.TrimSpace(k) != BaggageLane {
			continue
		}
		v = strings.TrimSpace(v)
		if ValidLane(v) {
			return v
		}
		return ""
	}
	return ""
}
