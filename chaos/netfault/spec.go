package netfault

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redline-dev/redline/kit/errs"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// Types of toxic: what a proxy does to the bytes of its connections.
const (
	TypeLatency   = "latency"
	TypeBandwidth = "bandwidth"
	TypeResetPeer = "reset_peer"
	TypeTimeout   = "timeout"
	TypeSlicer    = "slicer"
	TypeLimitData = "limit_data"
)

// Streams: the direction of the bytes a toxic acts on.
const (
	// Upstream is from the client to the upstream (requests).
	Upstream = "upstream"
	// Downstream is from the upstream back to the client (responses). The default.
	Downstream = "downstream"
)

// Defaults and bounds.
const (
	// DefaultTTL is the life of a toxic or an outage that sets no ttl.
	DefaultTTL = 5 * time.Minute
	// DefaultMaxTTL is the longest a toxic or an outage may live unless WithMaxTTL says
	// otherwise.
	DefaultMaxTTL = time.Hour
	// MaxDuration bounds every duration attribute (latency + jitter, timeouts, slicer
	// delay), so no toxic parks bytes for good.
	MaxDuration = time.Hour
	// MaxToxics bounds the active toxics of a Proxies: each one is a goroutine per
	// connection and direction.
	MaxToxics = 100
	// MaxBody bounds the body of the admin API's POSTs.
	MaxBody = 64 << 10
)

// Reasons of the errors this package returns.
const (
	// ReasonBadNetFault is the reason of a refused toxic or outage spec; metadata "field"
	// names the field.
	ReasonBadNetFault = "BAD_NET_FAULT"
	// ReasonProxyNotFound is the reason of an operation on an unknown proxy.
	ReasonProxyNotFound = "NET_PROXY_NOT_FOUND"
	// ReasonProxyExists is the reason of Add with a name already in use.
	ReasonProxyExists = "NET_PROXY_EXISTS"
	// ReasonToxicNotFound is the reason of RemoveToxic on an unknown id.
	ReasonToxicNotFound = "NET_TOXIC_NOT_FOUND"
	// ReasonToxicExists is the reason of AddToxic with an id already in use.
	ReasonToxicExists = "NET_TOXIC_EXISTS"
	// ReasonTooManyToxics is the reason of AddToxic beyond MaxToxics.
	ReasonTooManyToxics = "TOO_MANY_NET_TOXICS"
	// ReasonProxyFailed is the reason of a proxy that cannot listen (Add, Enable).
	ReasonProxyFailed = "NET_PROXY_FAILED"
)

// ToxicSpec is one toxic as written in the admin API (JSON) or a config (YAML). Durations
// are strings such as "250ms"; see the package doc for the attributes of each type.
type ToxicSpec struct {
	// ID names the toxic: [a-z0-9-]{1,40}; assigned when empty.
	ID string `json:"id,omitempty" koanf:"id"`
	// Proxy is the name of the proxy the toxic sits on.
	Proxy string `json:"proxy" koanf:"proxy"`
	// Type is latency, bandwidth, reset_peer, timeout, slicer or limit_data.
	Type string `json:"type" koanf:"type"`
	// Stream is upstream (client to server) or downstream (server to client, the default).
	Stream string `json:"stream,omitempty" koanf:"stream"`
	// Toxicity is the share of connections the toxic acts on, in (0, 1]; omitted means 1.
	// Each connection draws once, when it opens (or when the toxic is added).
	Toxicity *float64 `json:"toxicity,omitempty" koanf:"toxicity"`
	// Attributes are the type's settings.
	Attributes Attributes `json:"attributes" koanf:"attributes"`
	// TTL is how long the toxic lives: DefaultTTL when empty, at most MaxTTL.
	TTL string `json:"ttl,omitempty" koanf:"ttl"`
	// Reason says who set the toxic and why.
	Reason string `json:"reason,omitempty" koanf:"reason"`
}

// Attributes are the settings of a toxic. Each type takes its own and refuses the others.
type Attributes struct {
	// Latency delays every chunk of a latency toxic (whole milliseconds, > 0).
	Latency string `json:"latency,omitempty" koanf:"latency"`
	// Jitter varies a latency toxic's delay uniformly by ± jitter (whole milliseconds).
	Jitter string `json:"jitter,omitempty" koanf:"jitter"`
	// Rate is a bandwidth toxic's limit in KB/s (> 0).
	Rate int64 `json:"rate,omitempty" koanf:"rate"`
	// Timeout: for reset_peer, how long after the first bytes the connection is reset
	// (0: at once); for timeout, how long bytes are swallowed before the connection is
	// closed (0: until the toxic goes). Whole milliseconds.
	Timeout string `json:"timeout,omitempty" koanf:"timeout"`
	// AverageSize is the mean size in bytes of a slicer toxic's slices (> 0).
	AverageSize int `json:"average_size,omitempty" koanf:"average_size"`
	// SizeVariation varies the slice size by ± this many bytes (< average_size).
	SizeVariation int `json:"size_variation,omitempty" koanf:"size_variation"`
	// Delay is a slicer toxic's pause between slices (whole microseconds).
	Delay string `json:"delay,omitempty" koanf:"delay"`
	// Bytes is how many bytes a limit_data toxic lets through before it closes the
	// connection (> 0).
	Bytes int64 `json:"bytes,omitempty" koanf:"bytes"`
}

