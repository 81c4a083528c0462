package faults

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	randv2 "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
)

// Sources of a fault.
const (
	SourceAPI    = "api"
	SourceConfig = "config"
)

// Types of Event.
const (
	EventAdded   = "added"
	EventRemoved = "removed"
	EventExpired = "expired"
	EventCleared = "cleared"
)

// MaxEvents is how many events a registry keeps: the last ones.
const MaxEvents = 1000

// Fault is an active fault: its spec (with the id and defaults filled in) and what the
// registry knows of it.
type Fault struct {
	Spec
	// AddedAt is when the fault became active.
	AddedAt time.Time `json:"added_at"`
	// ExpiresAt is when it stops matching and is removed.
	ExpiresAt time.Time `json:"expires_at"`
	// Source is api or config.
	Source string `json:"source"`
	// Injected counts the calls it hit.
	Injected int64 `json:"injected"`
}

// Event is a change of the active faults, for drill reports that mark faults on a time
// axis.
type Event struct {
	// Time is when it happened; for an expiry, the fault's ExpiresAt.
	Time time.Time `json:"time"`
	// Type is added, removed, expired or cleared.
	Type   string `json:"type"`
	ID     string `json:"id"`
	Source string `json:"source"`
	// Description is the fault on one line: action, scope, share and reason.
	Description string `json:"description"`
}

// Option configures a Registry.
type Option func(*options)

type options struct {
	clock  clock.Clock
	rand   func() float64
	sleep  func(ctx context.Context, d time.Duration) error
	maxTTL time.Duration
	logger *slog.Logger
}

// WithClock sets the clock that expiry is judged by. Default: clock.Real{}.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithRand sets the source of the percent and jitter draws: a function returning numbers
// in [0, 1). Calls to it are serialized, so a seeded *rand.Rand's Float64 is fine.
// Default: math/rand/v2's Float64.
func WithRand(fn func() float64) Option {
	return func(o *options) {
		var mu sync.Mutex
		o.rand = func() float64 {
			mu.Lock()
			defer mu.Unlock()
			return fn()
		}
	}
}

// WithSleep sets how a delay or timeout fault waits: fn must return early with ctx's
// error when ctx ends. Default: clock.Sleep, a real timer.
func WithSleep(fn func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) { o.sleep = fn }
}

// WithMaxTTL sets the longest a fault may live (ttl, or until from now). Default:
// DefaultMaxTTL (1h). A fault without ttl or until lives DefaultTTL or MaxTTL, the shorter.
func WithMaxTTL(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxTTL = d
		}
	}
}

// WithLogger sets the logger of added, removed, expired and cleared faults. Default:
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Registry holds the active faults and decides, per call, which one applies. It
// implements fault.Injector; install it with fault.Install. It is safe for concurrent use;
// make one with New.
type Registry struct {
	o options

	mu     sync.Mutex
	api    []*rule // in the order added
	cfg    []*rule // in config order
	seen   map[string]*seenSpec
	events []Event

	// active is api then cfg, read without a lock by Inject; replaced on every change.
	active atomic.Pointer[[]*rule]
}

// seenSpec is a spec of the current config: when it first appeared, and whether its fault
// is gone (expired, removed or cleared) so that a reload does not bring it back.
type seenSpec struct {
	first time.Time
	gone  bool
}

var _ fault.Injector = (*Registry)(nil)

