package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/errs/errstest"
	"github.com/redline-dev/redline/kit/log"
)

// The children are this test binary run again: TestMain sees childEnv and runs a loop that
// writes a heartbeat counter to a file every 10 ms.
const (
	childEnv     = "PROCS_TEST_CHILD"
	heartbeatEnv = "PROCS_TEST_HEARTBEAT"
	ignoreTERM   = "PROCS_TEST_IGNORE_TERM"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		runChild()
		return
	}
	goleak.VerifyTestMain(m)
}

func runChild() {
	if os.Getenv(ignoreTERM) == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	fmt.Println("child up")
	hb := os.Getenv(heartbeatEnv)
	for i := 0; ; i++ {
		if hb != "" {
			_ = os.WriteFile(hb+".tmp", []byte(strconv.Itoa(i)), 0o644)
			_ = os.Rename(hb+".tmp", hb)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// env is a supervisor on a fake clock whose deadline checks run only when round is called.
type env struct {
	s       *Supervisor
	clk     *clock.Fake
	ticks   chan time.Time
	checked chan struct{}
	out     *syncBuffer
	dir     string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// childProc is a supervised test child; extra env entries are added.
func childProc(dir, name string, extra ...string) Proc {
	return Proc{Name: name, Args: []string{os.Args[0]},
		Env: append([]string{childEnv + "=1", heartbeatEnv + "=" + filepath.Join(dir, name+".hb")}, extra...)}
}

func newEnv(t *testing.T, procs []Proc, opts ...Option) *env {
	t.Helper()
	e := &env{clk: clock.NewFake(time.Time{}), ticks: make(chan time.Time), checked: make(chan struct{}), out: &syncBuffer{}}
	base := []Option{WithClock(e.clk), WithOutput(e.out), WithLogger(log.Discard()), WithStopTimeout(5 * time.Second),
		func(o *options) { o.ticks, o.checked = e.ticks, e.checked }}
	s, err := New(procs, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	e.s = s
	t.Cleanup(func() { _ = s.Close() })
	return e
}

func newChildren(t *testing.T, names ...string) *env {
	t.Helper()
	dir := t.TempDir()
	var procs []Proc
	for _, n := range names {
		procs = append(procs, childProc(dir, n))
	}
	e := newEnv(t, procs)
	e.dir = dir
	return e
}

// round runs one check of the deadlines and returns once it is done.
func (e *env) round() {
	e.ticks <- time.Time{}
	<-e.checked
}

func (e *env) info(t *testing.T, name string) Info {
	t.Helper()
	in, err := e.s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// waitFor polls the process's Info until cond holds, failing after 10 s.
func (e *env) waitFor(t *testing.T, name, what string, cond func(Info) bool) Info {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in := e.info(t, name)
		if cond(in) {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not within 10s; last %+v", name, what, in)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procState is the state letter of /proc/<pid>/stat: R, S, T (stopped), Z; "" when gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func waitProcState(t *testing.T, pid int, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(procState(pid)) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: %s not within 10s; state %q", pid, what, procState(pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func heartbeat(t *testing.T, e *env, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name+".hb"))
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(string(b))
	return n
}

// waitBeats waits until the child's heartbeat counter moves past from.
func waitBeats(t *testing.T, e *env, name string, from int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for heartbeat(t, e, name) <= from {
		if time.Now().After(deadline) {
			t.Fatalf("%s: heartbeat stuck at %d", name, from)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func running(in Info) bool { return in.State == Running && in.PID != 0 }

// gone is a /proc state of a process that is reaped.
func gone(s string) bool { return s == "" }

func needProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
}

func TestKillRestartsAtOnce(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	before := e.info(t, "a")
	in, err := e.s.Kill("a", 0)
	if err != nil || in.State != Restarting {
		t.Fatalf("Kill = %+v, %v; want state restarting", in, err)
	}
	after := e.waitFor(t, "a", "restarted", func(in Info) bool { return running(in) && in.PID != before.PID })
	if after.Restarts != 1 || after.Crashes != 0 || after.LastExit != "signal: killed" {
		t.Errorf("after kill: %+v; want 1 restart, 0 crashes, last exit signal: killed", after)
	}
	waitProcState(t, before.PID, "old process reaped", gone)
	waitBeats(t, e, "a", heartbeat(t, e, "a"))
}

func TestKillRestartAfterWaitsForTheClock(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	if _, err := e.s.Kill("a", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	in := e.waitFor(t, "a", "reaped", func(in Info) bool { return in.PID == 0 })
	if in.State != Restarting || in.NextStart == nil || !in.NextStart.Equal(e.clk.Now().Add(2*time.Second)) {
		t.Fatalf("killed: %+v; want restarting, next start in 2s", in)
	}
	e.clk.Advance(1999 * time.Millisecond)
	e.round()
	if in := e.info(t, "a"); in.State != Restarting || in.PID != 0 {
		t.Fatalf("before restart_after: %+v; want still restarting", in)
	}
	e.clk.Advance(time.Millisecond)
	e.round()
	if in := e.info(t, "a"); !running(in) || in.Restarts != 1 {
		t.Fatalf("at restart_after: %+v; want running again", in)
	}
}

func TestCrashRestartsAfterDoublingBackoff(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	for i, backoff := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		pid := e.info(t, "a").PID
		// Killed from outside: nobody asked the supervisor, so it is a crash.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		in := e.waitFor(t, "a", "crash seen", func(in Info) bool { return in.PID == 0 })
		if in.State != Restarting || in.Crashes != i+1 || !in.NextStart.Equal(e.clk.Now().Add(backoff)) {
			t.Fatalf("crash %d: %+v; want restarting after %v", i+1, in, backoff)
		}
		e.clk.Advance(backoff - time.Millisecond)
		e.round()
		if in := e.info(t, "a"); in.PID != 0 {
			t.Fatalf("crash %d: restarted before its backoff of %v: %+v", i+1, backoff, in)
		}
		e.clk.Advance(time.Millisecond)
		e.round()
		if in := e.info(t, "a"); !running(in) || in.PID == pid || in.Restarts != i+1 {
			t.Fatalf("crash %d: after the backoff %+v; want running with a new pid", i+1, in)
		}
	}
}

func TestPauseResumesAtExpiry(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	waitBeats(t, e, "a", -1)
	pid := e.info(t, "a").PID
	in, err := e.s.Pause("a", 10*time.Second)
	if err != nil || in.State != Paused || !in.PausedUntil.Equal(e.clk.Now().Add(10*time.Second)) {
		t.Fatalf("Pause = %+v, %v; want paused for 10s", in, err)
	}
	waitProcState(t, pid, "stopped (T)", func(s string) bool { return s == "T" })
	if err := e.s.Ready(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("Ready while paused = %v; want an error saying paused", err)
	}
	e.clk.Advance(10*time.Second - time.Millisecond)
	e.round()
	if st := procState(pid); st != "T" || e.info(t, "a").State != Paused {
		t.Fatalf("before expiry: /proc state %q, %+v; want still stopped", st, e.info(t, "a"))
	}
	beat := heartbeat(t, e, "a")
	e.clk.Advance(time.Millisecond)
	e.round()
	if in := e.info(t, "a"); in.State != Running || in.PID != pid || in.PausedUntil != nil {
		t.Fatalf("at expiry: %+v; want the same process running", in)
	}
	waitProcState(t, pid, "running again", func(s string) bool { return s == "S" || s == "R" })
	waitBeats(t, e, "a", beat)
}

func TestPauseDurationsAndResume(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	for _, d := range []time.Duration{-time.Second, MaxPause + time.Second} {
		_, err := e.s.Pause("a", d)
		wantErr(t, err, codes.InvalidArgument, ReasonBadRequest, "for")
	}
	in, err := e.s.Pause("a", 0)
	if err != nil || !in.PausedUntil.Equal(e.clk.Now().Add(DefaultPause)) {
		t.Fatalf("Pause(0) = %+v, %v; want the default %v", in, err, DefaultPause)
	}
	// A second pause sets the new end.
	if in, _ = e.s.Pause("a", time.Minute); !in.PausedUntil.Equal(e.clk.Now().Add(time.Minute)) {
		t.Fatalf("second Pause: %+v; want paused until now+1m", in)
	}
	waitProcState(t, in.PID, "stopped (T)", func(s string) bool { return s == "T" })
	if in, err = e.s.Resume("a"); err != nil || in.State != Running {
		t.Fatalf("Resume = %+v, %v; want running", in, err)
	}
	waitProcState(t, in.PID, "running again", func(s string) bool { return s == "S" || s == "R" })
	if in2, err := e.s.Resume("a"); err != nil || in2.PID != in.PID {
		t.Fatalf("Resume of a running process = %+v, %v; want no change", in2, err)
	}
}

func TestStopStaysDownUntilStart(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	pid := e.info(t, "a").PID
	if in, err := e.s.Stop("a"); err != nil || in.State != Stopped {
		t.Fatalf("Stop = %+v, %v; want stopped", in, err)
	}
	e.waitFor(t, "a", "reaped", func(in Info) bool { return in.PID == 0 })
	waitProcState(t, pid, "gone", gone)
	e.clk.Advance(time.Hour)
	e.round()
	if in := e.info(t, "a"); in.State != Stopped || in.PID != 0 || in.Crashes != 0 {
		t.Fatalf("an hour after Stop: %+v; want still stopped, no crash", in)
	}
	if in, err := e.s.Stop("a"); err != nil || in.State != Stopped {
		t.Errorf("Stop of a stopped process = %+v, %v; want no change", in, err)
	}
	for _, f := range []func(string, time.Duration) (Info, error){e.s.Kill, e.s.Pause} {
		_, err := f("a", time.Second)
		wantErr(t, err, codes.FailedPrecondition, ReasonState, "")
	}
	in, err := e.s.Start("a")
	if err != nil || !running(in) || in.PID == pid || in.Restarts != 1 {
		t.Fatalf("Start = %+v, %v; want running with a new pid", in, err)
	}
	if again, err := e.s.Start("a"); err != nil || again.PID != in.PID {
		t.Errorf("Start of a running process = %+v, %v; want no change", again, err)
	}
}

func TestRestartKillsWhatIgnoresSIGTERM(t *testing.T) {
	needProc(t)
	dir := t.TempDir()
	e := newEnv(t, []Proc{childProc(dir, "polite"), childProc(dir, "stubborn", ignoreTERM+"=1")})
	e.dir = dir
	// The child ignores SIGTERM only once it runs its loop.
	waitBeats(t, e, "stubborn", -1)

	polite := e.info(t, "polite").PID
	if in, err := e.s.Restart("polite"); err != nil || in.State != Restarting {
		t.Fatalf("Restart = %+v, %v; want restarting", in, err)
	}
	in := e.waitFor(t, "polite", "restarted", func(in Info) bool { return running(in) && in.PID != polite })
	if in.LastExit != "signal: terminated" || in.Crashes != 0 {
		t.Errorf("after Restart: %+v; want last exit signal: terminated, no crash", in)
	}

	stubborn := e.info(t, "stubborn").PID
	if _, err := e.s.Restart("stubborn"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(5*time.Second - time.Millisecond)
	e.round()
	if st := procState(stubborn); st == "" || st == "Z" {
		t.Fatalf("stubborn child gone before the stop timeout (state %q)", st)
	}
	e.clk.Advance(time.Millisecond)
	e.round()
	in = e.waitFor(t, "stubborn", "restarted", func(in Info) bool { return running(in) && in.PID != stubborn })
	if in.LastExit != "signal: killed" {
		t.Errorf("after the stop timeout: %+v; want last exit signal: killed", in)
	}
}

func TestCloseReapsEverything(t *testing.T) {
	needProc(t)
	dir := t.TempDir()
	s, err := New([]Proc{childProc(dir, "a"), childProc(dir, "b"), childProc(dir, "stubborn", ignoreTERM+"=1")},
		WithOutput(&syncBuffer{}), WithLogger(log.Discard()), WithStopTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "stubborn.hb"))
		if len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stubborn child never beat")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Pause("b", time.Minute); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, in := range s.List() {
		pids = append(pids, in.PID)
	}
	err = s.Close()
	if err == nil || !strings.Contains(err.Error(), "stubborn") || strings.Contains(err.Error(), "b,") {
		t.Errorf("Close = %v; want an error naming only stubborn", err)
	}
	for _, pid := range pids {
		if st := procState(pid); st != "" {
			t.Errorf("pid %d still there after Close (state %q)", pid, st)
		}
	}
	for _, in := range s.List() {
		if in.State != Stopped || in.PID != 0 {
			t.Errorf("after Close: %+v; want stopped", in)
		}
	}
	if _, err := s.Start("a"); errs.Code(err) != codes.FailedPrecondition {
		t.Errorf("Start after Close = %v; want FailedPrecondition", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := Proc{Name: "a", Args: []string{"true"}}
	for _, tt := range []struct {
		name  string
		procs []Proc
		want  string
	}{
		{"bad name", []Proc{{Name: "A b", Args: []string{"true"}}}, `procs[0].name "A b"`},
		{"empty name", []Proc{{Args: []string{"true"}}}, `procs[0].name ""`},
		{"twice", []Proc{ok, ok}, `procs[1].name "a": a second process`},
		{"no args", []Proc{{Name: "a"}}, "procs[0].args"},
		{"missing program", []Proc{{Name: "a", Args: []string{"/nonexistent/redline-test"}}}, "start a:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.procs, WithLogger(log.Discard()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestOutputIsPrefixedAndFaultsNeedAKnownName(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.out.String(), "a | child up\n") {
		if time.Now().After(deadline) {
			t.Fatalf("output = %q; want the line prefixed with a |", e.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := e.s.Kill("nope", 0)
	wantErr(t, err, codes.NotFound, ReasonNotFound, "")
	_, err = e.s.Kill("a", MaxRestartAfter+time.Second)
	wantErr(t, err, codes.InvalidArgument, ReasonBadRequest, "restart_after")
	if err := e.s.Ready(context.Background(), "nope"); errs.Code(err) != codes.NotFound {
		t.Errorf("Ready(nope) = %v; want NotFound", err)
	}
}

func TestReadyAsksTheProbe(t *testing.T) {
	needProc(t)
	dir := t.TempDir()
	probeErr := errors.New("not yet")
	var mu sync.Mutex
	p := childProc(dir, "a")
	p.Ready = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return probeErr }
	e := newEnv(t, []Proc{p})
	if err := e.s.Ready(context.Background(), "a"); !errors.Is(err, probeErr) {
		t.Errorf("Ready = %v; want the probe's error", err)
	}
	mu.Lock()
	probeErr = nil
	mu.Unlock()
	if err := e.s.Ready(context.Background(), "a"); err != nil {
		t.Errorf("Ready = %v; want nil", err)
	}
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	w := newLineWriter(&sync.Mutex{}, &out, "svc")
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\nthree"))
	if got := out.String(); got != "svc | one\nsvc | two\n" {
		t.Fatalf("after two writes: %q", got)
	}
	w.flush()
	if got := out.String(); got != "svc | one\nsvc | two\nsvc | three\n" {
		t.Fatalf("after flush: %q", got)
	}
	out.Reset()
	_, _ = w.Write(bytes.Repeat([]byte("x"), maxLine+10))
	if got := out.Len(); got != len("svc | ")+maxLine+10+1 {
		t.Errorf("a line longer than %d: wrote %d bytes; want it cut at once", maxLine, got)
	}
}

// wantErr checks err's code and reason, and the field it names when field is set.
func wantErr(t *testing.T, err error, code codes.Code, reason, field string) {
	t.Helper()
	errstest.Want(t, err, code, reason, field, "")
}
