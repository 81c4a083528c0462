package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/chaos/procs"
	"github.com/redline-dev/redline/services/stack"
)

func newProc() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proc",
		Short: "Process faults in `redline up --procs`: list, kill -9, stop, start, pause, resume, restart",
		Long: `proc talks to the supervisor of a running ` + "`redline up --procs`" + ` (its admin endpoint, admin.addr),
which runs every service as its own ` + "`redline serve`" + ` process and starts again whatever
exits unexpectedly (after a backoff from 100ms doubling to 5s).

  redline proc list                          every process: pid, state, restarts, crashes, admin address
  redline proc kill order [--restart-after 2s]
                                             SIGKILL; started again after --restart-after (default at once)
  redline proc stop inventory                SIGKILL, and no restart until start
  redline proc start inventory
  redline proc pause payment [--for 10s]     SIGSTOP, then SIGCONT after --for (default 30s, at most 10m):
                                             a forgotten pause ends by itself
  redline proc resume payment                SIGCONT now
  redline proc restart note                  SIGTERM, SIGKILL after stop_timeout, start again

Names are the services: ` + strings.Join(stack.Services, ", ") + `.`,
	}
	client := adminFlags(cmd, "supervisor")

	list := &cobra.Command{Use: "list", Short: "Every process: pid, state, restarts, crashes, admin address, last exit", Args: cobra.NoArgs}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r struct{ Procs []procs.Info }
		if err := c.do(cmd.Context(), "GET", "/chaos/procs", nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPID\tSTATE\tRESTARTS\tCRASHES\tSTARTED\tADMIN\tLAST EXIT")
		for _, p := range r.Procs {
			state := string(p.State)
			if p.PausedUntil != nil {
				state += " until " + p.PausedUntil.Format(time.TimeOnly)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Name, p.PID, state, p.Restarts, p.Crashes,
				p.StartedAt.Local().Format(time.TimeOnly), or(p.Admin), or(p.LastExit))
		}
		return tw.Flush()
	}
	cmd.AddCommand(list)

	action := func(name, short string, body func() (any, error)) *cobra.Command {
		sub := &cobra.Command{Use: name + " NAME", Short: short, Args: cobra.ExactArgs(1)}
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			b, err := body()
			if err != nil {
				return usageError{err}
			}
			c, err := client()
			if err != nil {
				return err
			}
			var in procs.Info
			if err := c.do(cmd.Context(), "POST", "/chaos/procs/"+url.PathEscape(args[0])+"/"+name, b, &in); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", in.Name, describeProc(in))
			return nil
		}
		return sub
	}
	none := func() (any, error) { return nil, nil }
	var restartAfter, pauseFor time.Duration
	kill := action("kill", "SIGKILL a process; it starts again after --restart-after", func() (any, error) {
		if restartAfter < 0 || restartAfter > procs.MaxRestartAfter {
			return nil, fmt.Errorf("--restart-after %v: want 0 to %v", restartAfter, procs.MaxRestartAfter)
		}
		return procs.KillRequest{RestartAfter: restartAfter.String()}, nil
	})
	kill.Flags().DurationVar(&restartAfter, "restart-after", 0, "how long the process stays down (default 0: start it again at once; at most 10m)")
	pause := action("pause", "SIGSTOP a process; SIGCONT after --for", func() (any, error) {
		if pauseFor <= 0 || pauseFor > procs.MaxPause {
			return nil, fmt.Errorf("--for %v: a pause lasts more than 0 and at most %v", pauseFor, procs.MaxPause)
		}
		return procs.PauseRequest{For: pauseFor.String()}, nil
	})
	pause.Flags().DurationVar(&pauseFor, "for", procs.DefaultPause, "how long the pause lasts (at most 10m)")
	cmd.AddCommand(kill, pause,
		action("stop", "SIGKILL a process; no restart until start", none),
		action("start", "Start a stopped process now", none),
		action("resume", "SIGCONT a paused process now", none),
		action("restart", "SIGTERM, SIGKILL after stop_timeout, start again", none))
	return cmd
}

// describeProc says where a process is, for the actions' output.
func describeProc(in procs.Info) string {
	switch {
	case in.State == procs.Paused && in.PausedUntil != nil:
		return fmt.Sprintf("paused (pid %d) until %s", in.PID, in.PausedUntil.Local().Format(time.TimeOnly))
	case in.State == procs.Restarting && in.NextStart != nil:
		return "restarting at " + in.NextStart.Local().Format(time.TimeOnly)
	case in.State != procs.Running && in.PID != 0:
		return fmt.Sprintf("%s (pid %d on its way down)", in.State, in.PID)
	case in.PID != 0:
		return fmt.Sprintf("%s (pid %d)", in.State, in.PID)
	}
	return string(in.State)
}
