package alert

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type sink struct{ got []Notification }

func (s *sink) deliver(_ context.Context, n Notification) error {
	s.got = append(s.got, n)
	return nil
}

func (s *sink) take() []Notification {
	got := s.got
	s.got = nil
	return got
}

func fire(labels ...string) Alert {
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return Alert{Labels: l, Status: Firing, StartsAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func newTestRouter(t *testing.T, cfg Config) (*Router, *sink, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Time{})
	s := &sink{}
	r, err := NewRouter(cfg, s.deliver, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	return r, s, clk
}

func fingerprints(n Notification) []string {
	var out []string
	for _, a := range n.Alerts {
		out = append(out, a.Labels["alertname"]+"/"+string(a.Status))
	}
	return out
}

func TestRouterGroupingAndTiming(t *testing.T) {
	ctx := context.Background()
	r, s, clk := newTestRouter(t, Config{Default: Route{Receiver: "team", GroupBy: []string{"service"}}})
	r.Receive(ctx, fire("alertname", "A", "service", "order"))
	clk.Advance(10 * time.Second)
	r.Receive(ctx, fire("alertname", "B", "service", "order"), fire("alertname", "A", "service", "order")) // A again: dedup
	r.Receive(ctx, fire("alertname", "C", "service", "cart"))

	clk.Advance(19 * time.Second) // 29 s: order group still waiting
	if err := r.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.take(); len(got) != 0 {
		t.Fatalf("before group_wait: %d notifications; want 0", len(got))
	}
	clk.Advance(time.Second) // 30 s: order group due, cart group (started at 10 s) not yet
	_ = r.Tick(ctx)
	got := s.take()
	if len(got) != 1 || got[0].GroupLabels["service"] != "order" || len(got[0].Alerts) != 2 || got[0].Status != Firing {
		t.Fatalf("at group_wait: %+v; want one order notification with A and B", got)
	}
	clk.Advance(10 * time.Second)
	_ = r.Tick(ctx)
	if got := s.take(); len(got) != 1 || got[0].GroupLabels["service"] != "cart" {
		t.Fatalf("cart at 40 s: %+v", got)
	}

	// Nothing new: no notification at group_interval.
	clk.Advance(5 * time.Minute)
	_ = r.Tick(ctx)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("unchanged group at group_interval: %+v; want none", got)
	}
	// A resolves: told at the next group_interval, not before.
	a := fire("alertname", "A", "service", "order")
	a.Status, a.EndsAt = Resolved, clk.Now()
	r.Receive(ctx, a)
	clk.Advance(time.Minute)
	_ = r.Tick(ctx)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("resolution before group_interval: %+v", got)
	}
	clk.Advance(4 * time.Minute)
	_ = r.Tick(ctx)
	got = s.take()
	// Only the order group changed; the cart group is not due a repeat (4 h).
	if len(got) != 1 || got[0].GroupLabels["service"] != "order" || got[0].Status != Firing {
		t.Fatalf("after group_interval: %+v; want only the order group", got)
	}
	fp := map[string]bool{}
	for _, s := range fingerprints(got[0]) {
		fp[s] = true
	}
	if len(fp) != 2 || !fp["A/resolved"] || !fp["B/firing"] {
		t.Fatalf("order notification %v; want A resolved and B firing", fp)
	}
}

func TestRouterRepeatAndForget(t *testing.T) {
	ctx := context.Background()
	r, s, clk := newTestRouter(t, Config{Default: Route{Receiver: "team", GroupWait: time.Second, GroupInterval: time.Minute, RepeatInterval: time.Hour}})
	r.Receive(ctx, fire("alertname", "A"))
	clk.Advance(time.Second)
	_ = r.Tick(ctx)
	if len(s.take()) != 1 {
		t.Fatal("first notification missing")
	}
	for range 59 { // to 59m1s; the repeat is due at 1h1s
		clk.Advance(time.Minute)
		_ = r.Tick(ctx)
	}
	if got := s.take(); len(got) != 0 {
		t.Fatalf("repeat before repeat_interval: %d", len(got))
	}
	clk.Advance(time.Minute)
	_ = r.Tick(ctx)
	if got := s.take(); len(got) != 1 {
		t.Fatalf("after repeat_interval: %d notifications; want 1 repeat", len(got))
	}
	// An alert whose EndsAt passes is resolved without a resolved message from the sender.
	a := fire("alertname", "A")
	a.EndsAt = clk.Now().Add(30 * time.Second)
	r.Receive(ctx, a)
	clk.Advance(time.Minute)
	_ = r.Tick(ctx)
	got := s.take()
	if len(got) != 1 || got[0].Status != Resolved {
		t.Fatalf("after EndsAt: %+v; want one resolved notification", got)
	}
	if n := len(r.Alerts()); n != 0 {
		t.Errorf("resolved alert still known: %d alerts", n)
	}
	clk.Advance(2 * time.Hour)
	_ = r.Tick(ctx)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("after forgetting: %+v", got)
	}
}

