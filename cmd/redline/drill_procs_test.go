package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/chaos/drill"
)

// TestDrillOrderKillProcs runs the built-in order-kill drill from the CLI, at half length,
// against `redline up --procs`: order is killed twice and inventory once through the
// supervisor while the checkout scenario runs, and the drill passes only when the
// supervisor's checkout audit, once the shop settles, finds every order consistent and the
// stock conserved.
func TestDrillOrderKillProcs(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	if os.Getenv("REDLINE_BUILTIN_DRILLS") == "alone" {
		t.Skip("REDLINE_BUILTIN_DRILLS=alone: make drills-check runs the built-in drills on their own")
	}
	dir := t.TempDir()
	admin, bff, prefix, _ := startProcs(t, dir, 5*time.Second)
	seedShop(t, prefix, 8, 500)

	out := filepath.Join(dir, "report")
	cmd := exec.Command(binary, "drill", "order-kill", "--duration-scale", "0.5", "--procs", "http://"+admin,
		"--bff", "http://"+bff, "--out", out)
	cmd.Dir = dir
	began := time.Now()
	b, err := cmd.CombinedOutput()
	t.Logf("redline drill order-kill (%v):\n%s", time.Since(began).Round(time.Second), b)
	if err != nil {
		t.Fatalf("redline drill order-kill: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "drill.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep drill.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() || rep.Procs != "http://"+admin || !strings.HasPrefix(rep.Admin, "http://127.0.0.1:") || rep.Admin == rep.Procs {
		t.Fatalf("verdict %s (%s), procs %s, admin %s; want passed, the SLIs read from the BFF's process", rep.Verdict, rep.Reason, rep.Procs, rep.Admin)
	}
	kills := 0
	for _, f := range rep.Faults {
		if f.Phase == drill.PhaseExperiment && f.Proc != nil && f.Proc.Action == drill.ProcKill && !f.AddedAt.IsZero() {
			kills++
		}
	}
	audit := rep.Expectations[len(rep.Expectations)-1]
	if kills != 3 || audit.Kind != drill.ExpectAudit || !audit.Pass || !strings.Contains(audit.Observed, "orders placed during the drill") {
		t.Errorf("%d kills in the experiment, audit %+v; want 3, and the audit held", kills, audit)
	}
	for _, svc := range []string{"order", "inventory"} {
		if in := procState(t, admin, svc); in.Restarts == 0 || in.Crashes != 0 {
			t.Errorf("%s: %+v; want restarted by the drill's kills, never crashed", svc, in)
		}
	}
}
