package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestFaultCLI: add (flags and file), list, rm, clear and events against a running stack;
// a bad spec is a usage error naming the field, and nothing is added.
func TestFaultCLI(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Admin.Token = "fault-cli-token-0123" })
	flags := []string{"--admin", s.Admin, "--token", "fault-cli-token-0123"}
	run := func(args ...string) (string, error) {
		out, _, err := execute(append(args, flags...)...)
		return out, err
	}
	out, err := run("fault", "add", "--service", "note", "--kind", "grpc", "--op", "/note.v1.Note/GetNote",
		"--type", "delay", "--delay", "1ms", "--ttl", "2m", "--id", "slow-note", "--reason", "cli test")
	if err != nil || !strings.HasPrefix(out, "fault slow-note added, expires ") {
		t.Fatalf("add = %q, %v", out, err)
	}
	spec := filepath.Join(t.TempDir(), "fault.json")
	if err := os.WriteFile(spec, []byte(`{"id":"drop-comments","kind":"queue","type":"drop","percent":10}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run("fault", "add", "--file", spec); err != nil || !strings.Contains(out, "drop-comments") {
		t.Fatalf("add --file = %q, %v", out, err)
	}
	var ue usageError
	for _, bad := range [][]string{
		{"fault", "add", "--service", "note", "--type", "drop"},                                     // drop outside the queue
		{"fault", "add", "--type", "delay", "--delay", "soon"},                                      // not a duration
		{"fault", "add", "--type", "error", "--code", "502"},                                        // no code answers 502
		{"fault", "add", "--file", spec, "--service", "note"},                                       // file and flags
		{"fault", "add", "--type", "delay", "--delay", "1ms", "--percent", "0.0001", "--ttl", "9h"}, // over max_ttl
	} {
		_, err := run(bad...)
		if err == nil {
			t.Fatalf("%v: no error", bad)
		}
		if !errors.As(err, &ue) && !strings.Contains(err.Error(), "400") {
			t.Fatalf("%v: %v; want a usage error or a 400", bad, err)
		}
	}
	out, err = run("fault", "list")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "slow-note") || !strings.Contains(out, "note grpc /note.v1.Note/GetNote") {
		t.Fatalf("list = %q, %v; want a header and the two faults", out, err)
	}
	if out, err := run("fault", "rm", "slow-note"); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("rm = %q, %v", out, err)
	}
	if _, err := run("fault", "rm", "slow-note"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("rm again = %v; want a 404", err)
	}
	if out, err := run("fault", "clear"); err != nil || out != "1 faults removed\n" {
		t.Fatalf("clear = %q, %v", out, err)
	}
	out, err = run("fault", "events")
	for _, want := range []string{"added", "removed", "cleared", "slow-note", "drop-comments"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("events = %q, %v; want %q", out, err, want)
		}
	}
}
