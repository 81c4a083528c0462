package cache

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/meta"
)

// TestBaselineRefusesLanes: a cache from Open refuses every call in a lane; its Shadow
// view takes them under its own keys, so the same key holds two values, one per side.
func TestBaselineRefusesLanes(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			base := baseline{Cache: b.open(t).c}
			sh := Shadow(base)
			ctx := meta.WithLane(t.Context(), "stress-1")
			if err := base.Set(t.Context(), "k", []byte("baseline"), time.Minute); err != nil {
				t.Fatal(err)
			}
			before := testutil.ToFloat64(lanes.Counter("cache"))
			calls := map[string]func(c Cache) error{
				"Get":   func(c Cache) error { _, err := c.Get(ctx, "k"); return err },
				"MGet":  func(c Cache) error { _, err := c.MGet(ctx, "k", "x"); return err },
				"Set":   func(c Cache) error { return c.Set(ctx, "k", []byte("lane"), time.Minute) },
				"SetNX": func(c Cache) error { _, err := c.SetNX(ctx, "n", []byte("lane"), time.Minute); return err },
				"Del":   func(c Cache) error { return c.Del(ctx, "gone") },
			}
			for name, call := range calls {
				if err := call(base); !errors.Is(err, ErrLane) {
					t.Errorf("baseline %s in a lane = %v; want ErrLane", name, err)
				}
			}
			if got := testutil.ToFloat64(lanes.Counter("cache")) - before; got != float64(len(calls)) {
				t.Errorf("refusals counted %v; want %d", got, len(calls))
			}
			if err := sh.Set(ctx, "k", []byte("lane"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if ok, err := sh.SetNX(ctx, "k", []byte("again"), time.Minute); ok || err != nil {
				t.Fatalf("shadow SetNX on its own key = %v, %v; want false", ok, err)
			}
			got, err := base.Get(t.Context(), "k")
			if err != nil || string(got) != "baseline" {
				t.Fatalf("baseline k = %q, %v; want the baseline value untouched", got, err)
			}
			vals, err := sh.MGet(ctx, "k", "absent")
			if err != nil || string(vals[0]) != "lane" || vals[1] != nil {
				t.Fatalf("shadow MGet = %q, %v", vals, err)
			}
			if err := sh.Del(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if _, err := sh.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("shadow k after Del: %v", err)
			}
			if got, _ := base.Get(t.Context(), "k"); string(got) != "baseline" {
				t.Fatalf("shadow Del removed the baseline key")
			}
			if got, err := base.Get(t.Context(), ShadowPrefix+"k"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("baseline sees %q under the shadow key after Del (%v)", got, err)
			}
		})
	}
}

// TestScanBaseline sees baseline entries only, whichever side it is given.
func TestScanBaseline(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			base := baseline{Cache: b.open(t).c}
			ctx := meta.WithLane(t.Context(), "stress-1")
			for i, k := range []string{"a", "b", "c"} {
				if err := base.Set(t.Context(), k, []byte{byte('0' + i)}, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if err := Shadow(base).Set(ctx, "s", []byte("lane"), time.Minute); err != nil {
				t.Fatal(err)
			}
			for _, c := range []Cache{base, Shadow(base)} {
				got := map[string]string{}
				if err := ScanBaseline(t.Context(), c, 0, func(k string, v []byte) bool { got[k] = string(v); return true }); err != nil {
					t.Fatal(err)
				}
				if len(got) != 3 || got["a"] != "0" || got["c"] != "2" {
					t.Fatalf("ScanBaseline = %v; want a, b and c only", got)
				}
			}
			n := 0
			_ = ScanBaseline(t.Context(), base, 2, func(string, []byte) bool { n++; return true })
			if n != 2 {
				t.Fatalf("limit 2 saw %d entries", n)
			}
		})
	}
}
