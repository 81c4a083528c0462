// Package faulttest provides a recording fault.Injector for the tests of the packages that
// ask the fault hook (transports, middleware, data clients).
package faulttest

import (
	"context"
	"sync"
	"testing"

	"github.com/redline-dev/redline/kit/fault"
)

// Recorder is a fault.Injector for tests: it records every Point it is asked about and
// returns Err for the Points Match selects (by default those whose Op is Op). The zero
// Recorder records and fails nothing. It is safe for concurrent use.
type Recorder struct {
	// Op selects the Points to fail when Match is nil.
	Op string
	// Err is what a selected Point gets; nil lets every call through.
	Err error
	// Match, if set, selects the Points to fail instead of Op. n counts the Points asked
	// before p, for tests whose Points all look alike (fail the second publish).
	Match func(n int, p fault.Point) bool

	mu     sync.Mutex
	points []fault.Point
}

var _ fault.Injector = (*Recorder)(nil)

// Inject records p and returns Err if p is selected, nil otherwise.
func (r *Recorder) Inject(_ context.Context, p fault.Point) error {
	r.mu.Lock()
	n := len(r.points)
	r.points = append(r.points, p)
	r.mu.Unlock()
	match := p.Op == r.Op
	if r.Match != nil {
		match = r.Match(n, p)
	}
	if match {
		return r.Err
	}
	return nil
}

// Seen returns a copy of the Points asked so far, in order.
func (r *Recorder) Seen() []fault.Point {
	return r.SeenWhere(func(fault.Point) bool { return true })
}

// SeenWhere returns the Points asked so far that keep selects, in order: those of one
// side, or of the test's own service when other tests' clients share the hook.
func (r *Recorder) SeenWhere(keep func(fault.Point) bool) []fault.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []fault.Point
	for _, p := range r.points {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// Install makes i the process's injector (nil removes it) until t and its cleanups end,
// then puts the previous one back.
func Install(t testing.TB, i fault.Injector) {
	t.Helper()
	t.Cleanup(fault.Install(i))
}
