package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// Types of fault: what a matching call suffers.
const (
	TypeDelay   = "delay"
	TypeError   = "error"
	TypeAbort   = "abort"
	TypeTimeout = "timeout"
	TypeDrop    = "drop"
)

// LaneBaseline as a spec's lane scopes a fault to requests that carry no lane.
const LaneBaseline = "baseline"

// Defaults and bounds.
const (
	// DefaultTTL is the life of a fault that sets neither ttl nor until.
	DefaultTTL = 5 * time.Minute
	// DefaultMaxTTL is the longest a fault may live unless WithMaxTTL says otherwise.
	DefaultMaxTTL = time.Hour
	// DefaultMaxWait is how long a timeout fault holds a call whose context has no deadline.
	DefaultMaxWait = 30 * time.Second
	// MaxDelay bounds delay + jitter and max_wait, so a fault never parks a call for good.
	MaxDelay = time.Hour
	// MaxFaults bounds the active faults of a registry (API and config together).
	MaxFaults = 1000
)

// Reasons of the errors this package returns.
const (
	// ReasonBadFault is the reason of a refused spec; metadata "field" names the field.
	ReasonBadFault = "BAD_FAULT"
	// ReasonFaultInjected is the reason of every error a fault injects; metadata "fault"
	// names the fault.
	ReasonFaultInjected = "FAULT_INJECTED"
	// ReasonFaultNotFound is the reason of Remove on an unknown id.
	ReasonFaultNotFound = "FAULT_NOT_FOUND"
	// ReasonFaultExists is the reason of Add with an id already in use.
	ReasonFaultExists = "FAULT_EXISTS"
	// ReasonTooManyFaults is the reason of Add beyond MaxFaults.
	ReasonTooManyFaults = "TOO_MANY_FAULTS"
)

// MetadataFault is the error metadata key naming the fault that injected an error.
const MetadataFault = "fault"

// Spec is one fault as written in the admin API (JSON) or the config (YAML, key
// chaos.faults). Durations are strings such as "250ms"; see the package doc for the format.
// The zero values of the scope fields mean "any".
type Spec struct {
	// ID names the fault: [a-z0-9-]{1,40}; assigned when empty.
	ID string `json:"id,omitempty" koanf:"id"`
	// Type is the action: delay, error, abort, timeout or drop.
	Type string `json:"type" koanf:"type"`

	// Service is the service the call runs in.
	Service string `json:"service,omitempty" koanf:"service"`
	// Instance scopes server calls to the server instance of that name ("note-2", a
	// replica of note): 1 to 63 of [a-z0-9-], starting and ending with a letter or digit.
	Instance string `json:"instance,omitempty" koanf:"instance"`
	// Kind is http, grpc, sql, cache or queue.
	Kind string `json:"kind,omitempty" koanf:"kind"`
	// Side is server or client.
	Side string `json:"side,omitempty" koanf:"side"`
	// Target scopes client calls to this remote service.
	Target string `json:"target,omitempty" koanf:"target"`
	// Op matches the operation exactly, or as a prefix when it ends in "*".
	Op string `json:"op,omitempty" koanf:"op"`
	// Lane is "" (any traffic), "baseline" (requests without a lane) or a lane name.
	Lane string `json:"lane,omitempty" koanf:"lane"`
	// Percent is the share of matching calls hit, in (0, 100]; 0 means 100.
	Percent float64 `json:"percent,omitempty" koanf:"percent"`

	// Delay is the added latency of a delay fault (> 0).
	Delay string `json:"delay,omitempty" koanf:"delay"`
	// Jitter is a uniform extra delay in [0, jitter] (>= 0).
	Jitter string `json:"jitter,omitempty" koanf:"jitter"`
	// Code is the error of an error fault: a gRPC code name or an HTTP status 400-599.
	Code ErrorCode `json:"code,omitempty" koanf:"code"`
	// Message is the error message of an error fault.
	Message string `json:"message,omitempty" koanf:"message"`
	// MaxWait bounds a timeout fault on a call without deadline; default 30s.
	MaxWait string `json:"max_wait,omitempty" koanf:"max_wait"`

	// TTL is how long the fault lives (for a config fault: from its first appearance).
	TTL string `json:"ttl,omitempty" koanf:"ttl"`
	// Until is when the fault ends, RFC 3339.
	Until string `json:"until,omitempty" koanf:"until"`
	// Reason says who set the fault and why.
	Reason string `json:"reason,omitempty" koanf:"reason"`
}

