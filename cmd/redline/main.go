// Command redline is one CLI over Redline: run the demo backend in one process (up) or one
// service per process (serve).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().ExecuteContext(context.Background()); err != nil {
		var ue usageError
		var ee exitError
		if errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "redline:", err)
			os.Exit(ee.code)
		}
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "redline:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "redline:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in how the command was called (exit status 2).
type usageError struct{ error }

// exitError ends the command with its own exit status (a stress run's broken thresholds: 99).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "redline",
		Short: "Redline: a Go microservice kit with HA built in, SRE tooling, and full-chain stress and chaos",
		Long: `Redline runs a RedNote-like backend (user, note, feed, interaction, comment,
history, search, product, inventory, order, payment with a mock provider, a quota service
and a BFF gateway) on its kit, with its HA suite on every server and client.

  redline up [--seed]     all services in one process, on embedded stores
  redline up --procs      one process per service, supervised; redline proc kills and pauses them
  redline serve SERVICE   one service per process, found through etcd
  redline quota status    what the quota service has granted, to whom
  redline stress          open-model load in a lane, with leak checks and an HTML report
  redline stress token    a signed lane token, for traffic in a stress lane
  redline fault           in-process faults: delays, errors, aborts, timeouts, drops
  redline drill FILE      a game day: steady state, load, faults, one guard, a report
  redline slo             SLOs, budgets, Prometheus rules, the release gate
  redline incident        incidents, their timeline and postmortems; redline oncall

Configuration comes from --config FILE (YAML), REDLINE_* environment variables
(REDLINE_SECTION__KEY, e.g. REDLINE_ADMIN__TOKEN) and flags, in rising precedence.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUp(), newServe(), newQuota(), newStress(), newFault(), newSLO(), newIncident(), newOncall(), newProc(), newDrill())
	return root
}
