package incident

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/sre/incident/migrations"
	"github.com/redline-dev/redline/sre/oncall"
)

// Option configures a Store.
type Option func(*options)

type options struct {
	clock  clock.Clock
	impact func(*Incident) string
}

// WithImpact sets what the postmortem draft says of an incident's measured impact, such as
// the error budget it spent (the SRE service asks its SLO evaluator); "" says nothing.
func WithImpact(fn func(*Incident) string) Option { return func(o *options) { o.impact = fn } }

// WithClock sets the time source of every timestamp the store writes. Default clock.Real.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// Store keeps incidents in SQL. It is safe for concurrent use, also by several processes on
// one database.
type Store struct {
	db *sqldb.DB
	o  options
}

var _ oncall.EscalationStore = (*Store)(nil)

// Open migrates db and returns a Store on it. Closing db is the caller's.
func Open(ctx context.Context, db *sqldb.DB, opts ...Option) (*Store, error) {
	o := options{clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, fmt.Errorf("incident: %w", err)
	}
	return &Store{db: db, o: o}, nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// now is the clock's time at millisecond precision, the precision stored.
func (s *Store) now() time.Time { return s.o.clock.Now().UTC().Truncate(time.Millisecond) }

func newID(at time.Time) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "inc-" + at.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// Trigger is what opens an incident or repeats into an open one.
type Trigger struct {
	// DedupKey joins repeats to the open incident with the same key (an alert fingerprint
	// or group key). Required.
	DedupKey string
	Title    string
	Service  string
	Severity Severity
	// ImpactStart is when users started to suffer; zero or future means now.
	ImpactStart time.Time
	// Policy is the escalation policy to start; empty starts none.
	Policy string
	// Actor and Text go into the timeline entry ("alertmanager", the alert's summary).
	Actor string
	Text  string
	// Signal identifies this report of the condition (fingerprint@startsAt): a repeat with
	// the Signal last recorded adds no timeline entry, only to AlertCount.
	Signal string
}

func (t *Trigger) validate() error {
	switch {
	case strings.TrimSpace(t.DedupKey) == "":
		return badInput("dedup key: missing")
	case strings.TrimSpace(t.Title) == "":
		return badInput("title: missing")
	case strings.TrimSpace(t.Service) == "":
		return badInput("service: missing")
	}
	if _, err := ParseSeverity(string(t.Severity)); err != nil {
		return err
	}
	return nil
}

// Trigger opens an incident for t, or, when an incident with t.DedupKey is open, appends to
// it. It reports whether it opened a new one. A new incident with a Policy is due for
// escalation level 0 at once.
func (s *Store) Trigger(ctx context.Context, t Trigger) (inc *Incident, created bool, err error) {
	if err := t.validate(); err != nil {
		return nil, false, err
	}
	t.Severity, _ = ParseSeverity(string(t.Severity))
	t.Actor = orDefault(t.Actor, "system")
	now := s.now()
	impact := t.ImpactStart.UTC().Truncate(time.Millisecond)
	if impact.IsZero() || impact.After(now) {
		impact = now
	}
	// An open incident resolved concurrently frees its key between the two statements; try
	// again, a bounded number of times.
	for range 3 {
		var id string
		err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
			id, created = newID(now), false
			escAt := int64(0)
			if t.Policy != "" {
				escAt = ms(now)
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, title, service, severity, state, dedup_key, open_key,
				impact_start_at, triggered_at, updated_at, alert_count, last_signal, esc_policy, esc_level, esc_next_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, 0, ?) ON CONFLICT DO NOTHING`,
				id, t.Title, t.Service, string(t.Severity), string(Triggered), t.DedupKey, t.DedupKey,
				ms(impact), ms(now), ms(now), t.Signal, t.Policy, escAt)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				created = true
				return appendEntry(ctx, tx, id, Entry{At: now, Kind: KindAlert, Actor: t.Actor, Text: orDefault(t.Text, "triggered: "+t.Title)})
			}
			var last string
			err = tx.QueryRowContext(ctx, `SELECT id, last_signal FROM incidents WHERE open_key = ?`, t.DedupKey).Scan(&id, &last)
			if err != nil {
				return err // sql.ErrNoRows: resolved meanwhile, retried below
			}
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET alert_count = alert_count + 1, last_signal = ?, updated_at = ? WHERE id = ?`,
				t.Signal, ms(now), id); err != nil {
				return err
			}
			if t.Signal != "" && t.Signal == last {
				return nil
			}
			return appendEntry(ctx, tx, id, Entry{At: now, Kind: KindAlert, Actor: t.Actor, Text: orDefault(t.Text, "repeated: "+t.Title)})
		})
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("incident: trigger %s: %w", t.DedupKey, err)
		}
		inc, err = s.Get(ctx, id)
		return inc, created, err
	}
	return nil, false, fmt.Errorf("incident: trigger %s: open incident kept changing", t.DedupKey)
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// appendEntry adds e as the incident's next timeline entry. Callers have written the
// incident's row earlier in tx, which serializes appends to one incident on both engines.
func appendEntry(ctx context.Context, tx *sqldb.Tx, id string, e Entry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO incident_timeline (incident_id, seq, at, kind, actor, text)
		SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM incident_timeline WHERE incident_id = ?`,
		id, ms(e.At), string(e.Kind), e.Actor, e.Text, id)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	return nil
}

// touch writes the incident's row first in a transaction, locking it, and reports
// ErrNotFound for an unknown id.
func touch(ctx context.Context, tx *sqldb.Tx, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE incidents SET updated_at = ? WHERE id = ?`, ms(now), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.NotFound(ReasonNotFound, "incident %s not found", id)
	}
	return nil
}

