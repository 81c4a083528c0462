package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
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

// MaxPostmortemBytes bounds the Markdown of a published postmortem.
const MaxPostmortemBytes = 256 << 10

// maxAuthorBytes bounds a postmortem's author, a name for the timeline.
const maxAuthorBytes = 200

// PublishPostmortem publishes markdown as the postmortem of incident id, written by author:
// the row, the incident's PostmortemAt and a postmortem timeline entry in one transaction.
// Publishing again replaces the text and adds another entry.
//
// The markdown must be UTF-8 text of at most MaxPostmortemBytes that keeps every heading of
// PostmortemHeadings, each on a line of its own (the draft from Postmortem has them all);
// ErrBadInput otherwise, naming every missing heading. The incident must be mitigated or
// resolved: ErrNotMitigated otherwise, ErrNotFound if there is no incident id.
func (s *Store) PublishPostmortem(ctx context.Context, id, author, markdown string) (*Incident, error) {
	author = strings.TrimSpace(author)
	if err := validatePostmortem(author, markdown); err != nil {
		return nil, err
	}
	now := s.now()
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		cur, err := lockIncident(ctx, tx, id, now)
		if err != nil {
			return err
		}
		if cur.State.rank() < Mitigated.rank() {
			return errs.Newf(codes.FailedPrecondition, ReasonNotMitigated,
				"incident %s is %s: mitigate or resolve it before publishing its postmortem", id, cur.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET postmortem_at = ? WHERE id = ?`, ms(now), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_postmortems (incident_id, markdown, author, published_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET
			markdown = excluded.markdown, author = excluded.author, published_at = excluded.published_at`,
			id, markdown, author, ms(now)); err != nil {
			return err
		}
		verb := "published"
		if !cur.PostmortemAt.IsZero() {
			verb = "republished"
		}
		return appendEntry(ctx, tx, id, Entry{At: now, Kind: KindPostmortem, Actor: author,
			Text: fmt.Sprintf("postmortem %s by %s (%d bytes)", verb, author, len(markdown))})
	})
	if err != nil {
		return nil, wrapErr("incident: publish postmortem of "+id, err)
	}
	return s.Get(ctx, id)
}

// PublishedPostmortem returns the published postmortem of incident id, its author and when
// it was published: ErrNoPostmortem while there is only the draft, ErrNotFound if there is
// no incident id.
func (s *Store) PublishedPostmortem(ctx context.Context, id string) (markdown, author string, at time.Time, err error) {
	var md, au sql.NullString
	var pub sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT p.markdown, p.author, p.published_at FROM incidents i
		LEFT JOIN incident_postmortems p ON p.incident_id = i.id WHERE i.id = ?`, id).Scan(&md, &au, &pub)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", time.Time{}, errs.NotFound(ReasonNotFound, "incident %s not found", id)
	case err != nil:
		return "", "", time.Time{}, fmt.Errorf("incident: postmortem of %s: %w", id, err)
	case !md.Valid:
		return "", "", time.Time{}, errs.NotFound(ReasonNoPostmortem, "incident %s has no published postmortem", id)
	}
	return md.String, au.String, fromMS(pub.Int64), nil
}

func validatePostmortem(author, markdown string) error {
	switch {
	case author == "":
		return badInput("postmortem author: missing")
	case len(author) > maxAuthorBytes:
		return badInput("postmortem author: %d bytes, at most %d", len(author), maxAuthorBytes)
	case !isText(author):
		return badInput("postmortem author: not UTF-8 text")
	case strings.TrimSpace(markdown) == "":
		return badInput("postmortem markdown: missing")
	case len(markdown) > MaxPostmortemBytes:
		return badInput("postmortem markdown: %d bytes, at most %d", len(markdown), MaxPostmortemBytes)
	case !isText(markdown):
		return badInput("postmortem markdown: not UTF-8 text")
	}
	if missing := missingHeadings(markdown); len(missing) > 0 {
		return badInput("postmortem markdown: missing heading(s) %s (keep every heading of the draft)", strings.Join(missing, ", "))
	}
	return nil
}

// isText reports whether s is UTF-8 without NUL bytes, which a TEXT column holds on both
// engines (PostgreSQL refuses the rest).
func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// missingHeadings returns, quoted and in order, the PostmortemHeadings that are not a line
// of md (blanks around it aside).
func missingHeadings(md string) []string {
	have := map[string]bool{}
	for line := range strings.Lines(md) {
		have[strings.TrimSpace(line)] = true
	}
	var missing []string
	for _, h := range PostmortemHeadings {
		if !have[h] {
			missing = append(missing, fmt.Sprintf("%q", h))
		}
	}
	return missing
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
	impact := ""
	if s.o.impact != nil {
		impact = s.o.impact(inc)
	}
	return draft(inc, tl, todos, impact), nil
}

// Postmortem drafts a postmortem in Markdown: the facts (summary, impact with the time of
// each stage, the timeline) filled in, the analysis sections (PostmortemHeadings) with
// what the timeline tells and a prompt for the rest, and the todo list with owners. With no
// todos it proposes the template's follow-ups, owned by the incident commander.
func Postmortem(inc *Incident, timeline []Entry, todos []Todo) string {
	return draft(inc, timeline, todos, "")
}

// draft is Postmortem with what is known of the impact (WithImpact), "" for nothing.
func draft(inc *Incident, timeline []Entry, todos []Todo, impact string) string {
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
	if impact != "" {
		p("%d alert(s) fed this incident. %s Who and how many were affected: _to fill in._\n\n", inc.AlertCount, impact)
	} else {
		p("%d alert(s) fed this incident. Who and how many were affected, and how much error budget it spent: _to fill in._\n\n", inc.AlertCount)
	}

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
