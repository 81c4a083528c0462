// Package oncall answers who is on call and escalates an open incident until someone
// acknowledges it.
//
// A Schedule stacks rotation Layers (users taking turns of a fixed length from a handoff
// time; a later layer covers an earlier one where it has someone) under Overrides (one
// user for a span; the last matching override wins). A Policy is an ordered list of
// escalation Levels — typically the primary schedule, the secondary schedule, then a
// manager — each with an ack timeout. A Directory holds both by name.
//
// An Escalator pages level 0 of an open incident's policy through a Notifier, then, if
// nobody has acknowledged when that level's timeout passes, level 1, then level 2. It keeps
// no state of its own: the EscalationStore (sre/incident's Store) persists the next level
// and when it is due per incident, so a restarted Escalator resumes where the last one
// stopped. It runs on an injectable clock: Tick does the work due now, Run calls Tick on a
// real ticker and whenever Wake says a new incident is due for its first page.
//
//	esc, err := oncall.NewEscalator(store, dir, oncall.NewWebhook(url, nil), oncall.WithClock(clk))
//	go esc.Run(ctx, 5*time.Second)
package oncall

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrInvalid is wrapped by every validation error of a Schedule, Policy or Directory.
var ErrInvalid = errors.New("oncall: invalid")

// ErrNobodyOnCall is returned when a level resolves to nobody at the time asked.
var ErrNobodyOnCall = errors.New("oncall: nobody on call")

// Layer is a rotation: Users take turns of Length each, Users[0] first, from Start (the
// handoff time). Before Start the layer has nobody.
type Layer struct {
	Name   string
	Users  []string
	Start  time.Time
	Length time.Duration
}

// At returns who the layer has on call at t.
func (l Layer) At(t time.Time) (string, bool) {
	if len(l.Users) == 0 || l.Length <= 0 || t.Before(l.Start) {
		return "", false
	}
	turn := int64(t.Sub(l.Start) / l.Length)
	return l.Users[turn%int64(len(l.Users))], true
}

// Override puts User on call from Start until End, above every layer.
type Override struct {
	User  string
	Start time.Time
	End   time.Time
}

// Schedule is a named stack of layers with overrides on top.
type Schedule struct {
	Name      string
	Layers    []Layer
	Overrides []Override
}

// Validate checks the schedule's name, that it has a layer, that every layer has users, a
// positive length and a start, and that every override has a user and ends after it starts.
func (s Schedule) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("%w: schedule without a name", ErrInvalid)
	}
	if len(s.Layers) == 0 {
		return fmt.Errorf("%w: schedule %s: no layers", ErrInvalid, s.Name)
	}
	for i, l := range s.Layers {
		switch {
		case len(l.Users) == 0:
			return fmt.Errorf("%w: schedule %s: layer %d: no users", ErrInvalid, s.Name, i)
		case slices.Contains(l.Users, ""):
			return fmt.Errorf("%w: schedule %s: layer %d: empty user name", ErrInvalid, s.Name, i)
		case l.Length <= 0:
			return fmt.Errorf("%w: schedule %s: layer %d: rotation length %s, want > 0", ErrInvalid, s.Name, i, l.Length)
		case l.Start.IsZero():
			return fmt.Errorf("%w: schedule %s: layer %d: no handoff start", ErrInvalid, s.Name, i)
		}
	}
	for i, o := range s.Overrides {
		if o.User == "" || !o.End.After(o.Start) {
			return fmt.Errorf("%w: schedule %s: override %d: want a user and an end after the start", ErrInvalid, s.Name, i)
		}
	}
	return nil
}

// OnCall returns who is on call at t: the last override covering t, else the last layer
// that has someone at t.
func (s Schedule) OnCall(t time.Time) (string, bool) {
	for i := len(s.Overrides) - 1; i >= 0; i-- {
		if o := s.Overrides[i]; !t.Before(o.Start) && t.Before(o.End) {
			return o.User, true
		}
	}
	for i := len(s.Layers) - 1; i >= 0; i-- {
		if u, ok := s.Layers[i].At(t); ok {
			return u, true
		}
	}
	return "", false
}

// Shift is a span during which one user (or nobody, "") is on call.
type Shift struct {
	User  string
	Start time.Time
	End   time.Time
}

