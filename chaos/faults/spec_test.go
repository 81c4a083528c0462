package faults

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"no type", Spec{}, "type", "type: missing"},
		{"bad type", Spec{Type: "explode"}, "type", `"explode" is not delay, error, abort, timeout or drop`},
		{"bad delay", Spec{Type: TypeDelay, Delay: "abc"}, "delay", `fault: delay: "abc" is not a duration`},
		{"no delay", Spec{Type: TypeDelay}, "delay", "needs a delay"},
		{"zero delay", Spec{Type: TypeDelay, Delay: "0s"}, "delay", "0s is not above zero"},
		{"negative jitter", Spec{Type: TypeDelay, Delay: "1s", Jitter: "-1s"}, "jitter", "-1s is negative"},
		{"huge delay", Spec{Type: TypeDelay, Delay: "59m", Jitter: "2m"}, "delay", "more than 1h0m0s"},
		{"percent over", Spec{Type: TypeAbort, Percent: 150}, "percent", "fault: percent: 150 is not in (0, 100]"},
		{"percent negative", Spec{Type: TypeAbort, Percent: -1}, "percent", "-1 is not in (0, 100]"},
		{"drop not queue", Spec{Type: TypeDrop, Kind: "http"}, "type", "drop: only queue faults can drop messages"},
		{"drop any kind", Spec{Type: TypeDrop}, "type", "only queue faults can drop messages"},
		{"bad kind", Spec{Type: TypeAbort, Kind: "smtp"}, "kind", `"smtp" is not http, grpc, sql, cache or queue`},
		{"bad side", Spec{Type: TypeAbort, Side: "both"}, "side", `"both" is not server or client`},
		{"data server side", Spec{Type: TypeAbort, Kind: "sql", Side: "server"}, "side", "sql calls have only a client side"},
		{"data target", Spec{Type: TypeAbort, Kind: "cache", Target: "note"}, "target", "only http and grpc client calls have a target"},
		{"server target", Spec{Type: TypeAbort, Side: "server", Target: "note"}, "target", "server calls have no target"},
		{"bad service", Spec{Type: TypeAbort, Service: "no te"}, "service", "is not a service name"},
		{"bad instance", Spec{Type: TypeAbort, Instance: "Note_2"}, "instance", `"Note_2" is not an instance name: 1 to 63 of a-z, 0-9 and -`},
		{"instance ends in a dash", Spec{Type: TypeAbort, Instance: "note-"}, "instance", "starting and ending with a letter or digit, such as note-2"},
		{"instance too long", Spec{Type: TypeAbort, Instance: strings.Repeat("n", 64)}, "instance", "is not an instance name"},
		{"instance on a client", Spec{Type: TypeAbort, Side: "client", Instance: "note-2"}, "instance", "only server calls run in an instance: set side: server"},
		{"instance on data", Spec{Type: TypeAbort, Kind: "sql", Instance: "note-2"}, "instance", "not sql calls"},
		{"star inside op", Spec{Type: TypeAbort, Op: "GET /*/x"}, "op", "may only end the op"},
		{"op control", Spec{Type: TypeAbort, Op: "a\nb"}, "op", "control character"},
		{"bad lane", Spec{Type: TypeAbort, Lane: "Red"}, "lane", `"Red" is not a lane name`},
		{"bad id", Spec{Type: TypeAbort, ID: "Fault_1"}, "id", `"Fault_1" is not [a-z0-9-]{1,40}`},
		{"no code", Spec{Type: TypeError}, "code", "needs a code"},
		{"unknown code", Spec{Type: TypeError, Code: "Nope"}, "code", `"Nope" is neither a gRPC code name`},
		{"ok code", Spec{Type: TypeError, Code: "OK"}, "code", "is neither"},
		{"2xx status", Spec{Type: TypeError, Code: "200"}, "code", "HTTP status 200 has no gRPC code"},
		{"unanswered status", Spec{Type: TypeError, Code: "502"}, "code", "HTTP status 502 has no gRPC code"},
		{"code on delay", Spec{Type: TypeDelay, Delay: "1s", Code: "500"}, "code", "only error faults take a code"},
		{"message on abort", Spec{Type: TypeAbort, Message: "x"}, "message", "only error faults take a message"},
		{"delay on error", Spec{Type: TypeError, Code: "500", Delay: "1s"}, "delay", "only delay faults take a delay"},
		{"max_wait on delay", Spec{Type: TypeDelay, Delay: "1s", MaxWait: "1s"}, "max_wait", "only timeout faults"},
		{"bad max_wait", Spec{Type: TypeTimeout, MaxWait: "soon"}, "max_wait", `"soon" is not a duration`},
		{"ttl and until", Spec{Type: TypeAbort, TTL: "1m", Until: "2026-01-01T00:10:00Z"}, "ttl", "give ttl or until, not both"},
		{"bad ttl", Spec{Type: TypeAbort, TTL: "300"}, "ttl", `"300" is not a duration`},
		{"zero ttl", Spec{Type: TypeAbort, TTL: "0s"}, "ttl", "not above zero"},
		{"bad until", Spec{Type: TypeAbort, Until: "tomorrow"}, "until", "is not an RFC 3339 time"},
		{"reason invalid utf-8", Spec{Type: TypeAbort, Reason: "\xff"}, "reason", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantBadFault(t, tt.spec.Validate(), tt.field, tt.msg)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, s := range []Spec{
		{Type: TypeDelay, Delay: "250ms", Jitter: "0s"},
		{Type: TypeDelay, Delay: "250ms", Jitter: "50ms", Percent: 100},
		{Type: TypeError, Code: "Unavailable", Message: "down"},
		{Type: TypeError, Code: "DEADLINE_EXCEEDED"},
		{Type: TypeError, Code: "429"},
		{Type: TypeAbort, Kind: "http", Side: "server", Op: "*", Lane: LaneBaseline},
		{Type: TypeTimeout, Kind: "sql", Side: "client", MaxWait: "5s"},
		{Type: TypeDrop, Kind: "queue", Op: "note.*", Until: "2026-01-01T00:10:00Z"},
		{Type: TypeAbort, Side: "client", Target: "note", Lane: "red-1", Percent: 0.5, ID: "my-fault-1", TTL: "1h"},
		{Type: TypeDelay, Delay: "150ms", Service: "note", Instance: "note-2", Kind: "grpc", Side: "server", Op: "/note.v1.Note/GetNote"},
		{Type: TypeAbort, Instance: "n"},
		{Type: TypeAbort, Instance: strings.Repeat("n", 63)},
	} {
		if err := s.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v; want nil", s, err)
		}
	}
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(`{"type": "error", "code": 503, "service": "note", "ttl": "10m"}`))
	if err != nil {
		t.Fatalf("ParseSpec = %v", err)
	}
	if s.Code != "503" || s.Service != "note" || s.TTL != "10m" {
		t.Errorf("ParseSpec = %+v", s)
	}

	_, err = ParseSpec([]byte(`{"type": "abort", "percnet": 5}`))
	if e := errs.From(err); e.Reason != errs.ReasonUnknownField || e.Metadata["field"] != "percnet" {
		t.Errorf("unknown field: %v; want %s naming percnet", err, errs.ReasonUnknownField)
	}
	_, err = ParseSpec([]byte(`{"type": "abort", "percent": "5"}`))
	if e := errs.From(err); e.Code != codes.InvalidArgument || e.Metadata["field"] != "percent" {
		t.Errorf("wrong type: %v; want InvalidArgument naming percent", err)
	}
	_, err = ParseSpec([]byte(`{"type": "error", "code": true}`))
	if e := errs.From(err); e.Code != codes.InvalidArgument || e.Metadata["field"] != "code" {
		t.Errorf("bool code: %v; want InvalidArgument naming code", err)
	}
	_, err = ParseSpec([]byte(`{"type": "delay", "delay": "abc"}`))
	wantBadFault(t, err, "delay", `fault: delay: "abc" is not a duration`)
	if _, err = ParseSpec([]byte(`{"type": "abort"} {}`)); errs.Code(err) != codes.InvalidArgument {
		t.Errorf("trailing data: %v; want InvalidArgument", err)
	}
}