// ErrorCode is the code of an error fault: a gRPC code name ("Unavailable", also
// "UNAVAILABLE") or an HTTP status. In JSON it may be a string or a number.
type ErrorCode string

// UnmarshalJSON accepts a string or a number.
func (c *ErrorCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = ErrorCode(s)
		return nil
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		*c = ErrorCode(b)
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b[0]), Type: reflect.TypeFor[ErrorCode]()}
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "bool"
}

// ParseSpec decodes one spec from JSON, strictly (unknown fields, trailing data and wrong
// types are errors), and validates it.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	if err := kithttp.DecodeJSON(bytes.NewReader(data), int64(len(data)), &s); err != nil {
		return Spec{}, err
	}
	return s, s.Validate()
}

// Validate checks s on its own: every field, and that they make sense together. A Registry
// also bounds ttl and until by its MaxTTL. The error is InvalidArgument with reason
// BAD_FAULT; its message and metadata "field" name the field.
func (s Spec) Validate() error {
	if _, fe := compile(s); fe != nil {
		return fe.err("")
	}
	return nil
}

// fieldError is a refused field of a spec.
type fieldError struct{ field, msg string }

func bad(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// err renders fe; at is where the spec sits ("chaos.faults[2]"), "" for a lone spec.
func (fe *fieldError) err(at string) *errs.Error {
	if at != "" {
		return errs.InvalidArgument(ReasonBadFault, "fault: %s: %s: %s", at, fe.field, fe.msg).
			WithMetadata("field", at+"."+fe.field)
	}
	return errs.InvalidArgument(ReasonBadFault, "fault: %s: %s", fe.field, fe.msg).WithMetadata("field", fe.field)
}

// Lane modes of a rule.
const (
	laneAny = iota
	laneBaseline
	laneNamed
)

// rule is a validated spec, ready to match; what the registry adds (id, expiry, source)
// is filled in by the registry.
type rule struct {
	spec Spec // with defaults: percent 100, max_wait for timeouts

	service, instance, kind, side, target string
	op                                    string
	opPrefix                              bool
	laneMode                              int
	lane                                  string
	percent                               float64

	typ                    string
	delay, jitter, maxWait time.Duration
	code                   codes.Code

	ttl   time.Duration
	until time.Time

	// Set by the registry when the rule becomes a fault; immutable afterwards but injected.
	id       string
	source   string
	key      string // a config fault's content, by which a reload recognizes it
	added    time.Time
	expires  time.Time
	errMsg   string // the message of the errors it injects
	desc     string // one line for events and logs
	injected atomic.Int64
}

var kinds = map[string]bool{fault.HTTP: true, fault.GRPC: true, fault.SQL: true, fault.Cache: true, fault.Queue: true}

func dataKind(k string) bool { return k == fault.SQL || k == fault.Cache || k == fault.Queue }

// compile validates s and turns it into a rule. It reports the first bad field.
func compile(s Spec) (*rule, *fieldError) {
	ru := &rule{spec: s, service: s.Service, instance: s.Instance, kind: s.Kind, side: s.Side, target: s.Target, typ: s.Type}
	if s.ID != "" && !validID(s.ID) {
		return nil, bad("id", "%q is not [a-z0-9-]{1,40}", s.ID)
	}
	if fe := scope(ru, s); fe != nil {
		return nil, fe
	}
	if fe := action(ru, s); fe != nil {
		return nil, fe
	}
	if fe := expiry(ru, s); fe != nil {
		return nil, fe
	}
	if fe := text("reason", s.Reason, 512); fe != nil {
		return nil, fe
	}
	return ru, nil
}

func scope(ru *rule, s Spec) *fieldError {
	if fe := name("service", s.Service); fe != nil {
		return fe
	}
	if fe := name("target", s.Target); fe != nil {
		return fe
	}
	if s.Kind != "" && !kinds[s.Kind] {
		return bad("kind", "%q is not http, grpc, sql, cache or queue", s.Kind)
	}
	switch s.Side {
	case "", fault.Client:
	case fault.Server:
		if dataKind(s.Kind) {
			return bad("side", "%s calls have only a client side", s.Kind)
		}
	default:
		return bad("side", "%q is not server or client", s.Side)
	}
	if s.Instance != "" {
		if !validInstance(s.Instance) {
			return bad("instance", "%q is not an instance name: 1 to 63 of a-z, 0-9 and -, starting and ending with a letter or digit, such as note-2", s.Instance)
		}
		if dataKind(s.Kind) {
			return bad("instance", "only http and grpc server calls run in an instance, not %s calls: set kind: grpc or http, or leave instance empty", s.Kind)
		}
		if s.Side == fault.Client {
			return bad("instance", "only server calls run in an instance: set side: server or leave instance empty")
		}
	}
	if s.Target != "" {
		if dataKind(s.Kind) {
			return bad("target", "only http and grpc client calls have a target, not %s calls", s.Kind)
		}
		if s.Side == fault.Server {
			return bad("target", "server calls have no target: set side: client or leave target empty")
		}
	}
	if fe := text("op", s.Op, 256); fe != nil {
		return fe
	}
	ru.op = s.Op
	if i := strings.IndexByte(s.Op, '*'); i >= 0 {
		if i != len(s.Op)-1 {
			return bad("op", "%q: a * may only end the op, as a prefix match", s.Op)
		}
		ru.op, ru.opPrefix = s.Op[:i], true
	}
	switch {
	case s.Lane == "":
	case s.Lane == LaneBaseline:
		ru.laneMode = laneBaseline
	case meta.ValidLane(s.Lane):
		ru.laneMode, ru.lane = laneNamed, s.Lane
	default:
		return bad("lane", `%q is not a lane name (1 to 32 of [a-z0-9-], starting with a letter), "baseline" or empty`, s.Lane)
	}
	ru.percent = s.Percent
	if s.Percent == 0 {
		ru.percent = 100
		ru.spec.Percent = 100
	} else if !(s.Percent > 0 && s.Percent <= 100) {
		return bad("percent", "%s is not in (0, 100]", strconv.FormatFloat(s.Percent, 'g', -1, 64))
	}
	return nil
}

func action(ru *rule, s Spec) *fieldError {
	var err *fieldError
	switch s.Type {
	case TypeDelay:
		if s.Delay == "" {
			return bad("delay", "a delay fault needs a delay, such as 250ms")
		}
		if ru.delay, err = duration("delay", s.Delay, false); err != nil {
			return err
		}
		if s.Jitter != "" {
			if ru.jitter, err = duration("jitter", s.Jitter, true); err != nil {
				return err
			}
		}
		if ru.delay+ru.jitter > MaxDelay || ru.delay+ru.jitter < 0 {
			return bad("delay", "delay and jitter add up to more than %v", MaxDelay)
		}
	case TypeError:
		if s.Code == "" {
			return bad("code", "an error fault needs a code: a gRPC code name such as Unavailable or an HTTP status 400-599")
		}
		if ru.code, err = parseCode(string(s.Code)); err != nil {
			return err
		}
		if err = text("message", s.Message, 256); err != nil {
			return err
		}
	case TypeAbort, TypeTimeout:
	case TypeDrop:
		if s.Kind != fault.Queue {
			return bad("type", "drop: only queue faults can drop messages; set kind: queue")
		}
	case "":
		return bad("type", "missing; want delay, error, abort, timeout or drop")
	default:
		return bad("type", "%q is not delay, error, abort, timeout or drop", s.Type)
	}
	if s.Type != TypeDelay {
		if s.Delay != "" {
			return bad("delay", "only delay faults take a delay, not %s faults", s.Type)
		}
		if s.Jitter != "" {
			return bad("jitter", "only delay faults take a jitter, not %s faults", s.Type)
		}
	}
	if s.Type != TypeError {
		if s.Code != "" {
			return bad("code", "only error faults take a code, not %s faults", s.Type)
		}
		if s.Message != "" {
			return bad("message", "only error faults take a message, not %s faults", s.Type)
		}
	}
	if s.Type == TypeTimeout {
		ru.maxWait = DefaultMaxWait
		if s.MaxWait != "" {
			if ru.maxWait, err = duration("max_wait", s.MaxWait, false); err != nil {
				return err
			}
			if ru.maxWait > MaxDelay {
				return bad("max_wait", "%v is over the limit of %v", ru.maxWait, MaxDelay)
			}
		} else {
			ru.spec.MaxWait = DefaultMaxWait.String()
		}
	} else if s.MaxWait != "" {
		return bad("max_wait", "only timeout faults take a max_wait, not %s faults", s.Type)
	}
	return nil
}

func expiry(ru *rule, s Spec) *fieldError {
	var err *fieldError
	if s.TTL != "" && s.Until != "" {
		return bad("ttl", "give ttl or until, not both")
	}
	if s.TTL != "" {
		if ru.ttl, err = duration("ttl", s.TTL, false); err != nil {
			return err
		}
	}
	if s.Until != "" {
		t, perr := time.Parse(time.RFC3339, s.Until)
		if perr != nil {
			return bad("until", "%q is not an RFC 3339 time such as 2026-11-25T20:00:00Z", s.Until)
		}
		ru.until = t
	}
	return nil
}

// duration parses a duration field: > 0, or >= 0 when zeroOK.
func duration(field, s string, zeroOK bool) (time.Duration, *fieldError) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, bad(field, "%q is not a duration such as 250ms", s)
	}
	if d < 0 || d == 0 && !zeroOK {
		if zeroOK {
			return 0, bad(field, "%v is negative", d)
		}
		return 0, bad(field, "%v is not above zero", d)
	}
	return d, nil
}