// MaxShifts bounds what Shifts returns.
const MaxShifts = 1000

// Shifts returns who is on call over [from, to) as consecutive shifts, at most MaxShifts.
func (s Schedule) Shifts(from, to time.Time) []Shift {
	var edges []time.Time
	for _, l := range s.Layers {
		if l.Length <= 0 {
			continue
		}
		t := l.Start
		if t.Before(from) {
			t = t.Add(from.Sub(l.Start) / l.Length * l.Length)
		}
		for ; t.Before(to) && len(edges) < 4*MaxShifts; t = t.Add(l.Length) {
			edges = append(edges, t)
		}
	}
	for _, o := range s.Overrides {
		edges = append(edges, o.Start, o.End)
	}
	edges = append(edges, from)
	slices.SortFunc(edges, func(a, b time.Time) int { return a.Compare(b) })
	var out []Shift
	for i, e := range edges {
		if e.Before(from) || !e.Before(to) || (i > 0 && e.Equal(edges[i-1])) {
			continue
		}
		u, _ := s.OnCall(e)
		if n := len(out); n > 0 && out[n-1].User == u {
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].End = e
		}
		if len(out) == MaxShifts {
			break
		}
		out = append(out, Shift{User: u, Start: e, End: to})
	}
	return out
}

// Level is one step of an escalation: a schedule's on-call user, or a fixed User (a
// manager). Timeout is how long it has to acknowledge before the next level is paged.
type Level struct {
	Schedule string
	User     string
	Timeout  time.Duration
}

// Policy is an ordered escalation chain.
type Policy struct {
	Name   string
	Levels []Level
}

// DefaultAckTimeout is the ack timeout of a Level with none.
const DefaultAckTimeout = 5 * time.Minute

// Directory holds the schedules and policies an Escalator resolves, by name.
type Directory struct {
	Schedules map[string]Schedule
	Policies  map[string]Policy
}

// Validate checks every schedule and policy, and that each level names exactly one of a
// known schedule or a user.
func (d Directory) Validate() error {
	for name, s := range d.Schedules {
		if s.Name != name {
			return fmt.Errorf("%w: schedule filed as %q is named %q", ErrInvalid, name, s.Name)
		}
		if err := s.Validate(); err != nil {
			return err
		}
	}
	for name, p := range d.Policies {
		if p.Name != name {
			return fmt.Errorf("%w: policy filed as %q is named %q", ErrInvalid, name, p.Name)
		}
		if len(p.Levels) == 0 {
			return fmt.Errorf("%w: policy %s: no levels", ErrInvalid, name)
		}
		for i, l := range p.Levels {
			_, known := d.Schedules[l.Schedule]
			switch {
			case (l.Schedule == "") == (l.User == ""):
				return fmt.Errorf("%w: policy %s: level %d: want exactly one of schedule or user", ErrInvalid, name, i)
			case l.Schedule != "" && !known:
				return fmt.Errorf("%w: policy %s: level %d: unknown schedule %q", ErrInvalid, name, i, l.Schedule)
			case l.Timeout < 0:
				return fmt.Errorf("%w: policy %s: level %d: negative timeout", ErrInvalid, name, i)
			}
		}
	}
	return nil
}

// Target returns who level of policy pages at t, and that level's ack timeout.
func (d Directory) Target(policy string, level int, t time.Time) (string, time.Duration, error) {
	p, ok := d.Policies[policy]
	if !ok {
		return "", 0, fmt.Errorf("%w: unknown policy %q", ErrInvalid, policy)
	}
	if level < 0 || level >= len(p.Levels) {
		return "", 0, fmt.Errorf("%w: policy %s has no level %d", ErrInvalid, policy, level)
	}
	l := p.Levels[level]
	timeout := cmp.Or(l.Timeout, DefaultAckTimeout)
	if l.User != "" {
		return l.User, timeout, nil
	}
	u, ok := d.Schedules[l.Schedule].OnCall(t)
	if !ok {
		return "", timeout, fmt.Errorf("%w: schedule %s at %s", ErrNobodyOnCall, l.Schedule, t.Format(time.RFC3339))
	}
	return u, timeout, nil
}
