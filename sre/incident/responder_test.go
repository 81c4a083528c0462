package incident

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/sre/alert"
	"github.com/redline-dev/redline/sre/oncall"
)

func directory() oncall.Directory {
	layer := func(users ...string) []oncall.Layer {
		return []oncall.Layer{{Users: users, Start: t0.Add(-time.Hour), Length: 7 * 24 * time.Hour}}
	}
	return oncall.Directory{
		Schedules: map[string]oncall.Schedule{
			"primary":   {Name: "primary", Layers: layer("ana", "bo")},
			"secondary": {Name: "secondary", Layers: layer("sam", "sol")},
		},
		Policies: map[string]oncall.Policy{"default": {Name: "default", Levels: []oncall.Level{
			{Schedule: "primary", Timeout: 5 * time.Minute},
			{Schedule: "secondary", Timeout: 10 * time.Minute},
			{User: "manager"},
		}}},
	}
}

type pager struct {
	mu    sync.Mutex
	pages []oncall.Page
}

func (p *pager) Notify(_ context.Context, pg oncall.Page) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages = append(p.pages, pg)
	return nil
}

func (p *pager) users() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var u []string
	for _, pg := range p.pages {
		u = append(u, pg.User)
	}
	return strings.Join(u, ",")
}

const webhook = `{"version":"4","groupKey":"{}:{alertname=\"OrderBurn\"}","status":"firing","receiver":"redline",
 "groupLabels":{"alertname":"OrderBurn"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am",
 "alerts":[{"status":"firing","labels":{"alertname":"OrderBurn","service":"order","severity":"page","slo":"availability"},
   "annotations":{"summary":"order burns its error budget at 14.4x"},"startsAt":"2026-01-05T09:59:00Z","endsAt":"0001-01-01T00:00:00Z"}]}`

// TestRestartMidEscalation pages the primary, closes everything, reopens the store and a
// new escalator on the same database after the ack timeout: the secondary is paged and
// nothing written before the restart is lost.
func TestRestartMidEscalation(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		p := &pager{}
		var db *sqldb.DB
		start := func(t *testing.T) (*Store, *oncall.Escalator, *Responder) {
			db = b.open(t)
			s := openStore(t, db, clk)
			esc, err := oncall.NewEscalator(s, directory(), p, oncall.WithClock(clk))
			if err != nil {
				t.Fatal(err)
			}
			return s, esc, NewResponder(s, esc)
		}
		s, esc, resp := start(t)
		wh, err := alert.DecodeWebhook(strings.NewReader(webhook))
		if err != nil {
			t.Fatal(err)
		}
		incs, err := resp.HandleWebhook(ctx, wh)
		if err != nil || len(incs) != 1 {
			t.Fatalf("HandleWebhook = %v, %v", incs, err)
		}
		if inc := incs[0]; inc.Severity != SEV2 || inc.Service != "order" || inc.EscalationLevel != 0 || !inc.EscalationDue.Equal(t0) {
			t.Fatalf("incident after the alert: %+v; want level 0 due now", inc)
		}
		if n, err := esc.Tick(ctx); err != nil || n != 1 {
			t.Fatalf("Tick = %d, %v; want level 0 paged", n, err)
		}
		inc, err := s.Get(ctx, incs[0].ID)
		if err != nil || inc.EscalationLevel != 1 || !inc.EscalationDue.Equal(t0.Add(5*time.Minute)) {
			t.Fatalf("incident after the first page: %+v, %v", inc, err)
		}
		if got := p.users(); got != "ana" {
			t.Fatalf("paged %q at once; want the primary, ana", got)
		}
		// The same webhook again (Alertmanager repeats): no new incident, no new page.
		if again, err := resp.HandleWebhook(ctx, wh); err != nil || again[0].ID != inc.ID {
			t.Fatalf("repeated webhook = %v, %v", again, err)
		}
		if n, _ := esc.Tick(ctx); n != 0 || p.users() != "ana" {
			t.Fatalf("repeated webhook paged again: %d, %q", n, p.users())
		}

		// Restart: the old process is gone; a new one finds the escalation where it was.
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, inc.ID); err == nil {
			t.Fatal("the old store still works after its database closed")
		}
		clk.Advance(5 * time.Minute)
		s2, esc2, _ := start(t)
		if n, err := esc2.Tick(ctx); err != nil || n != 1 {
			t.Fatalf("Tick after restart = %d, %v; want 1 step", n, err)
		}
		if got := p.users(); got != "ana,sam" {
			t.Fatalf("paged %q; want the secondary after the restart", got)
		}
		if n, _ := esc2.Tick(ctx); n != 0 {
			t.Fatalf("second Tick at the same time paged again (%d)", n)
		}
		clk.Advance(time.Minute)
		if _, err := s2.Acknowledge(ctx, inc.ID, "sam", "looking"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if n, _ := esc2.Tick(ctx); n != 0 || p.users() != "ana,sam" {
			t.Fatalf("after ack: %d steps, paged %q; want the manager never paged", n, p.users())
		}
		clk.Advance(time.Minute)
		if _, err := s2.Resolve(ctx, inc.ID, "sam", "fixed"); err != nil {
			t.Fatal(err)
		}
		tl, err := s2.Timeline(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(tl), "alert,notify,escalate,ack,resolve"; got != want {
			t.Fatalf("timeline %s; want %s", got, want)
		}
		wantAt := []time.Duration{0, 0, 5 * time.Minute, 6 * time.Minute, 67 * time.Minute}
		for i, e := range tl {
			if !e.At.Equal(t0.Add(wantAt[i])) {
				t.Errorf("entry %d (%s) at %s; want t0+%s", i, e.Kind, e.At, wantAt[i])
			}
		}
		if tl[1].Actor != "ana" || tl[2].Actor != "sam" {
			t.Errorf("pages recorded for %s, %s; want ana, sam", tl[1].Actor, tl[2].Actor)
		}
	})
}

