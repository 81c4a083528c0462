package stack_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
	"github.com/redline-dev/redline/stress/lane"
)

// TestLaneFaultLeavesBaselineUntouched: a fault scoped to a lane, set through the admin
// API, fails that lane's searches at the search service's SQL while baseline searches, before,
// during and after, all succeed and are never even matched; a fault scoped to the baseline
// leaves the lane alone; and clearing the faults restores the lane.
func TestLaneFaultLeavesBaselineUntouched(t *testing.T) {
	const key = "stress-key-for-chaos-tests-0123"
	s := stacktest.Start(t, func(c *stack.Config) { c.Stress.Key = key })
	signer, err := lane.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign("drill", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	inLane := []string{"X-Redline-Lane", tok}
	search := func(headers ...string) int {
		return stacktest.Do(t, "GET", s.BFF+"/v1/search?q=chaos", nil, headers...).Status
	}
	if got, lan := search(), search(inLane...); got != 200 || lan != 200 {
		t.Fatalf("before any fault: baseline %d, lane %d; want 200, 200", got, lan)
	}

	type faultView struct {
		ID       string
		Injected int64
	}
	add := func(spec string) faultView {
		t.Helper()
		r := stacktest.Do(t, "POST", s.Admin+"/chaos/faults", []byte(spec))
		var f faultView
		r.JSON(t, &f)
		if r.Status != http.StatusCreated || f.ID == "" {
			t.Fatalf("add %s = %d %s", spec, r.Status, r.Body)
		}
		return f
	}
	injected := func(id string) int64 {
		t.Helper()
		var l struct{ Faults []faultView }
		stacktest.Do(t, "GET", s.Admin+"/chaos/faults", nil).JSON(t, &l)
		for _, f := range l.Faults {
			if f.ID == id {
				return f.Injected
			}
		}
		t.Fatalf("fault %s is gone: %+v", id, l.Faults)
		return 0
	}

	f := add(`{"service":"search","kind":"sql","lane":"drill","type":"error","code":"Internal","ttl":"1m","reason":"chaos test"}`)
	for i := range 20 {
		if got := search(); got != 200 {
			t.Fatalf("baseline search %d under a lane fault = %d; want 200", i, got)
		}
	}
	if n := injected(f.ID); n != 0 {
		t.Fatalf("the lane fault was injected %d times into baseline traffic", n)
	}
	for i := range 5 {
		if got := search(inLane...); got == 200 {
			t.Fatalf("lane search %d under its fault = 200; want a failure", i)
		}
	}
	if n := injected(f.ID); n < 5 {
		t.Fatalf("the lane fault was injected %d times for 5 lane searches", n)
	}

	base := add(`{"service":"search","kind":"sql","lane":"baseline","type":"error","code":"Internal","ttl":"1m"}`)
	if r := stacktest.Do(t, "DELETE", s.Admin+"/chaos/faults/"+f.ID, nil); r.Status != 200 {
		t.Fatalf("delete = %d %s", r.Status, r.Body)
	}
	if got := search(inLane...); got != 200 {
		t.Fatalf("lane search under a baseline-only fault = %d; want 200", got)
	}
	if got := search(); got == 200 {
		t.Fatal("baseline search under a baseline fault = 200; want a failure")
	}
	if n := injected(base.ID); n < 1 {
		t.Fatalf("the baseline fault was injected %d times", n)
	}
	if r := stacktest.Do(t, "DELETE", s.Admin+"/chaos/faults", nil); r.Status != 200 {
		t.Fatalf("clear = %d %s", r.Status, r.Body)
	}
	if got, lan := search(), search(inLane...); got != 200 || lan != 200 {
		t.Fatalf("after clearing: baseline %d, lane %d; want 200, 200", got, lan)
	}

	// Bad input is refused before anything is injected, naming the field.
	r := stacktest.Do(t, "POST", s.Admin+"/chaos/faults", []byte(`{"service":"search","type":"drop"}`))
	if r.Status != http.StatusBadRequest {
		t.Fatalf("a drop fault outside the queue = %d %s; want 400", r.Status, r.Body)
	}
}
