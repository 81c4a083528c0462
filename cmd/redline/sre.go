package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/sre/incident"
)

// apiClient calls a JSON API of a running redline: its SRE API or its admin endpoint.
type apiClient struct {
	base, token string
	hc          *http.Client
	// name and flag say in errors what was called and which flag sets its address.
	name, flag string
}

// sreClient is the SRE API's client.
type sreClient = apiClient

// apiFlags adds --<flag>, --token and --config to cmd and returns the client they make: the
// address defaults to addr of the config, the token to admin.token. name says in errors
// what is called ("SRE API", "admin endpoint").
func apiFlags(cmd *cobra.Command, flag, name string, addr func(*stack.Config) string, key string) func() (*apiClient, error) {
	base := cmd.PersistentFlags().String(flag, "", "the "+name+" (default http://<"+key+"> from the config)")
	token := cmd.PersistentFlags().String("token", "", "the admin token (default admin.token from the config)")
	path := cmd.PersistentFlags().String("config", "", "YAML config file ("+key+", admin.token)")
	return func() (*apiClient, error) {
		cfg, err := loadStackConfig(*path)
		if err != nil {
			return nil, err
		}
		c := &apiClient{base: "http://" + addr(cfg), token: cfg.Admin.Token, hc: &http.Client{Timeout: 10 * time.Second},
			name: name, flag: "--" + flag}
		if *base != "" {
			c.base = strings.TrimSuffix(*base, "/")
		}
		if *token != "" {
			c.token = *token
		}
		return c, nil
	}
}

// sreFlags adds --sre, --token and --config for the SRE API (sre.addr).
func sreFlags(cmd *cobra.Command) func() (*apiClient, error) {
	return apiFlags(cmd, "sre", "SRE API", func(c *stack.Config) string { return c.SRE.Addr }, "sre.addr")
}

// adminFlags adds --admin, --token and --config for the admin endpoint (admin.addr); name
// says what serves it ("admin endpoint", "supervisor").
func adminFlags(cmd *cobra.Command, name string) func() (*apiClient, error) {
	return apiFlags(cmd, "admin", name, func(c *stack.Config) string { return c.Admin.Addr }, "admin.addr")
}