func TestEscalationRunsToTheManager(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		p := &pager{}
		s := openStore(t, b.open(t), clk)
		esc, err := oncall.NewEscalator(s, directory(), p, oncall.WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		resp := NewResponder(s, esc)
		inc, err := resp.Handle(ctx, alert.Alert{Labels: map[string]string{"alertname": "X", "service": "cart"}, Status: alert.Firing, StartsAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 { // bounded: one tick a minute for 20 minutes
			clk.Advance(time.Minute)
			if _, err := esc.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := p.users(); got != "ana,sam,manager" {
			t.Fatalf("paged %q; want ana,sam,manager", got)
		}
		got, _ := s.Get(ctx, inc.ID)
		if !got.EscalationDue.IsZero() || got.State != Triggered {
			t.Fatalf("after the last level: %+v; want nothing due, still triggered", got)
		}
	})
}

func TestResolvedAlertNotesButKeepsOpen(t *testing.T) {
	ctx := context.Background()
	b := backends(t)[0]
	clk := clock.NewFake(t0)
	s := openStore(t, b.open(t), clk)
	resp := NewResponder(s, nil, WithDefaultPolicy(""))
	a := alert.Alert{Labels: map[string]string{"alertname": "X", "service": "cart", "severity": "ticket"}, Status: alert.Firing, StartsAt: t0}
	inc, err := resp.Handle(ctx, a)
	if err != nil || inc.Severity != SEV3 || !inc.EscalationDue.IsZero() {
		t.Fatalf("Handle(firing) = %+v, %v; want SEV3 and no escalation", inc, err)
	}
	a.Status, a.EndsAt = alert.Resolved, t0.Add(time.Minute)
	clk.Advance(time.Minute)
	if err := resp.Deliver(ctx, alert.Notification{Receiver: "x", Alerts: []alert.Alert{a}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, inc.ID)
	tl, _ := s.Timeline(ctx, inc.ID)
	if got.State != Triggered || len(tl) != 2 || !strings.Contains(tl[1].Text, "alert resolved") {
		t.Fatalf("after the alert resolved: %+v, timeline %+v", got, tl)
	}
	other := alert.Alert{Labels: map[string]string{"alertname": "Y"}, Status: alert.Resolved, StartsAt: t0, EndsAt: t0}
	if inc, err := resp.Handle(ctx, other); inc != nil || err != nil {
		t.Fatalf("resolved alert without incident = %v, %v; want nil, nil", inc, err)
	}
}

func TestMalformedWebhookCreatesNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, backends(t)[0].open(t), clock.NewFake(t0))
	bad := strings.Replace(webhook, `"startsAt":"2026-01-05T09:59:00Z"`, `"startsAt":"then"`, 1)
	if _, err := alert.DecodeWebhook(strings.NewReader(bad)); !errors.Is(err, alert.ErrBadWebhook) || !strings.Contains(err.Error(), "alerts[0].startsAt") {
		t.Fatalf("DecodeWebhook(bad) = %v", err)
	}
	if list, err := s.List(ctx, Filter{}); err != nil || len(list) != 0 {
		t.Fatalf("incidents after a malformed webhook: %v, %v", list, err)
	}
}

func TestSeverityFromLabels(t *testing.T) {
	for in, want := range map[string]Severity{"page": SEV2, "critical": SEV2, "ticket": SEV3, "warning": SEV3, "": SEV4, "info": SEV4, "sev1": SEV1, "SEV4": SEV4, "odd": SEV3} {
		if got := SeverityFromLabels(map[string]string{"severity": in}); got != want {
			t.Errorf("SeverityFromLabels(%q) = %s; want %s", in, got, want)
		}
	}
}

func FuzzParseSeverity(f *testing.F) {
	for _, s := range []string{"SEV1", "sev2", "3", " sev4 ", "SEV5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sev, err := ParseSeverity(s)
		if err != nil {
			if !errors.Is(err, ErrBadInput) && !strings.Contains(err.Error(), ReasonBadSeverity) {
				t.Fatalf("ParseSeverity(%q) error %v", s, err)
			}
			return
		}
		if again, err := ParseSeverity(string(sev)); err != nil || again != sev {
			t.Fatalf("ParseSeverity(%q) = %s, not stable: %s, %v", s, sev, again, err)
		}
	})
}
