package mq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/trace"
)

// JetStream is a Queue on one NATS JetStream stream.
type JetStream struct {
	o  options
	nc *nats.Conn
	js jetstream.JetStream

	published, handled, failed, terminated atomic.Uint64

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

var (
	_ Queue = (*JetStream)(nil)
	_ Queue = serviceQueue{}
)

// Open connects to the NATS server at url (nats://host:port) and creates or updates the
// queue's stream, which holds every subject under the prefix. See Shadow for lanes.
func Open(ctx context.Context, url string, opts ...Option) (*JetStream, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if !validSubject(o.prefix, false) {
		return nil, fmt.Errorf("%w: subject prefix %q", ErrInvalidName, o.prefix)
	}
	if o.shadow {
		o.prefix, o.stream = "shadow."+o.prefix, o.stream+"_SHADOW"
	}
	o.maxDeliver = max(o.maxDeliver, 1)
	o.concurrency = max(o.concurrency, 1)
	nc, err := nats.Connect(url, nats.Name("redline"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("mq: connect %s: %w", redact(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("mq: jetstream: %w", err)
	}
	if err := createStream(ctx, js, jetstream.StreamConfig{
		Name:       o.stream,
		Subjects:   []string{o.prefix + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     o.maxAge,
		Duplicates: 2 * time.Minute,
	}); err != nil {
		nc.Close()
		return nil, err
	}
	return &JetStream{o: o, nc: nc, js: js, subs: make(map[*subscription]struct{})}, nil
}

// errCodeStreamStoreFailed is JetStream's "error creating store for stream".
const errCodeStreamStoreFailed jetstream.ErrorCode = 10049

// createStream creates or updates the stream, retrying a store failure twice. A NATS server
// removes an account's emptied streams directory in the background after the last stream in
// it is deleted; a create racing with that removal fails with a store error and succeeds when
// tried again.
func createStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	for attempt := 1; ; attempt++ {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		var apiErr *jetstream.APIError
		if err == nil {
			return nil
		}
		if attempt == 3 || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeStreamStoreFailed {
			return fmt.Errorf("mq: create stream %s: %w", cfg.Name, err)
		}
		t := time.NewTimer(time.Duration(attempt) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("mq: create stream %s: %w", cfg.Name, err)
		case <-t.C:
		}
	}
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

func (q *JetStream) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Publish implements Queue.
func (q *JetStream) Publish(ctx context.Context, subject string, data []byte) error {
	return q.publish(ctx, q.o.service, subject, data)
}

// publish is Publish with service in the fault Point.
func (q *JetStream) publish(ctx context.Context, service, subject string, data []byte) error {
	if !validSubject(subject, false) {
		return fmt.Errorf("%w: subject %q", ErrInvalidName, subject)
	}
	if q.isClosed() {
		return ErrClosed
	}
	switch lane := meta.Lane(ctx); {
	case q.o.shadow && lane == "":
		ctx = meta.WithLane(ctx, meta.ShadowLane)
	case !q.o.shadow && lane != "":
		lanes.Refused("mq")
		return ErrLane
	}
	switch err := inject(ctx, service, subject); {
	case errors.Is(err, fault.ErrDrop):
		return nil // lost on the way: the publisher believes it was stored
	case err != nil:
		return fmt.Errorf("mq: publish %s: %w", subject, err)
	}
	carrier := meta.MapCarrier{}
	meta.Inject(ctx, carrier)
	trace.Inject(ctx, carrier)
	msg := &nats.Msg{Subject: q.o.prefix + "." + subject, Data: data, Header: make(nats.Header, len(carrier))}
	for k, v := range carrier {
		msg.Header.Set(k, v)
	}
	if _, err := q.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("mq: publish %s: %w", subject, err)
	}
	q.published.Add(1)
	return nil
}

// Subscribe implements Queue. The durable consumer is created, or updated to this queue's
// options, on the server.
func (q *JetStream) Subscribe(ctx context.Context, subject, durable string, h Handler) (Subscription, error) {
	return q.subscribe(ctx, q.o.service, subject, durable, h)
}

// subscribe is Subscribe with service in the fault Points of the deliveries.
func (q *JetStream) subscribe(ctx context.Context, service, subject, durable string, h Handler) (Subscription, error) {
	if !validSubject(subject, true) {
		return nil, fmt.Errorf("%w: subject %q", ErrInvalidName, subject)
	}
	if !validDurable(durable) {
		return nil, fmt.Errorf("%w: durable %q (want 1 to 64 of [A-Za-z0-9_-])", ErrInvalidName, durable)
	}
	if q.isClosed() {
		return nil, ErrClosed
	}
	cons, err := q.js.CreateOrUpdateConsumer(ctx, q.o.stream, jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: q.o.prefix + "." + subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.o.ackWait,
		MaxDeliver:    q.o.maxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("mq: consumer %s on %s: %w", durable, subject, err)
	}
	// A small buffer: a fetched message's ack wait runs while it waits for a handler.
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * q.o.concurrency))
	if err != nil {
		return nil, fmt.Errorf("mq: consume %s on %s: %w", durable, subject, err)
	}
	s := &subscription{q: q, it: it, h: h, service: service, done: make(chan struct{})}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		it.Stop()
		return nil, ErrClosed
	}
	q.subs[s] = struct{}{}
	q.mu.Unlock()
	s.wg.Add(q.o.concurrency)
	for range q.o.concurrency {
		go s.work()
	}
	go func() { s.wg.Wait(); close(s.done) }()
	return s, nil
}

// Ping implements Queue: the server answers for the queue's stream.
func (q *JetStream) Ping(ctx context.Context) error {
	if q.isClosed() {
		return ErrClosed
	}
	if _, err := q.js.Stream(ctx, q.o.stream); err != nil {
		return fmt.Errorf("mq: ping stream %s: %w", q.o.stream, err)
	}
	return nil
}

// Close implements Queue. It is safe to call more than once.
func (q *JetStream) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	subs := make([]*subscription, 0, len(q.subs))
	for s := range q.subs {
		subs = append(subs, s)
	}
	q.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Stop())
	}
	// Push out the acks of the last handlers before the connection goes; a lost ack would only
	// mean a redelivery, but there is no reason to cause one.
	_ = q.nc.FlushTimeout(2 * time.Second)
	q.nc.Close()
	return errors.Join(errs...)
}

