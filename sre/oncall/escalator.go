package oncall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Escalation is an open, unacknowledged incident whose next escalation level is due.
type Escalation struct {
	IncidentID string
	Title      string
	Service    string
	Severity   string
	Policy     string
	// Level is the level to page now.
	Level int
	// Due is when it became due.
	Due time.Time
}

// Step records that a level was paged (or could not be) and what comes next.
type Step struct {
	IncidentID string
	// Level is the level just handled; the store applies the step only if the incident is
	// still waiting on it, unacknowledged.
	Level int
	User  string
	At    time.Time
	// Next and NextAt are the following level and when it is due, unless Done.
	Next   int
	NextAt time.Time
	// Done says the policy is exhausted: nothing more is due.
	Done bool
	// Text says what happened, for the incident's timeline.
	Text string
}

// EscalationStore persists escalation state per incident. sre/incident's Store implements it.
type EscalationStore interface {
	// DueEscalations returns up to limit open, unacknowledged incidents whose next level is
	// due at or before now, oldest first.
	DueEscalations(ctx context.Context, now time.Time, limit int) ([]Escalation, error)
	// RecordStep applies s atomically with a timeline entry, if the incident is still open,
	// unacknowledged and waiting on s.Level; it reports whether it applied.
	RecordStep(ctx context.Context, s Step) (bool, error)
}

// Option configures an Escalator.
type Option func(*options)

type options struct {
	clock  clock.Clock
	logger *slog.Logger
	batch  int
}

// WithClock sets the time source. Default clock.Real.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where Run reports failed ticks. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBatch bounds how many escalations one Tick handles. Default 100.
func WithBatch(n int) Option { return func(o *options) { o.batch = n } }

// Escalator pages the levels of open incidents' policies in turn until one acknowledges.
// It is safe for concurrent use; several Escalators on one store page a level at least
// once (a crash between a page and its record repeats the page rather than losing it).
type Escalator struct {
	store    EscalationStore
	notifier Notifier
	o        options

	wake chan struct{}

	mu  sync.Mutex
	dir Directory
}

// NewEscalator returns an Escalator over store, resolving policies in dir and paging
// through n.
func NewEscalator(store EscalationStore, dir Directory, n Notifier, opts ...Option) (*Escalator, error) {
	o := options{clock: clock.Real{}, logger: slog.Default(), batch: 100}
	for _, opt := range opts {
		opt(&o)
	}
	if store == nil || n == nil {
		return nil, errors.New("oncall: NewEscalator: nil store or notifier")
	}
	if err := dir.Validate(); err != nil {
		return nil, err
	}
	return &Escalator{store: store, notifier: n, o: o, dir: dir, wake: make(chan struct{}, 1)}, nil
}

// Wake makes Run tick now instead of at its next interval: a new incident is due for its
// first page. It never blocks; without Run it does nothing.
func (e *Escalator) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// SetDirectory replaces the schedules and policies (an override added, a rotation changed).
func (e *Escalator) SetDirectory(d Directory) error {
	if err := d.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	e.dir = d
	e.mu.Unlock()
	return nil
}

// Directory returns the schedules and policies in use.
func (e *Escalator) Directory() Directory {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dir
}

// Tick pages every escalation due at the clock's now and records each step; it returns how
// many steps it recorded. A page that fails is recorded as failed and the escalation still
// moves on after the level's timeout, so a broken channel delays nobody's page beyond it.
func (e *Escalator) Tick(ctx context.Context) (int, error) {
	now := e.o.clock.Now()
	due, err := e.store.DueEscalations(ctx, now, e.o.batch)
	if err != nil {
		return 0, fmt.Errorf("oncall: due escalations: %w", err)
	}
	dir := e.Directory()
	n := 0
	var errList []error
	for _, esc := range due {
		step := e.page(ctx, dir, esc, now)
		ok, err := e.store.RecordStep(ctx, step)
		if err != nil {
			errList = append(errList, fmt.Errorf("oncall: record step of %s: %w", esc.IncidentID, err))
			continue
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errList...)
}

func (e *Escalator) page(ctx context.Context, dir Directory, esc Escalation, now time.Time) Step {
	step := Step{IncidentID: esc.IncidentID, Level: esc.Level, At: now}
	levels := len(dir.Policies[esc.Policy].Levels)
	user, timeout, err := dir.Target(esc.Policy, esc.Level, now)
	switch {
	case errors.Is(err, ErrNobodyOnCall):
		step.Text = fmt.Sprintf("level %d: %v", esc.Level, err)
	case err != nil:
		step.Done, step.Text = true, fmt.Sprintf("escalation stopped: %v", err)
		return step
	default:
		step.User = user
		page := Page{IncidentID: esc.IncidentID, Title: esc.Title, Service: esc.Service, Severity: esc.Severity,
			Policy: esc.Policy, Level: esc.Level, User: user, At: now}
		if err := e.notifier.Notify(ctx, page); err != nil {
			step.Text = fmt.Sprintf("level %d: paging %s failed: %v", esc.Level, user, err)
		} else {
			step.Text = fmt.Sprintf("level %d: paged %s (policy %s, ack within %s)", esc.Level, user, esc.Policy, timeout)
		}
	}
	if esc.Level+1 < levels {
		step.Next, step.NextAt = esc.Level+1, now.Add(timeout)
	} else {
		step.Done = true
		step.Text += "; last level of the policy"
	}
	return step
}

// Run calls Tick at once, then every interval and on every Wake, until ctx ends, logging
// failed ticks (their escalations stay due and are retried); it returns ctx's error. Pages
// go out with ctx, not with the context of whatever request woke it.
func (e *Escalator) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.Tick(ctx); err != nil {
			e.o.logger.WarnContext(ctx, "escalation tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-e.wake:
		}
	}
}
