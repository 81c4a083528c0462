package netfault

import (
	"net"
	"testing"
	"time"
)

// BenchmarkProxyRoundTrip is the cost a proxy without toxics adds to a small request and
// answer on one open connection: direct to the echo server, then through the proxy.
func BenchmarkProxyRoundTrip(b *testing.B) {
	e := newEnv(b)
	for _, bc := range []struct{ name, addr string }{{"direct", e.up.addr()}, {"proxy", e.px.Addr("echo")}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := net.Dial("tcp", bc.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			msg := string(make([]byte, 128))
			for b.Loop() {
				if err := roundTrip(c, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
