package incident

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/sre/alert"
	"github.com/redline-dev/redline/sre/oncall"
)

// Labels a Responder reads from alerts.
const (
	// LabelService names the service; absent, the incident's service is "unknown".
	LabelService = "service"
	// LabelSeverity is page/critical (SEV2), ticket/warning (SEV3), info (SEV4) or SEV1..SEV4.
	LabelSeverity = "severity"
	// LabelPolicy names the escalation policy; absent, the Responder's default.
	LabelPolicy = "escalation_policy"
)

// ResponderOption configures a Responder.
type ResponderOption func(*responderOptions)

type responderOptions struct {
	policy string
	key    func(alert.Alert) string
}

// WithDefaultPolicy sets the escalation policy of alerts without an escalation_policy
// label. Default "default"; "" starts no escalation.
func WithDefaultPolicy(name string) ResponderOption {
	return func(o *responderOptions) { o.policy = name }
}

// WithDedupKey sets how an alert maps to an incident's dedup key. Default: the alert's
// fingerprint, so each distinct alert has its own incident.
func WithDedupKey(fn func(alert.Alert) string) ResponderOption {
	return func(o *responderOptions) { o.key = fn }
}

// Responder turns alerts into incidents and starts their escalation.
type Responder struct {
	store *Store
	esc   *oncall.Escalator
	o     responderOptions
}

// NewResponder returns a Responder writing to store and waking esc for new incidents (nil:
// the incidents still carry their escalation state, for an Escalator elsewhere to page).
func NewResponder(store *Store, esc *oncall.Escalator, opts ...ResponderOption) *Responder {
	o := responderOptions{policy: "default", key: func(a alert.Alert) string { return alert.Fingerprint(a.Labels) }}
	for _, opt := range opts {
		opt(&o)
	}
	return &Responder{store: store, esc: esc, o: o}
}

// SeverityFromLabels maps an alert's severity label to an incident severity.
func SeverityFromLabels(labels map[string]string) Severity {
	v := strings.ToLower(labels[LabelSeverity])
	switch v {
	case "page", "critical":
		return SEV2
	case "ticket", "warning":
		return SEV3
	case "info", "":
		return SEV4
	}
	if sev, err := ParseSeverity(v); err == nil {
		return sev
	}
	return SEV3
}

// Handle applies one alert. A firing alert opens an incident, due at once for level 0 of
// its escalation policy (the escalator is woken to page it), or repeats into the open one with the same dedup key. A resolved alert is
// noted on its open incident, which stays open until someone resolves it: the alert
// clearing is not the fix verified. A resolved alert with no open incident returns nil, nil.
func (r *Responder) Handle(ctx context.Context, a alert.Alert) (*Incident, error) {
	if len(a.Labels) == 0 {
		return nil, badInput("alert without labels")
	}
	key := r.o.key(a)
	fp := alert.Fingerprint(a.Labels)
	if a.Status == alert.Resolved {
		inc, err := r.store.FindOpen(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		_, err = r.store.AddEntry(ctx, inc.ID, Entry{Kind: KindAlert, Actor: alertActor(a),
			Text: fmt.Sprintf("alert resolved: %s (%s)", a.Summary(), fp)})
		if err != nil {
			return nil, err
		}
		return r.store.Get(ctx, inc.ID)
	}
	policy := r.o.policy
	if p := a.Labels[LabelPolicy]; p != "" {
		policy = p
	}
	inc, created, err := r.store.Trigger(ctx, Trigger{
		DedupKey:    key,
		Title:       orDefault(a.Summary(), "alert "+fp),
		Service:     orDefault(a.Labels[LabelService], "unknown"),
		Severity:    SeverityFromLabels(a.Labels),
		ImpactStart: a.StartsAt,
		Policy:      policy,
		Actor:       alertActor(a),
		Text:        fmt.Sprintf("alert firing: %s %s (%s)", a.Summary(), labelText(a.Labels), fp),
		Signal:      fp + "@" + a.StartsAt.UTC().String(),
	})
	if err != nil {
		return nil, err
	}
	if created && r.esc != nil && policy != "" {
		r.esc.Wake()
	}
	return inc, nil
}

// HandleWebhook applies every alert of an Alertmanager webhook (decoded by
// alert.DecodeWebhook) and returns the incidents touched. Each alert is applied in its own
// transactions; on an error the alerts before it stay applied, and Alertmanager's retry of
// the whole webhook is harmless since repeats deduplicate.
func (r *Responder) HandleWebhook(ctx context.Context, w *alert.Webhook) ([]*Incident, error) {
	var out []*Incident
	for i, a := range w.Alerts {
		inc, err := r.Handle(ctx, a)
		if err != nil {
			return out, fmt.Errorf("alerts[%d]: %w", i, err)
		}
		if inc != nil {
			out = append(out, inc)
		}
	}
	return out, nil
}

// Deliver is an alert.Deliver: plug a Responder in as a Router's receiver.
func (r *Responder) Deliver(ctx context.Context, n alert.Notification) error {
	for _, a := range n.Alerts {
		if _, err := r.Handle(ctx, a); err != nil {
			var e *errs.Error
			if errors.As(err, &e) {
				return err
			}
			return fmt.Errorf("incident: deliver %s: %w", n.GroupKey, err)
		}
	}
	return nil
}

func alertActor(a alert.Alert) string {
	if n := a.Name(); n != "" {
		return "alert:" + n
	}
	return "alert"
}

func labelText(labels map[string]string) string {
	return "{" + strings.Join(sortedPairs(labels), ", ") + "}"
}

func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
