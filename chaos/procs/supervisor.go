package procs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// Limits and defaults of the faults.
const (
	// DefaultPause is how long a pause lasts when no duration is given.
	DefaultPause = 30 * time.Second
	// MaxPause is the longest pause: every pause ends by itself.
	MaxPause = 10 * time.Minute
	// MaxRestartAfter is the longest a killed process waits for its restart.
	MaxRestartAfter = 10 * time.Minute
)

// Reasons of the errors the supervisor returns.
const (
	// ReasonBadRequest: a duration out of range or not a duration (InvalidArgument; the
	// metadata "field" names the field).
	ReasonBadRequest = "BAD_PROC_REQUEST"
	// ReasonNotFound: no process of that name, or no such action (NotFound).
	ReasonNotFound = "PROC_NOT_FOUND"
	// ReasonState: the process's state does not allow the fault (FailedPrecondition).
	ReasonState = "PROC_STATE"
	// ReasonStart: the program could not be started (Unavailable).
	ReasonStart = "PROC_START_FAILED"
)

// State is where a process is in its life.
type State string

// States of a process.
const (
	// Running: the process runs.
	Running State = "running"
	// Paused: the process is stopped by SIGSTOP until its pause ends.
	Paused State = "paused"
	// Stopped: no process, and none starts until Start.
	Stopped State = "stopped"
	// Restarting: the process is going away or gone, and starts again (after a kill's
	// restart_after, a crash's backoff, or a Restart).
	Restarting State = "restarting"
)

// Proc is a program to supervise.
type Proc struct {
	// Name names the process in the API, the logs and the output: 1 to 40 of a-z, 0-9
	// and -, starting with a letter or digit; unique within a supervisor.
	Name string
	// Args is the command line, the program first (a path, or a name looked up in PATH).
	Args []string
	// Env is added to the supervisor's environment; a variable set in both takes Env's
	// value.
	Env []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// Ready, when set, tells whether the running process serves (its /readyz, say); it
	// must return by the time ctx ends.
	Ready func(ctx context.Context) error
	// Admin, when set, is the process's admin address (host:port), reported in Info so a
	// tool can reach the process itself: its /readyz, /state or faults. The supervisor
	// does not use it.
	Admin string
}

// Info is what List tells of a process.
type Info struct {
	Name string `json:"name"`
	// PID is the process's id; 0 when there is none.
	PID   int   `json:"pid"`
	State State `json:"state"`
	// Restarts counts the starts after the first, for any cause.
	Restarts int `json:"restarts"`
	// Crashes counts the exits nobody asked for (not by Kill, Stop, Restart or Close).
	Crashes int `json:"crashes"`
	// StartedAt is when the current (or last) process started.
	StartedAt time.Time `json:"started_at"`
	// PausedUntil is when a pause ends (state paused).
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	// NextStart is when the process starts again (state restarting, once the old one is
	// gone).
	NextStart *time.Time `json:"next_start,omitempty"`
	// LastExit is how the last process ended ("signal: killed", "exit status 1"), or why
	// it could not start.
	LastExit string `json:"last_exit,omitempty"`
	// Admin is the process's admin address, from Proc.Admin.
	Admin string `json:"admin,omitempty"`
}

// Option configures a Supervisor.
type Option func(*options)

type options struct {
	clock       clock.Clock
	check       time.Duration
	ticks       <-chan time.Time // tests drive the deadline checks; nil: a ticker every check
	checked     chan<- struct{}  // tests: told after each check
	output      io.Writer
	logger      *slog.Logger
	stopTimeout time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
}

// WithClock sets the clock that pause expiries, restart delays, backoffs and the stop
// timeout of Restart are judged by. Default: clock.Real{}.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithOutput sets where the children's stdout and stderr go, a line at a time, each line
// prefixed with "name | ". Default: os.Stderr.
func WithOutput(w io.Writer) Option { return func(o *options) { o.output = w } }

// WithLogger sets the logger of starts, exits and faults. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithStopTimeout sets how long a process has after SIGTERM (Restart, Close) before it
// gets SIGKILL. Default: 10 s.
func WithStopTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.stopTimeout = d
		}
	}
}

// WithBackoff sets the delay before a crashed process starts again: min after the first
// crash, doubling up to max. Default: 100 ms to 5 s.
func WithBackoff(lo, hi time.Duration) Option {
	return func(o *options) {
		if lo > 0 && hi >= lo {
			o.minBackoff, o.maxBackoff = lo, hi
		}
	}
}

