package biz

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/trace"
)

// OutboxEvent is an event waiting in the outbox to be published.
type OutboxEvent struct {
	ID      int64
	Subject string
	Payload []byte
	// Header holds the metadata and trace context of the request that made the change, so
	// the published event keeps its request id and lane.
	Header map[string]string
}

// Outbox holds the events written in the same transaction as the changes they describe.
type Outbox interface {
	// Claim leases up to limit events to the caller until until, oldest first: events never
	// claimed, and events whose lease or retry time is not after now. Concurrent claims,
	// from any number of processes, get disjoint events.
	Claim(ctx context.Context, now, until time.Time, limit int) ([]OutboxEvent, error)
	// Done removes published events.
	Done(ctx context.Context, ids []int64) error
	// Retry makes events claimable again from at.
	Retry(ctx context.Context, ids []int64, at time.Time) error
}

// Publisher sends an event; mq.Queue satisfies it.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte) error
}

// Relay publishes the outbox's events and removes them once the queue has stored them. A
// crash between a change's commit and its publication loses nothing: the event waits in the
// outbox until some relay, in this process or another, publishes it. Delivery is at least
// once: a relay that dies after publishing and before removing leaves the event to be
// published again when its lease runs out, and consumers are idempotent.
//
// Once started, a Relay wakes every RelayInterval, and at once when Nudge says a change was
// committed. Its goroutine is stopped by Close.
type Relay struct {
	outbox    Outbox
	pub       Publisher
	clock     clock.Clock
	interval  time.Duration
	batch     int
	lease     time.Duration
	retry     time.Duration
	timeout   time.Duration
	logger    *slog.Logger
	flushing  sync.Mutex // one round at a time per relay; other relays are kept apart by Claim
	kick      chan struct{}
	done      chan struct{}
	stopped   chan struct{} // nil until Start
	closeOnce sync.Once
}

// RelayOption configures NewRelay.
type RelayOption func(*Relay)

// RelayInterval is how often the relay looks for events without being nudged: events of
// another process that died, and events whose retry time has come. Default 1s.
func RelayInterval(d time.Duration) RelayOption {
	return func(r *Relay) {
		if d > 0 {
			r.interval = d
		}
	}
}

// RelayBatch is the number of events claimed at once. Default 100.
func RelayBatch(n int) RelayOption {
	return func(r *Relay) {
		if n > 0 {
			r.batch = n
		}
	}
}

// RelayLease is how long claimed events belong to one relay before another may take them
// (the relay died, or is stuck). Default 30s.
func RelayLease(d time.Duration) RelayOption {
	return func(r *Relay) {
		if d > 0 {
			r.lease = d
		}
	}
}

// RelayRetry is how long an event waits after a failed publish. Default 1s.
func RelayRetry(d time.Duration) RelayOption {
	return func(r *Relay) {
		if d > 0 {
			r.retry = d
		}
	}
}

// RelayTimeout bounds one background round of claims and publishes, and the last one in
// Close. Default 5s.
func RelayTimeout(d time.Duration) RelayOption {
	return func(r *Relay) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// RelayClock sets the clock that stamps leases and retry times. Default the wall clock.
func RelayClock(c clock.Clock) RelayOption { return func(r *Relay) { r.clock = c } }

// RelayLogger sets where failed background rounds are reported. Default slog.Default().
func RelayLogger(l *slog.Logger) RelayOption { return func(r *Relay) { r.logger = l } }

// NewRelay returns a relay from outbox to pub. Start starts its goroutine; until then
// only Flush publishes.
func NewRelay(outbox Outbox, pub Publisher, opts ...RelayOption) *Relay {
	r := &Relay{
		outbox:   outbox,
		pub:      pub,
		clock:    clock.Real{},
		interval: time.Second,
		batch:    100,
		lease:    30 * time.Second,
		retry:    time.Second,
		timeout:  5 * time.Second,
		logger:   slog.Default(),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Start starts the relay's goroutine, which makes a first round at once for the events an
// earlier process left. Call it at most once.
func (r *Relay) Start() {
	r.stopped = make(chan struct{})
	r.Nudge()
	go r.run()
}

// Nudge asks for a round now; a change was just committed. It never blocks.
func (r *Relay) Nudge() {
	select {
	case r.kick <- struct{}{}:
	default: // a round is already asked for; it will see this change too
	}
}

// Flush claims and publishes events until the outbox has none ready, and returns how many
// it published. At the first failed publish it gives that event and the rest of its batch
// a retry time (so one note's events keep their order) and returns the error.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	total := 0
	for {
		n, full, err := r.round(ctx)
		total += n
		if err != nil || !full {
			return total, err
		}
	}
}

// round claims one batch and publishes it; full says the batch was full, so more may wait.
func (r *Relay) round(ctx context.Context) (published int, full bool, err error) {
	now := r.clock.Now()
	events, err := r.outbox.Claim(ctx, now, now.Add(r.lease), r.batch)
	if err != nil || len(events) == 0 {
		return 0, false, err
	}
	slices.SortFunc(events, func(a, b OutboxEvent) int { return cmp.Compare(a.ID, b.ID) })
	ids := make([]int64, len(events))
	for i, ev := range events {
		ids[i] = ev.ID
	}
	var pubErr error
	for _, ev := range events {
		carrier := meta.MapCarrier(ev.Header)
		pctx := trace.Extract(meta.NewContext(ctx, meta.Extract(carrier)), carrier)
		if pubErr = r.pub.Publish(pctx, ev.Subject, ev.Payload); pubErr != nil {
			break
		}
		published++
	}
	// The bookkeeping gets its own time: a publish that ran out the round's ctx must still
	// hand its events back for a retry rather than leave them leased. A lost Done only means
	// a second publication after the lease: at least once.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	var errs []error
	if published > 0 {
		errs = append(errs, r.outbox.Done(bctx, ids[:published]))
	}
	if pubErr != nil {
		errs = append(errs, pubErr, r.outbox.Retry(bctx, ids[published:], r.clock.Now().Add(r.retry)))
	}
	return published, len(events) == r.batch && pubErr == nil, errors.Join(errs...)
}

// Close stops the goroutine and makes a last round, bounded by RelayTimeout, for the events
// of the last changes; what it cannot publish stays in the outbox for the next start. Close
// it after the server stops taking calls and before the queue closes.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.done)
		if r.stopped != nil {
			<-r.stopped
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		_, err = r.Flush(ctx)
	})
	return err
}

func (r *Relay) run() {
	defer close(r.stopped)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		case <-r.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		if _, err := r.Flush(ctx); err != nil {
			r.logger.Warn("note: outbox relay round failed; events stay in the outbox for a retry", "err", err)
		}
		cancel()
	}
}
