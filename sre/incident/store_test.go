package incident

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// backend opens the same database again on every call, so a test can close it and
// reopen it as a restarted process would.
type backend struct {
	name string
	open func(t *testing.T) *sqldb.DB
}

func backends(t *testing.T) []backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sre.db")
	sqlite := backend{"sqlite", func(t *testing.T) *sqldb.DB {
		db, err := sqldb.Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}}
	var schema string
	postgres := backend{"postgres", func(t *testing.T) *sqldb.DB {
		if schema == "" {
			db, s := sqldbtest.Postgres(t, "sre_incident")
			schema = s
			return db
		}
		db, err := sqldb.Open(context.Background(), sqldbtest.PostgresURL(), sqldb.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}}
	return []backend{sqlite, postgres}
}

func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

func openStore(t *testing.T, db *sqldb.DB, clk clock.Clock) *Store {
	t.Helper()
	s, err := Open(context.Background(), db, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kinds(tl []Entry) string {
	var k []string
	for _, e := range tl {
		k = append(k, string(e.Kind))
	}
	return strings.Join(k, ",")
}

func TestLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := openStore(t, b.open(t), clk)
		trig := Trigger{DedupKey: "fp1", Title: "order errors", Service: "order", Severity: "sev2",
			ImpactStart: t0.Add(-2 * time.Minute), Actor: "alert:Burn", Signal: "fp1@a"}
		inc, created, err := s.Trigger(ctx, trig)
		if err != nil || !created {
			t.Fatalf("Trigger = %v, %v; want created", created, err)
		}
		if inc.State != Triggered || inc.Severity != SEV2 || !inc.TriggeredAt.Equal(t0) || !inc.ImpactStart.Equal(t0.Add(-2*time.Minute)) {
			t.Fatalf("new incident %+v", inc)
		}
		clk.Advance(time.Minute)
		again, created, err := s.Trigger(ctx, trig) // same signal: counted, not re-noted
		if err != nil || created || again.ID != inc.ID || again.AlertCount != 2 {
			t.Fatalf("repeat Trigger = %+v, %v, %v; want the same incident, count 2", again, created, err)
		}
		trig.Signal = "fp1@b"
		if _, _, err := s.Trigger(ctx, trig); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if inc, err = s.Acknowledge(ctx, inc.ID, "ana", ""); err != nil || inc.State != Acknowledged || !inc.AcknowledgedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("Acknowledge = %+v, %v", inc, err)
		}
		if _, err := s.Acknowledge(ctx, inc.ID, "ana", ""); err != nil {
			t.Fatalf("repeated Acknowledge = %v; want a no-op", err)
		}
		if _, err := s.SetRoles(ctx, inc.ID, Roles{Commander: "ana", Communications: "bo"}, "ana"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddEntry(ctx, inc.ID, Entry{Kind: KindDeploy, Actor: "ci", Text: "rollback order to v41"}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		if _, err := s.Mitigate(ctx, inc.ID, "ana", "rolled back"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(30 * time.Minute)
		if inc, err = s.Resolve(ctx, inc.ID, "ana", "error rate normal for 30 min"); err != nil || inc.State != Resolved {
			t.Fatalf("Resolve = %+v, %v", inc, err)
		}
		if _, err := s.Acknowledge(ctx, inc.ID, "bo", ""); !errors.Is(err, ErrBadTransition) {
			t.Fatalf("Acknowledge after Resolve = %v; want ErrBadTransition", err)
		}
		if _, err := s.Mitigate(ctx, inc.ID, "bo", ""); !errors.Is(err, ErrBadTransition) {
			t.Fatalf("Mitigate after Resolve = %v; want ErrBadTransition", err)
		}
		tl, err := s.Timeline(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(tl), "alert,alert,ack,note,deploy,mitigate,resolve"; got != want {
			t.Fatalf("timeline kinds %s; want %s", got, want)
		}
		for i, e := range tl {
			if e.Seq != int64(i+1) {
				t.Errorf("entry %d has seq %d", i, e.Seq)
			}
		}
		got, err := s.Get(ctx, inc.ID)
		if err != nil || got.Commander != "ana" || got.Communications != "bo" || got.MitigatedAt.IsZero() || got.ResolvedAt.Sub(got.MitigatedAt) != 30*time.Minute {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		// The key is free once resolved: the next alert opens a new incident.
		next, created, err := s.Trigger(ctx, trig)
		if err != nil || !created || next.ID == inc.ID {
			t.Fatalf("Trigger after resolve = %+v, %v, %v; want a new incident", next, created, err)
		}
		open, err := s.List(ctx, Filter{OpenOnly: true})
		if err != nil || len(open) != 1 || open[0].ID != next.ID {
			t.Fatalf("List(open) = %v, %v", open, err)
		}
		if _, err := s.Get(ctx, "inc-nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) = %v; want ErrNotFound", err)
		}
		if _, err := s.Resolve(ctx, "inc-nope", "x", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(unknown) = %v; want ErrNotFound", err)
		}
	})
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := openStore(t, db, clock.NewFake(t0))
	good := Trigger{DedupKey: "k", Title: "t", Service: "s", Severity: SEV3}
	for name, mutate := range map[string]func(*Trigger){
		"no key":       func(t *Trigger) { t.DedupKey = " " },
		"no title":     func(t *Trigger) { t.Title = "" },
		"no service":   func(t *Trigger) { t.Service = "" },
		"bad severity": func(t *Trigger) { t.Severity = "SEV5" },
	} {
		tr := good
		mutate(&tr)
		if _, _, err := s.Trigger(ctx, tr); err == nil {
			t.Errorf("Trigger with %s succeeded", name)
		}
	}
	inc, _, err := s.Trigger(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []Entry{{Kind: "gossip", Text: "x"}, {Kind: KindResolve, Text: "x"}, {Kind: KindNote}} {
		if _, err := s.AddEntry(ctx, inc.ID, e); !errors.Is(err, ErrBadInput) {
			t.Errorf("AddEntry(%+v) = %v; want ErrBadInput", e, err)
		}
	}
	if list, _ := s.List(ctx, Filter{}); len(list) != 1 {
		t.Errorf("%d incidents after refused input; want 1", len(list))
	}
}

// TestTransitionNeverHalfApplied breaks the timeline table: a transition whose entry cannot
// be written must not change the state either.
func TestTransitionNeverHalfApplied(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := b.open(t)
		s := openStore(t, db, clock.NewFake(t0))
		inc, _, err := s.Trigger(ctx, Trigger{DedupKey: "k", Title: "t", Service: "s", Severity: SEV3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE incident_timeline RENAME TO broken_timeline`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Acknowledge(ctx, inc.ID, "ana", ""); err == nil {
			t.Fatal("Acknowledge succeeded without a timeline table")
		}
		if _, _, err := s.Trigger(ctx, Trigger{DedupKey: "k2", Title: "t", Service: "s", Severity: SEV3}); err == nil {
			t.Fatal("Trigger succeeded without a timeline table")
		}
		got, err := s.Get(ctx, inc.ID)
		if err != nil || got.State != Triggered || !got.AcknowledgedAt.IsZero() {
			t.Fatalf("after a failed ack: %+v, %v; want still triggered", got, err)
		}
		if _, err := s.FindOpen(ctx, "k2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("half-created incident k2: %v", err)
		}
	})
}

func TestConcurrentTriggerOpensOne(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.open(t), clock.NewFake(t0))
		const n = 8
		var wg sync.WaitGroup
		ids := make([]string, n)
		errList := make([]error, n)
		for i := range n {
			wg.Go(func() {
				inc, _, err := s.Trigger(ctx, Trigger{DedupKey: "same", Title: "t", Service: "s", Severity: SEV2, Signal: fmt.Sprint(i)})
				errList[i] = err
				if err == nil {
					ids[i] = inc.ID
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errList[i] != nil {
				t.Fatalf("Trigger %d: %v", i, errList[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("concurrent triggers opened %s and %s", ids[0], ids[i])
			}
		}
		inc, _ := s.Get(ctx, ids[0])
		tl, _ := s.Timeline(ctx, ids[0])
		if inc.AlertCount != n || len(tl) != n {
			t.Fatalf("count %d, timeline %d; want %d each", inc.AlertCount, len(tl), n)
		}
	})
}
