// Package gate is the release gate: it answers whether a service may ship a change now,
// from its error budget policy.
//
// The policy is the SRE workbook's, reduced to what can be decided by a machine:
//
//   - Freeze: while any SLO of the service has spent its period's budget (budget remaining at
//     or below Policy.FreezeBelow, default 0), releases are denied. Only fixes to reliability
//     should ship, and those go through with the operator's own override, not the gate.
//   - Postmortem: an incident of the service that spent more than Policy.PostmortemShare
//     (default 20%) of one SLO's period budget must have a published postmortem
//     (`redline incident postmortem ID --publish FILE`) before the next release.
//
// A service without SLOs is an error, not an allow: a gate that waves through what it
// cannot measure is no gate. The decision carries every SLO's budget and every costly
// incident, so the reason a deploy was stopped is on the record.
//
//	d, err := gate.Policy{}.Decide(ctx, "note", evaluator, store, time.Now())
//	if !d.Allow { fmt.Println(d.Reasons) }
//
// It runs in the SRE service as GET /v1/gate?service=X and from the CLI as
// `redline slo gate X` (exit status 3 on deny).
package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/sre/incident"
	"github.com/redline-dev/redline/sre/slo"
)

// ReasonUnknownService is the error reason for a service that has no SLO.
const ReasonUnknownService = "GATE_UNKNOWN_SERVICE"

// DefaultPostmortemShare is the budget share above which an incident needs a postmortem.
const DefaultPostmortemShare = 0.2

// Policy is the error budget policy. The zero value is the default policy.
type Policy struct {
	// FreezeBelow: releases are frozen while an SLO's budget remaining is at or below it.
	// Default 0 (the budget is spent); 0.1 freezes with 10% left.
	FreezeBelow float64 `koanf:"freeze_below" json:"freeze_below"`
	// PostmortemShare: an incident that spent more than this share of an SLO's period budget
	// needs a published postmortem. 0 means DefaultPostmortemShare.
	PostmortemShare float64 `koanf:"postmortem_share" json:"postmortem_share"`
}

// Validate checks the policy's bounds.
func (p Policy) Validate() error {
	if p.FreezeBelow < 0 || p.FreezeBelow >= 1 {
		return fmt.Errorf("gate.freeze_below %v: want 0 to below 1", p.FreezeBelow)
	}
	if p.PostmortemShare < 0 || p.PostmortemShare > 1 {
		return fmt.Errorf("gate.postmortem_share %v: want 0 to 1", p.PostmortemShare)
	}
	return nil
}

func (p Policy) share() float64 {
	if p.PostmortemShare == 0 {
		return DefaultPostmortemShare
	}
	return p.PostmortemShare
}

// Budgets is what the gate reads of the SLO evaluator (*slo.Evaluator).
type Budgets interface {
	Statuses() []slo.Status
	Spent(name string, from, to time.Time) (float64, error)
}

// Incidents is what the gate reads of the incident store (*incident.Store).
type Incidents interface {
	List(ctx context.Context, f incident.Filter) ([]incident.Incident, error)
}

// Decision is the gate's answer for one service.
type Decision struct {
	Service string    `json:"service"`
	Allow   bool      `json:"allow"`
	At      time.Time `json:"at"`
	// Reasons say why a release is denied, one per violated rule, each with what to do.
	Reasons []string `json:"reasons"`
	// SLOs are the service's budgets at At.
	SLOs []Budget `json:"slos"`
	// Incidents are the period's incidents that spent more than the postmortem share.
	Incidents []Spend `json:"incidents"`
}

// Budget is one SLO's budget as the gate saw it.
type Budget struct {
	SLO             string        `json:"slo"`
	Objective       float64       `json:"objective"`
	BudgetRemaining float64       `json:"budget_remaining"`
	Period          time.Duration `json:"period"`
	Events          float64       `json:"events"`
	Frozen          bool          `json:"frozen"`
}

// Spend is the budget one incident spent, on the SLO it hurt most.
type Spend struct {
	Incident   string  `json:"incident"`
	Title      string  `json:"title"`
	SLO        string  `json:"slo"`
	Spent      float64 `json:"spent"`
	Postmortem bool    `json:"postmortem"`
}

