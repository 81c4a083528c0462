package mq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/data/internal/testenv"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/trace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	natsEnv = "REDLINE_TEST_NATS"
	natsDef = "nats://127.0.0.1:4222"
)

// backend gives a test the URL of a NATS server with JetStream.
type backend struct {
	name string
	url  func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"embedded", func(t *testing.T) string {
			e, err := StartEmbedded(t.TempDir())
			if err != nil {
				t.Fatalf("StartEmbedded() = %v", err)
			}
			t.Cleanup(e.Close)
			return e.URL()
		}},
		{"server", func(t *testing.T) string { return testenv.URL(t, natsEnv, natsDef) }},
	}
}

// forEach runs test against every backend.
func forEach(t *testing.T, test func(t *testing.T, url string)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, b.url(t)) })
	}
}

// testStream is a stream name and subject prefix of the test's own.
type testStream struct{ name, prefix string }

func newTestStream() testStream {
	name := testenv.Name("T")
	return testStream{name: name, prefix: strings.ToLower(name)}
}

// open opens a queue on ts. The first open of a stream in a test deletes it at cleanup.
func (ts testStream) open(t *testing.T, url string, opts ...Option) *JetStream {
	t.Helper()
	opts = append([]Option{WithStream(ts.name), WithSubjectPrefix(ts.prefix)}, opts...)
	q, err := Open(t.Context(), url, opts...)
	if err != nil {
		testenv.Unreachable(t, natsEnv, err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		name := ts.name
		if q.o.shadow {
			name += "_SHADOW"
		}
		deleteStream(t, url, name)
	})
	return q
}

func deleteStream(t *testing.T, url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect to delete stream %s: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("jetstream: %v", err)
		return
	}
	if err := js.DeleteStream(context.Background(), name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

func subscribe(t *testing.T, q Queue, subject, durable string, h Handler) Subscription {
	t.Helper()
	sub, err := q.Subscribe(t.Context(), subject, durable, h)
	if err != nil {
		t.Fatalf("Subscribe(%q, %q) = %v", subject, durable, err)
	}
	t.Cleanup(func() { sub.Stop() })
	return sub
}

func publish(t *testing.T, ctx context.Context, q Queue, subject string, data string) {
	t.Helper()
	if err := q.Publish(ctx, subject, []byte(data)); err != nil {
		t.Fatalf("Publish(%q) = %v", subject, err)
	}
}

// waitFor polls cond until it holds, failing the test after a bounded wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// received is what a handler saw.
type received struct {
	msg         Message
	md          meta.MD
	traceID     string
	spanID      string
	hasDeadline bool
}

func TestRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		q := newTestStream().open(t, url, Shadow()) // the message is in a lane
		got := make(chan received, 1)
		subscribe(t, q, "note.*", "feed", func(ctx context.Context, m Message) error {
			traceID, spanID := trace.IDs(ctx)
			_, hasDeadline := ctx.Deadline()
			got <- received{msg: m, md: meta.FromContext(ctx), traceID: traceID, spanID: spanID, hasDeadline: hasDeadline}
			return nil
		})

		md := meta.MD{RequestID: "req-42", Lane: "stress-1", Criticality: meta.SheddablePlus, Attempt: 2}
		sc := oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
			TraceID:    oteltrace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
			SpanID:     oteltrace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
			TraceFlags: oteltrace.FlagsSampled,
		})
		ctx := oteltrace.ContextWithSpanContext(meta.NewContext(t.Context(), md), sc)
		publish(t, ctx, q, "note.created", "hello")

		var r received
		select {
		case r = <-got:
		case <-time.After(15 * time.Second):
			t.Fatal("no message within 15s")
		}
		if r.msg.Subject != "note.created" || string(r.msg.Data) != "hello" {
			t.Errorf("message = %q %q; want %q %q", r.msg.Subject, r.msg.Data, "note.created", "hello")
		}
		if r.md != md {
			t.Errorf("handler meta = %+v; want %+v", r.md, md)
		}
		if r.traceID != sc.TraceID().String() || r.spanID != sc.SpanID().String() {
			t.Errorf("handler trace = %s/%s; want %s/%s", r.traceID, r.spanID, sc.TraceID(), sc.SpanID())
		}
		if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; r.msg.Header["traceparent"] != want {
			t.Errorf("traceparent header = %q; want %q", r.msg.Header["traceparent"], want)
		}
		if r.msg.Header[meta.HeaderRequestID] != "req-42" || r.msg.Header[meta.HeaderBaggage] != "lane=stress-1" {
			t.Errorf("headers = %v; want request id and lane baggage", r.msg.Header)
		}
		if !r.hasDeadline {
			t.Error("handler ctx has no deadline; want the ack wait")
		}
		waitFor(t, "stats", func() bool { return q.Stats() == Stats{Published: 1, Handled: 1} })
		if err := q.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v", err)
		}
	})
}

