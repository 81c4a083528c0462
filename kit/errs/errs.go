// Package errs provides Redline's one error type: a code, a machine-readable reason, a
// human message, an optional cause and whether a caller may retry. It maps both ways to gRPC
// status and HTTP status, and renders as the JSON error body of the HTTP transport.
package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain names the error domain in gRPC ErrorInfo details.
const Domain = "redline"

// Reasons used by the kit itself. Services define their own in UPPER_SNAKE_CASE.
const (
	ReasonInternal         = "INTERNAL"
	ReasonDeadline         = "DEADLINE_EXCEEDED"
	ReasonCanceled         = "CANCELED"
	ReasonOverloaded       = "OVERLOADED"
	ReasonUnavailable      = "UNAVAILABLE"
	ReasonBadJSON          = "MALFORMED_JSON"
	ReasonUnknownField     = "UNKNOWN_FIELD"
	ReasonBodyTooLarge     = "BODY_TOO_LARGE"
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonNotFound         = "NOT_FOUND"
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonPanic            = "PANIC"
	ReasonDeadlineConsumed = "DEADLINE_CONSUMED"
)

// Error is the unified error. The zero Code is codes.OK, which no Error should carry.
type Error struct {
	Code    codes.Code
	Reason  string
	Message string
	// Retryable says a caller may try again. Overloaded servers set it false on purpose:
	// "overloaded, don't retry".
	Retryable bool
	// Metadata is extra detail that crosses the wire (for example the offending field).
	Metadata map[string]string
	cause    error
	// foreign marks an error decoded from a gRPC status that no Redline service made (a
	// transport failure, a third party): its message may name internal hosts.
	foreign bool
}

// New returns an Error with code, reason and message. Retryable defaults from the code.
func New(code codes.Code, reason, message string) *Error {
	return &Error{Code: code, Reason: reason, Message: message, Retryable: retryableCode(code)}
}

// Newf is New with a formatted message.
func Newf(code codes.Code, reason, format string, args ...any) *Error {
	return New(code, reason, fmt.Sprintf(format, args...))
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %s", e.Code, e.Reason, e.Message)
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// Is matches another *Error by code and reason, so sentinels work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Reason == e.Reason
}

// WithCause returns a copy of e wrapping cause. The cause is never sent over the wire.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// WithMetadata returns a copy of e with key=value added to its metadata.
func (e *Error) WithMetadata(key, value string) *Error {
	c := *e
	c.Metadata = make(map[string]string, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		c.Metadata[k] = v
	}
	c.Metadata[key] = value
	return &c
}

// NoRetry returns a copy of e that tells callers not to retry.
func (e *Error) NoRetry() *Error {
	c := *e
	c.Retryable = false
	return &c
}

// Constructors for the common cases.

// InvalidArgument is a 400 for bad input.
func InvalidArgument(reason, format string, args ...any) *Error {
	return Newf(codes.InvalidArgument, reason, format, args...)
}

// NotFound is a 404.
func NotFound(reason, format string, args ...any) *Error {
	return Newf(codes.NotFound, reason, format, args...)
}

// AlreadyExists is a 409.
func AlreadyExists(reason, format string, args ...any) *Error {
	return Newf(codes.AlreadyExists, reason, format, args...)
}

// Unauthenticated is a 401.
func Unauthenticated(reason, format string, args ...any) *Error {
	return Newf(codes.Unauthenticated, reason, format, args...)
}

// PermissionDenied is a 403.
func PermissionDenied(reason, format string, args ...any) *Error {
	return Newf(codes.PermissionDenied, reason, format, args...)
}

// Internal is a 500; the cause stays server-side. A cause that is the request's own
// deadline or cancellation is reported as such, not as a server fault.
func Internal(cause error) *Error {
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return New(codes.DeadlineExceeded, ReasonDeadline, "deadline exceeded").WithCause(cause)
	case errors.Is(cause, context.Canceled):
		return New(codes.Canceled, ReasonCanceled, "request canceled").WithCause(cause)
	}
	return New(codes.Internal, ReasonInternal, "internal error").WithCause(cause)
}

// Overloaded is "overloaded, don't retry": ResourceExhausted on gRPC, 503 on HTTP.
func Overloaded(reason, message string) *Error {
	e := New(codes.ResourceExhausted, reason, message)
	e.Retryable = false
	return e
}

