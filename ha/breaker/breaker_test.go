package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

func TestClassifier(t *testing.T) {
	tests := []struct {
		err  error
		want Outcome
	}{
		{nil, Success},
		{errs.New(codes.Unavailable, "X", "down"), Failure},
		{errs.Overloaded("SHED", "busy"), Failure},
		{errs.Internal(errors.New("boom")), Failure},
		{context.DeadlineExceeded, Failure},
		{errs.NotFound("NO_NOTE", "no note"), Success},
		{errs.InvalidArgument("BAD", "bad"), Success},
		{context.Canceled, Ignore},
		{middleware.ErrDeadlineConsumed, Ignore},
		{ErrOpen, Ignore},
	}
	for _, tt := range tests {
		if got := DefaultClassifier(tt.err); got != tt.want {
			t.Errorf("DefaultClassifier(%v) = %d; want %d", tt.err, got, tt.want)
		}
	}
}

func TestProbeRecovery(t *testing.T) {
	c := clock.NewFake(time.Time{})
	b := New(WithSeed(1))
	// A full window of failures: P is close to 1.
	for range 100 {
		d := b.Allow(c.Now(), meta.Critical)
		if d.Allowed() {
			b.Mark(c.Now(), d, false)
		}
		c.Advance(5 * time.Millisecond)
	}
	if p := b.P(c.Now()); p < 0.9 {
		t.Fatalf("P after a window of failures = %.3f; want ≥ 0.9", p)
	}
	// The first request after ProbeInterval is a probe, whatever P says; the next one is not.
	c.Advance(DefaultProbeInterval)
	if d := b.Allow(c.Now(), meta.Critical); d != Probe {
		t.Fatalf("Allow after the probe interval = %v; want probe", d)
	}
	if d := b.Allow(c.Now(), meta.SheddablePlus); d == Probe {
		t.Fatalf("second Allow in the interval = probe; want one probe per interval")
	}
	b.Mark(c.Now(), Probe, true)
	if p := b.P(c.Now()); p > 0.5 {
		t.Fatalf("P after one successful probe = %.3f; want ≤ 0.5 (ceiling halved)", p)
	}
	// A failure while recovering doubles the ceiling; a failed probe resets it.
	b.Mark(c.Now(), Admit, false)
	if p := b.P(c.Now()); p < 0.9 {
		t.Fatalf("P after a failure while recovering = %.3f; want back to ≥ 0.9", p)
	}
}

func TestClientMiddleware(t *testing.T) {
	c := clock.NewFake(time.Time{})
	g := NewGroup(WithClock(c), WithSeed(5))
	var mu sync.Mutex
	var failing bool
	sent := 0
	backend := func(ctx context.Context, req any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		sent++
		if failing {
			return nil, errs.New(codes.Unavailable, errs.ReasonUnavailable, "down")
		}
		if req == "missing" {
			return nil, errs.NotFound("NO_NOTE", "no such note")
		}
		return "ok", nil
	}
	h := Client(g)(backend)
	call := func(op string, req any) error {
		ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC,
			Side: middleware.Client, Service: "note", Operation: op})
		_, err := h(ctx, req)
		c.Advance(2 * time.Millisecond)
		return err
	}
	// NotFound is an answer, not a failure: nothing is ever rejected.
	for range 200 {
		if err := call("/note.v1.Note/GetNote", "missing"); errs.Code(err) != codes.NotFound {
			t.Fatalf("call = %v; want NotFound", err)
		}
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	var open, late int
	for i := range 1000 {
		if err := call("/note.v1.Note/GetNote", "x"); errors.Is(err, ErrOpen) {
			open++
			if i >= 500 { // after the first second of failures
				late++
			}
			if errs.IsRetryable(err) {
				t.Fatalf("ErrOpen is retryable; want not")
			}
		}
	}
	if late < 475 {
		t.Fatalf("%d of 500 calls in the second second of failures rejected locally; want ≥ 475", late)
	}
	// Another operation of the same service has its own breaker.
	if err := call("/note.v1.Note/ListNotes", "x"); errors.Is(err, ErrOpen) {
		t.Fatalf("other operation rejected: %v; want sent", err)
	}
	st, err := json.Marshal(g.State())
	if err != nil {
		t.Fatalf("State is not JSON-able: %v", err)
	}
	t.Logf("state: %s", st)
	rejected := testutil.ToFloat64(decisions.WithLabelValues("note", "/note.v1.Note/GetNote", "reject", "throttled"))
	if int(rejected) != open {
		t.Fatalf("reject counter = %v; want %d", rejected, open)
	}
}

func BenchmarkAllow(b *testing.B) {
	g := NewGroup()
	br := g.Get("note", "/note.v1.Note/GetNote")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		d := br.Allow(now, meta.Critical)
		br.Mark(now, d, true)
	}
}

func BenchmarkClient(b *testing.B) {
	h := Client(NewGroup())(func(ctx context.Context, req any) (any, error) { return nil, nil })
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC,
		Side: middleware.Client, Service: "note", Operation: "/note.v1.Note/GetNote"})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}
