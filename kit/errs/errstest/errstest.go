// Package errstest checks unified errors in tests.
package errstest

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

// Want checks that err is an *errs.Error with code and reason, and returns it. When field is
// set, the error must name it (metadata "field"); when msg is set, its message must contain
// msg. A wrong type, code or reason ends the test; a wrong field or message is reported.
func Want(t testing.TB, err error, code codes.Code, reason, field, msg string) *errs.Error {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v; want an *errs.Error", err)
	}
	if e.Code != code || e.Reason != reason {
		t.Fatalf("error = %v (%v %s); want %v %s", err, e.Code, e.Reason, code, reason)
	}
	if field != "" && e.Metadata["field"] != field {
		t.Errorf("error %q names field %q; want %q", e.Message, e.Metadata["field"], field)
	}
	if msg != "" && !strings.Contains(e.Message, msg) {
		t.Errorf("error message = %q; want it to contain %q", e.Message, msg)
	}
	return e
}