func TestBaselineHasNoMetaHeaders(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		q := newTestStream().open(t, url)
		got := make(chan received, 1)
		subscribe(t, q, "x", "d", func(ctx context.Context, m Message) error {
			got <- received{msg: m, md: meta.FromContext(ctx)}
			return nil
		})
		publish(t, t.Context(), q, "x", "")
		r := <-got
		if r.md != (meta.MD{}) {
			t.Errorf("handler meta = %+v; want the zero MD", r.md)
		}
		for _, h := range []string{meta.HeaderBaggage, meta.HeaderRequestID, "traceparent"} {
			if v, ok := r.msg.Header[h]; ok {
				t.Errorf("header %s = %q; want none", h, v)
			}
		}
	})
}

func TestRedelivery(t *testing.T) {
	tests := []struct {
		name       string
		fail       func(delivery int) error // called for every delivery; may panic
		maxDeliver int
		wantCalls  int
		want       Stats
	}{
		{
			name: "succeeds on the third delivery",
			fail: func(n int) error {
				if n < 3 {
					return errors.New("not yet")
				}
				return nil
			},
			maxDeliver: 5,
			wantCalls:  3,
			want:       Stats{Published: 1, Handled: 1, Failed: 2},
		},
		{
			name:       "terminated after max deliveries",
			fail:       func(int) error { return errors.New("always") },
			maxDeliver: 3,
			wantCalls:  3,
			want:       Stats{Published: 1, Failed: 3, Terminated: 1},
		},
		{
			name:       "panics count as failures",
			fail:       func(int) error { panic("bad message") },
			maxDeliver: 2,
			wantCalls:  2,
			want:       Stats{Published: 1, Failed: 2, Terminated: 1},
		},
	}
	forEach(t, func(t *testing.T, url string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := newTestStream().open(t, url, WithMaxDeliver(tt.maxDeliver), WithRetryBackoff(time.Millisecond))
				var calls atomic.Int32
				subscribe(t, q, "order.created", "worker", func(context.Context, Message) error {
					return tt.fail(int(calls.Add(1)))
				})
				publish(t, t.Context(), q, "order.created", "o1")
				waitFor(t, fmt.Sprintf("stats %+v", tt.want), func() bool { return q.Stats() == tt.want })
				idle(t, q, "worker") // the server has nothing left to deliver: the count is final
				if got := int(calls.Load()); got != tt.wantCalls {
					t.Fatalf("handler calls = %d; want %d", got, tt.wantCalls)
				}
			})
		}
	})
}

func TestStopWaitsForInFlight(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		q := newTestStream().open(t, url)
		started, release := make(chan struct{}), make(chan struct{})
		var finished atomic.Bool
		sub := subscribe(t, q, "slow", "d", func(context.Context, Message) error {
			close(started)
			<-release
			finished.Store(true)
			return nil
		})
		publish(t, t.Context(), q, "slow", "x")
		<-started

		stopped := make(chan error, 1)
		go func() { stopped <- sub.Stop() }()
		// Stop must not return while the handler runs. Waiting a little can only miss a bug,
		// never fail a correct Stop.
		select {
		case err := <-stopped:
			t.Fatalf("Stop() = %v returned while a handler was in flight", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop() = %v", err)
		}
		if !finished.Load() {
			t.Fatal("Stop returned before the handler finished")
		}
		if err := sub.Stop(); err != nil {
			t.Fatalf("second Stop() = %v", err)
		}
		if got := q.Stats().Handled; got != 1 {
			t.Fatalf("Stats().Handled = %d; want 1 (the in-flight message was acked)", got)
		}
	})
}

func TestDurableIsSharedAndResumes(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ts := newTestStream()
		q1, q2 := ts.open(t, url), ts.open(t, url) // two processes of one service
		var mu sync.Mutex
		seen := map[string]int{}
		h := func(_ context.Context, m Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(m.Data)]++
			return nil
		}
		count := func() (distinct, total int) {
			mu.Lock()
			defer mu.Unlock()
			for _, n := range seen {
				total += n
			}
			return len(seen), total
		}
		s1 := subscribe(t, q1, "like.added", "counter", h)
		s2 := subscribe(t, q2, "like.added", "counter", h)
		for i := range 20 {
			publish(t, t.Context(), q1, "like.added", fmt.Sprint(i))
		}
		waitFor(t, "20 messages", func() bool { d, _ := count(); return d == 20 })
		if _, total := count(); total != 20 {
			t.Fatalf("handled %d deliveries of 20 messages; want each once", total)
		}
		s1.Stop()
		s2.Stop()

		// Published while nobody listens; the durable picks up there, and only there.
		for i := 20; i < 25; i++ {
			publish(t, t.Context(), q1, "like.added", fmt.Sprint(i))
		}
		subscribe(t, q2, "like.added", "counter", h)
		waitFor(t, "25 messages", func() bool { d, _ := count(); return d == 25 })
		if _, total := count(); total != 25 {
			t.Fatalf("handled %d deliveries of 25 messages; want each once", total)
		}
	})
}

