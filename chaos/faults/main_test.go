package faults

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs/errstest"
	"github.com/redline-dev/redline/kit/log"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a registry on a fake clock, with a seeded draw and a sleep that only records.
type env struct {
	reg *Registry
	clk *clock.Fake

	mu     sync.Mutex
	sleeps []time.Duration
}

func newEnv(t testing.TB, opts ...Option) *env {
	t.Helper()
	e := &env{clk: clock.NewFake(time.Time{})}
	base := []Option{
		WithClock(e.clk),
		WithRand(rand.New(rand.NewPCG(1, 2)).Float64),
		WithSleep(e.sleep),
		WithLogger(log.Discard()),
	}
	e.reg = New(append(base, opts...)...)
	return e
}

// sleep records d and returns at once: ctx's error when it has ended, else nil.
func (e *env) sleep(ctx context.Context, d time.Duration) error {
	e.mu.Lock()
	e.sleeps = append(e.sleeps, d)
	e.mu.Unlock()
	return ctx.Err()
}

func (e *env) slept() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

func (e *env) add(t testing.TB, s Spec) Fault {
	t.Helper()
	f, err := e.reg.Add(s)
	if err != nil {
		t.Fatalf("Add(%+v) = %v", s, err)
	}
	return f
}

// wantBadFault checks that err is a BAD_FAULT naming field, with msg in its message.
func wantBadFault(t testing.TB, err error, field, msg string) {
	t.Helper()
	errstest.Want(t, err, codes.InvalidArgument, ReasonBadFault, field, msg)
}
