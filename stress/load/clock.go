package load

import (
	"context"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Clock is the engine's time source: when iterations are due, when they start and end,
// and the one-second ticks of progress and thresholds. Tests run the engine in a
// testing/synctest bubble, where Real is a fake, deterministic clock.
type Clock interface {
	clock.Clock
	// SleepUntil returns at t, or earlier with ctx's error when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// Real is the wall clock.
type Real struct{ clock.Real }

var _ Clock = Real{}

// SleepUntil implements Clock.
func (Real) SleepUntil(ctx context.Context, t time.Time) error {
	return clock.Sleep(ctx, time.Until(t))
}