// lockIncident touches the incident's row and reads it, so that what tx does next sees a
// state no other transaction can change until tx ends.
func lockIncident(ctx context.Context, tx *sqldb.Tx, id string, now time.Time) (*Incident, error) {
	if err := touch(ctx, tx, id, now); err != nil {
		return nil, err
	}
	return getIncident(ctx, tx, id)
}

var errNoop = errors.New("incident: no change")

// Acknowledge moves the incident to acknowledged and stops its escalation.
func (s *Store) Acknowledge(ctx context.Context, id, actor, text string) (*Incident, error) {
	return s.transition(ctx, id, Acknowledged, actor, text)
}

// Mitigate moves the incident to mitigated: users no longer suffer.
func (s *Store) Mitigate(ctx context.Context, id, actor, text string) (*Incident, error) {
	return s.transition(ctx, id, Mitigated, actor, text)
}

// Resolve moves the incident to resolved: the fix is verified. Its dedup key is free again.
func (s *Store) Resolve(ctx context.Context, id, actor, text string) (*Incident, error) {
	return s.transition(ctx, id, Resolved, actor, text)
}

var stageColumn = map[State]string{Acknowledged: "acknowledged_at", Mitigated: "mitigated_at", Resolved: "resolved_at"}
var stageKind = map[State]Kind{Acknowledged: KindAck, Mitigated: KindMitigate, Resolved: KindResolve}

// transition moves id forward to `to`. Stages may be skipped (an incident resolved straight
// from triggered has no acknowledged or mitigated time); moving backwards is
// ErrBadTransition; moving to the current state changes nothing and is not an error.
func (s *Store) transition(ctx context.Context, id string, to State, actor, text string) (*Incident, error) {
	actor = orDefault(actor, "system")
	now := s.now()
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		cur, err := lockIncident(ctx, tx, id, now)
		if err != nil {
			return err
		}
		switch {
		case cur.State == to:
			return errNoop
		case cur.State.rank() > to.rank():
			return errs.New(ErrBadTransition.Code, ReasonBadTransition,
				fmt.Sprintf("incident %s is %s; it cannot become %s", id, cur.State, to))
		}
		// A clock that stepped back must not make a stage end before it began.
		at := now
		for _, prev := range []time.Time{cur.TriggeredAt, cur.AcknowledgedAt, cur.MitigatedAt} {
			if prev.After(at) {
				at = prev
			}
		}
		q := `UPDATE incidents SET state = ?, ` + stageColumn[to] + ` = ?, esc_next_at = 0`
		if to == Resolved {
			q += `, open_key = NULL`
		}
		if _, err := tx.ExecContext(ctx, q+` WHERE id = ?`, string(to), ms(at), id); err != nil {
			return err
		}
		return appendEntry(ctx, tx, id, Entry{At: at, Kind: stageKind[to], Actor: actor, Text: orDefault(text, string(to)+" by "+actor)})
	})
	if err != nil && !errors.Is(err, errNoop) {
		return nil, wrapErr("incident: "+string(to)+" "+id, err)
	}
	return s.Get(ctx, id)
}

