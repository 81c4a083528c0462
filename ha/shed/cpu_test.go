package shed

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCPUMax(t *testing.T) {
	cases := []struct {
		in      string
		cores   float64
		ok, err bool
	}{
		{"max 100000\n", 0, false, false},
		{"200000 100000\n", 2, true, false},
		{"50000 100000", 0.5, true, false},
		{"150000", 1.5, true, false}, // period left out: the kernel default
		{"", 0, false, true},
		{"abc 100000", 0, false, true},
		{"100000 0", 0, false, true},
		{"1 2 3", 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			cores, ok, err := parseCPUMax([]byte(c.in))
			if (err != nil) != c.err || ok != c.ok || math.Abs(cores-c.cores) > 1e-9 {
				t.Fatalf("parseCPUMax(%q) = %v, %v, %v; want %v, %v, error %v", c.in, cores, ok, err, c.cores, c.ok, c.err)
			}
		})
	}
}

func TestParseCFS(t *testing.T) {
	cases := []struct {
		quota, period string
		cores         float64
		ok, err       bool
	}{
		{"-1\n", "100000\n", 0, false, false},
		{"150000\n", "100000\n", 1.5, true, false},
		{"x", "100000", 0, false, true},
		{"100000", "0", 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.quota+"/"+c.period, func(t *testing.T) {
			cores, ok, err := parseCFS([]byte(c.quota), []byte(c.period))
			if (err != nil) != c.err || ok != c.ok || math.Abs(cores-c.cores) > 1e-9 {
				t.Fatalf("parseCFS(%q, %q) = %v, %v, %v; want %v, %v, error %v", c.quota, c.period, cores, ok, err, c.cores, c.ok, c.err)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		busy, total float64
		err         bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"full line", "cpu  100 10 50 800 40 0 5 0 30 0\ncpu0 1 2 3 4\n", 165, 1005, false},
		{"old kernel", "cpu 10 0 10 80\n", 20, 100, false},
		{"not the aggregate line", "cpu0 1 2 3 4 5\n", 0, 0, true},
		{"bad number", "cpu 1 x 3 4 5\n", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			busy, total, err := parseProcStat([]byte(c.in))
			if (err != nil) != c.err || busy != c.busy || total != c.total {
				t.Fatalf("parseProcStat(%q) = %v, %v, %v; want %v, %v, error %v", c.in, busy, total, err, c.busy, c.total, c.err)
			}
		})
	}
}

// fakeFS writes files (path relative to root: content) under a temp dir and returns it.
func fakeFS(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		write(t, filepath.Join(root, p), content)
	}
	return root
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const procStat = "cpu  100 0 100 800 0 0 0 0 0 0\n"

func TestDetectCPU(t *testing.T) {
	cases := []struct {
		name   string
		files  map[string]string
		source string
		cores  float64 // capacity per second of wall time, for the cgroup sources
	}{
		{"cgroup v2 with quota", map[string]string{
			"proc/self/cgroup":    "0::/\n",
			"sys/cpu.stat":        "usage_usec 5000000\nuser_usec 1\nsystem_usec 2\n",
			"sys/cpu.max":         "200000 100000\n",
			"proc/stat":           procStat,
			"sys/cpuacct/ignored": "",
		}, SourceCgroup2, 2},
		{"cgroup v2 nested, no quota", map[string]string{
			"proc/self/cgroup":           "0::/kubepods/pod1\n",
			"sys/kubepods/pod1/cpu.stat": "usage_usec 5000000\n",
			"sys/kubepods/pod1/cpu.max":  "max 100000\n",
			"proc/stat":                  procStat,
		}, SourceCgroup2, 4},
		{"cgroup v1 with quota (a v1 cpu.stat has no usage_usec)", map[string]string{
			"proc/self/cgroup":               "4:cpu,cpuacct:/\n0::/\n",
			"sys/cpu.stat":                   "nr_periods 0\nnr_throttled 0\n",
			"sys/cpuacct/cpuacct.usage":      "123456789\n",
			"sys/cpu/cpu.cfs_quota_us":       "50000\n",
			"sys/cpu/cpu.cfs_period_us":      "100000\n",
			"sys/cpu/cpu.shares":             "1024\n",
			"proc/stat":                      procStat,
			"sys/unified/cgroup.controllers": "",
		}, SourceCgroup1, 0.5},
		{"cgroup v1 combined mount, no quota", map[string]string{
			"proc/self/cgroup":                  "3:cpuacct,cpu:/docker/abc\n",
			"sys/cpu,cpuacct/cpuacct.usage":     "1000\n",
			"sys/cpu,cpuacct/cpu.cfs_quota_us":  "-1\n",
			"sys/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
			"proc/stat":                         procStat,
		}, SourceCgroup1, 4},
		{"no cgroup: the host", map[string]string{
			"proc/self/cgroup": "0::/\n",
			"proc/stat":        procStat,
		}, SourceHost, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fakeFS(t, c.files)
			r, err := detectCPU(paths{cgroup: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc"), ncpu: 4})
			if err != nil {
				t.Fatalf("detectCPU: %v", err)
			}
			if r.source() != c.source {
				t.Fatalf("source = %q; want %q", r.source(), c.source)
			}
			if c.cores == 0 {
				return
			}
			t0 := time.Unix(100, 0)
			_, cap0, _ := r.sample(t0)
			_, cap1, err := r.sample(t0.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := (cap1 - cap0) / float64(time.Second); math.Abs(got-c.cores) > 1e-9 {
				t.Fatalf("capacity per second = %v cores; want %v", got, c.cores)
			}
		})
	}
}

func TestDetectCPUNoSource(t *testing.T) {
	root := t.TempDir()
	_, err := detectCPU(paths{cgroup: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc"), ncpu: 1})
	if err == nil || !strings.Contains(err.Error(), "no CPU source") {
		t.Fatalf("detectCPU on an empty tree: err = %v; want no CPU source", err)
	}
}

func TestSamplerEMA(t *testing.T) {
	root := fakeFS(t, map[string]string{
		"cpu.stat": "usage_usec 0\n",
		"cpu.max":  "200000 100000\n", // 2 cores
	})
	s := newSampler(&cgroup2{dir: root, ncpu: 8}, 0.5, time.Hour)
	t0 := time.Unix(100, 0)
	steps := []struct {
		usage string // cumulative usage_usec written before the tick
		at    time.Duration
		want  float64
	}{
		{"usage_usec 0\n", 0, 0},                          // primes only
		{"usage_usec 2000000\n", time.Second, 1},          // 2 core-seconds in 1 s of 2 cores: the first value is taken as is
		{"usage_usec 3000000\n", 2 * time.Second, 0.75},   // 0.5 now: 0.5*0.5 + 0.5*1
		{"usage_usec 3000000\n", 3 * time.Second, 0.375},  // idle
		{"usage_usec 9000000\n", 4 * time.Second, 0.6875}, // over the quota is clamped to 1
	}
	for i, st := range steps {
		write(t, filepath.Join(root, "cpu.stat"), st.usage)
		s.tick(t0.Add(st.at))
		if got := s.load(); math.Abs(got-st.want) > 1e-9 {
			t.Fatalf("step %d: cpu = %v; want %v", i, got, st.want)
		}
	}
	// A read error keeps the last value and is reported.
	if err := os.Remove(filepath.Join(root, "cpu.stat")); err != nil {
		t.Fatal(err)
	}
	s.tick(t0.Add(5 * time.Second))
	if got := s.load(); got != 0.6875 || s.err() == nil {
		t.Fatalf("after a failed read: cpu = %v, err = %v; want 0.6875 kept and an error", got, s.err())
	}
}

func TestNewDetectsTheSource(t *testing.T) {
	root := fakeFS(t, map[string]string{
		"proc/self/cgroup": "0::/\n",
		"sys/cpu.stat":     "usage_usec 1\n",
		"sys/cpu.max":      "max 100000\n",
	})
	s, err := New(withPaths(paths{cgroup: filepath.Join(root, "sys"), proc: filepath.Join(root, "proc"), ncpu: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if st := s.State().(state); st.CPUSource != SourceCgroup2 {
		t.Fatalf("State().CPUSource = %q; want %q", st.CPUSource, SourceCgroup2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
