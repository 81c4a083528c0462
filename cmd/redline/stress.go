package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newStress() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stress",
		Short: "Run an open-model load test (stress token: a signed lane token)",
	}
	token := &cobra.Command{
		Use:   "token",
		Short: "Print a signed lane token for the X-Redline-Lane header",
		Long: `token signs a lane token with stress.key (from --config, or REDLINE_STRESS__KEY). The
BFF admits a request into the lane only with such a token, in the X-Redline-Lane header;
a missing, forged or expired one is stripped and counted (redline_lane_rejected_total).

  export REDLINE_STRESS__KEY=$(head -c 24 /dev/urandom | base64)
  redline up &
  curl -H "X-Redline-Lane: $(redline stress token --lane stress-1)" localhost:8080/v1/explore`,
		Args: cobra.NoArgs,
	}
	path := token.Flags().String("config", "", "YAML config file holding stress.key")
	name := token.Flags().String("lane", "", "the lane: 1 to 32 of a-z, 0-9 and -, starting with a letter")
	ttl := token.Flags().Duration("ttl", time.Hour, "how long the token is valid (at most 24h)")
	token.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadStackConfig(*path)
		if err != nil {
			return err
		}
		tok, err := laneToken(cfg, *name, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), tok)
		return nil
	}
	cmd.AddCommand(token)
	addStressRun(cmd)
	return cmd
}