func wrapErr(what string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// SetRoles sets the incident commander and the communications lead; an empty field is left
// as it is. The change goes into the timeline as a note.
func (s *Store) SetRoles(ctx context.Context, id string, r Roles, actor string) (*Incident, error) {
	if r.Commander == "" && r.Communications == "" {
		return nil, badInput("roles: give a commander or a communications lead")
	}
	return s.update(ctx, id, actor, func(ctx context.Context, tx *sqldb.Tx, now time.Time) (string, error) {
		var notes []string
		if r.Commander != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET commander = ? WHERE id = ?`, r.Commander, id); err != nil {
				return "", err
			}
			notes = append(notes, "incident commander: "+r.Commander)
		}
		if r.Communications != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE incidents SET comms = ? WHERE id = ?`, r.Communications, id); err != nil {
				return "", err
			}
			notes = append(notes, "communications: "+r.Communications)
		}
		return strings.Join(notes, "; "), nil
	})
}

// SetSeverity changes the severity, noting it in the timeline.
func (s *Store) SetSeverity(ctx context.Context, id string, sev Severity, actor string) (*Incident, error) {
	sev, err := ParseSeverity(string(sev))
	if err != nil {
		return nil, err
	}
	return s.update(ctx, id, actor, func(ctx context.Context, tx *sqldb.Tx, now time.Time) (string, error) {
		_, err := tx.ExecContext(ctx, `UPDATE incidents SET severity = ? WHERE id = ?`, string(sev), id)
		return "severity: " + string(sev), err
	})
}

func (s *Store) update(ctx context.Context, id, actor string, fn func(context.Context, *sqldb.Tx, time.Time) (string, error)) (*Incident, error) {
	now := s.now()
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := touch(ctx, tx, id, now); err != nil {
			return err
		}
		note, err := fn(ctx, tx, now)
		if err != nil {
			return err
		}
		return appendEntry(ctx, tx, id, Entry{At: now, Kind: KindNote, Actor: orDefault(actor, "system"), Text: note})
	})
	if err != nil {
		return nil, wrapErr("incident: update "+id, err)
	}
	return s.Get(ctx, id)
}

