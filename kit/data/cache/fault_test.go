package cache

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
)

var errInjected = errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected cache fault")

// TestFaults: every operation of a cache from Open, of its Shadow view and of a view for
// another service asks the fault hook with its name, and an injected error is the
// operation's error, before the store is touched.
func TestFaults(t *testing.T) {
	base, err := Open(t.Context(), "memory:", WithService("profiles"), WithJanitorInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ops := []struct {
		op   string
		call func(ctx context.Context, c Cache) error
	}{
		{"get", func(ctx context.Context, c Cache) error { _, err := c.Get(ctx, "k"); return err }},
		{"mget", func(ctx context.Context, c Cache) error { _, err := c.MGet(ctx, "k", "l"); return err }},
		{"set", func(ctx context.Context, c Cache) error { return c.Set(ctx, "k", []byte("v"), 0) }},
		{"setnx", func(ctx context.Context, c Cache) error { _, err := c.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"del", func(ctx context.Context, c Cache) error { return c.Del(ctx, "k") }},
		{"ping", func(ctx context.Context, c Cache) error { return c.Ping(ctx) }},
	}
	views := []struct {
		name, service string
		c             Cache
	}{
		{"baseline", "profiles", base},
		{"shadow", "profiles", Shadow(base)},
		{"for service", "notes", ForService(base, "notes")},
		{"shadow for service", "notes", ForService(Shadow(base), "notes")},
	}
	for _, v := range views {
		for _, o := range ops {
			t.Run(v.name+"/"+o.op, func(t *testing.T) {
				if err := v.c.Set(t.Context(), "k", []byte("before"), 0); err != nil {
					t.Fatal(err)
				}
				// Other tests' caches may ask the hook meanwhile: only this service's Points count.
				ours := func(p fault.Point) bool { return p.Service == v.service }
				inj := &faulttest.Recorder{Err: errInjected, Match: func(_ int, p fault.Point) bool { return ours(p) && p.Op == o.op }}
				restore := fault.Install(inj)
				err := o.call(t.Context(), v.c)
				restore()
				if !errors.Is(err, errInjected) {
					t.Fatalf("%s = %v; want the injected error", o.op, err)
				}
				want := fault.Point{Kind: fault.Cache, Side: fault.Client, Service: v.service, Op: o.op}
				if got := inj.SeenWhere(ours); len(got) != 1 || got[0] != want {
					t.Fatalf("points = %+v; want [%+v]", got, want)
				}
				if got, err := v.c.Get(t.Context(), "k"); err != nil || string(got) != "before" {
					t.Fatalf("after a failed %s the value is %q (%v); want it untouched", o.op, got, err)
				}
			})
		}
	}
}

func TestNoFaultWithoutInjector(t *testing.T) {
	faulttest.Install(t, nil)
	c, err := Open(t.Context(), "memory:", WithService("profiles"), WithJanitorInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustSet(t, c, "k", []byte("v"), 0)
	mustGet(t, c, "k", []byte("v"))
}
