package app

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Periodic is a background job that runs a round every interval on its own goroutine until
// Close: the closer of expired orders, the retrier of owed calls. Each round gets its own
// timeout; a failed round is logged and the next one tries again. Rounds must be safe to
// run on several instances at once (conditional updates), since every instance runs one.
type Periodic struct {
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// StartPeriodic starts round every interval (the first after one interval) and returns the
// job; name is for the log.
func StartPeriodic(name string, interval, timeout time.Duration, logger *slog.Logger, round func(context.Context) error) *Periodic {
	p := &Periodic{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			if err := round(ctx); err != nil {
				logger.Warn(name+": round failed; the next one tries again", "error", err)
			}
			cancel()
		}
	}()
	return p
}

// Close stops the job after the round in progress. Safe to call more than once.
func (p *Periodic) Close() error {
	p.once.Do(func() {
		close(p.done)
		<-p.stopped
	})
	return nil
}