// Stats returns the queue's counters.
func (q *JetStream) Stats() Stats {
	return Stats{
		Published:  q.published.Load(),
		Handled:    q.handled.Load(),
		Failed:     q.failed.Load(),
		Terminated: q.terminated.Load(),
	}
}

type subscription struct {
	q       *JetStream
	it      jetstream.MessagesContext
	h       Handler
	service string // in the fault Points of deliveries

	wg   sync.WaitGroup // the workers
	done chan struct{}  // closed when every worker has returned

	stopOnce sync.Once
	stopping atomic.Bool
	errMu    sync.Mutex
	err      error // why the server ended the subscription, if it did
}

// Stop implements Subscription.
func (s *subscription) Stop() error {
	s.stopOnce.Do(func() {
		// Drain, not Stop: Stop would drop the messages already fetched, and the server would
		// hold them until their ack wait ran out. Draining hands them to the workers, which
		// give them back (see work), and ends only once the server has the unsubscribe, so no
		// pull request of ours is left to swallow messages meant for other subscribers.
		s.stopping.Store(true)
		s.it.Drain()
		<-s.done
		s.q.mu.Lock()
		delete(s.q.subs, s)
		s.q.mu.Unlock()
	})
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *subscription) work() {
	defer s.wg.Done()
	for {
		msg, err := s.it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			// A terminal error (the consumer was deleted, say) has stopped the iterator, and
			// the next Next says so; keep the cause for Stop.
			s.errMu.Lock()
			s.err = fmt.Errorf("mq: subscription ended: %w", err)
			s.errMu.Unlock()
			continue
		}
		if s.stopping.Load() {
			// Fetched but not started: back to the server for immediate redelivery.
			_ = msg.Nak()
			continue
		}
		s.handle(msg)
	}
}

