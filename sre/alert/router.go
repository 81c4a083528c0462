package alert

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Alertmanager's timing defaults, used for a Route's zero durations.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// Route sends the alerts its Matchers select to Receiver, grouped by the GroupBy labels.
type Route struct {
	Receiver string
	Matchers Matchers
	// GroupBy names the labels whose values make a group; empty puts every alert of the
	// route in one group.
	GroupBy []string
	// GroupWait is how long a new group waits for more alerts before its first
	// notification. Default DefaultGroupWait.
	GroupWait time.Duration
	// GroupInterval is how long a group waits after a notification before notifying again
	// about changes (new, resolved). Default DefaultGroupInterval.
	GroupInterval time.Duration
	// RepeatInterval is how long a group with nothing new waits before repeating a
	// notification of alerts still firing. Default DefaultRepeatInterval.
	RepeatInterval time.Duration
	// Continue lets the alert also be matched against the routes after this one.
	Continue bool
}

// InhibitRule mutes every alert matching Target while an alert matching Source fires and
// both have the same values (absent counts as a value) for every label in Equal.
type InhibitRule struct {
	Source Matchers
	Target Matchers
	Equal  []string
}

// DefaultInhibitRules returns the rule that a firing page silences the ticket for the same
// SLO of the same service.
func DefaultInhibitRules() []InhibitRule {
	return []InhibitRule{{
		Source: MustMatchers(`severity="page"`),
		Target: MustMatchers(`severity="ticket"`),
		Equal:  []string{"slo", "service"},
	}}
}

// Silence mutes the alerts its Matchers select from StartsAt until EndsAt.
type Silence struct {
	ID        string
	Matchers  Matchers
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
}

// ActiveAt reports whether s mutes alerts at t.
func (s Silence) ActiveAt(t time.Time) bool { return !t.Before(s.StartsAt) && t.Before(s.EndsAt) }

// ErrBadSilence is returned by AddSilence for a silence without matchers or whose end is
// not after its start.
var ErrBadSilence = errors.New("alert: bad silence")

// Config is a Router's routing tree (one level deep), with its inhibition rules.
type Config struct {
	// Routes are tried in order; the first match takes the alert unless it has Continue.
	Routes []Route
	// Default takes the alerts no route took. Its Matchers are ignored.
	Default Route
	Inhibit []InhibitRule
}

// Notification is what a receiver gets: the unmuted alerts of one group.
type Notification struct {
	Receiver    string
	GroupKey    string
	GroupLabels map[string]string
	// Status is firing when any alert fires.
	Status Status
	Alerts []Alert
}

// Deliver sends a notification to its receiver.
type Deliver func(ctx context.Context, n Notification) error

// Option configures a Router.
type Option func(*options)

type options struct {
	clock  clock.Clock
	logger *slog.Logger
}

// WithClock sets the time source. Default clock.Real.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where Run reports failed deliveries. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Router groups, deduplicates, mutes and routes alerts. It is safe for concurrent use.
type Router struct {
	cfg     Config
	deliver Deliver
	o       options

	mu       sync.Mutex
	alerts   map[string]Alert // by fingerprint; every alert not yet resolved and sent
	groups   map[string]*group
	silences map[string]Silence
}

type group struct {
	route     *Route
	key       string
	labels    map[string]string
	alerts    map[string]Alert
	sent      map[string]Status // what the receiver was last told, by fingerprint
	nextFlush time.Time
	lastSent  time.Time
}

