package drill_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/chaos/drill"
	"github.com/redline-dev/redline/ha/quota"
	"github.com/redline-dev/redline/services/seed"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// quotaLimit is the test's global notes_create limit.
const quotaLimit = 20

// builtinScale shortens the built-in drills in `make test`: a quarter of their length
// (about 25 s each). REDLINE_DRILL_SCALE=1 runs them at full length.
func builtinScale(t *testing.T) float64 {
	if v := os.Getenv("REDLINE_DRILL_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) {
			t.Fatalf("REDLINE_DRILL_SCALE=%q: want a positive factor", v)
		}
		return f
	}
	return 0.25
}

// TestBuiltinDrills runs the built-in drills that need one process (all but order-kill,
// which cmd/redline's TestDrillOrderKillProcs runs against `up --procs`) against the real
// stack in process, seeded, with two note instances, and requires each to pass: its
// steady state before and after, its rollback rehearsal and every expectation.
//
// The stack differs from `up`'s defaults where a shortened drill, or a machine busy with
// other tests, needs it: the notes_create lease lives 2 s (not 10 s), so the quota client's
// fallback comes within the shortened fault, and its limit is 20/s; a charge may take
// 150 ms (not 2 s) and a Pay 400 ms, as the test's internal budgets are generous
// (stacktest) and a slow provider must still make payments fail fast.
//
// The drills judge latency and goodput: make test runs them alone, after the other tests
// (make drills-check), and skips them in the main run (REDLINE_BUILTIN_DRILLS=alone).
func TestBuiltinDrills(t *testing.T) {
	if testing.Short() {
		t.Skip("the built-in drills take about two minutes")
	}
	if os.Getenv("REDLINE_BUILTIN_DRILLS") == "alone" {
		t.Skip("REDLINE_BUILTIN_DRILLS=alone: make drills-check runs the built-in drills on their own")
	}
	scale := builtinScale(t)
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Note.Replicas = 2
		// 20/s, not 50: the load asks 70/s, which a busy machine may not reach, and the
		// quota must still turn some away.
		c.Quota.Resources = map[string]quota.Resource{"notes_create": {Limit: quotaLimit, LeaseTTL: 2 * time.Second}}
		c.Payment.ProviderTimeout = 150 * time.Millisecond
		// The whole of a Pay, retries of it included, within the pay SLI's 500ms, as
		// timeouts.internal (100ms) bounds it in up.
		c.Timeouts.Operations = append(c.Timeouts.Operations, stack.OperationBudget{Op: "/payment.v1.Payment/Pay", Timeout: 400 * time.Millisecond})
		c.HA.RateLimit.Off = true // one machine drives every user's traffic
	})
	c := seed.Clients{Users: userv1.NewUserClient(s.Conn(t, "user")), Notes: notev1.NewNoteClient(s.Conn(t, "note")),
		Interactions: interactionv1.NewInteractionClient(s.Conn(t, "interaction")),
		Shop: seed.Catalog{Product: productv1.NewProductClient(s.Conn(t, "product")),
			Inventory: inventoryv1.NewInventoryClient(s.Conn(t, "inventory"))}}
	if _, err := seed.Run(context.Background(), c, seed.Options{Users: 50, Notes: 150, Likes: 300, Products: 10}); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"redis-down", "note-slow-instance", "quota-down", "payment-slow"} {
		t.Run(name, func(t *testing.T) {
			d, err := drill.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Scale(scale); err != nil {
				t.Fatal(err)
			}
			for i, e := range d.Expect {
				if e.MaxRate == 55 { // the global 50/s and 10%: here the test's limit and 10%
					d.Expect[i].MaxRate = 1.1 * quotaLimit
				}
			}
			rep := runOnStack(t, s, d, "")
			if !rep.Passed() {
				t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
			}
			for _, o := range rep.Expectations {
				t.Logf("expect[%d] %s: %s", o.Index, o.Expect, o.Observed)
			}
			if len(rep.Expectations) != len(d.Expect) || len(rep.Phases) != 4 {
				t.Errorf("%d expectations judged of %d, %d phases; want all, and 4 phases", len(rep.Expectations), len(d.Expect), len(rep.Phases))
			}
		})
	}
}
