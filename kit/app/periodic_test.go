package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/log"
)

func TestPeriodicRunsRoundsUntilClosed(t *testing.T) {
	var rounds atomic.Int64
	ran := make(chan struct{}, 100)
	p := StartPeriodic("test", time.Millisecond, time.Second, log.Discard(), func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a round has no deadline")
		}
		n := rounds.Add(1)
		ran <- struct{}{}
		if n%2 == 0 {
			return errors.New("every other round fails") // and the next one still runs
		}
		return nil
	})
	deadline := time.After(10 * time.Second)
	for range 4 {
		select {
		case <-ran:
		case <-deadline:
			t.Fatalf("only %d rounds in 10s", rounds.Load())
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	after := rounds.Load()
	_ = p.Close()                     // twice is fine
	time.Sleep(20 * time.Millisecond) // would leave room for a round that should not happen
	if got := rounds.Load(); got != after {
		t.Fatalf("%d rounds ran after Close returned", got-after)
	}
}
