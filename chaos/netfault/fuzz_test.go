package netfault

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

// FuzzParseToxic feeds arbitrary JSON to ParseToxic: it never panics, refuses with
// InvalidArgument, and a spec it accepts survives a JSON round trip unchanged and compiles
// to the same toxic.
func FuzzParseToxic(f *testing.F) {
	for _, s := range []string{
		`{"proxy": "redis", "type": "latency", "attributes": {"latency": "200ms", "jitter": "50ms"}, "ttl": "10m", "reason": "drill 7"}`,
		`{"proxy": "note", "type": "bandwidth", "stream": "downstream", "attributes": {"rate": 16}}`,
		`{"proxy": "postgres", "type": "reset_peer", "toxicity": 0.2, "attributes": {"timeout": "100ms"}}`,
		`{"proxy": "nats", "type": "timeout", "stream": "upstream", "attributes": {"timeout": "0s"}, "ttl": "2m"}`,
		`{"proxy": "search", "type": "limit_data", "attributes": {"bytes": 1024}, "id": "x-1"}`,
		`{"proxy": "s", "type": "slicer", "attributes": {"average_size": 64, "size_variation": 16, "delay": "10us"}}`,
		`{"proxy": "s", "type": "latency", "attributes": {"latency": "1.5ms"}}`,
		`{"proxy": "s", "type": "timeout", "toxicity": 1e-320}`,
		`{"proxy": "s", "type": "timeout", "toxicity": null}`,
		`{"Proxy": "s", "TYPE": "timeout"}`,
		`[]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseToxic(data)
		if err != nil {
			if errs.Code(err) != codes.InvalidArgument {
				t.Fatalf("ParseToxic = %v; want InvalidArgument", err)
			}
			return
		}
		c, fe := compileToxic(s)
		if fe != nil {
			t.Fatalf("ParseToxic accepted %+v, compileToxic refuses: %v", s, fe.err())
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal(%+v) = %v", s, err)
		}
		s2, err := ParseToxic(b)
		if err != nil {
			t.Fatalf("ParseToxic(Marshal(%+v)) = %v; JSON %s", s, err, b)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", s, s2)
		}
		c2, _ := compileToxic(s2)
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the toxic:\n%+v\n%+v", c, c2)
		}
		if c.toxicity <= 0 || c.toxicity > 1 || (c.stream != Upstream && c.stream != Downstream) || len(c.attrs) == 0 && s.Type != TypeTimeout && s.Type != TypeResetPeer {
			t.Fatalf("compiled %+v from an accepted spec", c)
		}
	})
}
