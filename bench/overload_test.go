package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sys/unix"
)

// TestOverload is the real-server overload benchmark: the HTTP server of
// cmd/overload-server (a CPU-bound handler of about 2.6 ms) runs in its own process on one
// core, and vegeta drives it from this process, on the other core, at 3× its capacity for
// 30 s, open model, with a 1 s client deadline. Variants: no protection, the kit's server
// with its default HA chain, kratos' BBR (middleware/ratelimit) and go-zero's adaptive
// shedder. README.md, "Overload", explains the setup and records a run.
//
//	REDLINE_BENCH_OVERLOAD=1 go test -run TestOverload -v -timeout 20m .
//
// Knobs (environment): REDLINE_BENCH_DURATION (30s), REDLINE_BENCH_FACTOR (3),
// REDLINE_BENCH_WARMUP (5s), REDLINE_BENCH_ROUNDS (3000 SHA-256 rounds per request),
// REDLINE_BENCH_VARIANTS (baseline,redline,kratos,gozero),
// REDLINE_BENCH_ISOLATION (auto, cgroup, pin or none; see isolation), REDLINE_BENCH_PROCS
// (the server's GOMAXPROCS, 1; a list such as 1,2 runs the whole benchmark once for each).
func TestOverload(t *testing.T) {
	if os.Getenv("REDLINE_BENCH_OVERLOAD") == "" {
		t.Skip("set REDLINE_BENCH_OVERLOAD=1 to run the overload benchmark (about 3 minutes)")
	}
	cfg := overloadConfig{
		duration: envDuration(t, "REDLINE_BENCH_DURATION", 30*time.Second),
		warmup:   envDuration(t, "REDLINE_BENCH_WARMUP", 5*time.Second),
		factor:   envFloat(t, "REDLINE_BENCH_FACTOR", 3),
		rounds:   envString("REDLINE_BENCH_ROUNDS", "3000"),
		variants: strings.Split(envString("REDLINE_BENCH_VARIANTS", "baseline,redline,kratos,gozero"), ","),
		timeout:  time.Second,
	}
	bin := buildServer(t)
	iso := chooseIsolation(t, envString("REDLINE_BENCH_ISOLATION", "auto"))
	t.Logf("isolation: %s", iso)
	pinSelf(t, 0)
	var tables []string
	for _, procs := range strings.Split(envString("REDLINE_BENCH_PROCS", "1"), ",") {
		tables = append(tables, overloadRun(t, bin, iso, procs, cfg))
	}
	t.Log("\n" + strings.Join(tables, "\n"))
}

// overloadRun measures the capacity of the baseline server with GOMAXPROCS=procs, then
// overloads every variant in turn, and returns the table.
func overloadRun(t *testing.T, bin string, iso isolation, procs string, cfg overloadConfig) string {
	// Capacity: the baseline server, closed loop with 4 callers. Its throughput is what one
	// core completes when it never idles; the unloaded latency comes from one serial caller.
	base := startServer(t, bin, "baseline", cfg.rounds, procs, iso)
	_ = attack(t, base.addr, 0, 1, time.Second, cfg.timeout) // warm the connections and the code
	serial := summarize(attack(t, base.addr, 0, 1, 2*time.Second, cfg.timeout), 2*time.Second, cfg.timeout)
	probe := summarize(attack(t, base.addr, 0, 4, 5*time.Second, cfg.timeout), 5*time.Second, cfg.timeout)
	base.stop(t)
	capacity := probe.goodput
	t.Logf("GOMAXPROCS=%s: capacity %.0f req/s (closed loop, 4 callers; p50 %v, p99 %v); unloaded (1 caller) p50 %v, p99 %v, %.0f req/s",
		procs, capacity, ms(probe.p50), ms(probe.p99), ms(serial.p50), ms(serial.p99), serial.goodput)
	if capacity < 10 {
		t.Fatalf("capacity %.1f req/s: the server is not answering", capacity)
	}
	rate := cfg.factor * capacity

	var rows []overloadRow
	for _, v := range cfg.variants {
		srv := startServer(t, bin, v, cfg.rounds, procs, iso)
		unloaded := summarize(attack(t, srv.addr, 0, 1, 2*time.Second, cfg.timeout), 2*time.Second, cfg.timeout)
		attack(t, srv.addr, capacity/2, 0, cfg.warmup, cfg.timeout) // healthy load, as before a spike
		srv.markStart()
		start := time.Now()
		res := attack(t, srv.addr, rate, 0, cfg.duration, cfg.timeout)
		srv.stop(t)
		s := summarize(res, cfg.duration, cfg.timeout)
		row := overloadRow{variant: v, rate: rate, s: s, unloaded: unloaded, capacity: capacity}
		row.cpuMean, row.cpuMax, row.cpuFirstHot = srv.cpuSeen(v, start)
		rows = append(rows, row)
		t.Logf("GOMAXPROCS=%s %s: %s", procs, v, row.detail())
		for _, l := range srv.statSample() {
			t.Logf("  %s", l)
		}
	}
	return fmt.Sprintf("server GOMAXPROCS=%s, ", procs) + overloadTable(rows, capacity, cfg)
}