// AddEntry appends a timeline entry: a note, a deploy, a drill, or anything else of the
// kinds; a zero At means now. Lifecycle kinds (ack, mitigate, resolve) are refused: use
// the transition methods, which also change the state; so is postmortem: use
// PublishPostmortem.
func (s *Store) AddEntry(ctx context.Context, id string, e Entry) (Entry, error) {
	switch {
	case !e.Kind.valid():
		return Entry{}, badInput("timeline kind %q is unknown", e.Kind)
	case e.Kind == KindAck || e.Kind == KindMitigate || e.Kind == KindResolve:
		return Entry{}, badInput("timeline kind %q changes the state: use the transition", e.Kind)
	case e.Kind == KindPostmortem:
		return Entry{}, badInput("timeline kind %q records a publication: publish the postmortem", e.Kind)
	case strings.TrimSpace(e.Text) == "":
		return Entry{}, badInput("timeline text: missing")
	}
	now := s.now()
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC().Truncate(time.Millisecond)
	e.Actor = orDefault(e.Actor, "system")
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := touch(ctx, tx, id, now); err != nil {
			return err
		}
		if err := appendEntry(ctx, tx, id, e); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM incident_timeline WHERE incident_id = ?`, id).Scan(&e.Seq)
	})
	if err != nil {
		return Entry{}, wrapErr("incident: add entry to "+id, err)
	}
	return e, nil
}

// AddTodo records a follow-up action for the postmortem.
func (s *Store) AddTodo(ctx context.Context, id string, owner, text string) (Todo, error) {
	if strings.TrimSpace(owner) == "" || strings.TrimSpace(text) == "" {
		return Todo{}, badInput("todo: want an owner and a text")
	}
	t := Todo{Owner: owner, Text: text}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := touch(ctx, tx, id, s.now()); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_todos WHERE incident_id = ?`, id).Scan(&t.Seq); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO incident_todos (incident_id, seq, owner, text, done) VALUES (?, ?, ?, ?, 0)`, id, t.Seq, owner, text)
		return err
	})
	if err != nil {
		return Todo{}, wrapErr("incident: add todo to "+id, err)
	}
	return t, nil
}

// CompleteTodo marks todo seq of incident id done; ErrNotFound if there is no such todo.
func (s *Store) CompleteTodo(ctx context.Context, id string, seq int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE incident_todos SET done = 1 WHERE incident_id = ? AND seq = ?`, id, seq)
	if err != nil {
		return fmt.Errorf("incident: complete todo %d of %s: %w", seq, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.NotFound(ReasonNotFound, "incident %s has no todo %d", id, seq)
	}
	return nil
}

