package conf

import (
	"errors"
	"strconv"
)

// Sentinel errors carried inside *Error (match them with errors.Is).
var (
	// ErrUnknownKey means a source set a key that dst has no field for.
	ErrUnknownKey = errors.New("unknown key")
	// ErrBadValue means a value could not be converted to its field's type.
	ErrBadValue = errors.New("bad value")
	// ErrInvalid means a Validate method rejected the decoded config.
	ErrInvalid = errors.New("invalid config")
	// ErrBadTarget means dst (or the value returned by a Watch factory) is not
	// a non-nil pointer to a struct of the expected type: a programming error.
	ErrBadTarget = errors.New("config target must be a non-nil pointer to a struct")
	// ErrClosed is returned by Watch after Close.
	ErrClosed = errors.New("config closed")
)

// Error is the error Load and reloads report for anything wrong in a source
// or in the decoded values. It names where the value came from, the key and
// the problem.
type Error struct {
	// Source is where the offending value came from: a file path, a source
	// name such as "etcd:/redline/conf", "env REDLINE_HTTP__TIMEOUT",
	// "flag --http.timeout", or "defaults".
	Source string
	// Key is the dotted config key, e.g. "http.timeout"; empty when the
	// problem concerns a whole source (unreadable file, invalid YAML).
	Key string
	// Problem says what is wrong, e.g. `cannot parse "fast" as duration`.
	Problem string
	// Err is the cause: one of the sentinels above, an error returned by
	// Validate, or an I/O error.
	Err error
}

// Error formats as `config: SOURCE: key "KEY": PROBLEM`.
func (e *Error) Error() string {
	s := "config: " + e.Source + ": "
	if e.Key != "" {
		s += "key " + strconv.Quote(e.Key) + ": "
	}
	return s + e.Problem
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
