package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestGRPCRoundTrip(t *testing.T) {
	cases := []*Error{
		NotFound("NOTE_NOT_FOUND", "note %d not found", 7),
		InvalidArgument("BAD_CURSOR", "cursor is not valid").WithMetadata("field", "cursor"),
		Overloaded(ReasonOverloaded, "shedding"),
		New(codes.Unavailable, ReasonUnavailable, "down"),
	}
	for _, want := range cases {
		t.Run(want.Reason, func(t *testing.T) {
			// What grpc-go does on the server (GRPCStatus), then on the client.
			st, _ := status.FromError(want)
			got := From(st.Err())
			if got.Code != want.Code || got.Reason != want.Reason || got.Message != want.Message || got.Retryable != want.Retryable {
				t.Fatalf("From(status) = %+v; want %+v", got, want)
			}
			if want.Metadata["field"] != got.Metadata["field"] {
				t.Fatalf("metadata = %v; want %v", got.Metadata, want.Metadata)
			}
		})
	}
}

func TestHTTPRoundTrip(t *testing.T) {
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		e := New(c, "R", "m")
		back := FromBody(e.HTTPStatus(), e.ToBody("rid"))
		if back.Code != c {
			t.Errorf("FromBody(HTTPStatus(%v)) code = %v; want %v", c, back.Code, c)
		}
	}
	if got := HTTPStatus(codes.NotFound); got != http.StatusNotFound {
		t.Fatalf("HTTPStatus(NotFound) = %d; want 404", got)
	}
	if got := CodeFromHTTP(http.StatusGatewayTimeout); got != codes.DeadlineExceeded {
		t.Fatalf("CodeFromHTTP(504) = %v; want DeadlineExceeded", got)
	}
}

func TestFrom(t *testing.T) {
	cause := errors.New("disk on fire")
	cases := []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{context.DeadlineExceeded, codes.DeadlineExceeded, ReasonDeadline},
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled, ReasonCanceled},
		{cause, codes.Internal, ReasonInternal},
		{status.Error(codes.NotFound, "plain"), codes.NotFound, "NOT_FOUND"},
		{status.Error(codes.DeadlineExceeded, "plain"), codes.DeadlineExceeded, ReasonDeadline},
	}
	for _, c := range cases {
		got := From(c.err)
		if got.Code != c.code || got.Reason != c.reason {
			t.Errorf("From(%v) = %v %s; want %v %s", c.err, got.Code, got.Reason, c.code, c.reason)
		}
	}
	if From(nil) != nil {
		t.Fatal("From(nil) != nil")
	}
	internal := Internal(cause)
	if !errors.Is(internal, cause) {
		t.Fatal("Internal does not wrap its cause")
	}
	if b := internal.ToBody(""); b.Error.Message != "internal error" {
		t.Fatalf("internal cause leaked into body: %q", b.Error.Message)
	}
}

func TestOverloadedIsNotRetryable(t *testing.T) {
	e := Overloaded(ReasonOverloaded, "busy")
	st, _ := status.FromError(e)
	if IsRetryable(st.Err()) {
		t.Fatal("overloaded error decoded as retryable; want don't-retry to cross the wire")
	}
	if !IsRetryable(status.Error(codes.Unavailable, "x")) {
		t.Fatal("plain Unavailable should be retryable")
	}
}

func TestIsMatchesCodeAndReason(t *testing.T) {
	sentinel := NotFound("NOTE_NOT_FOUND", "no note")
	err := fmt.Errorf("get: %w", NotFound("NOTE_NOT_FOUND", "note 9"))
	if !errors.Is(err, sentinel) {
		t.Fatal("errors.Is by code+reason failed")
	}
	if errors.Is(err, NotFound("USER_NOT_FOUND", "")) {
		t.Fatal("errors.Is matched a different reason")
	}
}

func TestInternalKeepsDeadlines(t *testing.T) {
	err := Internal(fmt.Errorf("insert user: %w", context.DeadlineExceeded))
	if err.Code != codes.DeadlineExceeded {
		t.Fatalf("Internal(deadline) code = %v; want DeadlineExceeded, not a server fault", err.Code)
	}
}

func TestPublicHidesForeignMessages(t *testing.T) {
	foreign := From(status.Error(codes.Unavailable, `dial tcp 10.1.2.3:9001: connect: connection refused`))
	if p := foreign.Public(); p.Message != "unavailable" || p.Code != codes.Unavailable || p.Reason != "UNAVAILABLE" {
		t.Fatalf("Public(foreign) = %+v; want a generic message with code and reason kept", p)
	}
	ours, _ := status.FromError(NotFound("NOTE_NOT_FOUND", "note 7 not found"))
	if p := From(ours.Err()).Public(); p.Message != "note 7 not found" {
		t.Fatalf("Public(ours) = %q; want our own message kept", p.Message)
	}
}
