// Package incident keeps incidents in SQL (SQLite by default, PostgreSQL in production):
// their lifecycle, severity, roles and a timeline, and derives MTTx percentiles and a
// postmortem draft from them.
//
// An incident is triggered (by an alert or by hand), then acknowledged, mitigated and
// resolved. Each transition is validated — states only move forward, and repeating one is
// a no-op — and written in one transaction together with its timeline entry, so nothing
// is ever half-applied. Triggering with the dedup key of an open incident appends to it
// instead of opening another.
//
// The Store also persists escalation state (the next level of the incident's on-call
// policy and when it is due) and implements oncall.EscalationStore, so an oncall.Escalator
// driven by it survives a restart; acknowledging stops the escalation in the same
// transaction. A Responder wires alerts to incidents to escalation:
//
//	db, _ := sqldb.Open(ctx, "sqlite:data/sre.db")
//	store, _ := incident.Open(ctx, db)
//	esc, _ := oncall.NewEscalator(store, dir, oncall.NewLog(nil))
//	resp := incident.NewResponder(store, esc)
//	wh, err := alert.DecodeWebhook(r.Body) // 400 on err
//	incs, err := resp.HandleWebhook(ctx, wh)
//
// Register serves all of it over HTTP, Alertmanager's webhook included.
//
// Once an incident is mitigated, its postmortem can be published (PublishPostmortem): the
// text people agreed on, which must keep every heading of PostmortemHeadings, replaces the
// draft and sets Incident.PostmortemAt. SaveState and LoadState keep small named blobs for
// the rest of the SRE service (the SLO evaluator's snapshot) in the same database.
//
// The store runs its own migrations (schema_migrations versions 1..n), so give it a
// database or PostgreSQL schema of its own.
package incident

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

// Severity ranks an incident, SEV1 the worst.
type Severity string

// The four severities.
const (
	SEV1 Severity = "SEV1"
	SEV2 Severity = "SEV2"
	SEV3 Severity = "SEV3"
	SEV4 Severity = "SEV4"
)

// ParseSeverity reads SEV1..SEV4 (any case, "sev2" or "2").
func ParseSeverity(s string) (Severity, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "SEV") {
		u = "SEV" + u
	}
	switch sev := Severity(u); sev {
	case SEV1, SEV2, SEV3, SEV4:
		return sev, nil
	}
	return "", errs.InvalidArgument(ReasonBadSeverity, "severity %q, want SEV1..SEV4", s)
}

// State is where an incident is in its lifecycle.
type State string

// The lifecycle, in order.
const (
	Triggered    State = "triggered"
	Acknowledged State = "acknowledged"
	Mitigated    State = "mitigated"
	Resolved     State = "resolved"
)

func (s State) rank() int {
	switch s {
	case Triggered:
		return 1
	case Acknowledged:
		return 2
	case Mitigated:
		return 3
	case Resolved:
		return 4
	}
	return 0
}

// Kind says what a timeline entry records.
type Kind string

// Timeline entry kinds.
const (
	KindAlert    Kind = "alert"
	KindAck      Kind = "ack"
	KindMitigate Kind = "mitigate"
	KindResolve  Kind = "resolve"
	KindNote     Kind = "note"
	KindDeploy   Kind = "deploy"
	KindDrill    Kind = "drill"
	KindNotify   Kind = "notify"
	KindEscalate Kind = "escalate"
	// KindPostmortem records a publication of the postmortem (PublishPostmortem).
	KindPostmortem Kind = "postmortem"
)

func (k Kind) valid() bool {
	switch k {
	case KindAlert, KindAck, KindMitigate, KindResolve, KindNote, KindDeploy, KindDrill, KindNotify, KindEscalate, KindPostmortem:
		return true
	}
	return false
}

// Reasons of the errs errors the package returns.
const (
	ReasonNotFound      = "INCIDENT_NOT_FOUND"
	ReasonBadTransition = "BAD_TRANSITION"
	ReasonBadSeverity   = "BAD_SEVERITY"
	ReasonBadIncident   = "BAD_INCIDENT"
	ReasonNotMitigated  = "INCIDENT_NOT_MITIGATED"
	ReasonNoPostmortem  = "POSTMORTEM_NOT_PUBLISHED"
)

// Sentinels for errors.Is: an unknown incident (404), a transition backwards
// (FailedPrecondition, 412 over HTTP), bad input (400), a postmortem published before the
// incident is mitigated (FailedPrecondition, 412), and an incident with no published
// postmortem (404).
var (
	ErrNotFound      = errs.NotFound(ReasonNotFound, "incident not found")
	ErrBadTransition = errs.New(codes.FailedPrecondition, ReasonBadTransition, "incident state cannot move backwards")
	ErrBadInput      = errs.InvalidArgument(ReasonBadIncident, "invalid incident")
	ErrNotMitigated  = errs.New(codes.FailedPrecondition, ReasonNotMitigated, "incident is not mitigated or resolved yet")
	ErrNoPostmortem  = errs.NotFound(ReasonNoPostmortem, "no postmortem published")
)

// Roles are the people running the response.
type Roles struct {
	Commander      string `json:"commander"`
	Communications string `json:"communications"`
}

// Incident is one incident as stored. Zero times are stages not reached.
type Incident struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Service  string   `json:"service"`
	Severity Severity `json:"severity"`
	State    State    `json:"state"`
	DedupKey string   `json:"dedup_key"`
	Roles
	// ImpactStart is when users started to suffer (the alert's start), before TriggeredAt.
	ImpactStart    time.Time `json:"impact_start"`
	TriggeredAt    time.Time `json:"triggered_at"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	MitigatedAt    time.Time `json:"mitigated_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	UpdatedAt      time.Time `json:"updated_at"`
	// AlertCount counts the alerts that triggered or repeated into it.
	AlertCount int64 `json:"alert_count"`
	// Policy is the escalation policy; EscalationLevel the next level to page, due at
	// EscalationDue (zero when nothing is due: acknowledged, or the policy is exhausted).
	Policy          string    `json:"policy,omitempty"`
	EscalationLevel int       `json:"escalation_level"`
	EscalationDue   time.Time `json:"escalation_due,omitzero"`
	// PostmortemAt is when the postmortem was last published; zero while there is only
	// the draft.
	PostmortemAt time.Time `json:"postmortem_at,omitzero"`
}

// Open reports whether the incident is not resolved.
func (i *Incident) Open() bool { return i.State != Resolved }

// Entry is one timeline entry.
type Entry struct {
	Seq   int64     `json:"seq"`
	At    time.Time `json:"at"`
	Kind  Kind      `json:"kind"`
	Actor string    `json:"actor"`
	Text  string    `json:"text"`
}

// Todo is a follow-up action with an owner.
type Todo struct {
	Seq   int64  `json:"seq"`
	Owner string `json:"owner"`
	Text  string `json:"text"`
	Done  bool   `json:"done"`
}

func badInput(format string, args ...any) error {
	return errs.InvalidArgument(ReasonBadIncident, "incident: %s", fmt.Sprintf(format, args...))
}
