package shed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CPU sources, as State reports them.
const (
	// SourceCgroup2 reads cpu.stat usage_usec against cpu.max of the process's cgroup v2.
	SourceCgroup2 = "cgroup2"
	// SourceCgroup1 reads cpuacct.usage against cpu.cfs_quota_us/cpu.cfs_period_us.
	SourceCgroup1 = "cgroup1"
	// SourceHost reads the whole host's busy time from /proc/stat.
	SourceHost = "host"
	// SourceInjected is a CPU function given with WithCPU (a simulation or a test).
	SourceInjected = "injected"
)

// cpuReader returns cumulative busy time and cumulative capacity in the same unit, so that
// the usage between two samples is Δbusy/Δcapacity (0..1 of what the process may use).
type cpuReader interface {
	sample(now time.Time) (busy, capacity float64, err error)
	source() string
}

// paths are the file system roots the readers look under; tests point them at t.TempDir.
type paths struct {
	cgroup string // normally /sys/fs/cgroup
	proc   string // normally /proc
	ncpu   int    // CPUs the process may run on, when no quota is set
}

// detectCPU picks the first source that works: cgroup v2, cgroup v1, the host.
func detectCPU(p paths) (cpuReader, error) {
	var errList []error
	own := ownCgroups(p.proc)
	for _, dir := range uniqueDirs(filepath.Join(p.cgroup, own["2"]), p.cgroup) {
		r := &cgroup2{dir: dir, ncpu: p.ncpu}
		_, _, err := r.sample(time.Now())
		if err == nil {
			return r, nil
		}
		errList = append(errList, err)
	}
	quota := v1Dirs(p.cgroup, own["cpu"], "cpu", "cpu,cpuacct", "cpuacct,cpu")
	for _, acct := range v1Dirs(p.cgroup, own["cpuacct"], "cpuacct", "cpu,cpuacct", "cpuacct,cpu") {
		r := &cgroup1{acct: acct, quota: quota, ncpu: p.ncpu}
		_, _, err := r.sample(time.Now())
		if err == nil {
			return r, nil
		}
		errList = append(errList, err)
	}
	h := &host{path: filepath.Join(p.proc, "stat")}
	if _, _, err := h.sample(time.Now()); err != nil {
		return nil, fmt.Errorf("shed: no CPU source: %w", errors.Join(append(errList, err)...))
	}
	return h, nil
}

// ownCgroups maps a controller ("2" for the unified hierarchy) to the process's cgroup path,
// read from /proc/self/cgroup. Inside a container with a cgroup namespace the paths are "/".
func ownCgroups(proc string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(filepath.Join(proc, "self", "cgroup"))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			m["2"] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

func uniqueDirs(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		d = filepath.Clean(d)
		dup := false
		for _, o := range out {
			dup = dup || o == d
		}
		if !dup {
			out = append(out, d)
		}
	}
	return out
}

// v1Dirs lists the directories a v1 controller may be mounted at, the process's own cgroup
// first, then the mount root (a container sees its cgroup there).
func v1Dirs(root, own string, mounts ...string) []string {
	var dirs []string
	for _, m := range mounts {
		if own != "" {
			dirs = append(dirs, filepath.Join(root, m, own))
		}
		dirs = append(dirs, filepath.Join(root, m))
	}
	return uniqueDirs(dirs...)
}

// cgroup2 reads usage_usec from cpu.stat and the quota from cpu.max ("max 100000" when
// unlimited, then the CPUs the process may run on are the capacity).
type cgroup2 struct {
	dir   string
	ncpu  int
	start time.Time
}

func (c *cgroup2) source() string { return SourceCgroup2 }

func (c *cgroup2) sample(now time.Time) (busy, capacity float64, err error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, 0, fmt.Errorf("shed: cgroup2: %w", err)
	}
	usec, err := statField(b, "usage_usec")
	if err != nil {
		return 0, 0, fmt.Errorf("shed: cgroup2 %s: %w", c.dir, err)
	}
	cores := float64(c.ncpu)
	if m, err := os.ReadFile(filepath.Join(c.dir, "cpu.max")); err == nil {
		if q, ok, err := parseCPUMax(m); err != nil {
			return 0, 0, fmt.Errorf("shed: cgroup2 %s: %w", c.dir, err)
		} else if ok {
			cores = q
		}
	}
	return usec * 1e3, c.wall(now) * cores, nil
}

func (c *cgroup2) wall(now time.Time) float64 {
	if c.start.IsZero() {
		c.start = now
	}
	return float64(now.Sub(c.start))
}

// parseCPUMax parses cpu.max: "<quota> <period>" in µs, or "max <period>" for no quota.
// It returns the quota in cores and whether there is one.
func parseCPUMax(b []byte) (cores float64, ok bool, err error) {
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f) > 2 {
		return 0, false, fmt.Errorf("cpu.max %q: want \"<quota> <period>\"", b)
	}
	if f[0] == "max" {
		return 0, false, nil
	}
	period := 100000.0 // the kernel default when the period is left out
	if len(f) == 2 {
		if period, err = strconv.ParseFloat(f[1], 64); err != nil || period <= 0 {
			return 0, false, fmt.Errorf("cpu.max period %q: %w", f[1], errOrInvalid(err))
		}
	}
	quota, err := strconv.ParseFloat(f[0], 64)
	if err != nil || quota <= 0 {
		return 0, false, fmt.Errorf("cpu.max quota %q: %w", f[0], errOrInvalid(err))
	}
	return quota / period, true, nil
}