// New returns an empty Registry.
func New(opts ...Option) *Registry {
	o := options{clock: clock.Real{}, rand: randv2.Float64, sleep: clock.Sleep, maxTTL: DefaultMaxTTL, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Registry{o: o, seen: map[string]*seenSpec{}}
	r.active.Store(&[]*rule{})
	track(r)
	return r
}

// Add makes spec an active fault (source api). A spec without an id gets a random one.
// Errors: InvalidArgument (BAD_FAULT) naming the field, AlreadyExists for an id in use,
// ResourceExhausted beyond MaxFaults.
func (r *Registry) Add(spec Spec) (Fault, error) {
	ru, fe := compile(spec)
	if fe != nil {
		return Fault{}, fe.err("")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.clock.Now()
	r.pruneLocked(now)
	if fe := r.expire(ru, now, now, true); fe != nil {
		return Fault{}, fe.err("")
	}
	id := spec.ID
	if id == "" {
		id = r.newIDLocked()
	} else if r.findLocked(id) != nil {
		return Fault{}, errs.AlreadyExists(ReasonFaultExists, "fault %q already exists", id).WithMetadata("field", "id")
	}
	if len(r.api)+len(r.cfg) >= MaxFaults {
		return Fault{}, errs.Newf(codes.ResourceExhausted, ReasonTooManyFaults, "%d faults are active, the most there may be", MaxFaults)
	}
	ru.activate(id, SourceAPI, "", now)
	r.api = append(r.api, ru)
	r.publishLocked()
	r.eventLocked(now, EventAdded, ru)
	return ru.fault(), nil
}

// Remove ends the fault id. A config fault removed this way stays removed until its spec
// changes in the config. Errors: NotFound.
func (r *Registry) Remove(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.clock.Now()
	r.pruneLocked(now)
	ru := r.findLocked(id)
	if ru == nil {
		return errs.NotFound(ReasonFaultNotFound, "no active fault %q", id)
	}
	r.dropLocked(func(x *rule) bool { return x == ru })
	r.publishLocked()
	r.eventLocked(now, EventRemoved, ru)
	return nil
}

// Clear ends every fault, from the API and the config alike, and returns how many there
// were. Config faults stay cleared until their specs change in the config.
func (r *Registry) Clear() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.clock.Now()
	r.pruneLocked(now)
	all := r.snapshotLocked()
	r.dropLocked(func(*rule) bool { return true })
	r.publishLocked()
	for _, ru := range all {
		r.eventLocked(now, EventCleared, ru)
	}
	return len(all)
}

// List returns the active faults in the order they are tried: API faults in the order
// added, then config faults in config order.
func (r *Registry) List() []Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(r.o.clock.Now())
	out := make([]Fault, 0, len(r.api)+len(r.cfg))
	for _, ru := range r.snapshotLocked() {
		out = append(out, ru.fault())
	}
	return out
}

// Events returns the last MaxEvents changes, oldest first.
func (r *Registry) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(r.o.clock.Now())
	out := make([]Event, len(r.events))
	copy(out, r.events)
	// An expiry is recorded when it is noticed but dated when it happened.
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out
}