func (c *apiClient) label() (name, flag string) {
	if c.name == "" {
		return "SRE API", "--sre"
	}
	return c.name, c.flag
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	resp, raw, err := kithttp.CallJSON(ctx, c.hc, method, c.base+path, c.token, body, 8<<20)
	if err != nil {
		name, flag := c.label()
		return fmt.Errorf("%s %s: %w (is `redline up` running? %s sets the address)", name, c.base, err, flag)
	}
	if resp.StatusCode >= 300 {
		name, _ := c.label()
		return fmt.Errorf("%s %s %s: %s %s", name, method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func newIncident() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "List, acknowledge, mitigate and resolve incidents; draft and publish their postmortems",
		Long: `incident talks to the SRE API of a running redline (up, or serve sre). Incidents open
from Alertmanager's webhook (POST /v1/alerts/alertmanager) or by hand, page the on-call
through the escalation policy, and keep a timeline of every step.

  redline incident list [--open]
  redline incident open --title "checkout errors" --service order --severity SEV2
  redline incident ack ID | mitigate ID | resolve ID   [--note "..."]
  redline incident show ID        the incident and its timeline
  redline incident postmortem ID  the published postmortem, or else a Markdown draft on
                                  the fault template (stderr says which)
  redline incident postmortem ID --publish FILE --author NAME
                                  publish FILE (- for stdin) once the incident is mitigated;
                                  it must keep every heading of the draft
  redline incident mttx           time to detect, know, fix and verify, p50 and p90`,
	}
	client := sreFlags(cmd)
	out := func(cmd *cobra.Command) io.Writer { return cmd.OutOrStdout() }

	list := &cobra.Command{Use: "list", Short: "Incidents, newest first", Args: cobra.NoArgs}
	open := list.Flags().Bool("open", false, "only incidents not resolved")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		path := "/v1/incidents"
		if *open {
			path += "?open=true"
		}
		var r struct{ Incidents []incident.Incident }
		if err := c.do(cmd.Context(), "GET", path, nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out(cmd), 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSEV\tSERVICE\tTRIGGERED\tTITLE")
		for _, i := range r.Incidents {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.State, i.Severity, i.Service, i.TriggeredAt.Format(time.RFC3339), i.Title)
		}
		return tw.Flush()
	}

	openCmd := &cobra.Command{Use: "open", Short: "Open an incident by hand", Args: cobra.NoArgs}
	title := openCmd.Flags().String("title", "", "what is wrong, for people")
	service := openCmd.Flags().String("service", "", "the service that suffers")
	severity := openCmd.Flags().String("severity", "SEV3", "SEV1 (worst) to SEV4")
	policy := openCmd.Flags().String("policy", stack.DefaultPolicy, "escalation policy to page; empty pages nobody")
	openCmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		if *title == "" {
			return usageError{fmt.Errorf("--title is required")}
		}
		var r incident.Incident
		if err := c.do(cmd.Context(), "POST", "/v1/incidents", map[string]any{"title": *title, "service": *service,
			"severity": *severity, "policy": *policy, "actor": "cli"}, &r); err != nil {
			return err
		}
		fmt.Fprintf(out(cmd), "incident %s %s\n", r.ID, r.State)
		return nil
	}
	cmd.AddCommand(list, openCmd)

	for _, step := range []struct{ verb, short string }{
		{"ack", "Acknowledge: stops the escalation"}, {"mitigate", "Mark the impact stopped"}, {"resolve", "Close the incident"},
	} {
		sub := &cobra.Command{Use: step.verb + " ID", Short: step.short, Args: cobra.ExactArgs(1)}
		note := sub.Flags().String("note", "", "a note for the timeline")
		actor := sub.Flags().String("as", "cli", "who does it, for the timeline")
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var r incident.Incident
			if err := c.do(cmd.Context(), "POST", "/v1/incidents/"+args[0]+"/"+step.verb,
				map[string]string{"actor": *actor, "text": *note}, &r); err != nil {
				return err
			}
			fmt.Fprintf(out(cmd), "incident %s %s\n", r.ID, r.State)
			return nil
		}
		cmd.AddCommand(sub)
	}

	show := &cobra.Command{Use: "show ID", Short: "An incident and its timeline", Args: cobra.ExactArgs(1)}
	show.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var i incident.Incident
		if err := c.do(cmd.Context(), "GET", "/v1/incidents/"+args[0], nil, &i); err != nil {
			return err
		}
		var tl struct{ Entries []incident.Entry }
		if err := c.do(cmd.Context(), "GET", "/v1/incidents/"+args[0]+"/timeline", nil, &tl); err != nil {
			return err
		}
		fmt.Fprintf(out(cmd), "%s  %s  %s  %s\n%s\n\n", i.ID, i.State, i.Severity, i.Service, i.Title)
		tw := tabwriter.NewWriter(out(cmd), 2, 4, 2, ' ', 0)
		for _, e := range tl.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Kind, e.Actor, e.Text)
		}
		return tw.Flush()
	}
	pm := &cobra.Command{Use: "postmortem ID", Short: "Print the postmortem (published, or a draft); --publish publishes one",
		Long: `postmortem prints the incident's published postmortem, or, while none is published, a
Markdown draft on the fault template filled in from the incident and its timeline; stderr
says which.

With --publish FILE (- reads stdin) and --author NAME it publishes FILE as the postmortem
instead. The incident must be mitigated or resolved, and the text must keep every heading
of the draft (the server names any missing); publishing again replaces the text. Each
publication goes into the incident's timeline.

  redline incident postmortem ID > pm.md
  $EDITOR pm.md
  redline incident postmortem ID --publish pm.md --author ana`,
		Args: cobra.ExactArgs(1)}
	publish := pm.Flags().String("publish", "", "publish this Markdown file (- for stdin) as the postmortem")
	author := pm.Flags().String("author", "", "who wrote the postmortem (required with --publish)")
	pm.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case *publish != "" && strings.TrimSpace(*author) == "":
			return usageError{fmt.Errorf("--publish needs --author NAME")}
		case *publish == "" && *author != "":
			return usageError{fmt.Errorf("--author goes with --publish FILE")}
		}
		c, err := client()
		if err != nil {
			return err
		}
		path := "/v1/incidents/" + args[0] + "/postmortem"
		var r struct {
			Markdown    string
			Published   bool
			Author      string
			PublishedAt time.Time `json:"published_at"`
		}
		if *publish != "" {
			md, err := readPostmortem(cmd, *publish)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "PUT", path, map[string]string{"author": *author, "markdown": md}, &r); err != nil {
				return err
			}
			fmt.Fprintf(out(cmd), "incident %s postmortem published by %s at %s (%d bytes)\n",
				args[0], r.Author, r.PublishedAt.Format(time.RFC3339), len(r.Markdown))
			return nil
		}
		if err := c.do(cmd.Context(), "GET", path, nil, &r); err != nil {
			return err
		}
		if r.Published {
			fmt.Fprintf(cmd.ErrOrStderr(), "incident %s: postmortem published by %s at %s\n", args[0], r.Author, r.PublishedAt.Format(time.RFC3339))
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "incident %s: no postmortem published; this is a draft\n", args[0])
		}
		fmt.Fprint(out(cmd), r.Markdown)
		return nil
	}
	mttx := &cobra.Command{Use: "mttx", Short: "Time to detect, know, fix and verify across incidents", Args: cobra.NoArgs}
	mttx.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r incident.MTTx
		if err := c.do(cmd.Context(), "GET", "/v1/mttx", nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out(cmd), 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STAGE\tINCIDENTS\tP50\tP90")
		for _, s := range []incident.Stage{r.Detect, r.Know, r.Fix, r.Verify} {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Name, s.N, s.P50, s.P90)
		}
		return tw.Flush()
	}
	cmd.AddCommand(show, pm, mttx)
	return cmd
}

// readPostmortem reads the file to publish; "-" is stdin.
func readPostmortem(cmd *cobra.Command, name string) (string, error) {
	b, err := readInput(cmd, "--publish", name)
	return string(b), err
}

// readInput reads the file a flag names, or standard input for "-"; a file that cannot be
// read is a usage error naming the flag.
func readInput(cmd *cobra.Command, flag, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("%s -: read stdin: %w", flag, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return b, nil
}

func newOncall() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oncall",
		Short: "Who the default escalation policy pages now",
		Long: `oncall asks the SRE API who each level of the default escalation policy would page now:
the primary rotation, the secondary rotation, then the manager (sre.oncall in the config).`,
		Args: cobra.NoArgs,
	}
	client := sreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var r struct {
			Policy string
			Levels []struct {
				Level      int
				User       string
				AckTimeout string `json:"ack_timeout"`
			}
		}
		if err := c.do(cmd.Context(), "GET", "/v1/oncall", nil, &r); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "LEVEL\tPAGES\tACK WITHIN\t(policy %s)\n", r.Policy)
		for _, l := range r.Levels {
			fmt.Fprintf(tw, "%d\t%s\t%s\t\n", l.Level, l.User, l.AckTimeout)
		}
		return tw.Flush()
	}
	return cmd
}
