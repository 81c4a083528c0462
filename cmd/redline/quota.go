package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	"github.com/redline-dev/redline/services/stack"
)

func newQuota() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Run the distributed quota service or show what it has granted",
		Long: `The quota service shares global rate limits fairly (max-min) among the instances
that use them, through leases they consume locally. redline up runs one in process on
quota.addr (127.0.0.1:9190); quota serve runs one alone, with --quota.store redis://...
so several can serve together.`,
	}
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the quota service in this process (same as: redline serve quota)",
		Args:  cobra.NoArgs,
	}
	path := configFlags(serve.Flags())
	serve.RunE = func(cmd *cobra.Command, _ []string) error {
		return run(cmd, *path, []string{stack.QuotaName}, func(w io.Writer, s *stack.Stack) {
			fmt.Fprintf(w, "quota is up\n  gRPC   %s\n  admin  %s\n", s.GRPCAddr(stack.QuotaName), s.AdminURL())
		}, nil)
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show resources, clients, demands, grants and lease ages",
		Args:  cobra.NoArgs,
	}
	addr := status.Flags().String("addr", stack.Default().Quota.Addr, "the quota service's gRPC address")
	status.RunE = func(cmd *cobra.Command, _ []string) error {
		conn, err := kitgrpc.NewClient(*addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		st, err := quotav1.NewQuotaClient(conn).Status(ctx, &quotav1.StatusRequest{})
		if err != nil {
			return fmt.Errorf("quota service at %s: %w (is it running? redline up or redline quota serve; --addr to point elsewhere)", *addr, err)
		}
		printQuotaStatus(cmd.OutOrStdout(), st)
		return nil
	}
	cmd.AddCommand(serve, status)
	return cmd
}

func printQuotaStatus(w io.Writer, st *quotav1.StatusReply) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	if len(st.GetResources()) == 0 {
		fmt.Fprintln(tw, "no resources configured (quota.resources)")
		return
	}
	for _, r := range st.GetResources() {
		learning := ""
		if r.GetLearning() {
			learning = "  (learning: relearning leases after a restart)"
		}
		fmt.Fprintf(tw, "%s\tlimit %.1f/s\tdemand %.1f/s\tgranted %.1f/s\tlease %s%s\n", r.GetResource(), r.GetLimit(),
			r.GetDemand(), r.GetGranted(), time.Duration(r.GetLeaseTtlMs())*time.Millisecond, learning)
		if len(r.GetClients()) == 0 {
			fmt.Fprintln(tw, "  (no clients)")
			continue
		}
		fmt.Fprintln(tw, "  CLIENT\tDEMAND/s\tGRANTED/s\tLEASE AGE\tEXPIRES IN")
		for _, c := range r.GetClients() {
			fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t%s\t%s\n", c.GetClientId(), c.GetDemand(), c.GetGranted(),
				(time.Duration(c.GetLeaseAgeMs()) * time.Millisecond).Round(time.Millisecond),
				(time.Duration(c.GetExpiresInMs()) * time.Millisecond).Round(time.Millisecond))
		}
	}
}
