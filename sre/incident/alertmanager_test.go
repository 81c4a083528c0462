package incident

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/log"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/sre/oncall"
)

// alertmanagerBinary is the Debian package prometheus-alertmanager's binary.
const alertmanagerBinary = "prometheus-alertmanager"

// TestAlertmanagerEndToEnd runs the real Alertmanager: a firing alert posted to it reaches
// the webhook receiver, opens an incident, pages the primary and, without an ack, the
// secondary after the timeout; resolving closes it and the timeline has every step.
func TestAlertmanagerEndToEnd(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("integration tests skipped (REDLINE_SKIP_INTEGRATION=1)")
	}
	bin, err := exec.LookPath(alertmanagerBinary)
	if err != nil {
		t.Fatalf("%s not on PATH: run scripts/services.sh (it installs prometheus-alertmanager), or set REDLINE_SKIP_INTEGRATION=1", alertmanagerBinary)
	}
	ctx := context.Background()
	clk := clock.NewFake(t0)
	store := openStore(t, backends(t)[0].open(t), clk)
	p := &pager{}
	esc, err := oncall.NewEscalator(store, directory(), p, oncall.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	srv := kithttp.NewServer("sre", kithttp.Logger(log.Discard()))
	Register(srv, store, NewResponder(store, esc))
	ts := httptest.NewServer(srv)
	defer ts.Close()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: redline
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: redline
    webhook_configs:
      - url: %s/v1/alerts/alertmanager
        send_resolved: true
`, ts.URL)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	}()
	am := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	waitFor(t, "alertmanager ready", func() bool {
		resp, err := client.Get(am + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	alerts := `[{"labels":{"alertname":"OrderBurn","service":"order","severity":"page","slo":"availability"},
		"annotations":{"summary":"order burns its budget at 14.4x"},"startsAt":"` + t0.Add(-time.Minute).Format(time.RFC3339) + `"}]`
	resp, err := client.Post(am+"/api/v2/alerts", "application/json", strings.NewReader(alerts))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting to alertmanager: %s", resp.Status)
	}
	var id string
	waitFor(t, "incident opened by the webhook", func() bool {
		list, err := store.List(ctx, Filter{OpenOnly: true})
		if err != nil || len(list) == 0 {
			return false
		}
		id = list[0].ID
		return true
	})
	inc, err := store.Get(ctx, id)
	if err != nil || inc.Service != "order" || inc.Severity != SEV2 || !inc.ImpactStart.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("incident %+v, %v", inc, err)
	}
	if _, err := esc.Tick(ctx); err != nil || p.users() != "ana" {
		t.Fatalf("primary page: %q, %v", p.users(), err)
	}
	clk.Advance(5 * time.Minute)
	if _, err := esc.Tick(ctx); err != nil || p.users() != "ana,sam" {
		t.Fatalf("secondary page after the ack timeout: %q, %v", p.users(), err)
	}
	clk.Advance(time.Minute)
	if _, err := store.Resolve(ctx, id, "sam", "fixed"); err != nil {
		t.Fatal(err)
	}
	tl, err := store.Timeline(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// Alertmanager may have repeated the group meanwhile; each step is there once, in order.
	if got := kinds(tl); !strings.HasPrefix(got, "alert,") || !strings.HasSuffix(got, "notify,escalate,resolve") {
		t.Fatalf("timeline %s; want alert, notify, escalate, resolve", got)
	}
	for _, e := range tl {
		if e.At.IsZero() {
			t.Errorf("entry without a time: %+v", e)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond every 50 ms for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
