package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Kinds of failed requests, the first column of the errors table.
const (
	KindStatus    = "status"    // an HTTP status the step does not expect
	KindTimeout   = "timeout"   // the request's deadline passed
	KindTransport = "transport" // no response: refused, reset, DNS, TLS
	KindExtract   = "extract"   // the response lacks a value a later step needs
	KindDropped   = "dropped"   // never sent: MaxInFlight iterations were running until the end
	KindOther     = "other"     // anything else, or past MaxErrorKeys distinct errors
)

// Error is a failed request, classified for the errors table. Doers return it for
// failures they detect themselves (an unexpected status, a missing value); Classify sorts
// every other error.
type Error struct {
	Kind   string
	Status int    // the HTTP status, for KindStatus
	Reason string // the server's error reason (Redline's error.reason), when it sent one
	Detail string // one example, for people
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Kind
	if e.Status != 0 {
		s += " " + strconv.Itoa(e.Status)
	}
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Classify turns any error from a request into an *Error.
func Classify(err error) *Error {
	var e *Error
	var ne net.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: KindTimeout, Detail: err.Error()}
	case errors.As(err, &ne):
		return &Error{Kind: KindTransport, Detail: err.Error()}
	}
	return &Error{Kind: KindOther, Detail: fmt.Sprint(err)}
}