type overloadConfig struct {
	duration, warmup, timeout time.Duration
	factor                    float64
	rounds                    string
	variants                  []string
}

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDuration(t *testing.T, k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", k, v)
	}
	return d
}

func envFloat(t *testing.T, k string, def float64) float64 {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("%s=%q: want a positive number", k, v)
	}
	return f
}

func buildServer(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "overload-server")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/overload-server")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build overload-server: %v", err)
	}
	return bin
}

// isolation is how the server process is kept apart from the load generator:
//
//   - cgroup: a container of its own, made the way container runtimes make one, so that
//     every framework's CPU reader sees the server's CPU against a 1-core quota: a cgroup v1
//     child with cpu.cfs_quota_us = 1 core, entered before unsharing the mount and cgroup
//     namespaces, and the child's cpu and cpuacct directories bind-mounted over
//     /sys/fs/cgroup/cpu and /sys/fs/cgroup/cpuacct. /proc/self/cgroup then reads "/", as in
//     a container; kratos' and go-zero's readers only read /sys/fs/cgroup/<controller>
//     itself, so they need this view. Needs root, cgroup v1 and unshare(1). The server is
//     also pinned to CPU 1.
//   - pin: taskset -c 1 only. Every reader then sees the whole host (2 CPUs), where the
//     server can use at most half: no CPU-based shedder reaches its threshold.
//   - none: neither.
//
// In every mode the server runs with GOMAXPROCS=1 (REDLINE_BENCH_PROCS) and this process
// pins itself to CPU 0.
type isolation string

func chooseIsolation(t *testing.T, want string) isolation {
	canPin := runtime.NumCPU() >= 2 && lookPath("taskset")
	canCgroup := canPin && os.Geteuid() == 0 && lookPath("unshare") &&
		fileExists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") && fileExists("/sys/fs/cgroup/cpuacct/cpuacct.usage")
	switch want {
	case "cgroup":
		if !canCgroup {
			t.Fatal("REDLINE_BENCH_ISOLATION=cgroup: needs root, 2+ CPUs, taskset, unshare and cgroup v1 cpu,cpuacct at /sys/fs/cgroup")
		}
		return "cgroup"
	case "pin":
		if !canPin {
			t.Fatal("REDLINE_BENCH_ISOLATION=pin: needs 2+ CPUs and taskset")
		}
		return "pin"
	case "none":
		return "none"
	case "auto":
		switch {
		case canCgroup:
			return "cgroup"
		case canPin:
			t.Log("WARNING: no cgroup v1 container possible here: the shedders read the host CPU, which the pinned server cannot push past 50%")
			return "pin"
		}
		t.Log("WARNING: fewer than 2 CPUs or no taskset: server and load generator share the CPU")
		return "none"
	}
	t.Fatalf("REDLINE_BENCH_ISOLATION=%q: want auto, cgroup, pin or none", want)
	return ""
}

func lookPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// pinSelf pins every thread of this process to cpu (threads made later inherit it) and
// sets GOMAXPROCS to 1, both undone at cleanup.
func pinSelf(t *testing.T, cpu int) {
	if runtime.NumCPU() < 2 {
		return
	}
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Logf("not pinning the load generator: %v", err)
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	setAll := func(s *unix.CPUSet) {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if tid, err := strconv.Atoi(task.Name()); err == nil {
				_ = unix.SchedSetaffinity(tid, s)
			}
		}
	}
	setAll(&set)
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { setAll(&orig); runtime.GOMAXPROCS(prev) })
}

// server is one overload-server process.
type server struct {
	cmd     *exec.Cmd
	addr    string
	cgroup  string
	mu      sync.Mutex
	stats   []statLine
	started time.Time // start of the overload phase
	done    chan struct{}
	stopped bool
}

type statLine struct {
	at   time.Time
	json map[string]any
}

