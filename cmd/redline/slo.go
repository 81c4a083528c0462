package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/sre/gate"
	"github.com/redline-dev/redline/sre/rules"
	"github.com/redline-dev/redline/sre/slo"
)

// gateDenied is `redline slo gate`'s exit status when the gate says no: distinct from 1 (the
// command failed), so a pipeline can tell "do not ship" from "could not ask".
const gateDenied = 3

func newSLO() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slo",
		Short: "SLOs: check specs, write Prometheus rules, see budgets, ask the release gate",
		Long: `slo works on OpenSLO v1 specs (the subset in sre/slo's docs) and on the SLO evaluator of a
running redline (up, or serve sre).

Offline, on spec files (--file, repeatable; default sre.slos from --config, else the demo's
built-in SLOs):
  redline slo list                  every SLO: service, SLI, objective, window
  redline slo check FILE...         validate specs; errors name the file, line and field
  redline slo rules --out DIR       Prometheus recording and alerting rules, and a promtool
                                    test per SLO (a full outage pages, a slow burn tickets)

Against the SRE API (--sre, --token):
  redline slo status [NAME]         budget remaining, burn rates per window, firing alerts
  redline slo valet                 per service: volume, availability, latency, errors and
                                    tickets (incidents) over the SLO period
  redline slo gate SERVICE          allow or deny a release from the error budget policy;
                                    exit status 3 when denied, 1 when it could not ask`,
	}
	client := sreFlags(cmd)
	files := cmd.PersistentFlags().StringArray("file", nil, "an SLO spec file (repeatable); default sre.slos from --config, else the built-in SLOs")
	specs := func() ([]slo.SLO, error) {
		if len(*files) > 0 {
			return slo.ParseFiles(*files...)
		}
		path, _ := cmd.PersistentFlags().GetString("config")
		cfg, err := loadStackConfig(path)
		if err != nil {
			return nil, usageError{err}
		}
		return stack.LoadSLOs(cfg.SRE.SLOs)
	}

	list := &cobra.Command{Use: "list", Short: "Every SLO with its SLI, objective and window", Args: cobra.NoArgs}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		slos, err := specs()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLO\tSERVICE\tSLI\tOBJECTIVE\tWINDOW\tROUTES")
		for _, s := range slos {
			sli := string(s.Indicator.Kind)
			if s.Indicator.Threshold > 0 {
				sli += " ≤ " + s.Indicator.Threshold.String()
			}
			window := slo.FormatDuration(s.Period)
			if s.Calendar != "" {
				window = "calendar " + s.Calendar
			}
			routes := "all"
			if n := len(s.Indicator.Routes); n > 0 {
				routes = fmt.Sprint(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s%%\t%s\t%s\n", s.Name, s.Service, sli, pct(s.Objective), window, routes)
		}
		return tw.Flush()
	}

	check := &cobra.Command{Use: "check FILE...", Short: "Validate SLO spec files", Args: cobra.MinimumNArgs(1)}
	check.RunE = func(cmd *cobra.Command, args []string) error {
		slos, err := slo.ParseFiles(args...)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "ok: %d SLOs in %d files\n", len(slos), len(args))
		return nil
	}

	rulesCmd := &cobra.Command{Use: "rules", Short: "Write Prometheus rules and their promtool tests", Args: cobra.NoArgs}
	out := rulesCmd.Flags().String("out", "", "directory to write <slo>.rules.yaml and its tests into (required)")
	rulesCmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *out == "" {
			return usageError{errors.New("--out DIR is required")}
		}
		slos, err := specs()
		if err != nil {
			return err
		}
		written, err := rules.WriteDir(*out, slos)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %d files for %d SLOs to %s\nnext: promtool check rules %s/*.rules.yaml && (cd %s && promtool test rules *.test.yaml)\n",
			len(written), len(slos), *out, *out, *out)
		return nil
	}

	status := &cobra.Command{Use: "status [NAME]", Short: "Budgets, burn rates and firing alerts of the running evaluator", Args: cobra.MaximumNArgs(1)}
	service := status.Flags().String("service", "", "only this service's SLOs")
	status.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var sts []slo.Status
		if len(args) == 1 {
			var one slo.Status
			if err := c.do(cmd.Context(), "GET", "/v1/slos/"+url.PathEscape(args[0]), nil, &one); err != nil {
				return err
			}
			sts = []slo.Status{one}
		} else {
			var r struct{ SLOs []slo.Status }
			if err := c.do(cmd.Context(), "GET", "/v1/slos?service="+url.QueryEscape(*service), nil, &r); err != nil {
				return err
			}
			sts = r.SLOs
		}
		return printStatuses(cmd.OutOrStdout(), sts)
	}

	gateCmd := &cobra.Command{Use: "gate SERVICE", Short: "Allow or deny a release of SERVICE (exit 3: denied)", Args: cobra.ExactArgs(1)}
	gateCmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var d gate.Decision
		if err := c.do(cmd.Context(), "GET", "/v1/gate?service="+url.QueryEscape(args[0]), nil, &d); err != nil {
			return err
		}
		printDecision(cmd.OutOrStdout(), d)
		if !d.Allow {
			return exitError{code: gateDenied, msg: fmt.Sprintf("release of %s denied: %s", d.Service, strings.Join(d.Reasons, "; "))}
		}
		return nil
	}
	valet := &cobra.Command{Use: "valet", Short: "Per service: volume, availability, latency, errors, tickets", Args: cobra.NoArgs}
	valetService := valet.Flags().String("service", "", "only this service")
	valet.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r struct {
			Services []struct {
				Service      string
				Period       time.Duration
				Volume       float64
				Availability *float64 `json:"availability_budget_left"`
				Latency      *float64 `json:"latency_budget_left"`
				Errors       float64  `json:"error_ratio"`
				Tickets      int
			}
		}
		if err := c.do(cmd.Context(), "GET", "/v1/valet?service="+url.QueryEscape(*valetService), nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tPERIOD\tVOLUME\tAVAILABILITY BUDGET\tLATENCY BUDGET\tERRORS\tTICKETS")
		opt := func(v *float64) string {
			if v == nil {
				return "-"
			}
			return budgetLeft(*v)
		}
		for _, s := range r.Services {
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s%%\t%d\n", s.Service, slo.FormatDuration(s.Period), s.Volume,
				opt(s.Availability), opt(s.Latency), pct(s.Errors), s.Tickets)
		}
		return tw.Flush()
	}
	cmd.AddCommand(list, check, rulesCmd, status, gateCmd, valet)
	return cmd
}

func pct(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", 100*v), "0"), ".")
}

func printStatuses(w io.Writer, sts []slo.Status) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLO\tSERVICE\tOBJECTIVE\tBUDGET LEFT\tEVENTS\tERRORS\tBURN 5m\tBURN 1h\tBURN 6h\tBURN 3d\tFIRING")
	for _, st := range sts {
		burn := map[string]string{}
		for _, w := range st.Windows {
			burn[slo.FormatDuration(w.Window)] = fmt.Sprintf("%.2f", w.BurnRate)
		}
		firing := "-"
		if len(st.Firing) > 0 {
			var names []string
			for _, a := range st.Firing {
				names = append(names, fmt.Sprintf("%s %s/%s", a.Severity, slo.FormatDuration(a.Condition.Long), slo.FormatDuration(a.Condition.Short)))
			}
			firing = strings.Join(names, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%%\t%s\t%.0f\t%s%%\t%s\t%s\t%s\t%s\t%s\n", st.SLO, st.Service, pct(st.Objective),
			budgetLeft(st.BudgetRemaining), st.Period.Total, pct(st.Period.ErrorRatio),
			or(burn["5m"]), or(burn["1h"]), or(burn["6h"]), or(burn["3d"]), firing)
	}
	return tw.Flush()
}

// budgetLeft is a budget's remaining share, or how many times over it is spent.
func budgetLeft(v float64) string {
	if v < 0 {
		return fmt.Sprintf("0%% (%.1f× spent)", 1-v)
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printDecision(w io.Writer, d gate.Decision) {
	verdict := "ALLOW"
	if !d.Allow {
		verdict = "DENY"
	}
	fmt.Fprintf(w, "%s release of %s (%s)\n", verdict, d.Service, d.At.Format("2006-01-02 15:04:05Z07:00"))
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSLO\tOBJECTIVE\tBUDGET LEFT\tEVENTS\tFROZEN")
	for _, b := range d.SLOs {
		fmt.Fprintf(tw, "%s\t%s%%\t%s\t%.0f\t%v\n", b.SLO, pct(b.Objective), budgetLeft(b.BudgetRemaining), b.Events, b.Frozen)
	}
	if len(d.Incidents) > 0 {
		fmt.Fprintln(tw, "\nINCIDENT\tSLO\tBUDGET SPENT\tPOSTMORTEM\tTITLE")
		for _, in := range d.Incidents {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", in.Incident, in.SLO, gate.ShareText(in.Spent), in.Postmortem, in.Title)
		}
	}
	tw.Flush()
}
