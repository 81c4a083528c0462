package degrade

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Switches is the set of dependencies forced into degraded mode, by target service or
// operation name. Dynamic configuration replaces it with Set whenever it changes; every
// call reads it without a lock. A nil *Switches forces nothing.
type Switches struct {
	clock clock.Clock
	mu    sync.Mutex // serializes Set
	on    atomic.Pointer[map[string]time.Time]
}

// NewSwitches returns Switches with none on. It reads the Clock option, which stamps when
// each switch went on.
func NewSwitches(opts ...Option) *Switches {
	o := newOptions(opts)
	s := &Switches{clock: o.clock}
	s.on.Store(&map[string]time.Time{})
	return s
}

// Set turns on exactly the named switches and turns the others off. A switch already on
// keeps the time it went on.
func (s *Switches) Set(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.on.Load()
	now := s.clock.Now()
	next := make(map[string]time.Time, len(names))
	for _, n := range names {
		if n == "" {
			continue
		}
		if since, ok := old[n]; ok {
			next[n] = since
		} else {
			next[n] = now
		}
	}
	s.on.Store(&next)
}

// Forced reports whether name is switched to degraded mode.
func (s *Switches) Forced(name string) bool {
	if s == nil {
		return false
	}
	_, ok := (*s.on.Load())[name]
	return ok
}

// forced returns the first of names that is switched on, or "".
func (s *Switches) forced(names ...string) string {
	if s == nil {
		return ""
	}
	on := *s.on.Load()
	if len(on) == 0 {
		return ""
	}
	for _, n := range names {
		if _, ok := on[n]; ok && n != "" {
			return n
		}
	}
	return ""
}

// SwitchState is one switch that is on.
type SwitchState struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// State returns the switches that are on, sorted by name, as a JSON-able []SwitchState.
func (s *Switches) State() any {
	out := []SwitchState{}
	if s == nil {
		return out
	}
	for n, since := range *s.on.Load() {
		out = append(out, SwitchState{Name: n, Since: since})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