// OutageSpec is the body of POST /chaos/net/proxies/{name}/disable.
type OutageSpec struct {
	// TTL is how long the proxy stays disabled: DefaultTTL when empty, at most MaxTTL.
	TTL string `json:"ttl,omitempty" koanf:"ttl"`
	// Reason says who took the dependency away and why.
	Reason string `json:"reason,omitempty" koanf:"reason"`
}

// ParseToxic decodes one toxic spec from JSON, strictly (unknown fields, trailing data and
// wrong types are errors), and validates it.
func ParseToxic(data []byte) (ToxicSpec, error) {
	var s ToxicSpec
	if err := kithttp.DecodeJSON(bytes.NewReader(data), int64(len(data)), &s); err != nil {
		return ToxicSpec{}, err
	}
	return s, s.Validate()
}

// Validate checks s on its own; a Proxies also checks that the proxy exists and bounds the
// ttl by its MaxTTL. The error is InvalidArgument with reason BAD_NET_FAULT; its message
// and metadata "field" name the field.
func (s ToxicSpec) Validate() error {
	if _, fe := compileToxic(s); fe != nil {
		return fe.err()
	}
	return nil
}

// Validate checks s on its own, as ToxicSpec.Validate does.
func (s OutageSpec) Validate() error {
	if _, fe := compileOutage(s); fe != nil {
		return fe.err()
	}
	return nil
}

// fieldError is a refused field of a spec.
type fieldError struct{ field, msg string }