// TestCodeMapping checks that HTTP statuses map to the code the transport answers them
// with: the inverse of errs.HTTPStatus.
func TestCodeMapping(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want codes.Code
	}{
		{"503", codes.Unavailable},
		{"500", codes.Internal},
		{"504", codes.DeadlineExceeded},
		{"429", codes.ResourceExhausted},
		{"404", codes.NotFound},
		{"409", codes.AlreadyExists},
		{"400", codes.InvalidArgument},
		{"Unavailable", codes.Unavailable},
		{"internal", codes.Internal},
		{"RESOURCE_EXHAUSTED", codes.ResourceExhausted},
		{"DeadlineExceeded", codes.DeadlineExceeded},
	} {
		got, fe := parseCode(tt.in)
		if fe != nil || got != tt.want {
			t.Errorf("parseCode(%q) = %v, %v; want %v", tt.in, got, fe, tt.want)
		}
	}
	// Every code's status maps back to a code with the same status, and every status
	// accepted is answered with as given.
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		s := errs.HTTPStatus(c)
		back, ok := codeOfStatus(s)
		if s >= 400 && (!ok || errs.HTTPStatus(back) != s) {
			t.Errorf("codeOfStatus(HTTPStatus(%v) = %d) = %v, %v", c, s, back, ok)
		}
	}
	for n := 400; n <= 599; n++ {
		if c, ok := codeOfStatus(n); ok && errs.HTTPStatus(c) != n {
			t.Errorf("codeOfStatus(%d) = %v, answered with %d", n, c, errs.HTTPStatus(c))
		}
	}
	if _, ok := codeOfStatus(http.StatusBadGateway); ok {
		t.Error("codeOfStatus(502) accepted; no code answers with 502")
	}
}