func TestRouterRoutingInhibitionSilence(t *testing.T) {
	ctx := context.Background()
	r, s, clk := newTestRouter(t, Config{
		Routes: []Route{
			{Receiver: "audit", Matchers: MustMatchers(`service="order"`), Continue: true, GroupBy: []string{"alertname"}},
			{Receiver: "pager", Matchers: MustMatchers(`severity="page"`), GroupBy: []string{"alertname", "service"}},
			{Receiver: "tickets", Matchers: MustMatchers(`severity="ticket"`), GroupBy: []string{"alertname", "service"}},
		},
		Default: Route{Receiver: "fallback"},
		Inhibit: DefaultInhibitRules(),
	})
	page := fire("alertname", "Burn", "severity", "page", "service", "cart", "slo", "avail")
	ticket := fire("alertname", "SlowBurn", "severity", "ticket", "service", "cart", "slo", "avail")
	otherTicket := fire("alertname", "SlowBurn", "severity", "ticket", "service", "feed", "slo", "avail")
	orderPage := fire("alertname", "Burn", "severity", "page", "service", "order", "slo", "avail")
	stray := fire("alertname", "Other")
	r.Receive(ctx, page, ticket, otherTicket, orderPage, stray)
	if why := r.Muted(ticket); why != "inhibited" {
		t.Errorf("Muted(cart ticket) = %q; want inhibited", why)
	}
	sil, err := r.AddSilence(Silence{Matchers: MustMatchers(`service="feed"`), EndsAt: clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultGroupWait)
	_ = r.Tick(ctx)
	got := map[string][]string{}
	for _, n := range s.take() {
		for _, a := range n.Alerts {
			got[n.Receiver] = append(got[n.Receiver], a.Labels["alertname"]+"@"+a.Labels["service"])
		}
	}
	want := map[string][]string{
		"audit":    {"Burn@order"},
		"pager":    {"Burn@cart", "Burn@order"},
		"fallback": {"Other@"},
	}
	if len(got) != len(want) {
		t.Fatalf("deliveries %v; want %v (cart ticket inhibited, feed ticket silenced)", got, want)
	}
	for rcv, names := range want {
		if len(got[rcv]) != len(names) {
			t.Fatalf("receiver %s got %v; want %v", rcv, got[rcv], names)
		}
		for _, n := range names {
			found := false
			for _, g := range got[rcv] {
				found = found || g == n
			}
			if !found {
				t.Errorf("receiver %s got %v; want %s among them", rcv, got[rcv], n)
			}
		}
	}

	// The page resolves: the cart ticket is no longer inhibited and goes out at the next
	// group interval; expiring the silence releases the feed ticket.
	page.Status, page.EndsAt = Resolved, clk.Now()
	r.Receive(ctx, page)
	if !r.ExpireSilence(sil.ID) || len(r.Silences()) != 0 {
		t.Fatal("ExpireSilence did not remove the silence")
	}
	clk.Advance(DefaultGroupInterval)
	_ = r.Tick(ctx)
	tickets := 0
	for _, n := range s.take() {
		if n.Receiver == "tickets" {
			tickets += len(n.Alerts)
		}
	}
	if tickets != 2 {
		t.Errorf("tickets after the page resolved and the silence expired: %d; want 2", tickets)
	}
}

func TestRouterDeliveryFailureRetries(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Time{})
	fail := true
	var got int
	var lastStatus Status
	r, err := NewRouter(Config{Default: Route{Receiver: "x", GroupWait: time.Second, GroupInterval: time.Minute}}, func(_ context.Context, n Notification) error {
		if fail {
			return errors.New("down")
		}
		got++
		lastStatus = n.Status
		return nil
	}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	r.Receive(ctx, fire("alertname", "A"))
	clk.Advance(time.Second)
	if err := r.Tick(ctx); err == nil {
		t.Fatal("Tick hid a failed delivery")
	}
	fail = false
	clk.Advance(time.Minute)
	if err := r.Tick(ctx); err != nil || got != 1 {
		t.Fatalf("retry: err %v, delivered %d; want 1", err, got)
	}
	// A resolution whose delivery fails is not forgotten either.
	a := fire("alertname", "A")
	a.Status, a.EndsAt = Resolved, clk.Now()
	r.Receive(ctx, a)
	fail = true
	clk.Advance(time.Minute)
	if err := r.Tick(ctx); err == nil {
		t.Fatal("Tick hid a failed delivery of a resolution")
	}
	fail = false
	clk.Advance(time.Minute)
	if err := r.Tick(ctx); err != nil || got != 2 || lastStatus != Resolved {
		t.Fatalf("retry of the resolution: err %v, delivered %d (last %s); want 2, resolved", err, got, lastStatus)
	}
	clk.Advance(time.Minute)
	if err := r.Tick(ctx); err != nil || got != 2 {
		t.Fatalf("after the resolution: delivered %d; want nothing more", got)
	}
}

func TestBadConfigAndSilence(t *testing.T) {
	if _, err := NewRouter(Config{}, (&sink{}).deliver); err == nil {
		t.Error("NewRouter without a default receiver succeeded")
	}
	if _, err := NewRouter(Config{Default: Route{Receiver: "x"}, Routes: []Route{{}}}, (&sink{}).deliver); err == nil {
		t.Error("NewRouter with a route without receiver succeeded")
	}
	r, _, clk := newTestRouter(t, Config{Default: Route{Receiver: "x"}})
	if _, err := r.AddSilence(Silence{EndsAt: clk.Now().Add(time.Hour)}); !errors.Is(err, ErrBadSilence) {
		t.Errorf("silence without matchers: %v", err)
	}
	if _, err := r.AddSilence(Silence{Matchers: MustMatchers(`a="b"`), EndsAt: clk.Now()}); !errors.Is(err, ErrBadSilence) {
		t.Errorf("silence ending at its start: %v", err)
	}
}

func TestRunStops(t *testing.T) {
	r, _, _ := newTestRouter(t, Config{Default: Route{Receiver: "x"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, time.Millisecond) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
}