func retryableCode(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.Aborted:
		return true
	}
	return false
}

// From converts any error to *Error. Context errors become DeadlineExceeded or Canceled,
// gRPC status errors are decoded with their ErrorInfo, anything else is Internal.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if st, ok := status.FromError(err); ok {
		return FromStatus(st)
	}
	return Internal(err)
}

// Code returns the code of err as From sees it; codes.OK for nil.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return From(err).Code
}

// Reason returns the reason of err as From sees it; "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return From(err).Reason
}

// IsRetryable reports whether a caller may retry err.
func IsRetryable(err error) bool { return err != nil && From(err).Retryable }

// GRPCStatus lets grpc-go turn an *Error into a status with an ErrorInfo detail.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Message)
	md := make(map[string]string, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		md[k] = v
	}
	if e.Retryable {
		md["retryable"] = "true"
	} else {
		md["retryable"] = "false"
	}
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Reason, Domain: Domain, Metadata: md}); err == nil {
		return d
	}
	return st
}

// codeReason is the reason of a status that carries none: its code in UPPER_SNAKE_CASE
// ("DEADLINE_EXCEEDED"), so a deadline reads the same whichever side noticed it.
func codeReason(c codes.Code) string {
	name := c.String()
	b := make([]byte, 0, len(name)+4)
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch >= 'A' && ch <= 'Z' {
			if i > 0 {
				b = append(b, '_')
			}
			b = append(b, ch)
			continue
		}
		b = append(b, ch-('a'-'A'))
	}
	return string(b)
}

// FromStatus decodes a gRPC status, reading reason and retryability from its ErrorInfo;
// a status without one gets its code as the reason.
func FromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), Retryable: retryableCode(st.Code()), Reason: codeReason(st.Code()), foreign: true}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.Domain != Domain {
			continue
		}
		e.foreign = false
		e.Reason = info.Reason
		for k, v := range info.Metadata {
			if k == "retryable" {
				e.Retryable = v == "true"
				continue
			}
			if e.Metadata == nil {
				e.Metadata = map[string]string{}
			}
			e.Metadata[k] = v
		}
	}
	return e
}

// Public returns e as it may be shown outside the system: an error no Redline service made
// (a transport failure, whose message can name internal addresses) keeps its code, reason
// and retryability but gets a generic message.
func (e *Error) Public() *Error {
	if !e.foreign {
		return e
	}
	c := *e
	c.Message = strings.ToLower(strings.ReplaceAll(e.Reason, "_", " "))
	c.foreign = false
	return &c
}

// HTTPStatus maps the code to an HTTP status.
func (e *Error) HTTPStatus() int { return HTTPStatus(e.Code) }

// HTTPStatus maps a gRPC code to an HTTP status, following google.rpc.Code.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.FailedPrecondition:
		return http.StatusPreconditionFailed
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// CodeFromHTTP maps an HTTP status back to a gRPC code.
func CodeFromHTTP(s int) codes.Code {
	switch s {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
		return codes.OK
	case 499:
		return codes.Canceled
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.AlreadyExists
	case http.StatusPreconditionFailed:
		return codes.FailedPrecondition
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	}
	if s >= 200 && s < 300 {
		return codes.OK
	}
	if s >= 400 && s < 500 {
		return codes.InvalidArgument
	}
	return codes.Internal
}

// Body is the JSON error body of the HTTP transport.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inner object of Body.
type BodyError struct {
	Code      string            `json:"code"`
	Reason    string            `json:"reason"`
	Message   string            `json:"message"`
	Retryable bool              `json:"retryable"`
	RequestID string            `json:"request_id,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// ToBody renders e for an HTTP response.
func (e *Error) ToBody(requestID string) Body {
	return Body{Error: BodyError{Code: e.Code.String(), Reason: e.Reason, Message: e.Message,
		Retryable: e.Retryable, RequestID: requestID, Metadata: e.Metadata}}
}

// FromBody decodes an HTTP error body with its status.
func FromBody(httpStatus int, b Body) *Error {
	code := CodeFromHTTP(httpStatus)
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == b.Error.Code {
			code = c
		}
	}
	return &Error{Code: code, Reason: b.Error.Reason, Message: b.Error.Message,
		Retryable: b.Error.Retryable, Metadata: b.Error.Metadata}
}
