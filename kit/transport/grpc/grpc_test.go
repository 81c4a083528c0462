package grpc

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
	"github.com/redline-dev/redline/kit/trace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testService answers UnaryCall with fn.
type testService struct {
	testpb.UnimplementedTestServiceServer
	fn func(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error)
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return s.fn(ctx, req)
}

// startServer starts a server running fn and returns a client of it; both stop at cleanup.
func startServer(t *testing.T, fn func(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error), opts ...ServerOption) testpb.TestServiceClient {
	t.Helper()
	srv := NewServer("svc", append([]ServerOption{Logger(log.Discard())}, opts...)...)
	testpb.RegisterTestServiceServer(srv, &testService{fn: fn})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(srv.Endpoint(), ClientLogger(log.Discard()), ClientDeadline(middleware.DeadlineConfig{Default: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return testpb.NewTestServiceClient(cli)
}

func TestDeadlineCrossesTwoHops(t *testing.T) {
	leafCancelled := make(chan error, 1)
	leaf := startServer(t, func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		select {
		case <-time.After(time.Second):
			leafCancelled <- nil
			return &testpb.SimpleResponse{}, nil
		case <-ctx.Done():
			leafCancelled <- ctx.Err()
			return nil, ctx.Err()
		}
	})
	mid := startServer(t, func(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return leaf.UnaryCall(ctx, req)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := mid.UnaryCall(ctx, &testpb.SimpleRequest{})
	elapsed := time.Since(start)
	if got := errs.Code(err); got != codes.DeadlineExceeded {
		t.Fatalf("UnaryCall err = %v; want DeadlineExceeded", err)
	}
	if elapsed >= time.Second {
		t.Fatalf("call took %v: the deadline did not cut the 1 s handler short", elapsed)
	}
	t.Logf("50 ms budget over gRPC→gRPC answered in %v", elapsed)
	// The leaf's ctx ends by its own (shrunk) deadline or by the caller's cancellation
	// arriving first; either way it must end long before its 1 s of work.
	if err := <-leafCancelled; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("leaf handler ctx err = %v; want it cancelled", err)
	}
}

func TestExpiredOnArrivalIsRefused(t *testing.T) {
	called := false
	// A margin larger than the caller's budget leaves no time on arrival.
	cli := startServer(t, func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		called = true
		return &testpb.SimpleResponse{}, nil
	}, Deadline(middleware.DeadlineConfig{Default: time.Second, Margin: time.Hour}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := cli.UnaryCall(ctx, &testpb.SimpleRequest{})
	if errs.Reason(err) != errs.ReasonDeadlineConsumed {
		t.Fatalf("err = %v; want reason %s", err, errs.ReasonDeadlineConsumed)
	}
	if called {
		t.Fatal("handler ran for a request with no time left")
	}
}

func TestClientFailsBeforeSendingWithNoTimeLeft(t *testing.T) {
	sent := false
	cli := startServer(t, func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		sent = true
		return &testpb.SimpleResponse{}, nil
	})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	_, err := cli.UnaryCall(ctx, &testpb.SimpleRequest{})
	if errs.Reason(err) != errs.ReasonDeadlineConsumed || sent {
		t.Fatalf("err = %v, sent = %v; want %s before sending", err, sent, errs.ReasonDeadlineConsumed)
	}
}

func TestErrorsAndMetadataCrossTheHop(t *testing.T) {
	got := make(chan meta.MD, 1)
	cli := startServer(t, func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		got <- meta.FromContext(ctx)
		return nil, errs.NotFound("THING_NOT_FOUND", "no such thing")
	})
	ctx := meta.NewContext(context.Background(), meta.MD{RequestID: "req-42", Lane: "canary", Criticality: meta.Sheddable, Attempt: 1})
	_, err := cli.UnaryCall(ctx, &testpb.SimpleRequest{})
	e := errs.From(err)
	if e.Code != codes.NotFound || e.Reason != "THING_NOT_FOUND" || e.Message != "no such thing" {
		t.Fatalf("err = %+v; want NotFound THING_NOT_FOUND", e)
	}
	want := meta.MD{RequestID: "req-42", Lane: "canary", Criticality: meta.Sheddable, Attempt: 1}
	if md := <-got; md != want {
		t.Fatalf("server saw %+v; want %+v", md, want)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	cli := startServer(t, func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		panic("boom")
	})
	_, err := cli.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if errs.Reason(err) != errs.ReasonPanic || errs.Code(err) != codes.Internal {
		t.Fatalf("err = %v; want Internal PANIC", err)
	}
}

func TestSelectAppliesPerOperation(t *testing.T) {
	var hits []string
	mark := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			hits = append(hits, middleware.FromContext(ctx).Operation)
			return next(ctx, req)
		}
	}
	cli := startServer(t, func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return &testpb.SimpleResponse{}, nil
	}, Middleware(middleware.Select(middleware.Operations("/grpc.testing.TestService/UnaryCall"), mark)))
	if _, err := cli.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.EmptyCall(context.Background(), &testpb.Empty{}); errs.Code(err) != codes.Unimplemented {
		t.Fatalf("EmptyCall err = %v; want Unimplemented", err)
	}
	if len(hits) != 1 || hits[0] != "/grpc.testing.TestService/UnaryCall" {
		t.Fatalf("selected middleware ran for %v; want only UnaryCall", hits)
	}
}

func TestTraceContextCrossesTheHop(t *testing.T) {
	shutdown, err := trace.Setup(context.Background(), "test", trace.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	seen := make(chan string, 1)
	cli := startServer(t, func(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		tid, _ := trace.IDs(ctx)
		seen <- tid
		return &testpb.SimpleResponse{}, nil
	})
	ctx, span := trace.Tracer("test").Start(context.Background(), "caller")
	defer span.End()
	want, _ := trace.IDs(ctx)
	if _, err := cli.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got == "" || got != want {
		t.Fatalf("server trace id = %q; want the caller's %q", got, want)
	}
}

func TestHedgedCallTakesTheFastAttempt(t *testing.T) {
	var calls atomic.Int32
	slowCancelled := make(chan error, 1)
	srv := NewServer("svc", Logger(log.Discard()))
	testpb.RegisterTestServiceServer(srv, &testService{fn: func(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		n := calls.Add(1)
		if req.GetResponseSize() == 1 && n == 31 { // the first attempt of the hedged call hangs
			<-ctx.Done()
			slowCancelled <- ctx.Err()
			return nil, ctx.Err()
		}
		return &testpb.SimpleResponse{Username: fmt.Sprint("answer ", n)}, nil
	}})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	cfg := ha.Default()
	cfg.Retry.Hedge = []string{"/grpc.testing.TestService/UnaryCall"}
	conn, err := NewClient(srv.Endpoint(), ClientLogger(log.Discard()), ClientHA(ha.NewClient(cfg, nil, nil)),
		ClientDeadline(middleware.DeadlineConfig{Default: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cli := testpb.NewTestServiceClient(conn)
	for range 30 { // the hedge delay is learned from observed latencies
		if _, err := cli.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.UnaryCall(context.Background(), &testpb.SimpleRequest{ResponseSize: 1})
	if err != nil {
		t.Fatalf("hedged call = %v; want the backup attempt's answer (the first one never answers)", err)
	}
	// A backup attempt (the 32nd call or, if that one was slow too, the 33rd) answered.
	if got := resp.GetUsername(); got != "answer 32" && got != "answer 33" {
		t.Fatalf("reply = %q; want a backup attempt's answer", got)
	}

	if err := <-slowCancelled; err == nil {
		t.Fatal("the losing attempt was not cancelled")
	}
}