// stableRun is how long a process must have run for its next crash to count as a first.
const stableRun = time.Minute

// outputWait bounds how long a reaped child's output is still read: a grandchild that
// holds the pipe open must not hold up the supervisor.
const outputWait = 2 * time.Second

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// exitAction is what the supervisor does when a process exits.
type exitAction int

const (
	crashed   exitAction = iota // nobody asked: restart after the backoff
	stayDown                    // Stop: stay stopped
	startNext                   // Kill, Restart, or Start during a Stop: start after restartAfter
)

// child is one supervised process. Its fields are guarded by the supervisor's mutex.
type child struct {
	Proc
	out *lineWriter

	cmd          *exec.Cmd     // non-nil from the start until the exit is handled
	exited       chan struct{} // closed once cmd's exit is handled
	pid          int
	state        State
	onExit       exitAction
	restartAfter time.Duration
	due          time.Time // restarting, no process: when to start
	pauseUntil   time.Time // paused: when to resume
	killAt       time.Time // after a Restart's SIGTERM: SIGKILL at this time
	backoff      time.Duration
	started      bool
	restarts     int
	crashes      int
	startedAt    time.Time
	lastExit     string
}

// Supervisor runs processes and keeps them running. It is safe for concurrent use; make
// one with New and end it with Close.
type Supervisor struct {
	o options

	mu       sync.Mutex
	children map[string]*child
	order    []*child
	closed   bool

	quit chan struct{}
	wg   sync.WaitGroup // the deadline checker and one waiter per live process
}

// New starts every process, in order, and supervises them. If one cannot start, those
// started are stopped and the error names it.
func New(procs []Proc, opts ...Option) (*Supervisor, error) {
	o := options{clock: clock.Real{}, check: 100 * time.Millisecond, output: os.Stderr, logger: slog.Default(),
		stopTimeout: 10 * time.Second, minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.output == nil {
		o.output = io.Discard
	}
	s := &Supervisor{o: o, children: map[string]*child{}, quit: make(chan struct{})}
	outMu := &sync.Mutex{}
	for i, p := range procs {
		switch {
		case !validName.MatchString(p.Name):
			return nil, fmt.Errorf("procs[%d].name %q: 1 to 40 of a-z, 0-9 and -, starting with a letter or digit", i, p.Name)
		case s.children[p.Name] != nil:
			return nil, fmt.Errorf("procs[%d].name %q: a second process of that name", i, p.Name)
		case len(p.Args) == 0 || p.Args[0] == "":
			return nil, fmt.Errorf("procs[%d].args: the command line of %s is empty", i, p.Name)
		}
		p.Args = append([]string(nil), p.Args...)
		p.Env = append([]string(nil), p.Env...)
		c := &child{Proc: p, out: newLineWriter(outMu, o.output, p.Name), state: Stopped, backoff: o.minBackoff}
		s.children[p.Name] = c
		s.order = append(s.order, c)
	}
	s.mu.Lock()
	for _, c := range s.order {
		if err := s.startLocked(c); err != nil {
			s.mu.Unlock()
			_ = s.Close()
			return nil, fmt.Errorf("start %s: %w", c.Name, err)
		}
	}
	s.mu.Unlock()
	ticks := o.ticks
	var ticker *time.Ticker
	if ticks == nil {
		ticker = time.NewTicker(o.check)
		ticks = ticker.C
	}
	s.wg.Go(func() {
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-s.quit:
				return
			case <-ticks:
				s.checkDeadlines()
				if o.checked != nil {
					select {
					case o.checked <- struct{}{}:
					case <-s.quit:
					}
				}
			}
		}
	})
	return s, nil
}

// startLocked starts c's program.
func (s *Supervisor) startLocked(c *child) error {
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = outputWait
	if err := cmd.Start(); err != nil {
		return err
	}
	now := s.o.clock.Now()
	cause := "fault"
	if c.onExit == crashed {
		cause = "crash"
	}
	if c.started {
		c.restarts++
		restarts.WithLabelValues(c.Name, cause).Inc()
	}
	c.started = true
	exited := make(chan struct{})
	c.cmd, c.exited, c.pid, c.state, c.startedAt = cmd, exited, cmd.Process.Pid, Running, now
	c.onExit, c.restartAfter = crashed, 0
	c.due, c.pauseUntil, c.killAt = time.Time{}, time.Time{}, time.Time{}
	s.o.logger.Info("process started", "proc", c.Name, "pid", c.pid, "restarts", c.restarts)
	s.wg.Go(func() {
		defer close(exited)
		err := cmd.Wait()
		c.out.flush()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.exitedLocked(c, cmd, err)
	})
	return nil
}