const cgroupScript = `set -e
echo $$ > /sys/fs/cgroup/cpu/$RLB_CG/cgroup.procs
echo $$ > /sys/fs/cgroup/cpuacct/$RLB_CG/cgroup.procs
exec unshare --mount --cgroup --propagation private sh -c '
mount --bind /sys/fs/cgroup/cpu/$RLB_CG /sys/fs/cgroup/cpu
mount --bind /sys/fs/cgroup/cpuacct/$RLB_CG /sys/fs/cgroup/cpuacct
exec taskset -c 1 "$@"' sh "$@"`

func startServer(t *testing.T, bin, variant, rounds, procs string, iso isolation) *server {
	t.Helper()
	args := []string{bin, "-variant", variant, "-rounds", rounds}
	s := &server{done: make(chan struct{})}
	switch iso {
	case "cgroup":
		s.cgroup = fmt.Sprintf("redline-bench-%d-%s", os.Getpid(), variant)
		for _, c := range []string{"cpu", "cpuacct"} {
			if err := os.Mkdir(filepath.Join("/sys/fs/cgroup", c, s.cgroup), 0o755); err != nil {
				t.Fatalf("cgroup: %v", err)
			}
		}
		quota := filepath.Join("/sys/fs/cgroup/cpu", s.cgroup, "cpu.cfs_quota_us")
		if err := os.WriteFile(quota, []byte("100000"), 0o644); err != nil { // 1 core of the 100 ms period
			s.removeCgroup()
			t.Fatalf("cgroup quota: %v", err)
		}
		s.cmd = exec.Command("sh", append([]string{"-c", cgroupScript, "sh"}, args...)...)
		s.cmd.Env = append(os.Environ(), "RLB_CG="+s.cgroup)
	case "pin":
		s.cmd = exec.Command("taskset", append([]string{"-c", "1"}, args...)...)
	default:
		s.cmd = exec.Command(args[0], args[1:]...)
	}
	s.cmd.Env = append(orElse(s.cmd.Env, os.Environ()), "GOMAXPROCS="+procs)
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.removeCgroup()
		t.Fatalf("start %s server: %v", variant, err)
	}
	t.Cleanup(func() { s.stop(t) })
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening on "); ok {
				addrc <- a
				continue
			}
			if j, ok := strings.CutPrefix(line, "STAT "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(j), &m) == nil {
					s.mu.Lock()
					s.stats = append(s.stats, statLine{at: time.Now(), json: m})
					s.mu.Unlock()
				}
			}
		}
	}()
	select {
	case s.addr = <-addrc:
	case <-s.done:
		t.Fatalf("%s server exited before listening", variant)
	case <-time.After(15 * time.Second):
		t.Fatalf("%s server did not listen within 15 s", variant)
	}
	// Let the CPU samplers prime.
	time.Sleep(time.Second)
	return s
}

func orElse(a, b []string) []string {
	if a != nil {
		return a
	}
	return b
}

func (s *server) markStart() {
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
}

func (s *server) stop(t *testing.T) {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
	s.removeCgroup()
}

