package oncall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC) // a Monday, 09:00 handoff

func weekly() Schedule {
	return Schedule{
		Name: "primary",
		Layers: []Layer{
			{Name: "weekly", Users: []string{"ana", "bo", "cy"}, Start: t0, Length: 7 * 24 * time.Hour},
			// A later layer covers the earlier one where it has someone: a one-day cover.
			{Name: "cover", Users: []string{"dee"}, Start: t0.Add(30 * 24 * time.Hour), Length: 24 * time.Hour},
		},
		Overrides: []Override{
			{User: "eve", Start: t0.Add(8 * 24 * time.Hour), End: t0.Add(9 * 24 * time.Hour)},
			{User: "fay", Start: t0.Add(8*24*time.Hour + 12*time.Hour), End: t0.Add(8*24*time.Hour + 13*time.Hour)},
		},
	}
}

func TestOnCall(t *testing.T) {
	s := weekly()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   time.Duration
		want string
	}{
		{-time.Second, ""},
		{0, "ana"},
		{7*24*time.Hour - time.Nanosecond, "ana"},
		{7 * 24 * time.Hour, "bo"}, // handoff
		{8 * 24 * time.Hour, "eve"},
		{8*24*time.Hour + 12*time.Hour, "fay"}, // the later override wins
		{9 * 24 * time.Hour, "bo"},
		{14 * 24 * time.Hour, "cy"},
		{21 * 24 * time.Hour, "ana"}, // wraps
		{31 * 24 * time.Hour, "dee"},
	}
	for _, tt := range tests {
		got, ok := s.OnCall(t0.Add(tt.at))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("OnCall(t0+%s) = %q, %v; want %q", tt.at, got, ok, tt.want)
		}
	}
}

func TestShifts(t *testing.T) {
	s := weekly()
	got := s.Shifts(t0.Add(6*24*time.Hour), t0.Add(10*24*time.Hour))
	want := []Shift{
		{"ana", t0.Add(6 * 24 * time.Hour), t0.Add(7 * 24 * time.Hour)},
		{"bo", t0.Add(7 * 24 * time.Hour), t0.Add(8 * 24 * time.Hour)},
		{"eve", t0.Add(8 * 24 * time.Hour), t0.Add(8*24*time.Hour + 12*time.Hour)},
		{"fay", t0.Add(8*24*time.Hour + 12*time.Hour), t0.Add(8*24*time.Hour + 13*time.Hour)},
		{"eve", t0.Add(8*24*time.Hour + 13*time.Hour), t0.Add(9 * 24 * time.Hour)},
		{"bo", t0.Add(9 * 24 * time.Hour), t0.Add(10 * 24 * time.Hour)},
	}
	if len(got) != len(want) {
		t.Fatalf("Shifts = %v; want %v", got, want)
	}
	for i := range want {
		if got[i].User != want[i].User || !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) {
			t.Errorf("Shifts[%d] = %v; want %v", i, got[i], want[i])
		}
	}
}

func directory() Directory {
	secondary := Schedule{Name: "secondary", Layers: []Layer{{Users: []string{"sam", "sol"}, Start: t0, Length: 7 * 24 * time.Hour}}}
	return Directory{
		Schedules: map[string]Schedule{"primary": weekly(), "secondary": secondary},
		Policies: map[string]Policy{"default": {Name: "default", Levels: []Level{
			{Schedule: "primary", Timeout: 5 * time.Minute},
			{Schedule: "secondary", Timeout: 10 * time.Minute},
			{User: "manager"},
		}}},
	}
}

func TestDirectoryValidate(t *testing.T) {
	if err := directory().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(d *Directory){
		"misfiled schedule": func(d *Directory) { d.Schedules["x"] = weekly() },
		"layer without users": func(d *Directory) {
			s := weekly()
			s.Layers[0].Users = nil
			d.Schedules["primary"] = s
		},
		"zero length": func(d *Directory) {
			s := weekly()
			s.Layers[0].Length = 0
			d.Schedules["primary"] = s
		},
		"bad override": func(d *Directory) {
			s := weekly()
			s.Overrides[0].End = s.Overrides[0].Start
			d.Schedules["primary"] = s
		},
		"unknown schedule": func(d *Directory) {
			d.Policies["p"] = Policy{Name: "p", Levels: []Level{{Schedule: "nope"}}}
		},
		"both schedule and user": func(d *Directory) {
			d.Policies["p"] = Policy{Name: "p", Levels: []Level{{Schedule: "primary", User: "x"}}}
		},
		"no levels": func(d *Directory) { d.Policies["p"] = Policy{Name: "p"} },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			d := directory()
			mutate(&d)
			if err := d.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate = %v; want ErrInvalid", err)
			}
		})
	}
}

func TestWebhookNotifier(t *testing.T) {
	var mu sync.Mutex
	var got []Page
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Page
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("decode page: %v", err)
		}
		mu.Lock()
		got = append(got, p)
		w.WriteHeader(status)
		mu.Unlock()
	}))
	defer srv.Close()
	n := NewWebhook(srv.URL, srv.Client())
	page := Page{IncidentID: "inc1", User: "ana", Level: 1, At: t0}
	if err := n.Notify(context.Background(), page); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	mu.Lock()
	status = http.StatusBadGateway
	mu.Unlock()
	if err := n.Notify(context.Background(), page); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Notify to a failing hook = %v; want a 502 error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].IncidentID != "inc1" || got[0].User != "ana" || got[0].Level != 1 || !got[0].At.Equal(t0) {
		t.Fatalf("hook received %+v", got)
	}
}