// exitedLocked handles the exit of c's process: stay down, or schedule the next start.
func (s *Supervisor) exitedLocked(c *child, cmd *exec.Cmd, err error) {
	now := s.o.clock.Now()
	c.lastExit = exitText(cmd, err)
	c.cmd, c.pid = nil, 0
	c.pauseUntil, c.killAt = time.Time{}, time.Time{}
	switch {
	case s.closed:
		c.state = Stopped
	case c.onExit == stayDown:
		c.state = Stopped
		s.o.logger.Info("process stopped", "proc", c.Name, "exit", c.lastExit)
	case c.onExit == startNext:
		s.o.logger.Info("process exited; starting it again", "proc", c.Name, "exit", c.lastExit, "after", c.restartAfter)
		s.scheduleLocked(c, now, c.restartAfter)
	default:
		c.crashes++
		if now.Sub(c.startedAt) >= stableRun {
			c.backoff = s.o.minBackoff
		}
		d := s.nextBackoffLocked(c)
		s.o.logger.Warn("process exited unexpectedly; restarting it", "proc", c.Name, "exit", c.lastExit, "after", d)
		s.scheduleLocked(c, now, d)
	}
}

func (s *Supervisor) nextBackoffLocked(c *child) time.Duration {
	d := c.backoff
	c.backoff = min(2*c.backoff, s.o.maxBackoff)
	return d
}

// scheduleLocked starts c after d, at once when d ≤ 0.
func (s *Supervisor) scheduleLocked(c *child, now time.Time, d time.Duration) {
	c.state, c.due = Restarting, now.Add(d)
	if d <= 0 {
		s.startOrRetryLocked(c, now)
	}
}

// startOrRetryLocked starts c, or schedules another try after the backoff.
func (s *Supervisor) startOrRetryLocked(c *child, now time.Time) {
	if err := s.startLocked(c); err != nil {
		c.lastExit = "start: " + err.Error()
		d := s.nextBackoffLocked(c)
		c.state, c.due = Restarting, now.Add(d)
		s.o.logger.Error("process did not start; trying again", "proc", c.Name, "error", err, "after", d)
	}
}

// checkDeadlines ends expired pauses, kills what outlived a Restart's stop timeout and
// starts what is due.
func (s *Supervisor) checkDeadlines() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.o.clock.Now()
	for _, c := range s.order {
		switch {
		case c.state == Paused && !now.Before(c.pauseUntil):
			if err := signalErr(resumeProcess(c.cmd.Process)); err != nil {
				s.o.logger.Error("pause expired, but the process could not be resumed", "proc", c.Name, "error", err)
				continue
			}
			c.state, c.pauseUntil = Running, time.Time{}
			s.o.logger.Info("pause expired; process resumed", "proc", c.Name, "pid", c.pid)
		case c.cmd != nil && !c.killAt.IsZero() && !now.Before(c.killAt):
			c.killAt = time.Time{}
			s.o.logger.Warn("process did not stop after SIGTERM; killing it", "proc", c.Name, "pid", c.pid,
				"stop_timeout", s.o.stopTimeout)
			_ = signalErr(c.cmd.Process.Kill())
		case c.state == Restarting && c.cmd == nil && !now.Before(c.due):
			s.startOrRetryLocked(c, now)
		}
	}
}

// act runs f on the process named, with the mutex held, and returns the process's Info
// after it.
func (s *Supervisor) act(name, action string, f func(*child) error) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Info{}, errs.New(codes.FailedPrecondition, ReasonState, "the supervisor is closed")
	}
	c := s.children[name]
	if c == nil {
		return Info{}, errs.NotFound(ReasonNotFound, "no process %q: %s", name, strings.Join(s.names(), ", "))
	}
	faults.WithLabelValues(name, action).Inc()
	err := f(c)
	return c.info(), err
}

func (s *Supervisor) names() []string {
	out := make([]string, len(s.order))
	for i, c := range s.order {
		out[i] = c.Name
	}
	return out
}