// Todos returns the incident's follow-up actions in order.
func (s *Store) Todos(ctx context.Context, id string) ([]Todo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, owner, text, done FROM incident_todos WHERE incident_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("incident: todos of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Todo
	for rows.Next() {
		var t Todo
		var done int
		if err := rows.Scan(&t.Seq, &t.Owner, &t.Text, &done); err != nil {
			return nil, fmt.Errorf("incident: todos of %s: %w", id, err)
		}
		t.Done = done != 0
		out = append(out, t)
	}
	return out, rows.Err()
}

const incidentColumns = `id, title, service, severity, state, dedup_key, commander, comms, impact_start_at,
	triggered_at, acknowledged_at, mitigated_at, resolved_at, updated_at, alert_count, esc_policy, esc_level, esc_next_at,
	postmortem_at`

func scanIncident(sc interface{ Scan(...any) error }) (*Incident, error) {
	var i Incident
	var sev, state string
	var impact, trig, ack, mit, res, upd, escAt, pm int64
	if err := sc.Scan(&i.ID, &i.Title, &i.Service, &sev, &state, &i.DedupKey, &i.Commander, &i.Communications,
		&impact, &trig, &ack, &mit, &res, &upd, &i.AlertCount, &i.Policy, &i.EscalationLevel, &escAt, &pm); err != nil {
		return nil, err
	}
	i.Severity, i.State = Severity(sev), State(state)
	i.ImpactStart, i.TriggeredAt, i.AcknowledgedAt = fromMS(impact), fromMS(trig), fromMS(ack)
	i.MitigatedAt, i.ResolvedAt, i.UpdatedAt, i.EscalationDue = fromMS(mit), fromMS(res), fromMS(upd), fromMS(escAt)
	i.PostmortemAt = fromMS(pm)
	return &i, nil
}

func getIncident(ctx context.Context, q sqldb.Querier, id string) (*Incident, error) {
	inc, err := scanIncident(q.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound(ReasonNotFound, "incident %s not found", id)
	}
	return inc, err
}

// Get returns one incident; ErrNotFound if there is none with id.
func (s *Store) Get(ctx context.Context, id string) (*Incident, error) {
	inc, err := getIncident(ctx, s.db, id)
	if err != nil {
		return nil, wrapErr("incident: get "+id, err)
	}
	return inc, nil
}

// FindOpen returns the open incident with dedupKey, or ErrNotFound.
func (s *Store) FindOpen(ctx context.Context, dedupKey string) (*Incident, error) {
	inc, err := scanIncident(s.db.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE open_key = ?`, dedupKey))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound(ReasonNotFound, "no open incident with key %s", dedupKey)
	}
	if err != nil {
		return nil, fmt.Errorf("incident: find open %s: %w", dedupKey, err)
	}
	return inc, nil
}

// Filter selects incidents for List.
type Filter struct {
	// OpenOnly leaves out resolved incidents.
	OpenOnly bool
	// Service, when set, keeps one service's incidents.
	Service string
	// Since and Until bound TriggeredAt to [Since, Until); zero means unbounded.
	Since, Until time.Time
	// Limit bounds the result; 0 means DefaultListLimit.
	Limit int
}

// DefaultListLimit is List's limit when the filter sets none.
const DefaultListLimit = 1000

// List returns incidents matching f, the most recently triggered first.
func (s *Store) List(ctx context.Context, f Filter) ([]Incident, error) {
	q := `SELECT ` + incidentColumns + ` FROM incidents WHERE 1 = 1`
	var args []any
	if f.OpenOnly {
		q += ` AND state <> ?`
		args = append(args, string(Resolved))
	}
	if f.Service != "" {
		q += ` AND service = ?`
		args = append(args, f.Service)
	}
	if !f.Since.IsZero() {
		q += ` AND triggered_at >= ?`
		args = append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND triggered_at < ?`
		args = append(args, ms(f.Until))
	}
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	q += ` ORDER BY triggered_at DESC, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("incident: list: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("incident: list: %w", err)
		}
		out = append(out, *inc)
	}
	return out, rows.Err()
}

// Timeline returns the incident's entries in the order written.
func (s *Store) Timeline(ctx context.Context, id string) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, at, kind, actor, text FROM incident_timeline WHERE incident_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("incident: timeline of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var at int64
		var kind string
		if err := rows.Scan(&e.Seq, &at, &kind, &e.Actor, &e.Text); err != nil {
			return nil, fmt.Errorf("incident: timeline of %s: %w", id, err)
		}
		e.At, e.Kind = fromMS(at), Kind(kind)
		out = append(out, e)
	}
	return out, rows.Err()
}

// DueEscalations implements oncall.EscalationStore.
func (s *Store) DueEscalations(ctx context.Context, now time.Time, limit int) ([]oncall.Escalation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, title, service, severity, esc_policy, esc_level, esc_next_at FROM incidents
		WHERE esc_next_at > 0 AND esc_next_at <= ? AND state = ? ORDER BY esc_next_at, id LIMIT ?`,
		ms(now), string(Triggered), limit)
	if err != nil {
		return nil, fmt.Errorf("incident: due escalations: %w", err)
	}
	defer rows.Close()
	var out []oncall.Escalation
	for rows.Next() {
		var e oncall.Escalation
		var due int64
		if err := rows.Scan(&e.IncidentID, &e.Title, &e.Service, &e.Severity, &e.Policy, &e.Level, &due); err != nil {
			return nil, fmt.Errorf("incident: due escalations: %w", err)
		}
		e.Due = fromMS(due)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecordStep implements oncall.EscalationStore: it moves the escalation on and writes a
// notify (level 0) or escalate entry in one transaction, only if the incident is still
// triggered and waiting on st.Level.
func (s *Store) RecordStep(ctx context.Context, st oncall.Step) (bool, error) {
	nextAt := ms(st.NextAt)
	if st.Done {
		nextAt = 0
	}
	at := st.At.UTC().Truncate(time.Millisecond)
	if at.IsZero() {
		at = s.now()
	}
	applied := false
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE incidents SET esc_level = ?, esc_next_at = ?, updated_at = ?
			WHERE id = ? AND state = ? AND esc_level = ? AND esc_next_at > 0`,
			st.Next, nextAt, ms(at), st.IncidentID, string(Triggered), st.Level)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		applied = true
		kind := KindNotify
		if st.Level > 0 {
			kind = KindEscalate
		}
		return appendEntry(ctx, tx, st.IncidentID, Entry{At: at, Kind: kind, Actor: orDefault(st.User, "oncall"), Text: st.Text})
	})
	if err != nil {
		return false, fmt.Errorf("incident: record escalation step of %s: %w", st.IncidentID, err)
	}
	return applied, nil
}
