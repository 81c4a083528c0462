package fault

import (
	"context"
	"errors"
	"testing"
)

// failWith is an Injector that fails every call with its error.
type failWith struct{ err error }

func (f failWith) Inject(context.Context, Point) error { return f.err }

func TestInstallAndRestore(t *testing.T) {
	defer Install(nil)()
	p := Point{Kind: SQL, Side: Client, Service: "s", Op: "query"}
	if Enabled() || Inject(context.Background(), p) != nil {
		t.Fatal("with nothing installed: Enabled() or Inject() reports a fault")
	}
	errA, errB := errors.New("a"), errors.New("b")
	restoreA := Install(failWith{errA})
	if !Enabled() || !errors.Is(Inject(context.Background(), p), errA) {
		t.Fatalf("Inject() = %v; want a", Inject(context.Background(), p))
	}
	restoreB := Install(failWith{errB})
	if err := Inject(context.Background(), p); !errors.Is(err, errB) {
		t.Fatalf("Inject() = %v; want b", err)
	}
	restoreB()
	if err := Inject(context.Background(), p); !errors.Is(err, errA) {
		t.Fatalf("after restoring b: Inject() = %v; want a", err)
	}
	removeA := Install(nil)
	if Enabled() || Inject(context.Background(), p) != nil {
		t.Fatal("Install(nil) left an injector in place")
	}
	removeA()
	restoreA()
	if Enabled() {
		t.Fatal("after restoring everything an injector is still installed")
	}
}

func BenchmarkInjectNone(b *testing.B) {
	defer Install(nil)()
	ctx := context.Background()
	p := Point{Kind: GRPC, Side: Client, Service: "s", Target: "t", Op: "/s.v1.S/Get"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Inject(ctx, p)
	}
}