func notRunning(c *child, action string) error {
	return errs.Newf(codes.FailedPrecondition, ReasonState, "cannot %s %s: it is %s", action, c.Name, c.state)
}

// alive reports whether c has a process that is not on its way down.
func (c *child) alive() bool {
	return c.cmd != nil && (c.state == Running || c.state == Paused)
}

// startSoonLocked starts c now when it has no process, or as soon as the one on its way
// down is reaped. A live process is left alone.
func (s *Supervisor) startSoonLocked(c *child) error {
	switch {
	case c.cmd == nil:
		c.onExit = startNext // the start counts as a fault's, not a crash's
		if err := s.startLocked(c); err != nil {
			return errs.Newf(codes.Unavailable, ReasonStart, "start %s: %v", c.Name, err)
		}
	case !c.alive():
		c.onExit, c.restartAfter, c.state = startNext, 0, Restarting
	}
	return nil
}

// Kill sends SIGKILL to the process; the supervisor starts it again after restartAfter
// (0: at once, at most MaxRestartAfter). The process must be running or paused.
func (s *Supervisor) Kill(name string, restartAfter time.Duration) (Info, error) {
	if restartAfter < 0 || restartAfter > MaxRestartAfter {
		return Info{}, badField("restart_after", "restart_after %v: want 0 to %v", restartAfter, MaxRestartAfter)
	}
	return s.act(name, "kill", func(c *child) error {
		if !c.alive() {
			return notRunning(c, "kill")
		}
		c.onExit, c.restartAfter = startNext, restartAfter
		c.state, c.pauseUntil, c.killAt = Restarting, time.Time{}, time.Time{}
		s.o.logger.Warn("fault: kill -9", "proc", c.Name, "pid", c.pid, "restart_after", restartAfter)
		return signalErr(c.cmd.Process.Kill())
	})
}

// Stop sends SIGKILL to the process, and it stays stopped until Start. Stopping a
// stopped process changes nothing.
func (s *Supervisor) Stop(name string) (Info, error) {
	return s.act(name, "stop", func(c *child) error {
		if c.state == Stopped {
			return nil
		}
		c.state, c.due, c.pauseUntil, c.killAt = Stopped, time.Time{}, time.Time{}, time.Time{}
		if c.cmd == nil {
			return nil
		}
		c.onExit = stayDown
		s.o.logger.Warn("fault: stop (kill -9, no restart)", "proc", c.Name, "pid", c.pid)
		return signalErr(c.cmd.Process.Kill())
	})
}

// Start starts a stopped process, or one waiting for its restart, now (one on its way
// down, once it is reaped). Starting a running or paused process changes nothing.
func (s *Supervisor) Start(name string) (Info, error) {
	return s.act(name, "start", s.startSoonLocked)
}

// Pause stops the process with SIGSTOP; it gets SIGCONT after d (0: DefaultPause; at most
// MaxPause) or at Resume. Pausing a paused process sets its new end. The process must be
// running or paused.
func (s *Supervisor) Pause(name string, d time.Duration) (Info, error) {
	if d == 0 {
		d = DefaultPause
	}
	if d < 0 || d > MaxPause {
		return Info{}, badField("for", "for %v: a pause lasts more than 0 and at most %v", d, MaxPause)
	}
	return s.act(name, "pause", func(c *child) error {
		if !c.alive() {
			return notRunning(c, "pause")
		}
		if c.state == Running {
			if err := signalErr(pauseProcess(c.cmd.Process)); err != nil {
				return errs.Internal(fmt.Errorf("pause %s: %w", c.Name, err))
			}
		}
		c.state, c.pauseUntil = Paused, s.o.clock.Now().Add(d)
		s.o.logger.Warn("fault: pause (SIGSTOP)", "proc", c.Name, "pid", c.pid, "for", d)
		return nil
	})
}

// Resume ends a pause with SIGCONT. Resuming a running process changes nothing.
func (s *Supervisor) Resume(name string) (Info, error) {
	return s.act(name, "resume", func(c *child) error {
		switch {
		case c.state == Running:
			return nil
		case c.state != Paused:
			return notRunning(c, "resume")
		}
		if err := signalErr(resumeProcess(c.cmd.Process)); err != nil {
			return errs.Internal(fmt.Errorf("resume %s: %w", c.Name, err))
		}
		c.state, c.pauseUntil = Running, time.Time{}
		s.o.logger.Info("process resumed", "proc", c.Name, "pid", c.pid)
		return nil
	})
}