// SetConfig replaces the faults of the config (key chaos.faults) with specs. Every spec is
// checked first; on any error nothing changes. A spec keeps its fault across reloads as
// long as its content is unchanged: its ttl counts from its first appearance, so a reload
// does not extend it, and a fault that expired, was removed or was cleared does not come
// back. A changed spec is a new fault. A config spec without an id gets one derived from
// its content.
func (r *Registry) SetConfig(specs []Spec) error {
	type item struct {
		ru  *rule
		key string
		id  string
	}
	items := make([]item, len(specs))
	for i, s := range specs {
		ru, fe := compile(s)
		if fe != nil {
			return fe.err(configAt(i))
		}
		b, err := json.Marshal(s)
		if err != nil { // a Spec holds only strings and a validated float
			return errs.Internal(err)
		}
		key := string(b)
		id := s.ID
		if id == "" {
			sum := sha256.Sum256(b)
			id = "cfg-" + hex.EncodeToString(sum[:6])
		}
		items[i] = item{ru: ru, key: key, id: id}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.clock.Now()
	r.pruneLocked(now)
	if len(r.api)+len(items) > MaxFaults {
		return errs.InvalidArgument(ReasonBadFault, "fault: chaos.faults: %d faults; at most %d may be active, %d of them from the API",
			len(items), MaxFaults, len(r.api)).WithMetadata("field", "chaos.faults")
	}
	ids := make(map[string]int, len(items))
	for i, it := range items {
		if j, dup := ids[it.id]; dup {
			if specs[i].ID == "" {
				return bad("id", "the same fault as %s", configAt(j)).err(configAt(i))
			}
			return bad("id", "%q is also the id of %s", it.id, configAt(j)).err(configAt(i))
		}
		ids[it.id] = i
		for _, ru := range r.api {
			if ru.id == it.id {
				return bad("id", "%q is taken by a fault added through the API", it.id).err(configAt(i))
			}
		}
		start := now
		if s, ok := r.seen[it.key]; ok {
			start = s.first
		}
		if fe := r.expire(it.ru, start, now, false); fe != nil {
			return fe.err(configAt(i))
		}
	}

	old := make(map[string]*rule, len(r.cfg))
	for _, ru := range r.cfg {
		old[ru.key] = ru
	}
	seen := make(map[string]*seenSpec, len(items))
	var next []*rule
	var added []*rule
	for _, it := range items {
		if ru, ok := old[it.key]; ok {
			next = append(next, ru)
			seen[it.key] = r.seen[it.key]
			delete(old, it.key)
			continue
		}
		if s, ok := r.seen[it.key]; ok { // gone, and stays gone while the spec stays
			seen[it.key] = s
			continue
		}
		s := &seenSpec{first: now}
		seen[it.key] = s
		if !now.Before(it.ru.expires) { // until has passed
			s.gone = true
			continue
		}
		it.ru.activate(it.id, SourceConfig, it.key, now)
		next = append(next, it.ru)
		added = append(added, it.ru)
	}
	var left []*rule
	for _, ru := range r.cfg {
		if old[ru.key] == ru {
			left = append(left, ru)
		}
	}
	r.cfg, r.seen = next, seen
	r.publishLocked()
	for _, ru := range left {
		r.eventLocked(now, EventRemoved, ru)
	}
	for _, ru := range added {
		r.eventLocked(now, EventAdded, ru)
	}
	return nil
}

func configAt(i int) string { return "chaos.faults[" + strconv.Itoa(i) + "]" }

// Inject implements fault.Injector: the first active fault that matches p and ctx's lane,
// and wins its percent draw, acts on the call.
func (r *Registry) Inject(ctx context.Context, p fault.Point) error {
	var now time.Time
	expired := false
	for _, ru := range *r.active.Load() {
		if !ru.matches(p) {
			continue
		}
		if now.IsZero() {
			now = r.o.clock.Now()
		}
		if !now.Before(ru.expires) {
			expired = true
			continue
		}
		if ru.laneMode != laneAny && !ru.matchesLane(meta.Lane(ctx)) {
			continue
		}
		if ru.percent < 100 && r.o.rand()*100 >= ru.percent {
			continue
		}
		if expired {
			r.prune()
		}
		return r.act(ctx, ru, p)
	}
	if expired {
		r.prune()
	}
	return nil
}

func (ru *rule) matches(p fault.Point) bool {
	if ru.service != "" && ru.service != p.Service ||
		ru.instance != "" && ru.instance != p.Instance ||
		ru.kind != "" && ru.kind != p.Kind ||
		ru.side != "" && ru.side != p.Side ||
		ru.target != "" && ru.target != p.Target {
		return false
	}
	if ru.opPrefix {
		return strings.HasPrefix(p.Op, ru.op)
	}
	return ru.op == "" || ru.op == p.Op
}

func (ru *rule) matchesLane(lane string) bool {
	if ru.laneMode == laneBaseline {
		return lane == ""
	}
	return lane == ru.lane
}

func (r *Registry) act(ctx context.Context, ru *rule, p fault.Point) error {
	ru.injected.Add(1)
	injections.WithLabelValues(p.Service, p.Kind, ru.typ).Inc()
	switch ru.typ {
	case TypeDelay:
		d := ru.delay
		if ru.jitter > 0 {
			d += min(time.Duration(r.o.rand()*float64(ru.jitter+1)), ru.jitter)
		}
		return r.o.sleep(ctx, d)
	case TypeError:
		return ru.newError(ru.code)
	case TypeAbort:
		return ru.newError(codes.Unavailable).WithCause(fault.ErrAbort)
	case TypeTimeout:
		wait := ru.maxWait
		if dl, ok := ctx.Deadline(); ok {
			wait = time.Until(dl)
		}
		_ = r.o.sleep(ctx, wait) // how the wait ended is read from ctx
		if errors.Is(ctx.Err(), context.Canceled) {
			return errs.Internal(ctx.Err())
		}
		return ru.newError(codes.DeadlineExceeded).WithCause(context.DeadlineExceeded)
	case TypeDrop:
		return fault.ErrDrop
	}
	return nil
}

func (ru *rule) newError(c codes.Code) *errs.Error {
	e := errs.New(c, ReasonFaultInjected, ru.errMsg)
	e.Metadata = map[string]string{MetadataFault: ru.id}
	return e
}

// expire sets ru.expires for a fault whose life starts at start, bounded by MaxTTL. An API
// fault's until must lie ahead; a config fault's may have passed (it is then never active).
func (r *Registry) expire(ru *rule, start, now time.Time, api bool) *fieldError {
	switch {
	case ru.ttl > 0:
		if ru.ttl > r.o.maxTTL {
			return bad("ttl", "%v is over the limit of %v", ru.ttl, r.o.maxTTL)
		}
		ru.expires = start.Add(ru.ttl)
	case !ru.until.IsZero():
		if ru.until.After(now.Add(r.o.maxTTL)) {
			return bad("until", "%s is more than %v ahead", ru.spec.Until, r.o.maxTTL)
		}
		if api && !ru.until.After(now) {
			return bad("until", "%s has passed", ru.spec.Until)
		}
		ru.expires = ru.until
	default:
		ru.expires = start.Add(min(DefaultTTL, r.o.maxTTL))
	}
	return nil
}

// activate makes ru a fault with id, from source.
func (ru *rule) activate(id, source, key string, now time.Time) {
	ru.id, ru.spec.ID, ru.source, ru.key, ru.added = id, id, source, key, now
	switch ru.typ {
	case TypeError:
		if ru.spec.Message != "" {
			ru.errMsg = ru.spec.Message + " (fault " + id + ")"
		} else {
			ru.errMsg = "injected " + ru.code.String() + " (fault " + id + ")"
		}
	case TypeAbort:
		ru.errMsg = "connection aborted (fault " + id + ")"
	case TypeTimeout:
		ru.errMsg = "timed out (fault " + id + ")"
	}
	ru.desc = ru.describe()
}

func (ru *rule) fault() Fault {
	return Fault{Spec: ru.spec, AddedAt: ru.added, ExpiresAt: ru.expires, Source: ru.source, Injected: ru.injected.Load()}
}

// describe renders the fault on one line.
func (ru *rule) describe() string {
	var b strings.Builder
	switch ru.typ {
	case TypeDelay:
		fmt.Fprintf(&b, "delay %v", ru.delay)
		if ru.jitter > 0 {
			fmt.Fprintf(&b, " (+ up to %v jitter)", ru.jitter)
		}
	case TypeError:
		fmt.Fprintf(&b, "error %v", ru.code)
	case TypeTimeout:
		fmt.Fprintf(&b, "timeout (max wait %v)", ru.maxWait)
	default:
		b.WriteString(ru.typ)
	}
	b.WriteString(" on")
	n := b.Len()
	for _, kv := range [][2]string{{"service", ru.service}, {"instance", ru.instance}, {"kind", ru.kind}, {"side", ru.side},
		{"target", ru.target}, {"op", ru.spec.Op}, {"lane", ru.spec.Lane}} {
		if kv[1] == "" {
			continue
		}
		if kv[0] == "op" {
			fmt.Fprintf(&b, " op=%q", kv[1])
			continue
		}
		fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
	}
	if b.Len() == n {
		b.WriteString(" every call")
	}
	if ru.percent < 100 {
		fmt.Fprintf(&b, " at %s%%", strconv.FormatFloat(ru.percent, 'g', -1, 64))
	}
	if ru.spec.Reason != "" {
		fmt.Fprintf(&b, " (reason: %s)", ru.spec.Reason)
	}
	return b.String()
}

func (r *Registry) prune() {
	r.mu.Lock()
	r.pruneLocked(r.o.clock.Now())
	r.mu.Unlock()
}

// pruneLocked removes the faults that expired by now.
func (r *Registry) pruneLocked(now time.Time) {
	var gone []*rule
	for _, ru := range r.snapshotLocked() {
		if !now.Before(ru.expires) {
			gone = append(gone, ru)
		}
	}
	if len(gone) == 0 {
		return
	}
	r.dropLocked(func(ru *rule) bool { return !now.Before(ru.expires) })
	r.publishLocked()
	for _, ru := range gone {
		r.eventLocked(ru.expires, EventExpired, ru)
	}
}

// dropLocked removes the faults for which del is true; config ones are marked gone.
func (r *Registry) dropLocked(del func(*rule) bool) {
	r.api = slices.DeleteFunc(r.api, del)
	r.cfg = slices.DeleteFunc(r.cfg, func(ru *rule) bool {
		if !del(ru) {
			return false
		}
		if s := r.seen[ru.key]; s != nil {
			s.gone = true
		}
		return true
	})
}

func (r *Registry) findLocked(id string) *rule {
	for _, ru := range r.snapshotLocked() {
		if ru.id == id {
			return ru
		}
	}
	return nil
}

// snapshotLocked returns the faults in match order, in a new slice.
func (r *Registry) snapshotLocked() []*rule {
	all := make([]*rule, 0, len(r.api)+len(r.cfg))
	return append(append(all, r.api...), r.cfg...)
}

func (r *Registry) publishLocked() {
	all := r.snapshotLocked()
	r.active.Store(&all)
}

func (r *Registry) eventLocked(t time.Time, typ string, ru *rule) {
	if len(r.events) >= MaxEvents {
		r.events = slices.Delete(r.events, 0, len(r.events)-MaxEvents+1)
	}
	r.events = append(r.events, Event{Time: t, Type: typ, ID: ru.id, Source: ru.source, Description: ru.desc})
	r.o.logger.Info("chaos fault "+typ, "id", ru.id, "source", ru.source, "fault", ru.desc, "expires_at", ru.expires)
}

// activeCount is the number of active faults, for the gauge.
func (r *Registry) activeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(r.o.clock.Now())
	return len(r.api) + len(r.cfg)
}

// newIDLocked returns a random id (NewID) that no active fault has.
func (r *Registry) newIDLocked() string {
	for {
		if id := NewID(); r.findLocked(id) == nil {
			return id
		}
	}
}

// NewID returns a random fault id of 8 hex digits, the kind Add gives a spec without one.
// A caller that adds one spec to several registries (the supervisor of `up --procs`, one
// registry per process) sets it first, so that every process knows the fault by one id.
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
