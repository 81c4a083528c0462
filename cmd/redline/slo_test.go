package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestSLOOfflineVerbs: list, check and rules work on spec files without a running redline,
// and a bad spec is refused naming the file and the field.
func TestSLOOfflineVerbs(t *testing.T) {
	out, _, err := execute("slo", "list")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out, "\n"); lines != 27 || !strings.Contains(out, "note-availability") || !strings.Contains(out, "99.9%") {
		t.Fatalf("slo list = %d lines:\n%s\nwant a header and the 26 built-in SLOs", lines, out)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "signup.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(stacktest.SignupSLO), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(stacktest.SignupSLO, "target: 0.9999", "target: high", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, err := execute("slo", "check", good); err != nil || !strings.Contains(out, "ok: 1 SLOs") {
		t.Fatalf("check good = %q, %v", out, err)
	}
	_, _, err = execute("slo", "check", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:") || !strings.Contains(err.Error(), "spec.objectives[0].target") {
		t.Fatalf("check bad = %v; want the file, line and field", err)
	}
	rules := filepath.Join(dir, "rules")
	if out, _, err := execute("slo", "rules", "--file", good, "--out", rules); err != nil || !strings.Contains(out, "promtool check rules") {
		t.Fatalf("rules = %q, %v", out, err)
	}
	for _, f := range []string{"bff-signup-latency.rules.yaml", "bff-signup-latency.outage.test.yaml", "bff-signup-latency.slowburn.test.yaml"} {
		if _, err := os.Stat(filepath.Join(rules, f)); err != nil {
			t.Errorf("rules did not write %s: %v", f, err)
		}
	}
	if _, _, err := execute("slo", "rules"); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("rules without --out = %v", err)
	}
}

// TestSLOGateCLI: status and gate against a running stack; the gate allows a clean
// service, and once real sign-ups burn the signup SLO it denies with exit status 3.
func TestSLOGateCLI(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "slos.yaml")
	if err := os.WriteFile(spec, []byte(stacktest.SignupSLO), 0o644); err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Admin.Token = "cli-admin-token-0123"
		c.SRE.SLOs, c.SRE.EvalInterval = []string{spec}, time.Second
	})
	flags := []string{"--sre", s.SREURL(), "--token", "cli-admin-token-0123"}
	out, _, err := execute(append([]string{"slo", "gate", "bff"}, flags...)...)
	if err != nil || !strings.HasPrefix(out, "ALLOW release of bff") || !strings.Contains(out, "100.0%") {
		t.Fatalf("gate before traffic = %q, %v", out, err)
	}
	if _, _, err := execute(append([]string{"slo", "gate", "nope"}, flags...)...); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("gate of an unknown service = %v; want the 404 naming it", err)
	}
	for i := range 12 {
		r := stacktest.Do(t, "POST", s.BFF+"/v1/users", map[string]string{"username": fmt.Sprintf("gate%02d", i), "password": "correct horse battery"})
		if r.Status != http.StatusCreated {
			t.Fatalf("sign-up = %d %s", r.Status, r.Body)
		}
	}
	var ee exitError
	stacktest.Eventually(t, "the gate denies", func() (bool, string) {
		out, _, err = execute(append([]string{"slo", "gate", "bff"}, flags...)...)
		return errors.As(err, &ee), out
	})
	if ee.code != gateDenied || !strings.HasPrefix(out, "DENY release of bff") || !strings.Contains(out, "frozen") {
		t.Fatalf("gate after the burn: code %d, %q", ee.code, out)
	}
	out, _, err = execute(append([]string{"slo", "status"}, flags...)...)
	if err != nil || !strings.Contains(out, "bff-signup-latency") || !strings.Contains(out, "page 1h/5m") {
		t.Fatalf("status = %q, %v; want the SLO with its page firing", out, err)
	}
	// The page's incident opens after the router's group wait: the ticket shows up then.
	stacktest.Eventually(t, "valet shows bff overspent with one ticket", func() (bool, string) {
		out, _, err = execute(append([]string{"slo", "valet", "--service", "bff"}, flags...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return err == nil && len(lines) == 2 && strings.HasPrefix(lines[1], "bff ") && strings.HasSuffix(lines[1], " 1") &&
			strings.Contains(lines[1], "× spent"), fmt.Sprint(out, err)
	})
}
