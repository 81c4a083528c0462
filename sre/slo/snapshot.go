package slo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// snapshotVersion is the version of Snapshot's format; Restore reads only this one.
const snapshotVersion = 1

// maxRingLen bounds the buckets of any ring: a 400-day period of 1-minute timeslices has
// 576,001.
const maxRingLen = 1 << 20

// snapshotJSON is Snapshot's format.
type snapshotJSON struct {
	Version int                 `json:"version"`
	At      time.Time           `json:"at"`
	SLOs    map[string]*sloJSON `json:"slos"`
}

// sloJSON is one SLO's state. Period, Calendar, Budgeting and TimesliceWindow give the
// period ring's meaning, Indicator the meaning of Last.
type sloJSON struct {
	Period          time.Duration `json:"period"`
	Calendar        string        `json:"calendar,omitempty"`
	Budgeting       Budgeting     `json:"budgeting"`
	TimesliceWindow time.Duration `json:"timeslice_window,omitempty"`
	Indicator       Indicator     `json:"indicator"`
	Last            Counts        `json:"last"`
	Primed          bool          `json:"primed"`
	// Levels are the alert-window rings, finest first; PeriodRing is the period's.
	Levels     []ringJSON `json:"levels"`
	PeriodRing ringJSON   `json:"period_ring"`
	// Conditions are the conditions that are true or firing.
	Conditions []condJSON `json:"conditions,omitempty"`
}

// ringJSON holds a ring's live buckets with traffic, in columns. Idx is ascending and
// delta-coded: the first bucket's index, then each one's gap from the one before.
type ringJSON struct {
	Res   time.Duration `json:"res"`
	Idx   []int64       `json:"idx"`
	Bad   []float64     `json:"bad"`
	Total []float64     `json:"total"`
}

type condJSON struct {
	Condition Condition `json:"condition"`
	Since     time.Time `json:"since,omitzero"`
	Firing    *Alert    `json:"firing,omitempty"`
}

// Snapshot encodes every SLO's state at the clock's now, for Restore in a later process:
// its rings (only the live buckets with traffic), its last counts and each condition that
// is true or firing. The format is JSON with "version": 1. Alert history (Events) is not
// kept.
func (e *Evaluator) Snapshot() ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.clock.Now()
	snap := snapshotJSON{Version: snapshotVersion, At: now, SLOs: make(map[string]*sloJSON, len(e.order))}
	for _, t := range e.order {
		s := &sloJSON{
			Period: t.slo.Period, Calendar: t.slo.Calendar, Budgeting: t.slo.Budgeting,
			TimesliceWindow: t.slo.TimesliceWindow, Indicator: t.slo.Indicator,
			Last: t.last, Primed: t.primed, PeriodRing: t.period.encode(now),
		}
		for _, r := range t.levels {
			s.Levels = append(s.Levels, r.encode(now))
		}
		conds := t.slo.Alerts()
		for i, cs := range t.conds {
			if !cs.since.IsZero() || cs.firing != nil {
				s.Conditions = append(s.Conditions, condJSON{Condition: conds[i], Since: cs.since, Firing: cs.firing})
			}
		}
		snap.SLOs[t.slo.Name] = s
	}
	return json.Marshal(snap)
}

// encode returns r's live buckets at now (the last len(r.idx)) that hold traffic.
func (r *ring) encode(now time.Time) ringJSON {
	out := ringJSON{Res: time.Duration(r.res), Idx: []int64{}, Bad: []float64{}, Total: []float64{}}
	to := r.slot(now)
	prev := int64(0)
	for i := to - int64(len(r.idx)) + 1; i <= to; i++ {
		j := int(modPos(i, int64(len(r.idx))))
		if r.idx[j] != i || r.total[j] <= 0 {
			continue
		}
		out.Idx = append(out.Idx, i-prev)
		out.Bad = append(out.Bad, r.bad[j])
		out.Total = append(out.Total, r.total[j])
		prev = i
	}
	return out
}

