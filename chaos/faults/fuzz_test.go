package faults

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
)

// FuzzParseSpec feeds arbitrary JSON to ParseSpec: it never panics, refuses with
// InvalidArgument, and a spec it accepts survives a JSON round trip unchanged, validates to
// the same rule, and can be added and injected.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		`{"type": "delay", "service": "note", "kind": "http", "side": "server", "op": "GET /v1/notes/*", "delay": "300ms", "jitter": "100ms", "percent": 50, "ttl": "10m", "reason": "drill 12"}`,
		`{"type": "error", "service": "feed", "kind": "grpc", "side": "client", "target": "note", "code": 503, "message": "note is down", "lane": "red"}`,
		`{"type": "error", "code": "DEADLINE_EXCEEDED", "lane": "baseline", "id": "x-1"}`,
		`{"type": "abort", "service": "gateway", "percent": 5}`,
		`{"type": "delay", "service": "note", "instance": "note-2", "kind": "grpc", "side": "server", "op": "/note.v1.Note/GetNote", "delay": "150ms"}`,
		`{"type": "abort", "instance": "Note_2"}`,
		`{"type": "abort", "instance": "note-2", "side": "client"}`,
		`{"type": "timeout", "kind": "sql", "op": "exec", "max_wait": "5s"}`,
		`{"type": "drop", "kind": "queue", "op": "note.*", "until": "2026-01-01T00:10:00Z"}`,
		`{"type": "drop", "kind": "http"}`,
		`{"type": "delay", "delay": "abc"}`,
		`{"type": "abort", "percent": 1e308}`,
		`{"type": "error", "code": -0}`,
		`{"Type": "abort", "TTL": "1m"}`,
		`[]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			if errs.Code(err) != codes.InvalidArgument {
				t.Fatalf("ParseSpec = %v; want InvalidArgument", err)
			}
			return
		}
		ru, fe := compile(s)
		if fe != nil {
			t.Fatalf("ParseSpec accepted %+v, compile refuses: %v", s, fe.err(""))
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal(%+v) = %v", s, err)
		}
		s2, err := ParseSpec(b)
		if err != nil {
			t.Fatalf("ParseSpec(Marshal(%+v)) = %v; JSON %s", s, err, b)
		}
		if s2 != s {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", s, s2)
		}
		ru2, _ := compile(s2)
		if !reflect.DeepEqual(ru, ru2) {
			t.Fatalf("round trip changed the rule:\n%+v\n%+v", ru, ru2)
		}

		e := newEnv(t)
		if _, err := e.reg.Add(s); err != nil {
			if errs.Code(err) != codes.InvalidArgument {
				t.Fatalf("Add = %v; want nil or InvalidArgument", err)
			}
			return
		}
		ctx := context.Background()
		if s.Lane != "" && s.Lane != LaneBaseline {
			ctx = meta.WithLane(ctx, s.Lane)
		}
		p := fault.Point{Service: s.Service, Instance: s.Instance, Kind: s.Kind, Side: s.Side, Target: s.Target, Op: strings.TrimSuffix(s.Op, "*")}
		_ = e.reg.Inject(ctx, p)
		if err := e.reg.SetConfig([]Spec{s2}); err != nil && errs.Code(err) != codes.InvalidArgument {
			t.Fatalf("SetConfig = %v", err)
		}
	})
}