var errInvalid = errors.New("invalid value")

func errOrInvalid(err error) error {
	if err != nil {
		return err
	}
	return errInvalid
}

// statField returns the value of "key value" in a flat-keyed file such as cpu.stat.
func statField(b []byte, key string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("no %s field", key)
}

// cgroup1 reads cpuacct.usage (ns) against cpu.cfs_quota_us/cpu.cfs_period_us (-1: no quota).
type cgroup1 struct {
	acct  string
	quota []string // candidate directories of the cpu controller
	ncpu  int
	start time.Time
}

func (c *cgroup1) source() string { return SourceCgroup1 }

func (c *cgroup1) sample(now time.Time) (busy, capacity float64, err error) {
	b, err := os.ReadFile(filepath.Join(c.acct, "cpuacct.usage"))
	if err != nil {
		return 0, 0, fmt.Errorf("shed: cgroup1: %w", err)
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("shed: cgroup1 cpuacct.usage: %w", err)
	}
	cores := float64(c.ncpu)
	for _, dir := range c.quota {
		q, ok, err := readCFSQuota(dir)
		if err != nil {
			continue // this candidate is not where the controller is mounted
		}
		if ok {
			cores = q
		}
		break
	}
	if c.start.IsZero() {
		c.start = now
	}
	return ns, float64(now.Sub(c.start)) * cores, nil
}

// readCFSQuota returns the v1 quota in cores and whether there is one (quota -1 is none).
func readCFSQuota(dir string) (cores float64, ok bool, err error) {
	qb, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0, false, err
	}
	pb, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, false, err
	}
	return parseCFS(qb, pb)
}

func parseCFS(quotaB, periodB []byte) (cores float64, ok bool, err error) {
	quota, err := strconv.ParseFloat(strings.TrimSpace(string(quotaB)), 64)
	if err != nil {
		return 0, false, fmt.Errorf("cpu.cfs_quota_us: %w", err)
	}
	if quota <= 0 {
		return 0, false, nil
	}
	period, err := strconv.ParseFloat(strings.TrimSpace(string(periodB)), 64)
	if err != nil || period <= 0 {
		return 0, false, fmt.Errorf("cpu.cfs_period_us %q: %w", periodB, errOrInvalid(err))
	}
	return quota / period, true, nil
}

// host reads the first line of /proc/stat: busy is everything but idle and iowait.
type host struct{ path string }

func (h *host) source() string { return SourceHost }

func (h *host) sample(time.Time) (busy, capacity float64, err error) {
	b, err := os.ReadFile(h.path)
	if err != nil {
		return 0, 0, fmt.Errorf("shed: host: %w", err)
	}
	busy, total, err := parseProcStat(b)
	if err != nil {
		return 0, 0, fmt.Errorf("shed: host %s: %w", h.path, err)
	}
	return busy, total, nil
}

// parseProcStat returns busy and total jiffies of the aggregate "cpu" line. guest and
// guest_nice are already counted in user and nice, so only the first eight fields add up.
func parseProcStat(b []byte) (busy, total float64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("first line %q is not the aggregate cpu line", line)
	}
	var idle float64
	for i, s := range f[1:] {
		if i >= 8 {
			break
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("field %d: %w", i+1, err)
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return total - idle, total, nil
}

// sampler keeps an exponential moving average of the CPU usage. It samples on read, at
// most once per interval, so no goroutine runs and nothing needs stopping: a server that is
// built but never started (a test calling ServeHTTP) leaks nothing, and an idle one reads
// no files.
type sampler struct {
	r        cpuReader
	alpha    float64
	interval time.Duration

	value atomic.Uint64 // math.Float64bits of the EMA, 0..1
	next  atomic.Int64  // unix ns from which the next read samples

	mu        sync.Mutex // guards what tick touches, so a test may call it directly
	prevBusy  float64
	prevCap   float64
	primed    bool
	hasValue  bool
	lastError error
}

func newSampler(r cpuReader, alpha float64, interval time.Duration) *sampler {
	return &sampler{r: r, alpha: alpha, interval: interval} // the first read primes it
}

func (s *sampler) load() float64 { return math.Float64frombits(s.value.Load()) }

// read returns the EMA, first taking a sample if one is due and no other reader is taking
// it.
func (s *sampler) read() float64 {
	if now := time.Now(); now.UnixNano() >= s.next.Load() && s.mu.TryLock() {
		if now.UnixNano() >= s.next.Load() {
			s.next.Store(now.Add(s.interval).UnixNano())
			s.tickLocked(now)
		}
		s.mu.Unlock()
	}
	return s.load()
}

// tick takes one sample. The first one only primes the counters.
func (s *sampler) tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickLocked(now)
}

func (s *sampler) tickLocked(now time.Time) {
	busy, capacity, err := s.r.sample(now)
	if err != nil {
		s.lastError = err // keep the last good value rather than guess
		return
	}
	s.lastError = nil
	if s.primed && capacity > s.prevCap {
		u := (busy - s.prevBusy) / (capacity - s.prevCap)
		u = math.Max(0, math.Min(1, u))
		v := u
		if s.hasValue {
			v = s.alpha*u + (1-s.alpha)*s.load()
		}
		s.value.Store(math.Float64bits(v))
		s.hasValue = true
	}
	s.prevBusy, s.prevCap, s.primed = busy, capacity, true
}

func (s *sampler) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError
}