func (s *subscription) handle(msg jetstream.Msg) {
	q := s.q
	header := make(map[string]string, len(msg.Headers()))
	for k, vs := range msg.Headers() {
		if len(vs) > 0 {
			header[strings.ToLower(k)] = vs[0]
		}
	}
	carrier := meta.MapCarrier(header)
	md := meta.Extract(carrier)
	switch {
	case q.o.shadow && md.Lane == "":
		md.Lane = meta.ShadowLane
	case !q.o.shadow && md.Lane != "":
		lanes.Refused("mq")
		q.terminated.Add(1)
		_ = msg.Term()
		return
	}
	ctx := meta.NewContext(context.Background(), md)
	ctx = trace.Extract(ctx, carrier)
	ctx, cancel := context.WithTimeout(ctx, q.o.ackWait)
	subject := strings.TrimPrefix(msg.Subject(), q.o.prefix+".")
	// An injected fault stands for the delivery failing on its way to the handler: a drop
	// loses the message (acked, never handled); an error is a failed handling.
	err := inject(ctx, s.service, subject)
	if errors.Is(err, fault.ErrDrop) {
		cancel()
		_ = msg.Ack()
		return
	}
	if err == nil {
		err = call(ctx, s.h, Message{Subject: subject, Data: msg.Data(), Header: header})
	}
	cancel()
	// Ack, Nak and Term are best effort: if one is lost, the ack wait redelivers the message.
	if err == nil {
		q.handled.Add(1)
		_ = msg.Ack()
		return
	}
	q.failed.Add(1)
	delivered := uint64(1)
	if md, mdErr := msg.Metadata(); mdErr == nil {
		delivered = md.NumDelivered
	}
	if delivered >= uint64(q.o.maxDeliver) {
		q.terminated.Add(1)
		// Plain Term: servers before 2.10.4 ignore TermWithReason and would redeliver.
		_ = msg.Term()
		return
	}
	_ = msg.NakWithDelay(backoff(q.o.backoff, q.o.ackWait, delivered))
}

// call runs h, turning a panic into an error so one bad message cannot kill the worker.
func call(ctx context.Context, h Handler, m Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mq: handler panic: %v", p)
		}
	}()
	return h(ctx, m)
}

// backoff returns base doubled for every delivery after the first, capped at limit.
func backoff(base, limit time.Duration, delivered uint64) time.Duration {
	d := base
	for i := uint64(1); i < delivered && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// inject asks the fault-injection hook about one publish or delivery on subject.
func inject(ctx context.Context, service, subject string) error {
	return fault.Inject(ctx, fault.Point{Kind: fault.Queue, Side: fault.Client, Service: service, Op: subject})
}

// ForService returns q as the queue of service, for a queue that several services of one
// process share: the same connection and stream, with the fault Points of its publishes
// and of its subscriptions' deliveries naming service. Close of the view is a no-op: the
// queue's owner closes it. A Queue other than a *JetStream or such a view is returned as is.
func ForService(q Queue, service string) Queue {
	switch v := q.(type) {
	case *JetStream:
		return serviceQueue{v, service}
	case serviceQueue:
		return serviceQueue{v.q, service}
	}
	return q
}

type serviceQueue struct {
	q       *JetStream
	service string
}

func (v serviceQueue) Publish(ctx context.Context, subject string, data []byte) error {
	return v.q.publish(ctx, v.service, subject, data)
}

func (v serviceQueue) Subscribe(ctx context.Context, subject, durable string, h Handler) (Subscription, error) {
	return v.q.subscribe(ctx, v.service, subject, durable, h)
}

func (v serviceQueue) Ping(ctx context.Context) error { return v.q.Ping(ctx) }

// Close is a no-op: the view shares the queue, which its owner closes.
func (v serviceQueue) Close() error { return nil }