// Restore loads a Snapshot into an evaluator that has not recorded anything yet: call it
// after NewEvaluator and before the first Sample or Record; afterwards it returns an error.
// The evaluator may have a different SLO list than the one that took the snapshot.
// Entries apply by SLO name: an SLO the snapshot lacks starts fresh, and an entry for an
// SLO the evaluator lacks is ignored. Nothing is misread when an SLO changed: the period
// ring is dropped when the period, calendar, budgeting method or timeslice window changed,
// any ring whose bucket width differs is dropped, and a condition's state is kept only if
// the condition is unchanged. When the indicator changed (service, routes, transport, kind
// or latency threshold), the snapshot's events are of another indicator: every ring is
// dropped, and so are the last counts (the baseline of the next sample, which sets it again)
// and when each condition became true; a firing alert is kept, so that the next sample
// resolves it (or keeps it firing) and notifies as usual.
//
// After Restore, the first sample counts the events since the snapshot (its counts minus the
// snapshot's), or, if a count went down, reads a restart of the process as usual.
//
// Restore decodes and checks all of data before it changes anything: on bad or corrupt data
// it returns an error and the evaluator is unchanged.
func (e *Evaluator) Restore(data []byte) error {
	snap, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.order {
		if t.primed {
			return fmt.Errorf("slo: Restore after the first sample (SLO %q has a baseline)", t.slo.Name)
		}
	}
	type state struct {
		t      *tracked
		levels []*ring
		period *ring
		last   Counts
		primed bool
		conds  []condState
	}
	var staged []state
	for _, t := range e.order {
		s, ok := snap.SLOs[t.slo.Name]
		if !ok {
			continue
		}
		st := state{t: t, period: t.period.emptyCopy(), conds: make([]condState, len(t.conds))}
		same := sameIndicator(s.Indicator, t.slo.Indicator)
		for i, r := range t.levels {
			nr := r.emptyCopy()
			if same && i < len(s.Levels) {
				nr.load(s.Levels[i], snap.At)
			}
			st.levels = append(st.levels, nr)
		}
		if same && s.Period == t.slo.Period && s.Calendar == t.slo.Calendar && s.Budgeting == t.slo.Budgeting &&
			s.TimesliceWindow == t.slo.TimesliceWindow {
			st.period.load(s.PeriodRing, snap.At)
		}
		if same {
			st.last, st.primed = s.Last, s.Primed
		}
		for i, c := range t.slo.Alerts() {
			for _, sc := range s.Conditions {
				if sc.Condition != c {
					continue
				}
				if same {
					st.conds[i].since = sc.Since
				}
				if sc.Firing != nil {
					a := *sc.Firing
					a.SLO, a.Service, a.Condition = t.slo.Name, t.slo.Service, c
					st.conds[i].firing = &a
				}
			}
		}
		staged = append(staged, st)
	}
	for _, st := range staged {
		st.t.levels, st.t.period, st.t.last, st.t.primed, st.t.conds = st.levels, st.period, st.last, st.primed, st.conds
	}
	return nil
}

func sameIndicator(a, b Indicator) bool {
	return a.Kind == b.Kind && a.Transport == b.Transport && a.Service == b.Service &&
		slices.Equal(a.Routes, b.Routes) && a.Threshold == b.Threshold
}

// emptyCopy returns an empty ring of r's shape.
func (r *ring) emptyCopy() *ring {
	return newRing(time.Duration(r.res), time.Duration(r.res)*time.Duration(len(r.idx)-1))
}

// load fills an empty r with the buckets of rj, a ring of the same bucket width encoded at
// at, that r still holds; it loads nothing when the width differs.
func (r *ring) load(rj ringJSON, at time.Time) {
	if int64(rj.Res) != r.res {
		return
	}
	oldest := r.slot(at) - int64(len(r.idx)) + 1
	i := int64(0)
	for k, d := range rj.Idx {
		i += d
		if i < oldest {
			continue
		}
		j := int(modPos(i, int64(len(r.idx))))
		r.idx[j], r.bad[j], r.total[j] = i, rj.Bad[k], rj.Total[k]
	}
}

