// Package alert receives, groups and routes alerts the way Alertmanager does, in process.
//
// An Alert is a label set with annotations, a status (firing or resolved) and a time span;
// its Fingerprint is a hash of its labels, so the same condition reported twice is one
// alert. DecodeWebhook reads Alertmanager's webhook JSON (version "4") strictly and names
// the offending field of a malformed body, so an HTTP receiver answers 400 without
// creating anything.
//
// A Router groups alerts by labels (GroupWait, GroupInterval, RepeatInterval), deduplicates
// them by fingerprint, mutes them by silences and inhibition rules (a firing page silences
// the ticket with the same slo and service: DefaultInhibitRules), and delivers each group
// to the receiver of the first matching Route. It runs on an injectable clock: Receive
// takes alerts, Tick delivers the groups that are due at the clock's now, and Run calls Tick
// on a real ticker.
//
//	r, err := alert.NewRouter(alert.Config{
//		Routes:  []alert.Route{{Receiver: "pager", Matchers: alert.MustMatchers(`severity="page"`)}},
//		Default: alert.Route{Receiver: "tickets"},
//		Inhibit: alert.DefaultInhibitRules(),
//	}, deliver, alert.WithClock(clk))
//	r.Receive(ctx, wh.Alerts...)
//	r.Tick(ctx)
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"
)

// Status is the state of an alert or a notification.
type Status string

// Alert statuses, spelled as Alertmanager spells them.
const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// Alert is one alerting condition: a label set that identifies it, annotations that
// describe it, and when it started and (once resolved) ended.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Status       Status            `json:"status"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	// Fingerprint is Fingerprint(Labels); DecodeWebhook and Router.Receive fill it.
	Fingerprint string `json:"fingerprint"`
}

// Fingerprint returns a stable hash of a label set: the same labels in any order give the
// same 16 hex digits. Empty values count as absent, as in Prometheus.
func Fingerprint(labels map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if labels[k] == "" {
			continue
		}
		// 0xff never occurs in UTF-8, so it separates names and values unambiguously.
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ResolvedAt reports whether a is resolved at now: its status says so, or its EndsAt has
// passed (Alertmanager's rule for alerts whose sender stopped refreshing them).
func (a Alert) ResolvedAt(now time.Time) bool {
	return a.Status == Resolved || (!a.EndsAt.IsZero() && !a.EndsAt.After(now))
}

// Name returns the alertname label.
func (a Alert) Name() string { return a.Labels["alertname"] }

// Summary returns the summary annotation, else the description, else the alert name.
func (a Alert) Summary() string {
	for _, k := range []string{"summary", "description"} {
		if s := strings.TrimSpace(a.Annotations[k]); s != "" {
			return s
		}
	}
	return a.Name()
}

func (a Alert) clone() Alert {
	a.Labels = maps.Clone(a.Labels)
	a.Annotations = maps.Clone(a.Annotations)
	return a
}