func (s *server) removeCgroup() {
	if s.cgroup == "" {
		return
	}
	for _, c := range []string{"cpu", "cpuacct"} {
		dir := filepath.Join("/sys/fs/cgroup", c, s.cgroup)
		for i := 0; i < 50; i++ { // the killed process leaves the cgroup asynchronously
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// cpuSeen returns the mean and max CPU (0..1) the variant's own shedder read during the
// overload phase from start, and when it first read at least its threshold (-1: never).
func (s *server) cpuSeen(variant string, start time.Time) (mean, maxCPU float64, firstHot time.Duration) {
	threshold := map[string]float64{"redline": 0.8, "kratos": 0.8, "gozero": 0.9}[variant]
	firstHot = -1
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.stats {
		if l.at.Before(start) {
			continue
		}
		c, ok := shedderCPU(variant, l.json)
		if !ok {
			continue
		}
		mean += c
		maxCPU = math.Max(maxCPU, c)
		n++
		if firstHot < 0 && threshold > 0 && c >= threshold {
			firstHot = l.at.Sub(start)
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN(), -1
	}
	return mean / float64(n), maxCPU, firstHot
}

func shedderCPU(variant string, m map[string]any) (float64, bool) {
	sh, _ := m["shedder"].(map[string]any)
	switch variant {
	case "redline":
		st, _ := sh["shed"].(map[string]any)
		c, ok := st["cpu"].(float64)
		return c, ok
	case "kratos":
		c, ok := sh["CPU"].(float64)
		return c / 1000, ok
	case "gozero":
		c, ok := sh["cpu"].(float64)
		return c, ok
	}
	return 0, false
}

// statSample returns a few of the server's STAT lines from the overload phase, condensed.
func (s *server) statSample() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.stats {
		if s.started.IsZero() || l.at.Before(s.started) {
			continue
		}
		el := l.at.Sub(s.started)
		if sec := el.Seconds(); math.Mod(sec, 5) > 0.5 && sec > 3 {
			continue // at 0–3 s every line, then one every 5 s
		}
		out = append(out, fmt.Sprintf("t=%4.1fs %s", el.Seconds(), condense(l.json)))
	}
	return out
}

func condense(m map[string]any) string {
	sh, _ := m["shedder"].(map[string]any)
	g := m["goroutines"]
	if st, ok := sh["shed"].(map[string]any); ok { // redline
		q, _ := sh["queue"].(map[string]any)
		return fmt.Sprintf("goroutines=%v cpu=%.2f pressure=%v shed.limit=%v est=%.1f maxpass=%v minrt=%.1fms shed.inflight=%v queue: limit=%v inflight=%v waiting=%v mode=%v admitted=%v rejected=%v canceled=%v shed.rejected=%v",
			g, st["cpu"], st["pressure"], st["limit"], st["estimate"], st["max_pass"], st["min_rt_ms"], st["inflight"],
			q["limit"], q["inflight"], q["waiting"], q["mode"], q["admitted"], q["rejected"], q["canceled"], st["rejected"])
	}
	b, _ := json.Marshal(sh)
	return fmt.Sprintf("goroutines=%v shedder=%s", g, b)
}

// result is what is kept of one vegeta result.
type result struct {
	ts      time.Time
	at      time.Duration // since the attack began
	latency time.Duration
	code    uint16
	kind    byte // 'o' ok, 'r' rejected (4xx/5xx), 't' client timeout, 'e' other error
}

// attack runs vegeta against addr for d: open model at rate req/s when rate > 0, else
// closed loop with `workers` callers. Every request has the client deadline timeout.
func attack(t *testing.T, addr string, rate float64, workers uint64, d, timeout time.Duration) []result {
	t.Helper()
	opts := []func(*vegeta.Attacker){vegeta.Timeout(timeout), vegeta.KeepAlive(true), vegeta.MaxBody(0)}
	var pacer vegeta.Pacer
	if rate > 0 {
		pacer = vegeta.ConstantPacer{Freq: int(math.Round(rate)), Per: time.Second}
		opts = append(opts, vegeta.Workers(64))
	} else {
		pacer = vegeta.ConstantPacer{}
		opts = append(opts, vegeta.Workers(workers), vegeta.MaxWorkers(workers))
	}
	atk := vegeta.NewAttacker(opts...)
	hdr := http.Header{"Content-Type": []string{"application/json"}}
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: "http://" + addr + "/v1/work", Body: []byte(`{"id":7}`), Header: hdr})
	ctx, cancel := context.WithTimeout(context.Background(), d+timeout+30*time.Second)
	defer cancel()
	go func() { <-ctx.Done(); atk.Stop() }()
	var began time.Time
	out := make([]result, 0, int(rate*d.Seconds())+1024)
	for r := range atk.Attack(tr, pacer, d, "") {
		if began.IsZero() || r.Timestamp.Before(began) {
			began = r.Timestamp // the first result is not necessarily the first request
		}
		res := result{ts: r.Timestamp, latency: r.Latency, code: r.Code}
		switch {
		case r.Code >= 200 && r.Code < 300 && r.Error == "":
			res.kind = 'o'
		case r.Code >= 400:
			res.kind = 'r'
		case strings.Contains(r.Error, "Client.Timeout") || strings.Contains(r.Error, "deadline exceeded"):
			res.kind = 't'
		default:
			res.kind = 'e'
		}
		out = append(out, res)
	}
	if ctx.Err() != nil {
		// Only when this process lags far behind (its core is saturated or shared): the
		// results already in are kept, and the offered rate in the table shows the lag.
		t.Logf("WARNING: attack on %s cut short by its time bound (%v)", addr, d+timeout+30*time.Second)
	}
	if rate > 0 && float64(len(out)) < 0.95*rate*d.Seconds() {
		t.Logf("WARNING: sent %d requests, %.0f%% of the %.0f/s asked: the load generator could not keep up", len(out), 100*float64(len(out))/(rate*d.Seconds()), rate)
	}
	for i := range out {
		out[i].at = out[i].ts.Sub(began)
	}
	return out
}

type summary struct {
	sent, ok, rejected, timeouts, errors int
	codes                                map[uint16]int
	offered, goodput, goodputLate        float64 // req/s; goodputLate over t ≥ 10 s
	goodputEarly                         float64 // over t < 10 s
	p50, p90, p99, max                   time.Duration
	firstReject                          time.Duration // -1: none
}

func summarize(rs []result, d, timeout time.Duration) summary {
	s := summary{codes: map[uint16]int{}, firstReject: -1}
	var lat []time.Duration
	lateOK, earlyOK := 0, 0
	split := 10 * time.Second
	for _, r := range rs {
		s.sent++
		s.codes[r.code]++
		switch r.kind {
		case 'o':
			if r.latency > timeout {
				s.timeouts++
				continue
			}
			s.ok++
			lat = append(lat, r.latency)
			if r.at >= split {
				lateOK++
			} else {
				earlyOK++
			}
		case 'r':
			s.rejected++
			if s.firstReject < 0 || r.at < s.firstReject {
				s.firstReject = r.at
			}
		case 't':
			s.timeouts++
		default:
			s.errors++
		}
	}
	s.offered = float64(s.sent) / d.Seconds()
	s.goodput = float64(s.ok) / d.Seconds()
	s.goodputEarly = float64(earlyOK) / min(d, split).Seconds()
	if d > split {
		s.goodputLate = float64(lateOK) / (d - split).Seconds()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		s.p50, s.p90, s.p99, s.max = q(0.50), q(0.90), q(0.99), lat[len(lat)-1]
	}
	return s
}

type overloadRow struct {
	variant         string
	rate, capacity  float64
	s, unloaded     summary
	cpuMean, cpuMax float64
	cpuFirstHot     time.Duration
}

func (r overloadRow) detail() string {
	codes := make([]string, 0, len(r.s.codes))
	for c, n := range r.s.codes {
		codes = append(codes, fmt.Sprintf("%d:%d", c, n))
	}
	slices.Sort(codes)
	return fmt.Sprintf("offered %.0f/s (target %.0f), goodput %.1f/s (%.0f%% of capacity; t<10s %.1f/s, t≥10s %.1f/s), ok %d, rejected %d (first at %s), timeouts %d, errors %d, codes %s, admitted p50 %v p90 %v p99 %v max %v; unloaded p50 %v p99 %v; shedder CPU mean %.2f max %.2f, first at threshold %s",
		r.s.offered, r.rate, r.s.goodput, 100*r.s.goodput/r.capacity, r.s.goodputEarly, r.s.goodputLate, r.s.ok, r.s.rejected, durOrNever(r.s.firstReject),
		r.s.timeouts, r.s.errors, strings.Join(codes, " "), ms(r.s.p50), ms(r.s.p90), ms(r.s.p99), ms(r.s.max), ms(r.unloaded.p50), ms(r.unloaded.p99),
		r.cpuMean, r.cpuMax, durOrNever(r.cpuFirstHot))
}

func durOrNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}

