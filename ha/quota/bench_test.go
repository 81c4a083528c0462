package quota

import (
	"context"
	"testing"

	"github.com/redline-dev/redline/kit/log"
)

// benchClient is a client holding a lease far above what a benchmark can use, on the
// real clock: every Allow is admitted.
func benchClient(b *testing.B) *Client {
	svc, err := NewService(NewMemoryStore(), map[string]Resource{"r": {Limit: 1e15}}, ServiceLogger(log.Discard()))
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewClient(Local(svc), Manual(), Logger(log.Discard()), MinDemand(1e14), Policies(map[string]Policy{"r": {}, "s": {}, "t": {}}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if _, err := c.Renew(context.Background()); err != nil {
		b.Fatal(err)
	}
	if u, _ := c.Usage("r"); u.Mode != ModeLease {
		b.Fatalf("no lease: %+v", u)
	}
	return c
}

// BenchmarkAllow is the hot path: an admitted request on a leased resource.
func BenchmarkAllow(b *testing.B) {
	c := benchClient(b)
	b.ReportAllocs()
	for b.Loop() {
		if !c.Allow("r") {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkAllowParallel is the hot path with every core on one resource.
func BenchmarkAllowParallel(b *testing.B) {
	c := benchClient(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Allow("r")
		}
	})
}