func TestLogNotifier(t *testing.T) {
	var buf bytes.Buffer
	n := NewLog(slog.New(slog.NewTextHandler(&buf, nil)))
	if err := n.Notify(context.Background(), Page{IncidentID: "inc9", User: "bo"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "incident=inc9") || !strings.Contains(buf.String(), "user=bo") {
		t.Fatalf("log = %q", buf.String())
	}
}

// memStore is a hand-written EscalationStore; sre/incident tests the SQL one.
type memStore struct {
	ticked chan struct{} // when set, receives a value on every DueEscalations
	mu     sync.Mutex
	esc    map[string]*Escalation
	acked  map[string]bool
	steps  []Step
}

func (m *memStore) open(id string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.esc[id] = &Escalation{IncidentID: id, Policy: "default", Due: now}
}

func (m *memStore) DueEscalations(_ context.Context, now time.Time, limit int) ([]Escalation, error) {
	if m.ticked != nil {
		m.ticked <- struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Escalation
	for id, e := range m.esc {
		if !m.acked[id] && !e.Due.After(now) && len(out) < limit {
			out = append(out, *e)
		}
	}
	return out, nil
}

func (m *memStore) RecordStep(_ context.Context, s Step) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.esc[s.IncidentID]
	if e == nil || m.acked[s.IncidentID] || e.Level != s.Level {
		return false, nil
	}
	m.steps = append(m.steps, s)
	if s.Done {
		delete(m.esc, s.IncidentID)
		return true, nil
	}
	e.Level, e.Due = s.Next, s.NextAt
	return true, nil
}

type pager struct {
	mu    sync.Mutex
	pages []Page
	fail  bool
}

func (p *pager) Notify(_ context.Context, pg Page) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("channel down")
	}
	p.pages = append(p.pages, pg)
	return nil
}

func (p *pager) users() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, pg := range p.pages {
		out = append(out, pg.User)
	}
	return out
}

func TestEscalator(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0.Add(time.Hour)) // ana on primary, sam on secondary
	store := &memStore{esc: map[string]*Escalation{}, acked: map[string]bool{}}
	p := &pager{}
	e, err := NewEscalator(store, directory(), p, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	store.open("inc1", clk.Now())
	store.open("inc2", clk.Now())
	steps := func() int {
		t.Helper()
		n, err := e.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := steps(); n != 2 {
		t.Fatalf("first Tick recorded %d steps; want 2 (level 0 of both)", n)
	}
	store.mu.Lock()
	store.acked["inc2"] = true
	store.mu.Unlock()
	clk.Advance(5*time.Minute - time.Second)
	if n := steps(); n != 0 {
		t.Fatalf("before the ack timeout: %d steps", n)
	}
	clk.Advance(time.Second)
	if n := steps(); n != 1 {
		t.Fatalf("at the ack timeout: %d steps; want 1 (inc2 was acked)", n)
	}
	clk.Advance(10 * time.Minute)
	steps()
	clk.Advance(time.Hour)
	if n := steps(); n != 0 {
		t.Fatalf("after the last level: %d steps; want 0", n)
	}
	if got, want := strings.Join(p.users(), ","), "ana,ana,sam,manager"; got != want {
		t.Fatalf("paged %s; want %s", got, want)
	}
	last := store.steps[len(store.steps)-1]
	if !last.Done || last.User != "manager" || !strings.Contains(last.Text, "last level") {
		t.Errorf("last step = %+v", last)
	}
}

func TestEscalatorMovesOnWhenPagingFails(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0.Add(time.Hour))
	store := &memStore{esc: map[string]*Escalation{}, acked: map[string]bool{}}
	p := &pager{fail: true}
	e, err := NewEscalator(store, directory(), p, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	store.open("inc1", clk.Now())
	if _, err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.fail = false
	p.mu.Unlock()
	clk.Advance(5 * time.Minute)
	if _, err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.users(); len(got) != 1 || got[0] != "sam" {
		t.Fatalf("paged %v; want the secondary after the primary's channel failed", got)
	}
	if !strings.Contains(store.steps[0].Text, "failed") {
		t.Errorf("failed page recorded as %q", store.steps[0].Text)
	}
}

func TestEscalatorRunStops(t *testing.T) {
	store := &memStore{esc: map[string]*Escalation{}, acked: map[string]bool{}}
	e, err := NewEscalator(store, directory(), &pager{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx, time.Millisecond) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
}

func TestWakePagesWithoutWaitingForTheInterval(t *testing.T) {
	store := &memStore{esc: map[string]*Escalation{}, acked: map[string]bool{}, ticked: make(chan struct{})}
	paged := make(chan Page, 1)
	clk := clock.NewFake(t0.Add(time.Hour))
	e, err := NewEscalator(store, directory(), NotifierFunc(func(_ context.Context, p Page) error {
		paged <- p
		return nil
	}), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx, time.Hour) }()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(what string, ch <-chan struct{}) {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s within 10 s", what)
		}
	}
	wait("first tick", store.ticked)
	store.open("inc1", clk.Now())
	e.Wake()
	wait("tick on wake", store.ticked)
	select {
	case p := <-paged:
		if p.User != "ana" || p.IncidentID != "inc1" {
			t.Fatalf("paged %+v; want ana for inc1", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wake did not page within 10 s")
	}
}
