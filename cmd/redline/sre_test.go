package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestIncidentCLI drives an incident through the CLI against a running stack: open, list,
// ack, mitigate, resolve, show its timeline, draft and publish its postmortem, MTTx, and
// who is on call.
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
	draft, stderr, err := execute(append([]string{"incident", "postmortem", id}, flags...)...)
	if err != nil || !strings.Contains(draft, "How to recover faster?") || !strings.Contains(stderr, "this is a draft") {
		t.Fatalf("postmortem = %v, stderr %q:\n%s", err, stderr, draft)
	}

	// Publish: a file that lost a heading is refused, naming it; --publish wants --author.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.md")
	if err := os.WriteFile(bad, []byte(strings.Replace(draft, "### Did it alert?\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := execute(append([]string{"incident", "postmortem", id, "--publish", bad, "--author", "ana"}, flags...)...); err == nil ||
		!strings.Contains(err.Error(), "Did it alert?") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("publishing without a heading = %v; want a 400 naming the heading", err)
	}
	if _, _, err := execute(append([]string{"incident", "postmortem", id, "--publish", bad}, flags...)...); err == nil ||
		!strings.Contains(err.Error(), "--author") {
		t.Fatalf("--publish without --author = %v; want a usage error", err)
	}
	file := filepath.Join(dir, "pm.md")
	text := draft + "\nWe learned to roll back sooner.\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run("incident", "postmortem", id, "--publish", file, "--author", "ana")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(out, "postmortem published by ana") || !strings.Contains(out, id) {
		t.Fatalf("publish = %q; want one line confirming it", out)
	}
	got, stderr, err := execute(append([]string{"incident", "postmortem", id}, flags...)...)
	if err != nil || got != text || !strings.Contains(stderr, "published by ana") {
		t.Fatalf("postmortem after publishing = %v, stderr %q, same text %v", err, stderr, got == text)
	}
	// Again from stdin, by bo: replaced.
	root := newRoot()
	var stdout bytes.Buffer
	root.SetIn(strings.NewReader(strings.Replace(text, "sooner", "at once", 1)))
	root.SetOut(&stdout)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"incident", "postmortem", id, "--publish", "-", "--author", "bo"}, flags...))
	if err := root.Execute(); err != nil || !strings.Contains(stdout.String(), "published by bo") {
		t.Fatalf("publish from stdin = %v, %q", err, stdout.String())
	}
	if out := run("incident", "postmortem", id); !strings.Contains(out, "roll back at once") {
		t.Errorf("postmortem after publishing again:\n%s", out)
	}
	if out := run("incident", "show", id); !strings.Contains(out, "postmortem published by ana") || !strings.Contains(out, "postmortem republished by bo") {
		t.Errorf("show lacks the two publications:\n%s", out)
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