func overloadTable(rows []overloadRow, capacity float64, cfg overloadConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "capacity %.0f req/s; offered %.1f× for %v, client deadline %v\n\n", capacity, cfg.factor, cfg.duration, cfg.timeout)
	fmt.Fprintln(&b, "| variant | offered | goodput | % of capacity | goodput t<10s / t≥10s | rejected | timeouts | other errors | p50 admitted | p99 admitted | unloaded p99 | shedder CPU mean / max | CPU at threshold from |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		cpu := "–"
		if !math.IsNaN(r.cpuMean) && r.variant != "baseline" {
			cpu = fmt.Sprintf("%.2f / %.2f", r.cpuMean, r.cpuMax)
		}
		hot := "–"
		if r.variant != "baseline" {
			hot = durOrNever(r.cpuFirstHot)
		}
		fmt.Fprintf(&b, "| %s | %.0f/s | %.1f/s | %.0f%% | %.1f / %.1f | %d | %d | %d | %s | %s | %s | %s | %s |\n",
			r.variant, r.s.offered, r.s.goodput, 100*r.s.goodput/capacity, r.s.goodputEarly, r.s.goodputLate,
			r.s.rejected, r.s.timeouts, r.s.errors, ms(r.s.p50), ms(r.s.p99), ms(r.unloaded.p99), cpu, hot)
	}
	return b.String()
}
