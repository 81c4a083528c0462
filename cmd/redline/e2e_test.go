package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/data/mq/mqtest"
)

// These tests run the real binary, as a user would.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "redline-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "redline")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build redline: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs the binary in dir; the process is killed at cleanup if still running.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan error, 1)}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.output())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil // let cleanup's receive pass
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("process still running after %v", within)
		return -1
	}
}

// startOnFreePorts runs the binary with the config configure writes (on ports from
// freeAddr) until the admin address configure returns is ready. A port freeAddr found free
// can be handed to another socket before the process binds it; the process then exits at
// once with "address already in use", and it is started again on new ports, at most three
// times in all.
func startOnFreePorts(t *testing.T, dir string, configure func() (admin string), args ...string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		admin := configure()
		p := start(t, dir, nil, args...)
		deadline := time.Now().Add(30 * time.Second)
		for !readyz(admin).Ready {
			select {
			case <-p.done:
				p.done <- nil // let cleanup's receive pass
				if attempt < 3 && strings.Contains(p.output(), "address already in use") {
					t.Logf("attempt %d: a port was taken before the bind; trying new ports", attempt)
					goto again
				}
				t.Fatalf("%v exited before it was ready:\n%s", args, p.output())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("ready: not within 30s")
			}
		}
		return p
	again:
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

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type readiness struct {
	status   int
	Ready    bool              `json:"ready"`
	Draining bool              `json:"draining"`
	Checks   map[string]string `json:"checks"`
}

func readyz(admin string) readiness {
	var r readiness
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r
}

func post(t *testing.T, url, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSIGTERMDrainsInFlightRequest(t *testing.T) {
	dir := t.TempDir()
	var admin, bff string
	p := startOnFreePorts(t, dir, func() string {
		admin, bff = freeAddr(t), freeAddr(t)
		// bcrypt cost 14 makes registration take about a second: a real slow request.
		cfg := fmt.Sprintf("admin: {addr: %q}\nbff: {addr: %q}\nquota: {addr: %q}\npayprovider: {addr: %q}\nsre: {addr: %q}\nuser: {bcrypt_cost: 14}\ntimeouts: {edge: 20s}\ndrain: 1s\n",
			admin, bff, freeAddr(t), freeAddr(t), freeAddr(t))
		if err := os.WriteFile(filepath.Join(dir, "redline.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return admin
	}, "up", "--config", "redline.yaml")

	// Send the whole request on a raw connection, so it is in flight before the signal.
	conn, err := net.Dial("tcp", bff)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"username":"drainer","password":"correct horse battery"}`
	fmt.Fprintf(conn, "POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	eventually(t, 10*time.Second, "request reached the user service", func() bool {
		return inflightRegister(t, admin)
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "readiness false while draining", func() bool {
		r := readyz(admin)
		return r.status == http.StatusServiceUnavailable && r.Draining
	})
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("in-flight request = %d %s; want 201", resp.StatusCode, b)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code = %d; want 0", code)
	}
}

// inflightRegister reports whether the user service's Register call is in flight,
// from the in-flight gauge on /metrics.
func inflightRegister(t *testing.T, admin string) bool {
	_, m := get(t, "http://"+admin+"/metrics")
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "redline_grpc_server_inflight{") && strings.Contains(l, `route="/user.v1.User/Register"`) {
			return !strings.HasSuffix(l, " 0")
		}
	}
	return false
}

func TestDynamicConfigReload(t *testing.T) {
	dir := t.TempDir()
	var admin, bff, quotaAddr, provider, sre string
	path := filepath.Join(dir, "redline.yaml")
	write := func(level string) {
		cfg := fmt.Sprintf("admin: {addr: %q}\nbff: {addr: %q}\nquota: {addr: %q}\npayprovider: {addr: %q}\nsre: {addr: %q}\nlog: {level: %s}\n",
			admin, bff, quotaAddr, provider, sre, level)
		// Write then rename, as editors do.
		if err := os.WriteFile(path+".tmp", []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	p := startOnFreePorts(t, dir, func() string {
		admin, bff, quotaAddr, provider, sre = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
		write("info")
		return admin
	}, "up", "--config", "redline.yaml")
	write("debug")
	changed := time.Now()
	eventually(t, 2*time.Second, "log.level reload observed", func() bool {
		_, cfg := get(t, "http://"+admin+"/config")
		return strings.Contains(cfg, `"level": "debug"`)
	})
	t.Logf("reload observed after %v", time.Since(changed))
	eventually(t, 2*time.Second, "reload logged", func() bool { return strings.Contains(p.output(), "config reloaded") })
	// The new level is in force: debug records now appear.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code = %d; want 0", code)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("bff:\n  max_body: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, nil, "up", "--config", "bad.yaml")
	if code := p.wait(t, 20*time.Second); code != 2 {
		t.Fatalf("exit code = %d; want 2 (usage)", code)
	}
	out := p.output()
	if !strings.Contains(out, "bad.yaml") || !strings.Contains(out, "bff.max_body") {
		t.Fatalf("error does not name the file and key:\n%s", out)
	}
}

func TestServeWithEtcdSurvivesNoteCrash(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:2379", time.Second); err != nil {
		t.Fatalf("etcd is not on 127.0.0.1:2379 (%v): run scripts/services.sh", err)
	} else {
		c.Close()
	}
	dir := t.TempDir()
	env := []string{
		"REDLINE_AUTH__TOKEN_KEY=e2e-test-key-0123456789",
		"REDLINE_REGISTRY=etcd://127.0.0.1:2379",
		// This test owns its registry keys.
		fmt.Sprintf("REDLINE_REGISTRY_PREFIX=/redline-test/%s-%d/", t.Name(), time.Now().UnixNano()),
		"REDLINE_REGISTRY_TTL=2s",
		// Note publishes its events to the feed through the shared NATS, on a stream of its own.
		"REDLINE_QUEUE=nats://127.0.0.1:4222",
		fmt.Sprintf("REDLINE_QUEUE_PREFIX=e2e%d", time.Now().UnixNano()),
		fmt.Sprintf("REDLINE_QUEUE_STREAM=E2E_%d", time.Now().UnixNano()),
	}
	mqtest.DeleteStreamAtCleanup(t, mqtest.URL, strings.TrimPrefix(env[len(env)-1], "REDLINE_QUEUE_STREAM="))
	userAdmin, noteAdmin, bffAdmin, bff := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	noteAddr := freeAddr(t)
	start(t, dir, env, "serve", "user", "--admin.addr", userAdmin)
	start(t, dir, env, "serve", "feed", "--admin.addr", freeAddr(t))
	startNote := func() *proc {
		return start(t, dir, env, "serve", "note", "--admin.addr", noteAdmin, "--note.addr", noteAddr)
	}
	note := startNote()
	start(t, dir, env, "serve", "bff", "--admin.addr", bffAdmin, "--bff.addr", bff)
	eventually(t, 30*time.Second, "bff ready", func() bool { return readyz(bffAdmin).Ready })

	base := "http://" + bff + "/v1"
	if code, _ := post(t, base+"/users", `{"username":"eve","password":"correct horse battery"}`); code != 201 {
		t.Fatalf("register = %d", code)
	}
	code, sess := post(t, base+"/sessions", `{"username":"eve","password":"correct horse battery"}`)
	if code != 201 {
		t.Fatalf("login = %d %v", code, sess)
	}
	bearer := "Bearer " + sess["token"].(string)
	if code, n := post(t, base+"/notes", `{"title":"before the crash"}`, "Authorization", bearer); code != 201 {
		t.Fatalf("create note = %d %v", code, n)
	}

	// kill -9: no deregistration; the lease must expire.
	if err := note.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	note.wait(t, 5*time.Second)
	eventually(t, 10*time.Second, "bff /readyz reports note missing", func() bool {
		r := readyz(bffAdmin)
		return r.status == http.StatusServiceUnavailable && strings.Contains(r.Checks["note"], "no instances")
	})

	startNote()
	eventually(t, 30*time.Second, "bff ready again without a restart", func() bool { return readyz(bffAdmin).Ready })
	eventually(t, 10*time.Second, "notes served again", func() bool {
		code, _ := post(t, base+"/notes", `{"title":"after the restart"}`, "Authorization", bearer)
		return code == 201
	})
}
