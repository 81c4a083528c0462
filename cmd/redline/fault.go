package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/redline-dev/redline/chaos/faults"
)

func newFault() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject faults into a running redline: delays, errors, aborts, timeouts, dropped messages",
		Long: `fault sets in-process faults through the admin endpoint of a running redline (up or serve).
Every server, client and data client asks the fault registry about each call; a fault
matches by service, kind (http, grpc, sql, cache, queue), side, target, op, lane and
percent, and every fault expires (default ttl 5m, at most chaos.max_ttl): a forgotten fault
removes itself.

  redline fault add --service note --kind grpc --op /note.v1.Note/GetNote --type delay --delay 300ms --ttl 2m
  redline fault add --service search --kind sql --lane stress-1 --type error --code Internal
  redline fault add --service comment --kind queue --type drop --percent 10
  redline fault add --file fault.json        a spec as JSON (the fields of chaos/faults.Spec)
  redline fault list                         active faults and how often each hit
  redline fault rm ID
  redline fault clear                        remove every fault at once
  redline fault events                       added, removed, expired, cleared

A lane-scoped fault (--lane NAME) touches only that lane's traffic; --lane baseline only
traffic without a lane; no --lane, all traffic.`,
	}
	client := adminFlags(cmd, "admin endpoint")

	add := &cobra.Command{Use: "add", Short: "Add a fault (flags, or --file with a JSON spec)", Args: cobra.NoArgs}
	var spec faults.Spec
	var code, file string
	f := add.Flags()
	f.StringVar(&file, "file", "", "a JSON spec (- for stdin); other spec flags are then not allowed")
	f.StringVar(&spec.ID, "id", "", "the fault's id (default: random)")
	f.StringVar(&spec.Type, "type", "", "delay, error, abort, timeout or drop (required)")
	f.StringVar(&spec.Service, "service", "", "only calls in this service (default any)")
	f.StringVar(&spec.Kind, "kind", "", "http, grpc, sql, cache or queue (default any)")
	f.StringVar(&spec.Side, "side", "", "server or client (default any)")
	f.StringVar(&spec.Target, "target", "", "only client calls to this service")
	f.StringVar(&spec.Instance, "instance", "", "only server calls of this instance (note-2 under note.replicas: 2)")
	f.StringVar(&spec.Op, "op", "", "route, method, SQL verb, cache op or subject; a trailing * is a prefix")
	f.StringVar(&spec.Lane, "lane", "", `only this lane's traffic; "baseline": only traffic without a lane (default all)`)
	f.Float64Var(&spec.Percent, "percent", 0, "share of matching calls hit, (0, 100] (default 100)")
	f.StringVar(&spec.Delay, "delay", "", "delay faults: how long, e.g. 300ms")
	f.StringVar(&spec.Jitter, "jitter", "", "delay faults: up to this much more, uniformly")
	f.StringVar(&code, "code", "", "error faults: a gRPC code (Unavailable, Internal, ...) or an HTTP status (503)")
	f.StringVar(&spec.Message, "message", "", "error faults: the error's message")
	f.StringVar(&spec.MaxWait, "max-wait", "", "timeout faults: the longest wait without a deadline (default 30s)")
	f.StringVar(&spec.TTL, "ttl", "", "how long the fault lives (default 5m)")
	f.StringVar(&spec.Until, "until", "", "or when it ends, RFC 3339")
	f.StringVar(&spec.Reason, "reason", "", "why, for the record")
	add.RunE = func(cmd *cobra.Command, _ []string) error {
		if file != "" {
			set := 0
			f.Visit(func(fl *pflag.Flag) {
				if fl.Name != "file" && cmd.InheritedFlags().Lookup(fl.Name) == nil {
					set++
				}
			})
			if set > 0 {
				return usageError{fmt.Errorf("--file takes the whole spec: leave out the other fault flags")}
			}
			data, err := readInput(cmd, "--file", file)
			if err != nil {
				return err
			}
			if spec, err = faults.ParseSpec(data); err != nil {
				return usageError{err}
			}
		} else {
			spec.Code = faults.ErrorCode(code)
			if err := spec.Validate(); err != nil {
				return usageError{err}
			}
		}
		c, err := client()
		if err != nil {
			return err
		}
		var out faults.Fault
		if err := c.do(cmd.Context(), "POST", "/chaos/faults", spec, &out); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "fault %s added, expires %s\n", out.ID, out.ExpiresAt.Format(time.RFC3339))
		return nil
	}

	list := &cobra.Command{Use: "list", Short: "Active faults", Args: cobra.NoArgs}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r struct{ Faults []faults.Fault }
		if err := c.do(cmd.Context(), "GET", "/chaos/faults", nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tSCOPE\tLANE\tPERCENT\tINJECTED\tEXPIRES\tSOURCE")
		for _, x := range r.Faults {
			scope := strings.Join(nonEmpty(x.Service, x.Kind, x.Side, x.Target, x.Op), " ")
			pct := x.Percent
			if pct == 0 {
				pct = 100
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g%%\t%d\t%s\t%s\n", x.ID, x.Type, or(scope), or(x.Lane), pct, x.Injected,
				x.ExpiresAt.Format(time.RFC3339), x.Source)
		}
		return tw.Flush()
	}

	rm := &cobra.Command{Use: "rm ID", Short: "Remove a fault", Args: cobra.ExactArgs(1)}
	rm.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.do(cmd.Context(), "DELETE", "/chaos/faults/"+url.PathEscape(args[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "fault %s removed\n", args[0])
		return nil
	}

	clear := &cobra.Command{Use: "clear", Short: "Remove every fault", Args: cobra.NoArgs}
	clear.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r struct{ Removed int }
		if err := c.do(cmd.Context(), "DELETE", "/chaos/faults", nil, &r); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%d faults removed\n", r.Removed)
		return nil
	}

	events := &cobra.Command{Use: "events", Short: "Faults added, removed, expired and cleared", Args: cobra.NoArgs}
	events.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r struct{ Events []faults.Event }
		if err := c.do(cmd.Context(), "GET", "/chaos/events", nil, &r); err != nil {
			return err
		}
		for _, e := range r.Events {
			fmt.Fprintf(cmd.OutOrStdout(), "%s  %-7s  %s  %s\n", e.Time.Format(time.RFC3339), e.Type, e.ID, e.Description)
		}
		return nil
	}
	cmd.AddCommand(add, list, rm, clear, events)
	return cmd
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