// parseCode reads a gRPC code name or an HTTP status that errs.HTTPStatus answers with.
func parseCode(s string) (codes.Code, *fieldError) {
	if n, err := strconv.Atoi(s); err == nil {
		c, ok := codeOfStatus(n)
		if !ok {
			return 0, bad("code", "HTTP status %d has no gRPC code that answers with it; use one of %s or a gRPC code name", n, statusList)
		}
		return c, nil
	}
	key := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		if strings.ToLower(c.String()) == key {
			return c, nil
		}
	}
	return 0, bad("code", "%q is neither a gRPC code name (such as Unavailable or Internal) nor an HTTP status 400-599", s)
}

// codeOfStatus inverts errs.HTTPStatus on 400-599: the gRPC code that the transport
// answers with status n. Where several codes share a status (409: AlreadyExists and
// Aborted), errs.CodeFromHTTP picks. Statuses no code answers with (402, 502, ...) are
// refused rather than silently turned into another status.
func codeOfStatus(n int) (codes.Code, bool) {
	if n < 400 || n > 599 {
		return 0, false
	}
	c := errs.CodeFromHTTP(n)
	return c, errs.HTTPStatus(c) == n
}

// statusList lists the statuses codeOfStatus accepts, for error messages.
var statusList = func() string {
	var out []string
	for n := 400; n <= 599; n++ {
		if _, ok := codeOfStatus(n); ok {
			out = append(out, strconv.Itoa(n))
		}
	}
	return strings.Join(out, ", ")
}()

func validID(s string) bool { return len(s) >= 1 && len(s) <= 40 && labelChars(s) }

// validInstance reports whether s is an instance name, a DNS label: 1 to 63 of [a-z0-9-],
// starting and ending with a letter or digit.
func validInstance(s string) bool {
	return len(s) >= 1 && len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-' && labelChars(s)
}

// labelChars reports whether s holds only [a-z0-9-].
func labelChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// name checks a service name: up to 64 printable ASCII characters without spaces.
func name(field, s string) *fieldError {
	if len(s) > 64 {
		return bad(field, "longer than 64 characters")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return bad(field, "%q is not a service name (printable ASCII, no spaces)", s)
		}
	}
	return nil
}

// text checks free text: valid UTF-8 on one line, at most max bytes. Valid UTF-8 keeps a
// spec equal to itself after a JSON round trip.
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
