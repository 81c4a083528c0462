package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/sre/slo"
	"github.com/redline-dev/redline/stress/report"
)

// budgetBefore reads the SLIs of every SLO before the run; the function it returns reads them
// again and says how much error budget the run spent (baseline) or would have spent (a
// lane: lane traffic never counts against an SLO, which is the point of a lane, so this is
// the record of what the same load would have cost real users' budget).
//
// The SLIs come from the admin endpoint's /metrics, filtered to the run's lane; the period's
// events come from the SRE API when it answers. Anything unreadable leaves the budget out of
// the report with a note, never fails the run: it is a record, not a check.
func budgetBefore(ctx context.Context, o runContext) func(context.Context) []report.BudgetSpend {
	slos, err := stack.LoadSLOs(o.Config.SRE.SLOs)
	if err != nil {
		fmt.Fprintf(o.Stderr, "note: no error budget record: %v\n", err)
		return func(context.Context) []report.BudgetSpend { return nil }
	}
	metrics := slo.Scrape([]string{strings.TrimSuffix(o.Admin, "/") + "/metrics"}, o.AdminToken, &http.Client{Timeout: 30 * time.Second})
	gather := func() (slo.FamilySet, error) {
		mfs, err := metrics.Gather()
		if err != nil {
			return nil, err
		}
		return slo.Families(mfs), nil
	}
	before, err := gather()
	if err != nil {
		fmt.Fprintf(o.Stderr, "note: no error budget record: %v\n", err)
		return func(context.Context) []report.BudgetSpend { return nil }
	}
	return func(ctx context.Context) []report.BudgetSpend {
		after, err := gather()
		if err != nil {
			fmt.Fprintf(o.Stderr, "note: no error budget record: %v\n", err)
			return nil
		}
		period := periodEvents(ctx, o)
		var out []report.BudgetSpend
		for _, s := range slos {
			b, a := before.CountsLane(s.Indicator, o.Lane), after.CountsLane(s.Indicator, o.Lane)
			sp := report.BudgetSpend{SLO: s.Name, Service: s.Service, Events: a.Total - b.Total, Bad: max(a.Bad-b.Bad, 0)}
			if sp.Events <= 0 {
				continue
			}
			sp.ErrorRatio = sp.Bad / sp.Events
			sp.BurnRate = sp.ErrorRatio / s.Budget()
			if n, ok := period[s.Name]; ok {
				sp.PeriodEvents = n
				if o.Lane != "" {
					sp.PeriodEvents += sp.Events // the lane's events would have joined the period's
				}
				if sp.PeriodEvents > 0 {
					sp.Spent = sp.Bad / (s.Budget() * sp.PeriodEvents)
				}
			}
			out = append(out, sp)
		}
		return out
	}
}

// periodEvents asks the SRE API for each SLO's events in its period; empty when it does
// not answer (the SRE service is off, or elsewhere).
func periodEvents(ctx context.Context, o runContext) map[string]float64 {
	out := map[string]float64{}
	c := &sreClient{base: "http://" + o.Config.SRE.Addr, token: o.Config.Admin.Token, hc: &http.Client{Timeout: 10 * time.Second}}
	if o.AdminToken != "" {
		c.token = o.AdminToken
	}
	var r struct{ SLOs []slo.Status }
	if err := c.do(ctx, "GET", "/v1/slos", nil, &r); err != nil {
		fmt.Fprintf(o.Stderr, "note: error budget shares unknown: %v\n", err)
		return out
	}
	for _, st := range r.SLOs {
		out[st.SLO] = st.Period.Total
	}
	return out
}

// printBudget writes the run's budget record for the terminal.
func printBudget(w io.Writer, lane string, spends []report.BudgetSpend) {
	if len(spends) == 0 {
		return
	}
	verb := "spent"
	if lane != "" {
		verb = "would have spent (lane " + lane + ", not counted)"
	}
	fmt.Fprintf(w, "error budget this run %s:\n", verb)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SLO\tEVENTS\tBAD\tBURN RATE\tSHARE OF PERIOD BUDGET")
	for _, s := range spends {
		share := "unknown"
		if s.PeriodEvents > 0 {
			share = fmt.Sprintf("%.2f%%", 100*s.Spent)
		}
		fmt.Fprintf(tw, "  %s\t%.0f\t%.0f\t%.2f\t%s\n", s.SLO, s.Events, s.Bad, s.BurnRate, share)
	}
	tw.Flush()
}
