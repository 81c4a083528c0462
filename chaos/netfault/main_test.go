package netfault

import (
	"errors"
	"io"
	"net"
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

// echo is a TCP echo server on loopback, closed with its connections when the test ends.
type echo struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newEcho(t testing.TB) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns = append(e.conns, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		e.mu.Lock()
		for _, c := range e.conns {
			_ = c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echo) addr() string { return e.ln.Addr().String() }

// env is a Proxies on a fake clock without a background sweep, with one proxy "echo" in
// front of an echo server.
type env struct {
	px  *Proxies
	clk *clock.Fake
	up  *echo
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{clk: clock.NewFake(time.Time{}), up: newEcho(t)}
	e.px = New(WithClock(e.clk), WithSweepInterval(0), WithLogger(log.Discard()))
	t.Cleanup(func() {
		if err := e.px.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	if _, err := e.px.Add("echo", "", e.up.addr()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) addToxic(t testing.TB, s ToxicSpec) Toxic {
	t.Helper()
	if s.Proxy == "" {
		s.Proxy = "echo"
	}
	tox, err := e.px.AddToxic(s)
	if err != nil {
		t.Fatalf("AddToxic(%+v) = %v", s, err)
	}
	return tox
}

// dial connects to the proxy, with a generous deadline so a broken proxy fails the test
// instead of hanging it; the deadline is a guard, never what a test asserts.
func (e *env) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.px.Addr("echo"))
	if err != nil {
		t.Fatalf("dial the proxy: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads it back.
func roundTrip(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo returned " + string(buf))
	}
	return nil
}

// wantBad checks that err is a BAD_NET_FAULT naming field, with msg in its message.
func wantBad(t testing.TB, err error, field, msg string) {
	t.Helper()
	errstest.Want(t, err, codes.InvalidArgument, ReasonBadNetFault, field, msg)
}

func ptr[T any](v T) *T { return &v }
