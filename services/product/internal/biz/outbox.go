package biz

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Message is an outbox row waiting to be published.
type Message struct {
	ID      int64
	Subject string
	Payload []byte
}

// OutboxStore reads and clears the outbox the Repo writes to.
type OutboxStore interface {
	// Pending returns up to limit messages, oldest first.
	Pending(ctx context.Context, limit int) ([]Message, error)
	// Done deletes published messages.
	Done(ctx context.Context, ids []int64) error
}

// Publisher is what the relay publishes to: mq.Queue satisfies it.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte) error
}

// relayBatch is how many outbox rows one round reads.
const relayBatch = 100

// Relay publishes the outbox to the queue: at once when kicked after a commit, and every
// interval in case a kick was missed or a publish failed, so an event whose transaction
// committed is published even if the process died right after the commit (the next
// process's relay finds it). Messages are published in outbox order and deleted only after
// the queue stored them, so delivery is at least once: a crash between publish and delete,
// or two relays (two processes) reading the same rows, publish a message twice, and
// consumers drop the repeat by Version. Close stops its goroutine.
type Relay struct {
	store    OutboxStore
	pub      Publisher
	interval time.Duration
	timeout  time.Duration
	logger   *slog.Logger

	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// NewRelay starts a relay from store to pub that also runs every interval; each round is
// bounded by timeout.
func NewRelay(store OutboxStore, pub Publisher, interval, timeout time.Duration, logger *slog.Logger) *Relay {
	r := &Relay{store: store, pub: pub, interval: interval, timeout: timeout, logger: logger,
		kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go r.run()
	return r
}

// Kick asks for a round soon; it never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default: // a round is already asked for
	}
}

// Close stops the relay after the round in progress. What is left in the outbox stays
// there for the next start.
func (r *Relay) Close() error {
	r.once.Do(func() {
		close(r.done)
		<-r.stopped
	})
	return nil
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
			r.logger.Warn("product: outbox relay round failed; messages kept for the next", "err", err)
		}
		cancel()
	}
}

// Flush publishes the outbox until it is empty or a publish fails, and returns how many
// messages it published.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	n := 0
	for {
		msgs, err := r.store.Pending(ctx, relayBatch)
		if err != nil || len(msgs) == 0 {
			return n, err
		}
		sent := make([]int64, 0, len(msgs))
		var pubErr error
		for _, m := range msgs {
			if pubErr = r.pub.Publish(ctx, m.Subject, m.Payload); pubErr != nil {
				break
			}
			sent = append(sent, m.ID)
		}
		if len(sent) > 0 {
			if err := r.store.Done(ctx, sent); err != nil {
				return n, err
			}
			n += len(sent)
		}
		if pubErr != nil {
			return n, pubErr
		}
		if len(msgs) < relayBatch {
			return n, nil
		}
	}
}