func bad(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

func (fe *fieldError) err() *errs.Error {
	return errs.InvalidArgument(ReasonBadNetFault, "netfault: %s: %s", fe.field, fe.msg).WithMetadata("field", fe.field)
}

// compiled is a validated toxic spec: what the library's toxic JSON needs, and the ttl.
type compiled struct {
	spec     ToxicSpec
	stream   string
	toxicity float64
	attrs    map[string]int64 // the library's attribute names, in its units
	ttl      time.Duration    // 0: the default
}

// attrNames lists the attributes each type takes, by their JSON names.
var attrNames = map[string][]string{
	TypeLatency:   {"latency", "jitter"},
	TypeBandwidth: {"rate"},
	TypeResetPeer: {"timeout"},
	TypeTimeout:   {"timeout"},
	TypeSlicer:    {"average_size", "size_variation", "delay"},
	TypeLimitData: {"bytes"},
}

const typeList = "latency, bandwidth, reset_peer, timeout, slicer or limit_data"

// compileToxic validates s and turns it into what AddToxic needs. It reports the first
// bad field.
func compileToxic(s ToxicSpec) (*compiled, *fieldError) {
	c := &compiled{spec: s, stream: Downstream, toxicity: 1, attrs: map[string]int64{}}
	if s.ID != "" && !validName(s.ID, 40) {
		return nil, bad("id", "%q is not [a-z0-9-]{1,40}", s.ID)
	}
	if s.Proxy == "" {
		return nil, bad("proxy", "missing; name the proxy, such as redis or note")
	}
	if !validName(s.Proxy, 64) {
		return nil, bad("proxy", "%q is not a proxy name ([a-z0-9-]{1,64})", s.Proxy)
	}
	switch s.Type {
	case "":
		return nil, bad("type", "missing; want %s", typeList)
	case TypeLatency, TypeBandwidth, TypeResetPeer, TypeTimeout, TypeSlicer, TypeLimitData:
	default:
		return nil, bad("type", "%q is not %s", s.Type, typeList)
	}
	switch s.Stream {
	case "":
	case Upstream, Downstream:
		c.stream = s.Stream
	default:
		return nil, bad("stream", "%q is not upstream or downstream", s.Stream)
	}
	if s.Toxicity != nil {
		t := *s.Toxicity
		if math.IsNaN(t) || t <= 0 || t > 1 {
			return nil, bad("toxicity", "%s is not in (0, 1]; remove the toxic to turn it off", strconv.FormatFloat(t, 'g', -1, 64))
		}
		c.toxicity = t
	}
	if fe := attributes(c, s.Type, s.Attributes); fe != nil {
		return nil, fe
	}
	ttl, fe := ttlField(s.TTL)
	if fe != nil {
		return nil, fe
	}
	c.ttl = ttl
	if fe := text("reason", s.Reason, 512); fe != nil {
		return nil, fe
	}
	return c, nil
}

func attributes(c *compiled, typ string, a Attributes) *fieldError {
	set := map[string]bool{"latency": a.Latency != "", "jitter": a.Jitter != "", "rate": a.Rate != 0,
		"timeout": a.Timeout != "", "average_size": a.AverageSize != 0, "size_variation": a.SizeVariation != 0,
		"delay": a.Delay != "", "bytes": a.Bytes != 0}
	for _, n := range []string{"latency", "jitter", "rate", "timeout", "average_size", "size_variation", "delay", "bytes"} {
		if set[n] && !slices.Contains(attrNames[typ], n) {
			return bad("attributes."+n, "a %s toxic takes no %s (it takes %s)", typ, n, strings.Join(attrNames[typ], ", "))
		}
	}
	switch typ {
	case TypeLatency:
		if a.Latency == "" {
			return bad("attributes.latency", "a latency toxic needs a latency, such as 250ms")
		}
		lat, fe := duration("attributes.latency", a.Latency, time.Millisecond, false)
		if fe != nil {
			return fe
		}
		var jit time.Duration
		if a.Jitter != "" {
			if jit, fe = duration("attributes.jitter", a.Jitter, time.Millisecond, true); fe != nil {
				return fe
			}
		}
		if lat+jit > MaxDuration {
			return bad("attributes.latency", "latency and jitter add up to more than %v", MaxDuration)
		}
		c.attrs["latency"], c.attrs["jitter"] = lat.Milliseconds(), jit.Milliseconds()
	case TypeBandwidth:
		if a.Rate <= 0 {
			return bad("attributes.rate", "%d: a bandwidth toxic needs a rate in KB/s above zero", a.Rate)
		}
		c.attrs["rate"] = a.Rate
	case TypeResetPeer, TypeTimeout:
		var d time.Duration
		if a.Timeout != "" {
			var fe *fieldError
			if d, fe = duration("attributes.timeout", a.Timeout, time.Millisecond, true); fe != nil {
				return fe
			}
		}
		c.attrs["timeout"] = d.Milliseconds()
	case TypeSlicer:
		if a.AverageSize <= 0 {
			return bad("attributes.average_size", "%d: a slicer toxic needs an average_size in bytes above zero", a.AverageSize)
		}
		if a.SizeVariation < 0 || a.SizeVariation >= a.AverageSize {
			return bad("attributes.size_variation", "%d is not in [0, average_size)", a.SizeVariation)
		}
		var d time.Duration
		if a.Delay != "" {
			var fe *fieldError
			if d, fe = duration("attributes.delay", a.Delay, time.Microsecond, true); fe != nil {
				return fe
			}
		}
		c.attrs["average_size"], c.attrs["size_variation"], c.attrs["delay"] = int64(a.AverageSize), int64(a.SizeVariation), d.Microseconds()
	case TypeLimitData:
		if a.Bytes <= 0 {
			return bad("attributes.bytes", "%d: a limit_data toxic needs a number of bytes above zero", a.Bytes)
		}
		c.attrs["bytes"] = a.Bytes
	}
	return nil
}

// outage is a validated outage spec.
type outage struct {
	ttl time.Duration // 0: the default
}

func compileOutage(s OutageSpec) (*outage, *fieldError) {
	ttl, fe := ttlField(s.TTL)
	if fe != nil {
		return nil, fe
	}
	if fe := text("reason", s.Reason, 512); fe != nil {
		return nil, fe
	}
	return &outage{ttl: ttl}, nil
}

func ttlField(s string) (time.Duration, *fieldError) {
	if s == "" {
		return 0, nil
	}
	return duration("ttl", s, 0, false)
}

// duration parses a duration field: > 0 (>= 0 when zeroOK), at most MaxDuration, and a
// whole number of unit when unit > 0 (the library's granularity).
func duration(field, s string, unit time.Duration, zeroOK bool) (time.Duration, *fieldError) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, bad(field, "%q is not a duration such as 250ms", s)
	}
	switch {
	case d < 0:
		return 0, bad(field, "%v is negative", d)
	case d == 0 && !zeroOK:
		return 0, bad(field, "%v is not above zero", d)
	case d > MaxDuration:
		return 0, bad(field, "%v is over the limit of %v", d, MaxDuration)
	case unit > 0 && d%unit != 0:
		return 0, bad(field, "%v is not a whole number of %v", d, unit)
	}
	return d, nil
}

// validName reports whether s is 1 to max of [a-z0-9-].
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validUpstream reports whether addr is host:port with a port.
func validUpstream(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// text checks free text: valid UTF-8 on one line, at most max bytes.
func text(field, s string, max int) *fieldError {
	if len(s) > max {
		return bad(field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return bad(field, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return bad(field, "holds a control character; keep it on one line")
		}
	}
	return nil
}