// Restart stops the process gracefully (SIGTERM, then SIGKILL after the stop timeout) and
// starts it again; without a live process it is Start.
func (s *Supervisor) Restart(name string) (Info, error) {
	return s.act(name, "restart", func(c *child) error {
		if !c.alive() {
			return s.startSoonLocked(c)
		}
		wasPaused := c.state == Paused
		c.onExit, c.restartAfter = startNext, 0
		c.state, c.pauseUntil, c.killAt = Restarting, time.Time{}, s.o.clock.Now().Add(s.o.stopTimeout)
		s.o.logger.Info("restarting process (SIGTERM)", "proc", c.Name, "pid", c.pid)
		err := signalErr(c.cmd.Process.Signal(syscall.SIGTERM))
		if wasPaused { // a stopped process acts on SIGTERM only once it runs
			err = errors.Join(err, signalErr(resumeProcess(c.cmd.Process)))
		}
		return err
	})
}

// Get returns the Info of one process. Errors: NotFound.
func (s *Supervisor) Get(name string) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.children[name]
	if c == nil {
		return Info{}, errs.NotFound(ReasonNotFound, "no process %q: %s", name, strings.Join(s.names(), ", "))
	}
	return c.info(), nil
}

// List returns every process's Info, in start order.
func (s *Supervisor) List() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, len(s.order))
	for i, c := range s.order {
		out[i] = c.info()
	}
	return out
}

// Ready reports whether the process named runs and, when it has a probe, whether the probe
// passes: nil, or an error saying what is wrong.
func (s *Supervisor) Ready(ctx context.Context, name string) error {
	s.mu.Lock()
	c := s.children[name]
	if c == nil {
		s.mu.Unlock()
		return errs.NotFound(ReasonNotFound, "no process %q", name)
	}
	state, probe := c.state, c.Ready
	s.mu.Unlock()
	if state != Running {
		return fmt.Errorf("%s is %s", name, state)
	}
	if probe == nil {
		return nil
	}
	return probe(ctx)
}

// Close stops every process: SIGTERM, then SIGKILL for those still running after the stop
// timeout (on the real clock). It returns once every process is reaped and the
// supervisor's goroutines have ended; the error names the processes that had to be
// killed. Later calls return nil at once.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.quit)
	var exits []chan struct{}
	for _, c := range s.order {
		c.due, c.pauseUntil, c.killAt = time.Time{}, time.Time{}, time.Time{}
		if c.cmd != nil {
			_ = signalErr(c.cmd.Process.Signal(syscall.SIGTERM))
			if c.state == Paused {
				_ = signalErr(resumeProcess(c.cmd.Process))
			}
			exits = append(exits, c.exited)
		}
		c.state = Stopped
	}
	s.mu.Unlock()

	timer := time.NewTimer(s.o.stopTimeout)
	defer timer.Stop()
	var killed []string
wait:
	for _, ch := range exits {
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			for _, c := range s.order {
				if c.cmd != nil {
					killed = append(killed, c.Name)
					_ = signalErr(c.cmd.Process.Kill())
				}
			}
			s.mu.Unlock()
			break wait
		}
	}
	s.wg.Wait()
	if len(killed) > 0 {
		return fmt.Errorf("procs: %s did not stop within %v of SIGTERM: killed", strings.Join(killed, ", "), s.o.stopTimeout)
	}
	return nil
}

func (c *child) info() Info {
	in := Info{Name: c.Name, PID: c.pid, State: c.state, Restarts: c.restarts, Crashes: c.crashes,
		StartedAt: c.startedAt, LastExit: c.lastExit, Admin: c.Admin}
	if c.state == Paused {
		t := c.pauseUntil
		in.PausedUntil = &t
	}
	if c.state == Restarting && c.cmd == nil {
		t := c.due
		in.NextStart = &t
	}
	return in
}

// signalErr drops the error of a signal to a process that has exited but is not reaped
// yet: its exit is on the way to the waiter, which applies what the fault asked for.
func signalErr(err error) error {
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func exitText(cmd *exec.Cmd, err error) string {
	if cmd.ProcessState != nil {
		return cmd.ProcessState.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exited"
}

func badField(field, format string, args ...any) error {
	return errs.InvalidArgument(ReasonBadRequest, format, args...).WithMetadata("field", field)
}