// NewRouter returns a Router delivering through deliver. Every route needs a receiver.
func NewRouter(cfg Config, deliver Deliver, opts ...Option) (*Router, error) {
	o := options{clock: clock.Real{}, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if deliver == nil {
		return nil, errors.New("alert: NewRouter: nil deliver")
	}
	cfg.Routes = slices.Clone(cfg.Routes)
	all := []*Route{&cfg.Default}
	for i := range cfg.Routes {
		all = append(all, &cfg.Routes[i])
	}
	for i, rt := range all {
		if rt.Receiver == "" {
			if i == 0 {
				return nil, errors.New("alert: NewRouter: Default route has no receiver")
			}
			return nil, fmt.Errorf("alert: NewRouter: route %d has no receiver", i-1)
		}
		rt.GroupWait = cmp.Or(rt.GroupWait, DefaultGroupWait)
		rt.GroupInterval = cmp.Or(rt.GroupInterval, DefaultGroupInterval)
		rt.RepeatInterval = cmp.Or(rt.RepeatInterval, DefaultRepeatInterval)
	}
	return &Router{
		cfg: cfg, deliver: deliver, o: o,
		alerts: map[string]Alert{}, groups: map[string]*group{}, silences: map[string]Silence{},
	}, nil
}

// Receive takes alerts in. An alert already known (same fingerprint) is updated in place,
// not duplicated; its group notifies again only if its status changed.
func (r *Router) Receive(ctx context.Context, alerts ...Alert) {
	now := r.o.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range alerts {
		if len(a.Labels) == 0 {
			continue
		}
		a = a.clone()
		a.Fingerprint = Fingerprint(a.Labels)
		if a.Status == "" {
			a.Status = Firing
		}
		r.alerts[a.Fingerprint] = a
		for _, rt := range r.routesFor(a.Labels) {
			key, labels := groupKey(rt, a.Labels)
			g := r.groups[key]
			if g == nil {
				g = &group{route: rt, key: key, labels: labels, alerts: map[string]Alert{}, sent: map[string]Status{}, nextFlush: now.Add(rt.GroupWait)}
				r.groups[key] = g
			}
			g.alerts[a.Fingerprint] = a
		}
	}
}

func (r *Router) routesFor(labels map[string]string) []*Route {
	var out []*Route
	for i := range r.cfg.Routes {
		rt := &r.cfg.Routes[i]
		if rt.Matchers.Matches(labels) {
			out = append(out, rt)
			if !rt.Continue {
				return out
			}
		}
	}
	if len(out) == 0 {
		out = append(out, &r.cfg.Default)
	}
	return out
}

func groupKey(rt *Route, labels map[string]string) (string, map[string]string) {
	gl := map[string]string{}
	var b strings.Builder
	b.WriteString(rt.Receiver)
	b.WriteString(":{")
	for i, name := range slices.Sorted(slices.Values(rt.GroupBy)) {
		if i > 0 {
			b.WriteByte(',')
		}
		gl[name] = labels[name]
		b.WriteString(name + "=" + strconv.Quote(labels[name]))
	}
	b.WriteByte('}')
	return b.String(), gl
}

// Tick delivers every group that is due at the clock's now and has something new (or is
// due a repeat), and forgets resolved alerts once their resolution was delivered. It
// returns the deliveries' errors joined; a group whose delivery failed is sent again, in
// full and with its resolved alerts, at its next flush.
func (r *Router) Tick(ctx context.Context) error {
	now := r.o.clock.Now()
	var due []Notification
	var flushed []*group
	r.mu.Lock()
	for id, s := range r.silences {
		if !now.Before(s.EndsAt) {
			delete(r.silences, id)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(r.groups)) {
		g := r.groups[key]
		if now.Before(g.nextFlush) {
			continue
		}
		if n, ok := r.flush(g, now); ok {
			due = append(due, n)
			flushed = append(flushed, g)
		}
		if len(g.alerts) == 0 {
			delete(r.groups, key)
		}
	}
	for fp, a := range r.alerts {
		if a.ResolvedAt(now) {
			delete(r.alerts, fp)
		}
	}
	r.mu.Unlock()

	var errList []error
	for i, n := range due {
		if err := r.deliver(ctx, n); err != nil {
			errList = append(errList, fmt.Errorf("alert: deliver %s to %s: %w", n.GroupKey, n.Receiver, err))
			r.undo(flushed[i], n)
		}
	}
	return errors.Join(errList...)
}

// undo makes a group whose notification n was not delivered send it again at its next
// flush: firing alerts as new, resolved ones as still to be told.
func (r *Router) undo(g *group, n Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.groups[g.key]; cur != nil {
		g = cur
	} else {
		r.groups[g.key] = g
	}
	clear(g.sent)
	for _, a := range n.Alerts {
		if a.Status != Resolved {
			continue
		}
		if _, newer := g.alerts[a.Fingerprint]; !newer {
			g.alerts[a.Fingerprint] = a
			g.sent[a.Fingerprint] = Firing
		}
	}
}

// flush builds g's notification at now, if one is due, and updates g; r.mu is held.
func (r *Router) flush(g *group, now time.Time) (Notification, bool) {
	g.nextFlush = now.Add(g.route.GroupInterval)
	var visible []Alert
	changed, firing := false, false
	for _, fp := range slices.Sorted(maps.Keys(g.alerts)) {
		a := g.alerts[fp]
		st := Firing
		if a.ResolvedAt(now) {
			st = Resolved
			delete(g.alerts, fp)
			if g.sent[fp] != Firing {
				delete(g.sent, fp)
				continue // nobody was told it fired
			}
		} else if r.mutedLocked(a, now) {
			continue
		}
		a.Status = st
		visible = append(visible, a)
		if g.sent[fp] != st {
			changed = true
		}
		firing = firing || st == Firing
	}
	repeat := firing && !now.Before(g.lastSent.Add(g.route.RepeatInterval))
	if len(visible) == 0 || !(changed || repeat) {
		return Notification{}, false
	}
	clear(g.sent)
	for _, a := range visible {
		if a.Status == Firing {
			g.sent[a.Fingerprint] = Firing
		}
	}
	g.lastSent = now
	st := Resolved
	if firing {
		st = Firing
	}
	return Notification{Receiver: g.route.Receiver, GroupKey: g.key, GroupLabels: maps.Clone(g.labels), Status: st, Alerts: visible}, true
}

// Muted reports why a would not be delivered at the clock's now: "silenced by ID",
// "inhibited", or "" when it would be.
func (r *Router) Muted(a Alert) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.clock.Now()
	if id := r.silencedLocked(a, now); id != "" {
		return "silenced by " + id
	}
	if r.inhibitedLocked(a, now) {
		return "inhibited"
	}
	return ""
}

func (r *Router) mutedLocked(a Alert, now time.Time) bool {
	return r.silencedLocked(a, now) != "" || r.inhibitedLocked(a, now)
}

func (r *Router) silencedLocked(a Alert, now time.Time) string {
	for _, id := range slices.Sorted(maps.Keys(r.silences)) {
		if s := r.silences[id]; s.ActiveAt(now) && s.Matchers.Matches(a.Labels) {
			return id
		}
	}
	return ""
}

func (r *Router) inhibitedLocked(a Alert, now time.Time) bool {
	fp := Fingerprint(a.Labels)
	for _, rule := range r.cfg.Inhibit {
		if !rule.Target.Matches(a.Labels) {
			continue
		}
		for sfp, src := range r.alerts {
			if sfp == fp || src.ResolvedAt(now) || !rule.Source.Matches(src.Labels) {
				continue
			}
			if equalOn(rule.Equal, src.Labels, a.Labels) {
				return true
			}
		}
	}
	return false
}

func equalOn(names []string, a, b map[string]string) bool {
	for _, n := range names {
		if a[n] != b[n] {
			return false
		}
	}
	return true
}

// AddSilence adds s and returns it with its ID (a random one when s.ID is empty; a known ID
// replaces that silence). A zero StartsAt means now.
func (r *Router) AddSilence(s Silence) (Silence, error) {
	if s.StartsAt.IsZero() {
		s.StartsAt = r.o.clock.Now()
	}
	switch {
	case len(s.Matchers) == 0:
		return Silence{}, fmt.Errorf("%w: no matchers", ErrBadSilence)
	case !s.EndsAt.After(s.StartsAt):
		return Silence{}, fmt.Errorf("%w: ends at %s, not after its start %s", ErrBadSilence, s.EndsAt, s.StartsAt)
	}
	if s.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.ID = hex.EncodeToString(b[:])
	}
	s.Matchers = slices.Clone(s.Matchers)
	r.mu.Lock()
	r.silences[s.ID] = s
	r.mu.Unlock()
	return s, nil
}

// ExpireSilence ends silence id now; it reports whether the silence existed.
func (r *Router) ExpireSilence(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.silences[id]
	delete(r.silences, id)
	return ok
}

// Silences returns the silences not yet expired, by ID.
func (r *Router) Silences() []Silence {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.clock.Now()
	var out []Silence
	for _, id := range slices.Sorted(maps.Keys(r.silences)) {
		if s := r.silences[id]; now.Before(s.EndsAt) {
			out = append(out, s)
		}
	}
	return out
}

// Alerts returns the alerts the router knows and has not forgotten, by fingerprint.
func (r *Router) Alerts() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Alert, 0, len(r.alerts))
	for _, fp := range slices.Sorted(maps.Keys(r.alerts)) {
		out = append(out, r.alerts[fp].clone())
	}
	return out
}

// Run calls Tick every interval until ctx ends, logging failed deliveries (they are retried
// at the group's next flush), and returns ctx's error.
func (r *Router) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := r.Tick(ctx); err != nil {
				r.o.logger.WarnContext(ctx, "alert delivery failed", "err", err)
			}
		}
	}
}
