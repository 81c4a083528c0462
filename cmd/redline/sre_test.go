package main

import (
	"strings"
	"testing"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestIncidentCLI drives an incident through the CLI against a running stack: open, list,
// ack, mitigate, resolve, show its timeline, draft its postmortem, MTTx, and who is on call.
func TestIncidentCLI(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Admin.Token = "cli-admin-token-0123" })
	flags := []string{"--sre", s.SREURL(), "--token", "cli-admin-token-0123"}
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := execute(append(args, flags...)...)
		if err != nil {
			t.Fatalf("redline %v: %v\n%s", args, err, stderr)
		}
		return stdout
	}
	out := run("incident", "open", "--title", "checkout errors", "--service", "order", "--severity", "SEV2")
	fields := strings.Fields(out)
	if len(fields) != 3 || fields[2] != "triggered" {
		t.Fatalf("open = %q", out)
	}
	id := fields[1]
	if out := run("incident", "list", "--open"); !strings.Contains(out, id) || !strings.Contains(out, "checkout errors") {
		t.Fatalf("list = %q", out)
	}
	for _, step := range [][2]string{{"ack", "acknowledged"}, {"mitigate", "mitigated"}, {"resolve", "resolved"}} {
		if out := run("incident", step[0], id, "--note", "by the test", "--as", "ana"); !strings.Contains(out, step[1]) {
			t.Fatalf("%s = %q", step[0], out)
		}
	}
	out = run("incident", "show", id)
	for _, want := range []string{"resolved", "ack", "mitigate", "resolve", "by the test"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if out := run("incident", "postmortem", id); !strings.Contains(out, "How to recover faster?") {
		t.Errorf("postmortem:\n%s", out)
	}
	if out := run("incident", "mttx"); !strings.Contains(out, "INCIDENTS") {
		t.Errorf("mttx:\n%s", out)
	}
	if out := run("oncall"); !strings.Contains(out, "oncall-primary") || !strings.Contains(out, "oncall-manager") {
		t.Errorf("oncall:\n%s", out)
	}
	if _, _, err := execute("incident", "list", "--sre", s.SREURL(), "--token", "wrong"); err == nil ||
		!strings.Contains(err.Error(), "ADMIN_TOKEN_REQUIRED") {
		t.Errorf("a wrong token = %v; want ADMIN_TOKEN_REQUIRED", err)
	}
}