// decodeSnapshot parses data and checks every field Restore relies on.
func decodeSnapshot(data []byte) (*snapshotJSON, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var snap snapshotJSON
	if err := dec.Decode(&snap); err != nil {
		return nil, fmt.Errorf("slo: snapshot: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("slo: snapshot: data after the JSON object")
	}
	if snap.Version != snapshotVersion {
		return nil, fmt.Errorf("slo: snapshot: version: %d; want %d", snap.Version, snapshotVersion)
	}
	if snap.At.IsZero() {
		return nil, errors.New("slo: snapshot: at: missing")
	}
	var errs []error
	for name, s := range snap.SLOs {
		field := fmt.Sprintf("slos[%q]", name)
		if s == nil {
			errs = append(errs, fmt.Errorf("slo: snapshot: %s: null", field))
			continue
		}
		if err := checkCount(s.Last.Bad); err != nil {
			errs = append(errs, fmt.Errorf("slo: snapshot: %s.last.Bad: %w", field, err))
		}
		if err := checkCount(s.Last.Total); err != nil {
			errs = append(errs, fmt.Errorf("slo: snapshot: %s.last.Total: %w", field, err))
		}
		for i, r := range s.Levels {
			if err := r.check(snap.At); err != nil {
				errs = append(errs, fmt.Errorf("slo: snapshot: %s.levels[%d].%w", field, i, err))
			}
		}
		if err := s.PeriodRing.check(snap.At); err != nil {
			errs = append(errs, fmt.Errorf("slo: snapshot: %s.period_ring.%w", field, err))
		}
		for i, c := range s.Conditions {
			if c.Firing != nil && (c.Firing.State != Firing || c.Firing.FiredAt.IsZero()) {
				errs = append(errs, fmt.Errorf("slo: snapshot: %s.conditions[%d].firing: state %q, fired at %s; want a firing alert", field, i, c.Firing.State, c.Firing.FiredAt))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &snap, nil
}

func checkCount(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%v is not a count", v)
	}
	return nil
}

// check validates a ring encoded at at: columns of one length, indexes ascending and not
// after at, counts finite with 0 ≤ bad ≤ total and total > 0.
func (rj ringJSON) check(at time.Time) error {
	if rj.Res <= 0 {
		return fmt.Errorf("res: %d is not a bucket width", rj.Res)
	}
	if len(rj.Bad) != len(rj.Idx) || len(rj.Total) != len(rj.Idx) {
		return fmt.Errorf("idx, bad, total: lengths %d, %d, %d differ", len(rj.Idx), len(rj.Bad), len(rj.Total))
	}
	last := floorDiv(at.UnixNano(), int64(rj.Res))
	oldest := last - maxRingLen // bounds every index, so no sum below overflows
	i := int64(0)
	for k, d := range rj.Idx {
		switch {
		case k == 0 && (d <= oldest || d > last):
			return fmt.Errorf("idx[0]: bucket %d is not within %d buckets before the snapshot's %d", d, maxRingLen, last)
		case k > 0 && (d <= 0 || d > last-i):
			return fmt.Errorf("idx[%d]: gap %d is not in [1, %d]", k, d, last-i)
		}
		i += d
		if err := checkCount(rj.Total[k]); err != nil || rj.Total[k] == 0 {
			return fmt.Errorf("total[%d]: %v is not a positive count", k, rj.Total[k])
		}
		if err := checkCount(rj.Bad[k]); err != nil || rj.Bad[k] > rj.Total[k] {
			return fmt.Errorf("bad[%d]: %v is not a count within total %v", k, rj.Bad[k], rj.Total[k])
		}
	}
	return nil
}
