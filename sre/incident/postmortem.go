package incident

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Postmortem headings, in the order the draft has them: the seed's fault template, then
// the three golden questions.
var PostmortemHeadings = []string{
	"## Summary",
	"## Impact",
	"## Timeline",
	"## Root cause",
	"## Fault analysis",
	"### Can it be measured?",
	"### Did it alert?",
	"### How to avoid it?",
	"### How to recover faster?",
	"### How to avoid recurrence?",
	"### Could the design avoid it?",
	"## The three golden questions",
	"### How was it found?",
	"### How was it fixed?",
	"### How do we stop it happening again?",
	"## Todo",
}

// Postmortem drafts the postmortem of incident id in Markdown from the store.
func (s *Store) Postmortem(ctx context.Context, id string) (string, error) {
	inc, err := s.Get(ctx, id)
	if err != nil {
		return "", err
	}
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		return "", err
	}
	todos, err := s.Todos(ctx, id)
	if err != nil {
		return "", err
	}
	return Postmortem(inc, tl, todos), nil
}

// Postmortem drafts a postmortem in Markdown: the facts (summary, impact with the time of
// each stage, the timeline) filled in, the analysis sections (PostmortemHeadings) with
// what the timeline tells and a prompt for the rest, and the todo list with owners. With no
// todos it proposes the template's follow-ups, owned by the incident commander.
func Postmortem(inc *Incident, timeline []Entry, todos []Todo) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	owner := orDefault(inc.Commander, "unassigned")
	p("# Postmortem: %s\n\n", oneLine(inc.Title))
	p("Incident %s · %s · service %s · %s · draft\n\n", inc.ID, inc.Severity, inc.Service, inc.State)
	p("Incident commander: %s · Communications: %s\n\n", orDefault(inc.Commander, "unassigned"), orDefault(inc.Communications, "unassigned"))

	p("## Summary\n\n")
	p("%s on %s, %s. It was triggered %s and is %s.\n\n", oneLine(inc.Title), inc.Service, inc.Severity, stamp(inc.TriggeredAt), inc.State)

	p("## Impact\n\n")
	p("| stage | at (UTC) | took |\n|---|---|---|\n")
	p("| impact started | %s | |\n", stamp(inc.ImpactStart))
	p("| triggered (MTTI) | %s | %s |\n", stamp(inc.TriggeredAt), took(inc.ImpactStart, inc.TriggeredAt))
	p("| acknowledged (MTTK) | %s | %s |\n", stamp(inc.AcknowledgedAt), took(inc.TriggeredAt, inc.AcknowledgedAt))
	p("| mitigated (MTTF) | %s | %s |\n", stamp(inc.MitigatedAt), took(inc.AcknowledgedAt, inc.MitigatedAt))
	p("| resolved (MTTV) | %s | %s |\n\n", stamp(inc.ResolvedAt), took(inc.MitigatedAt, inc.ResolvedAt))
	if !inc.MitigatedAt.IsZero() {
		p("Users were affected for %s (impact start to mitigation). ", inc.MitigatedAt.Sub(inc.ImpactStart))
	}
	p("%d alert(s) fed this incident. Who and how many were affected, and how much error budget it spent: _to fill in._\n\n", inc.AlertCount)

	p("## Timeline\n\n| at (UTC) | kind | actor | what |\n|---|---|---|---|\n")
	for _, e := range timeline {
		p("| %s | %s | %s | %s |\n", stamp(e.At), e.Kind, cell(e.Actor), cell(e.Text))
	}
	p("\n## Root cause\n\n_What failed, and why. Ask why until the answer is a decision, not a component._\n\n")

	p("## Fault analysis\n\n")
	p("### Can it be measured?\n\n_Which SLI shows this fault, and does its SLO cover the affected route?_\n\n")
	p("### Did it alert?\n\n%s\n\n", didItAlert(inc, timeline))
	p("### How to avoid it?\n\n_The change, test or limit that would have prevented the fault._\n\n")
	p("### How to recover faster?\n\n_What would have cut the time from alert to mitigation: runbook, rollback, automation._\n\n")
	p("### How to avoid recurrence?\n\n_What makes the same class of fault impossible, not only this instance._\n\n")
	p("### Could the design avoid it?\n\n_Would redundancy, isolation, degradation or a different dependency have contained it?_\n\n")

	p("## The three golden questions\n\n")
	p("### How was it found?\n\n%s\n\n", firstOf(timeline, KindAlert, "_By whom or by which alert, and how long after impact started._"))
	p("### How was it fixed?\n\n%s\n\n", firstOf(timeline, KindMitigate, "_What mitigated it, and what resolved it._"))
	p("### How do we stop it happening again?\n\n_See the todo list._\n\n")

	p("## Todo\n\n")
	if len(todos) == 0 {
		todos = []Todo{
			{Owner: owner, Text: "Write the root cause"},
			{Owner: owner, Text: "Add or fix the SLI and alert that should have caught this"},
			{Owner: owner, Text: "Make recovery faster (runbook, automation)"},
			{Owner: owner, Text: "Prevent recurrence"},
		}
	}
	for _, t := range todos {
		box := " "
		if t.Done {
			box = "x"
		}
		p("- [%s] %s — owner: %s\n", box, oneLine(t.Text), oneLine(t.Owner))
	}
	return b.String()
}

func didItAlert(inc *Incident, timeline []Entry) string {
	for _, e := range timeline {
		if e.Kind == KindAlert && strings.HasPrefix(e.Actor, "alert") {
			return fmt.Sprintf("Yes. The first alert was recorded %s by %s, %s after impact started: %s.",
				stamp(e.At), oneLine(e.Actor), e.At.Sub(inc.ImpactStart), oneLine(e.Text))
		}
	}
	return "No alert is in the timeline: _why did none fire?_"
}

func firstOf(timeline []Entry, k Kind, otherwise string) string {
	for _, e := range timeline {
		if e.Kind == k {
			return fmt.Sprintf("%s, by %s: %s", stamp(e.At), oneLine(e.Actor), oneLine(e.Text))
		}
	}
	return otherwise
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func took(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return "—"
	}
	return b.Sub(a).String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }
