package faults

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkInjectNoMatch is the cost every call pays while faults are active elsewhere:
// ten faults of other services.
func BenchmarkInjectNoMatch(b *testing.B) {
	e := newEnv(b)
	for i := range 10 {
		e.add(b, Spec{Type: TypeError, Code: "Internal", Service: fmt.Sprintf("svc-%d", i)})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.reg.Inject(ctx, httpServer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInjectMatchError is a call that a fault fails.
func BenchmarkInjectMatchError(b *testing.B) {
	e := newEnv(b)
	for i := range 9 {
		e.add(b, Spec{Type: TypeError, Code: "Internal", Service: fmt.Sprintf("svc-%d", i)})
	}
	e.add(b, Spec{Type: TypeError, Code: "Unavailable", Service: "note", TTL: "1h"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.reg.Inject(ctx, httpServer); err == nil {
			b.Fatal("no error")
		}
	}
}
