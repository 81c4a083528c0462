package gate

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/sre/incident"
	"github.com/redline-dev/redline/sre/slo"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// world is a real evaluator and a real incident store on one fake clock.
type world struct {
	clk   *clock.Fake
	eval  *slo.Evaluator
	store *incident.Store
	good  slo.Counts // cumulative counts fed to the note SLO
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clk := clock.NewFake(t0)
	s := slo.AvailabilitySLO("note", "/note.v1.Note/GetNote", 0.99, 3*slo.Day, slo.WithName("note-availability"))
	other := slo.AvailabilitySLO("feed", "/feed.v1.Feed/HomeFeed", 0.99, 3*slo.Day, slo.WithName("feed-availability"))
	eval, err := slo.NewEvaluator([]slo.SLO{s, other}, slo.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sre.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := incident.Open(context.Background(), db, incident.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{clk: clk, eval: eval, store: store}
	w.feed(t, 0, 0) // the first sample is the baseline
	return w
}

// feed runs d of traffic at 100 requests per 5 s, bad of them failing per 5 s.
func (w *world) feed(t *testing.T, d time.Duration, bad float64) {
	t.Helper()
	for i := time.Duration(0); i < d || d == 0; i += 5 * time.Second {
		if d > 0 {
			w.clk.Advance(5 * time.Second)
			w.good.Total += 100
			w.good.Bad += bad
		}
		if err := w.eval.Record("note-availability", w.good); err != nil {
			t.Fatal(err)
		}
		if d == 0 {
			return
		}
	}
}

func (w *world) decide(t *testing.T, p Policy) Decision {
	t.Helper()
	d, err := p.Decide(context.Background(), "note", w.eval, w.store, w.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCleanServiceIsAllowed(t *testing.T) {
	w := newWorld(t)
	w.feed(t, time.Hour, 0)
	d := w.decide(t, Policy{})
	if !d.Allow || len(d.Reasons) != 0 {
		t.Fatalf("a clean service is denied: %+v", d)
	}
	if len(d.SLOs) != 1 || d.SLOs[0].SLO != "note-availability" || d.SLOs[0].BudgetRemaining != 1 || d.SLOs[0].Events != 72000 {
		t.Fatalf("budgets = %+v, want note-availability with 100%% left over 72000 events", d.SLOs)
	}
}

// An incident that spent 32% of the budget needs a postmortem: the gate denies until it is
// published, and the reason names the incident and the command.
func TestCostlyIncidentNeedsPostmortem(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.feed(t, 2*time.Hour, 0) // 144,000 good
	start := w.clk.Now()
	inc, _, err := w.store.Trigger(ctx, incident.Trigger{DedupKey: "slo:note-availability:page", Title: "note errors",
		Service: "note", Severity: incident.SEV2, ImpactStart: start, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w.feed(t, 5*time.Minute, 8) // 6,000 events, 480 bad
	if _, err := w.store.Resolve(ctx, inc.ID, "alice", "rolled back"); err != nil {
		t.Fatal(err)
	}
	w.feed(t, 10*time.Minute, 0)

	d := w.decide(t, Policy{})
	// 480 bad ÷ (1% × 162,000 events) = 29.6%.
	const want = 480 / (0.01 * 162000)
	if d.Allow || len(d.Incidents) != 1 {
		t.Fatalf("decision = %+v, want a deny for one costly incident", d)
	}
	got := d.Incidents[0]
	if got.Incident != inc.ID || got.SLO != "note-availability" || got.Postmortem || abs(got.Spent-want) > 0.005 {
		t.Fatalf("incident spend = %+v, want %s spent %.3f of note-availability, no postmortem", got, inc.ID, want)
	}
	if len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], inc.ID) || !strings.Contains(d.Reasons[0], "postmortem "+inc.ID+" --publish") {
		t.Fatalf("reasons = %q, want one naming %s and the publish command", d.Reasons, inc.ID)
	}
	if d.SLOs[0].Frozen {
		t.Fatalf("budget left %.3f should not freeze", d.SLOs[0].BudgetRemaining)
	}

	// Over a 40% threshold the same incident no longer needs one.
	if d := w.decide(t, Policy{PostmortemShare: 0.4}); !d.Allow {
		t.Fatalf("with a 40%% share the gate denies: %v", d.Reasons)
	}

	md, err := w.store.Postmortem(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.PublishPostmortem(ctx, inc.ID, "alice", md); err != nil {
		t.Fatal(err)
	}
	d = w.decide(t, Policy{})
	if !d.Allow || len(d.Incidents) != 1 || !d.Incidents[0].Postmortem {
		t.Fatalf("after the postmortem: %+v, want allow with the incident listed as written up", d)
	}
}

// A spent budget freezes releases whatever the incidents say, until it recovers.
func TestSpentBudgetFreezes(t *testing.T) {
	w := newWorld(t)
	w.feed(t, time.Hour, 0)  // 72,000 events
	w.feed(t, time.Hour, 20) // 72,000 more, 14,400 bad: 10% errors against a 1% budget
	d := w.decide(t, Policy{})
	if d.Allow || len(d.SLOs) != 1 || !d.SLOs[0].Frozen || d.SLOs[0].BudgetRemaining >= 0 {
		t.Fatalf("decision = %+v, want a freeze with the budget overspent", d)
	}
	if !strings.Contains(d.Reasons[0], "frozen") || !strings.Contains(d.Reasons[0], "note-availability") {
		t.Fatalf("reason %q should say the SLO and the freeze", d.Reasons[0])
	}
	// A policy freezing earlier (with budget still left) also freezes a milder burn.
	w2 := newWorld(t)
	w2.feed(t, time.Hour, 0)
	w2.feed(t, 10*time.Minute, 1) // 120 bad of 84,000: 14% of the budget, 86% left
	if d := w2.decide(t, Policy{}); !d.Allow {
		t.Fatalf("86%% left is denied: %v", d.Reasons)
	}
	if d := w2.decide(t, Policy{FreezeBelow: 0.9}); d.Allow {
		t.Fatal("freeze_below 0.9 with 86% left should deny")
	}
}

func TestUnknownServiceIsAnError(t *testing.T) {
	w := newWorld(t)
	_, err := Policy{}.Decide(context.Background(), "nope", w.eval, w.store, w.clk.Now())
	var e *errs.Error
	if !errors.As(err, &e) || e.Reason != ReasonUnknownService || !strings.Contains(err.Error(), "feed") {
		t.Fatalf("err = %v, want %s naming the services that have SLOs", err, ReasonUnknownService)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{{FreezeBelow: -0.1}, {FreezeBelow: 1}, {PostmortemShare: 1.5}, {PostmortemShare: -1}} {
		if p.Validate() == nil {
			t.Errorf("%+v: no error", p)
		}
	}
	if err := (Policy{FreezeBelow: 0.1, PostmortemShare: 0.3}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func abs(v float64) float64 { return max(v, -v) }