// Decide answers for service at now. The error is a NotFound for a service without SLOs,
// or the store's.
func (p Policy) Decide(ctx context.Context, service string, b Budgets, inc Incidents, now time.Time) (Decision, error) {
	d := Decision{Service: service, At: now.UTC(), Reasons: []string{}, SLOs: []Budget{}, Incidents: []Spend{}}
	var mine []slo.Status
	var known []string
	var longest time.Duration
	for _, st := range b.Statuses() {
		if !slices.Contains(known, st.Service) {
			known = append(known, st.Service)
		}
		if st.Service != service {
			continue
		}
		mine = append(mine, st)
		longest = max(longest, st.Period.Window)
		frozen := st.BudgetRemaining <= p.FreezeBelow
		d.SLOs = append(d.SLOs, Budget{SLO: st.SLO, Objective: st.Objective, BudgetRemaining: st.BudgetRemaining,
			Period: st.Period.Window, Events: st.Period.Total, Frozen: frozen})
		if frozen {
			d.Reasons = append(d.Reasons, fmt.Sprintf(
				"SLO %s has %s (freeze at %.1f%% left): releases are frozen until it recovers; ship only reliability fixes",
				st.SLO, BudgetText(st.BudgetRemaining), 100*p.FreezeBelow))
		}
	}
	if len(mine) == 0 {
		slices.Sort(known)
		return d, errs.NotFound(ReasonUnknownService, "gate: service %q has no SLO (services with SLOs: %v); declare one in sre.slos", service, known)
	}
	list, err := inc.List(ctx, incident.Filter{Service: service, Since: now.Add(-longest), Limit: incident.DefaultListLimit})
	if err != nil {
		return d, err
	}
	for _, in := range list {
		spends, err := IncidentSpends(b, &in, now)
		if err != nil {
			return d, err
		}
		worst := Spend{Incident: in.ID, Title: in.Title, Postmortem: !in.PostmortemAt.IsZero()}
		for _, sp := range spends {
			if sp.Spent > worst.Spent {
				worst.Spent, worst.SLO = sp.Spent, sp.SLO
			}
		}
		if worst.Spent <= p.share() {
			continue
		}
		d.Incidents = append(d.Incidents, worst)
		if !worst.Postmortem {
			d.Reasons = append(d.Reasons, fmt.Sprintf(
				"incident %s spent %s of SLO %s's budget (over %.0f%%) and has no postmortem: publish it with `redline incident postmortem %s --publish FILE`",
				in.ID, ShareText(worst.Spent), worst.SLO, 100*p.share(), in.ID))
		}
	}
	d.Allow = len(d.Reasons) == 0
	return d, nil
}

// SLOSpend is the share of one SLO's period budget an incident spent.
type SLOSpend struct {
	SLO   string  `json:"slo"`
	Spent float64 `json:"spent"`
}

// IncidentSpends measures what an incident spent of each SLO of its service: the bad
// events from its impact start (or trigger) to its resolution (or now), as a share of each
// SLO's period budget.
func IncidentSpends(b Budgets, in *incident.Incident, now time.Time) ([]SLOSpend, error) {
	from, to := in.ImpactStart, now
	if from.IsZero() {
		from = in.TriggeredAt
	}
	if !in.ResolvedAt.IsZero() {
		to = in.ResolvedAt
	}
	var out []SLOSpend
	for _, st := range b.Statuses() {
		if st.Service != in.Service {
			continue
		}
		spent, err := b.Spent(st.SLO, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, SLOSpend{SLO: st.SLO, Spent: spent})
	}
	return out, nil
}

// ImpactText says what IncidentSpends measured, for a postmortem draft; "" when the
// service has no SLO.
func ImpactText(b Budgets, in *incident.Incident, now time.Time) string {
	spends, err := IncidentSpends(b, in, now)
	if err != nil || len(spends) == 0 {
		return ""
	}
	parts := make([]string, len(spends))
	for i, sp := range spends {
		parts[i] = sp.SLO + " " + ShareText(sp.Spent)
	}
	return "Error budget spent from impact start to resolution, as a share of each SLO's period budget (SLO evaluator): " +
		strings.Join(parts, ", ") + "."
}

// BudgetText says how much of a budget is left: "72.5% of its error budget left", or once
// overspent, "spent 3.2× its error budget".
func BudgetText(remaining float64) string {
	if remaining >= 0 {
		return fmt.Sprintf("%.1f%% of its error budget left", 100*remaining)
	}
	return fmt.Sprintf("spent %.1f× its error budget", 1-remaining)
}

// ShareText says a share of a budget: "29.6%", or from one whole budget up, "3.2×".
func ShareText(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	return fmt.Sprintf("%.1f×", v)
}
