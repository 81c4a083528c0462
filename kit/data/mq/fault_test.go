package mq

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
)

// only fails the Point asked at-th (from 0) with err and lets the others through.
func only(at int, err error) *faulttest.Recorder {
	return &faulttest.Recorder{Err: err, Match: func(n int, _ fault.Point) bool { return n == at }}
}

var errInjected = errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected queue fault")

// idle waits until the durable consumer has nothing pending or unacked: every message was
// delivered and settled, so counts taken afterwards are final.
func idle(t *testing.T, q *JetStream, durable string) {
	t.Helper()
	waitFor(t, "an idle consumer", func() bool {
		cons, err := q.js.Consumer(t.Context(), q.o.stream, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0 && info.NumPending == 0
	})
}

// stored is the number of messages in q's stream.
func stored(t *testing.T, q *JetStream) uint64 {
	t.Helper()
	s, err := q.js.Stream(t.Context(), q.o.stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestFaults: publishes and deliveries ask the fault hook with the subject; a drop on
// publish loses the message and the next one goes through, a drop on delivery settles the
// message unhandled, another error fails the publish or the handling.
func TestFaults(t *testing.T) {
	url := backends()[0].url(t) // embedded
	tests := []struct {
		name      string
		inj       *faulttest.Recorder // Points: publish "one", publish "two", deliveries
		publishes []string
		wantErr   []error // of each publish
		handled   []string
		want      Stats
		stored    uint64
		points    int
	}{
		{
			name:      "drop on publish",
			inj:       only(0, fault.ErrDrop),
			publishes: []string{"one", "two"},
			wantErr:   []error{nil, nil},
			handled:   []string{"two"},
			want:      Stats{Published: 1, Handled: 1},
			stored:    1,
			points:    3, // two publishes, one delivery
		},
		{
			name:      "error on publish",
			inj:       only(0, errInjected),
			publishes: []string{"one", "two"},
			wantErr:   []error{errInjected, nil},
			handled:   []string{"two"},
			want:      Stats{Published: 1, Handled: 1},
			stored:    1,
			points:    3,
		},
		{
			name:      "drop on delivery",
			inj:       only(1, fault.ErrDrop),
			publishes: []string{"one"},
			wantErr:   []error{nil},
			want:      Stats{Published: 1},
			stored:    1,
			points:    2,
		},
		{
			name:      "error on delivery is a failed handling",
			inj:       only(1, errInjected),
			publishes: []string{"one"},
			wantErr:   []error{nil},
			handled:   []string{"one"}, // on the redelivery
			want:      Stats{Published: 1, Handled: 1, Failed: 1},
			stored:    1,
			points:    3, // the publish, the failed delivery, the redelivery
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newTestStream().open(t, url, WithService("notes"), WithRetryBackoff(time.Millisecond))
			inj := tt.inj
			faulttest.Install(t, inj)
			var mu sync.Mutex
			var handled []string
			subscribe(t, q, "note.created", "feed", func(_ context.Context, m Message) error {
				mu.Lock()
				defer mu.Unlock()
				handled = append(handled, string(m.Data))
				return nil
			})
			for i, data := range tt.publishes {
				if err := q.Publish(t.Context(), "note.created", []byte(data)); !errors.Is(err, tt.wantErr[i]) || (err == nil) != (tt.wantErr[i] == nil) {
					t.Fatalf("Publish(%q) = %v; want %v", data, err, tt.wantErr[i])
				}
			}
			waitFor(t, "stats", func() bool { return q.Stats() == tt.want })
			idle(t, q, "feed")
			if got := stored(t, q); got != tt.stored {
				t.Fatalf("stream holds %d messages; want %d", got, tt.stored)
			}
			mu.Lock()
			if len(handled) != len(tt.handled) || len(handled) > 0 && handled[0] != tt.handled[0] {
				t.Fatalf("handled %q; want %q", handled, tt.handled)
			}
			mu.Unlock()
			if got := q.Stats(); got != tt.want {
				t.Fatalf("Stats() = %+v; want %+v", got, tt.want)
			}
			want := fault.Point{Kind: fault.Queue, Side: fault.Client, Service: "notes", Op: "note.created"}
			points := inj.Seen()
			if len(points) != tt.points {
				t.Fatalf("injector asked %d times; want %d", len(points), tt.points)
			}
			for _, p := range points {
				if p != want {
					t.Fatalf("point = %+v; want %+v", p, want)
				}
			}
		})
	}
}

// TestForService: a view of a shared queue names its service in the Points of its
// publishes and of its subscriptions' deliveries, and leaves the queue open on Close.
func TestForService(t *testing.T) {
	q := newTestStream().open(t, backends()[0].url(t), WithService("owner"))
	inj := &faulttest.Recorder{}
	faulttest.Install(t, inj)
	feed, notes := ForService(q, "feed"), ForService(ForService(q, "x"), "notes")
	var got atomic.Int32
	subscribe(t, feed, "note.created", "feed", func(context.Context, Message) error { got.Add(1); return nil })
	publish(t, t.Context(), notes, "note.created", "one")
	waitFor(t, "the delivery", func() bool { return got.Load() == 1 })
	if err := notes.Close(); err != nil {
		t.Fatalf("view Close() = %v", err)
	}
	if err := q.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() after a view's Close = %v; want the queue still open", err)
	}
	want := []fault.Point{
		{Kind: fault.Queue, Side: fault.Client, Service: "notes", Op: "note.created"},
		{Kind: fault.Queue, Side: fault.Client, Service: "feed", Op: "note.created"},
	}
	if p := inj.Seen(); len(p) != 2 || p[0] != want[0] || p[1] != want[1] {
		t.Fatalf("points = %+v; want %+v", p, want)
	}
}
