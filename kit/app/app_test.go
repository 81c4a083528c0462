package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/log"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct{ events []string }

func (r *recorder) comp(name string, startErr error) Component {
	return Hook(name, func(context.Context) error {
		r.events = append(r.events, "start "+name)
		return startErr
	}, func(context.Context) error {
		r.events = append(r.events, "stop "+name)
		return nil
	})
}

func (r *recorder) SetDraining(d bool) { r.events = append(r.events, fmt.Sprint("draining ", d)) }

func TestStartInOrderStopInReverse(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	a := New(Components(r.comp("a", nil), r.comp("b", nil), Hook("stopper", func(context.Context) error {
		cancel() // everything is up: ask for a stop
		return nil
	}, nil)), Drainers(r), Signals(), Logger(log.Discard()))
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := "[start a start b draining true stop b stop a]"
	if got := fmt.Sprint(r.events); got != want {
		t.Fatalf("events = %s; want %s", got, want)
	}
}

func TestStartFailureStopsWhatStarted(t *testing.T) {
	r := &recorder{}
	boom := errors.New("port taken")
	a := New(Components(r.comp("a", nil), r.comp("b", boom), r.comp("c", nil)), Signals(), Logger(log.Discard()))
	err := a.Run(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v; want the start error", err)
	}
	want := "[start a start b stop a]"
	if got := fmt.Sprint(r.events); got != want {
		t.Fatalf("events = %s; want %s", got, want)
	}
}

func TestStopTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stuck := Hook("stuck", nil, func(ctx context.Context) error {
		<-ctx.Done() // a server whose drain never ends
		return ctx.Err()
	})
	err := New(Components(stuck), StopTimeout(10*time.Millisecond), Signals(), Logger(log.Discard())).Run(ctx)
	if !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("Run = %v; want ErrStopTimeout", err)
	}
}
