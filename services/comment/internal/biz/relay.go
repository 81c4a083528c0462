package biz

import (
	"context"
	"time"
)

// Relay retries the counter syncs that did not happen inline: RecordComment failed, a
// command was redelivered past the queue's limit, a Delete hid more replies than it synced,
// or a process died holding a lease. Every interval it syncs batches of the comments whose
// counter is behind, until none are left or one fails. Its goroutine is stopped by Close.
type Relay struct {
	uc       *Usecase
	interval time.Duration
	batch    int
	timeout  time.Duration

	stop    context.CancelFunc
	stopped chan struct{}
}

// NewRelay starts a relay for uc that runs every interval.
func NewRelay(uc *Usecase, interval time.Duration) *Relay {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{uc: uc, interval: interval, batch: 100, timeout: max(uc.lease, time.Second),
		stop: cancel, stopped: make(chan struct{})}
	go r.run(ctx)
	return r
}

// Close stops the relay, cutting short a round in progress, and waits for it.
func (r *Relay) Close() error {
	r.stop()
	<-r.stopped
	return nil
}

func (r *Relay) run(ctx context.Context) {
	defer close(r.stopped)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.round(ctx)
		}
	}
}

func (r *Relay) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for ctx.Err() == nil {
		n, err := r.uc.SyncPending(ctx, r.batch)
		if err != nil {
			r.uc.logger.Warn("comment: counter relay round failed; the next round retries", "err", err)
			return
		}
		if n < r.batch {
			return
		}
	}
}
