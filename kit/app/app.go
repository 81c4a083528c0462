// Package app runs a Redline process: it starts components (servers and hooks) in order,
// waits for a signal or the end of its context, then drains — readiness turns false,
// in-flight requests finish — and stops the components in reverse order within a timeout.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Component is anything with a lifecycle: servers, background jobs, hooks. Start must
// return once the component is serving (binding errors are returned, not logged); Stop
// must return by the time ctx ends.
type Component interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Hook adapts a pair of functions to a Component; either may be nil.
func Hook(name string, start, stop func(ctx context.Context) error) Component {
	return hook{name, start, stop}
}

type hook struct {
	name        string
	start, stop func(ctx context.Context) error
}

func (h hook) Start(ctx context.Context) error {
	if h.start == nil {
		return nil
	}
	if err := h.start(ctx); err != nil {
		return fmt.Errorf("%s: %w", h.name, err)
	}
	return nil
}

func (h hook) Stop(ctx context.Context) error {
	if h.stop == nil {
		return nil
	}
	if err := h.stop(ctx); err != nil {
		return fmt.Errorf("%s: %w", h.name, err)
	}
	return nil
}

// Drainer is told when the process starts to drain, so readiness can turn false before
// any server stops. kit/admin's Server implements it.
type Drainer interface {
	SetDraining(bool)
}

// App is one process.
type App struct {
	o options
}

type options struct {
	name        string
	components  []Component
	drainers    []Drainer
	stopTimeout time.Duration
	drainDelay  time.Duration
	signals     []os.Signal
	logger      *slog.Logger
}

// Option configures an App.
type Option func(*options)

// Name names the process in logs.
func Name(n string) Option { return func(o *options) { o.name = n } }

// Components appends components, started in the order given and stopped in reverse.
func Components(cs ...Component) Option {
	return func(o *options) { o.components = append(o.components, cs...) }
}

// Drainers are told first when draining starts (readiness false).
func Drainers(ds ...Drainer) Option {
	return func(o *options) { o.drainers = append(o.drainers, ds...) }
}

// StopTimeout bounds the whole stop: drain delay plus every component's Stop. The default
// is 10 s.
func StopTimeout(d time.Duration) Option { return func(o *options) { o.stopTimeout = d } }

// DrainDelay is how long readiness stays false before servers stop accepting, so load
// balancers and registry watchers notice. The default is 0.
func DrainDelay(d time.Duration) Option { return func(o *options) { o.drainDelay = d } }

// Signals sets the signals that start a graceful stop; the default is SIGINT and SIGTERM.
// Signals() with none leaves stopping to the context, as tests do.
func Signals(sigs ...os.Signal) Option { return func(o *options) { o.signals = sigs } }

// Logger sets the logger; the default is slog.Default().
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New returns an App.
func New(opts ...Option) *App {
	o := options{name: "redline", stopTimeout: 10 * time.Second,
		signals: []os.Signal{syscall.SIGINT, syscall.SIGTERM}, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	return &App{o: o}
}

// ErrStopTimeout is returned by Run when the components did not stop within StopTimeout.
var ErrStopTimeout = errors.New("app: stop timed out; some requests were cut off")

// Run starts every component, then blocks until ctx is done or a signal arrives, then
// stops gracefully. It returns nil after a clean stop. If a component fails to start, the
// ones already started are stopped in reverse and the start error is returned.
func (a *App) Run(ctx context.Context) error {
	stopSignals := func() {}
	if len(a.o.signals) > 0 { // NotifyContext with no signals would catch every signal
		ctx, stopSignals = signal.NotifyContext(ctx, a.o.signals...)
		defer stopSignals()
	}
	started := 0
	var startErr error
	for _, c := range a.o.components {
		if err := c.Start(ctx); err != nil {
			startErr = fmt.Errorf("app %s: start: %w", a.o.name, err)
			break
		}
		started++
	}
	if startErr == nil {
		a.o.logger.Info("started", "app", a.o.name, "components", started)
		<-ctx.Done()
		stopSignals() // a second Ctrl-C now kills at once, as users expect
		a.o.logger.Info("stopping", "app", a.o.name, "cause", context.Cause(ctx))
	}
	return errors.Join(startErr, a.stop(started))
}

func (a *App) stop(started int) error {
	ctx, cancel := context.WithTimeout(context.Background(), a.o.stopTimeout)
	defer cancel()
	for _, d := range a.o.drainers {
		d.SetDraining(true)
	}
	if a.o.drainDelay > 0 {
		t := time.NewTimer(a.o.drainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	var errsOut []error
	for i := started - 1; i >= 0; i-- {
		if err := a.o.components[i].Stop(ctx); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	if ctx.Err() != nil {
		errsOut = append(errsOut, ErrStopTimeout)
	}
	if err := errors.Join(errsOut...); err != nil {
		return fmt.Errorf("app %s: stop: %w", a.o.name, err)
	}
	a.o.logger.Info("stopped", "app", a.o.name)
	return nil
}