func TestConcurrency(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		const n = 3
		q := newTestStream().open(t, url, WithConcurrency(n))
		var inFlight atomic.Int32
		allIn := make(chan struct{})
		subscribe(t, q, "work", "pool", func(ctx context.Context, _ Message) error {
			if inFlight.Add(1) == n {
				close(allIn)
			}
			// Each handler holds its slot until n run together; one at a time never gets there.
			select {
			case <-allIn:
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("handlers did not overlap")
			}
		})
		for i := range n {
			publish(t, t.Context(), q, "work", fmt.Sprint(i))
		}
		waitFor(t, "all handled", func() bool { return q.Stats().Handled == n })
		if f := q.Stats().Failed; f != 0 {
			t.Fatalf("Stats().Failed = %d; want 0", f)
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		q := newTestStream().open(t, url)
		sub := subscribe(t, q, "a", "d", func(context.Context, Message) error { return nil })
		if err := q.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		if err := q.Close(); err != nil {
			t.Fatalf("second Close() = %v", err)
		}
		if err := sub.Stop(); err != nil {
			t.Fatalf("Stop() after Close = %v", err)
		}
		ctx := t.Context()
		_, subErr := q.Subscribe(ctx, "a", "d", func(context.Context, Message) error { return nil })
		for name, err := range map[string]error{
			"Publish":   q.Publish(ctx, "a", nil),
			"Subscribe": subErr,
			"Ping":      q.Ping(ctx),
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close = %v; want ErrClosed", name, err)
			}
		}
	})
}

func TestNames(t *testing.T) {
	q := newTestStream().open(t, backends()[0].url(t))
	h := func(context.Context, Message) error { return nil }
	tests := []struct {
		subject, durable string
		publishOK        bool
		subscribeOK      bool
	}{
		{"note.created", "d", true, true},
		{"note.*", "d", false, true},
		{"note.>", "d", false, true},
		{">", "d", false, true},
		{"", "d", false, false},
		{"note..created", "d", false, false},
		{"note.", "d", false, false},
		{"note created", "d", false, false},
		{"note.>.x", "d", false, false},
		{"no*te", "d", false, false},
		{"note.created", "", true, false},
		{"note.created", "a.b", true, false},
		{"note.created", strings.Repeat("d", 65), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.subject+"/"+tt.durable, func(t *testing.T) {
			err := q.Publish(t.Context(), tt.subject, nil)
			if (err == nil) != tt.publishOK || err != nil && !errors.Is(err, ErrInvalidName) {
				t.Errorf("Publish(%q) = %v; want ok=%v", tt.subject, err, tt.publishOK)
			}
			sub, err := q.Subscribe(t.Context(), tt.subject, tt.durable, h)
			if err == nil {
				sub.Stop()
			}
			if (err == nil) != tt.subscribeOK || err != nil && !errors.Is(err, ErrInvalidName) {
				t.Errorf("Subscribe(%q, %q) = %v; want ok=%v", tt.subject, tt.durable, err, tt.subscribeOK)
			}
		})
	}
}

func TestOpenUnreachable(t *testing.T) {
	if _, err := Open(t.Context(), "nats://127.0.0.1:1"); err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		base, limit time.Duration
		delivered   uint64
		want        time.Duration
	}{
		{100 * time.Millisecond, time.Second, 1, 100 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 2, 200 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 4, 800 * time.Millisecond},
		{100 * time.Millisecond, time.Second, 5, time.Second},
		{100 * time.Millisecond, time.Second, 1000, time.Second},
		{0, time.Second, 3, 0},
	}
	for _, tt := range tests {
		if got := backoff(tt.base, tt.limit, tt.delivered); got != tt.want {
			t.Errorf("backoff(%v, %v, %d) = %v; want %v", tt.base, tt.limit, tt.delivered, got, tt.want)
		}
	}
}

// flakyJS fails CreateOrUpdateStream with err for its first fails calls.
type flakyJS struct {
	jetstream.JetStream
	fails, calls int
	err          error
}

func (f *flakyJS) CreateOrUpdateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	f.calls++
	if f.calls <= f.fails {
		return nil, f.err
	}
	return nil, nil
}

func TestCreateStreamRetriesStoreFailures(t *testing.T) {
	storeErr := &jetstream.APIError{Code: 500, ErrorCode: errCodeStreamStoreFailed, Description: "error creating store for stream"}
	otherErr := &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}
	tests := []struct {
		name      string
		fails     int
		err       error
		wantCalls int
		wantErr   bool
	}{
		{"first try", 0, storeErr, 1, false},
		{"store failure then success", 2, storeErr, 3, false},
		{"store failure three times", 3, storeErr, 3, true},
		{"other errors are final", 1, otherErr, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := &flakyJS{fails: tt.fails, err: tt.err}
			err := createStream(t.Context(), js, jetstream.StreamConfig{Name: "S"})
			if (err != nil) != tt.wantErr || js.calls != tt.wantCalls {
				t.Fatalf("createStream() = %v after %d calls; want error %v after %d", err, js.calls, tt.wantErr, tt.wantCalls)
			}
			if err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("createStream() = %v; want it to wrap %v", err, tt.err)
			}
		})
	}
}
