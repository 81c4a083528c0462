package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/stress/report"
)

// settle is how long the after-checks wait for the run's asynchronous work (queued
// writes, fan-out, outbox relays) before they look: a leak may land after the last answer.
const settle = 6 * time.Second // the comment relay polls every 5 s

// beforeRun runs before traffic starts; the function it returns runs after the run and
// gives the report's checks. In a lane it takes the baseline's snapshot and business
// counters from the admin endpoint, and afterwards checks, against them:
//
//   - zero leaks: no baseline row, cache entry or queued message holds the run id (the
//     sentinel the scenario writes into what it creates), and no baseline message carries
//     a lane;
//   - baseline tables unchanged: same rows and checksums in every baseline table;
//   - baseline business metrics unchanged: BFF requests and gRPC writes without a lane;
//   - lane isolation held: the BFF stripped no lane token during the run (a stripped
//     token turns a stress request into a baseline one) and no baseline data client
//     refused a lane call (redline_lane_baseline_refused_total: any is a bug).
//
// The first two assume a quiet baseline (the demo); with QuietBaseline off (a live system
// with real users) their changes are reported without failing the run. Before any traffic
// one request checks that the BFF admits the lane: a stress key that differs between the
// CLI and the server would otherwise send the whole run into the baseline.
//
// A baseline run (no lane) writes baseline data on purpose: no checks. An unreachable
// admin endpoint fails the checks, since nobody could tell whether the run leaked.
func beforeRun(ctx context.Context, o runContext) (after func(ctx context.Context) []report.Check, err error) {
	if o.Lane == "" {
		return func(context.Context) []report.Check { return nil }, nil
	}
	a := adminClient{base: strings.TrimSuffix(o.Admin, "/"), token: o.AdminToken, hc: &http.Client{Timeout: 2 * time.Minute}}
	start := time.Now().Add(-time.Second)
	if err := a.admitted(ctx, o); err != nil {
		return nil, err
	}
	guards, guardsErr := a.laneGuards(ctx)
	snap, snapErr := a.snapshot(ctx)
	biz, bizErr := a.business(ctx)
	if snapErr == nil {
		fmt.Fprintf(o.Stderr, "baseline snapshot: %d tables, %d rows\n", len(snap), snap.rows())
	} else {
		fmt.Fprintf(o.Stderr, "warning: no baseline snapshot, the leak checks will fail: %v\n", snapErr)
	}
	return func(ctx context.Context) []report.Check {
		fmt.Fprintf(o.Stderr, "waiting %s for queued work, then checking the baseline for leaks of %s...\n", settle, o.RunID)
		select {
		case <-ctx.Done():
		case <-time.After(settle):
		}
		var checks []report.Check
		rep, err := a.leaks(ctx, o.RunID, start)
		if err != nil {
			checks = append(checks, report.Check{Name: "zero leaks", Detail: err.Error()})
		} else {
			checks = append(checks, leakCheck(rep))
		}
		if snapErr != nil {
			checks = append(checks, report.Check{Name: "baseline tables unchanged", Detail: "no snapshot before the run: " + snapErr.Error()})
		} else if now, err := a.snapshot(ctx); err != nil {
			checks = append(checks, report.Check{Name: "baseline tables unchanged", Detail: "no snapshot after the run: " + err.Error()})
		} else {
			checks = append(checks, tablesCheck(snap, now))
		}
		if bizErr != nil {
			checks = append(checks, report.Check{Name: "baseline business metrics unchanged", Detail: bizErr.Error()})
		} else if now, err := a.business(ctx); err != nil {
			checks = append(checks, report.Check{Name: "baseline business metrics unchanged", Detail: err.Error()})
		} else {
			checks = append(checks, businessCheck(biz, now))
		}
		if guardsErr != nil {
			checks = append(checks, report.Check{Name: "lane isolation held", Detail: guardsErr.Error()})
		} else if now, err := a.laneGuards(ctx); err != nil {
			checks = append(checks, report.Check{Name: "lane isolation held", Detail: err.Error()})
		} else {
			checks = append(checks, guardsCheck(guards, now))
		}
		if !o.QuietBaseline {
			for i := range checks {
				if !checks[i].Pass && (checks[i].Name == "baseline tables unchanged" || checks[i].Name == "baseline business metrics unchanged") {
					checks[i].Pass = true
					checks[i].Detail = "informational (--quiet-baseline=false): " + checks[i].Detail
				}
			}
		}
		return checks
	}, nil
}

func leakCheck(r stack.LeakReport) report.Check {
	c := report.Check{Name: "zero leaks", Pass: r.Total() == 0}
	var parts []string
	if r.Total() > 0 {
		for _, l := range r.Leaks {
			parts = append(parts, fmt.Sprintf("%s %s: %d", l.Store, l.Where, l.Count))
		}
		c.Detail = fmt.Sprintf("%d leaks of %s into the baseline: %s", r.Total(), r.Sentinel, strings.Join(parts, "; "))
		return c
	}
	c.Detail = fmt.Sprintf("0 leaks of %s; scanned %s", r.Sentinel, strings.Join(r.Scanned, "; "))
	if len(r.Skipped) > 0 {
		c.Pass = false
		c.Detail += "; could not scan " + strings.Join(r.Skipped, "; ")
	}
	return c
}

func tablesCheck(before, after snapshot) report.Check {
	diff := stack.Snapshot(before).Diff(stack.Snapshot(after))
	if len(diff) > 0 {
		return report.Check{Name: "baseline tables unchanged", Detail: strings.Join(diff, "; ")}
	}
	return report.Check{Name: "baseline tables unchanged", Pass: true,
		Detail: fmt.Sprintf("%d tables, %d rows: same rows and checksums before and after", len(before), before.rows())}
}

func businessCheck(before, after map[string]float64) report.Check {
	var moved []string
	for k, v := range after {
		if before[k] != v {
			moved = append(moved, fmt.Sprintf("%s: %g → %g", k, before[k], v))
		}
	}
	sort.Strings(moved)
	if len(moved) > 0 {
		return report.Check{Name: "baseline business metrics unchanged", Detail: "moved during the run (real users, or a leak): " + strings.Join(moved, "; ")}
	}
	total := 0.0
	for _, v := range after {
		total += v
	}
	return report.Check{Name: "baseline business metrics unchanged", Pass: true,
		Detail: fmt.Sprintf("%d series without a lane (BFF requests, gRPC writes; %g requests) did not move", len(after), total)}
}

// snapshot is stack.Snapshot with a row total.
type snapshot stack.Snapshot

func (s snapshot) rows() int64 {
	var n int64
	for _, t := range s {
		n += t.Rows
	}
	return n
}

// adminClient reads the admin endpoint.
type adminClient struct {
	base, token string
	hc          *http.Client
}

func (a adminClient) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s: %w (pass --admin, and --admin-token when admin.token is set)", a.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("admin endpoint %s%s: %s %s", a.base, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}

func (a adminClient) snapshot(ctx context.Context) (snapshot, error) {
	body, err := a.get(ctx, "/stress/snapshot")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var s snapshot
	if err := json.NewDecoder(body).Decode(&s); err != nil {
		return nil, fmt.Errorf("admin /stress/snapshot: %w", err)
	}
	return s, nil
}

func (a adminClient) leaks(ctx context.Context, sentinel string, since time.Time) (stack.LeakReport, error) {
	q := url.Values{"sentinel": {sentinel}, "since": {since.UTC().Format(time.RFC3339)}}
	body, err := a.get(ctx, "/stress/leaks?"+q.Encode())
	if err != nil {
		return stack.LeakReport{}, err
	}
	defer body.Close()
	var r stack.LeakReport
	if err := json.NewDecoder(body).Decode(&r); err != nil {
		return stack.LeakReport{}, fmt.Errorf("admin /stress/leaks: %w", err)
	}
	return r, nil
}

// business reads the baseline's business counters from /metrics: BFF requests without a
// lane, by route and code, and gRPC calls without a lane to methods that write.
func (a adminClient) business(ctx context.Context) (map[string]float64, error) {
	body, err := a.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return businessSeries(body)
}

// businessSeries picks the business series out of a Prometheus text exposition.
func businessSeries(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var keep bool
		switch {
		case strings.HasPrefix(line, "redline_http_server_requests_total{"):
			keep = strings.Contains(line, `service="bff"`)
		case strings.HasPrefix(line, "redline_grpc_server_requests_total{"):
			keep = writeMethod(labelValue(line, "route"))
		}
		if !keep || labelValue(line, "lane") != "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("admin /metrics: %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// writeMethod reports whether a gRPC route ("/note.v1.Note/CreateNote") names a write.
func writeMethod(route string) bool {
	m := route[strings.LastIndexByte(route, '/')+1:]
	for _, p := range []string{"Create", "Update", "Delete", "Register", "Follow", "Unfollow", "Like", "Unlike", "Collect",
		"Uncollect", "Record", "Place", "Pay", "Cancel", "Callback", "Set", "Add", "Remove", "Clear", "Reserve", "Release",
		"Confirm", "Mark"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// labelValue returns the value of label name in a series line, "" when absent.
func labelValue(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// baselineHealth is the threshold that stops a lane run hurting real users: once a second
// it reads the baseline's BFF requests (no lane) from the admin endpoint, and fails when,
// since its last look, more than limit of them failed (5xx, or 429 from shedding and
// limits), over at least minBaseline requests. Three unreadable scrapes in a row fail it
// too: a run that cannot see the baseline must not go on.
func baselineHealth(a adminClient, limit float64) func(ctx context.Context) error {
	const minBaseline = 20
	var last map[string]float64
	misses := 0
	return func(ctx context.Context) error {
		body, err := a.get(ctx, "/metrics")
		if err != nil {
			if misses++; misses >= 3 {
				return fmt.Errorf("cannot see the baseline's health: %w", err)
			}
			return nil
		}
		defer body.Close()
		now, err := businessSeries(body)
		if err != nil {
			return err
		}
		misses = 0
		prev := last
		last = now
		if prev == nil {
			return nil
		}
		var total, bad float64
		for k, v := range now {
			if !strings.HasPrefix(k, "redline_http_server_requests_total{") {
				continue
			}
			d := v - prev[k]
			total += d
			if code := labelValue(k, "code"); code == "429" || strings.HasPrefix(code, "5") {
				bad += d
			}
		}
		if total >= minBaseline && bad/total > limit {
			return fmt.Errorf("baseline users failing: %.1f%% of %g baseline requests in the last interval (limit %.1f%%); "+
				"the run stopped to protect them", 100*bad/total, total, 100*limit)
		}
		return nil
	}
}

// admitted sends one request in the lane and checks, on the admin endpoint's counters, that
// the BFF admitted it.
func (a adminClient) admitted(ctx context.Context, o runContext) error {
	series := fmt.Sprintf(`redline_lane_admitted_total{lane=%q,service="bff"}`, o.Lane)
	count := func() (float64, error) {
		body, err := a.get(ctx, "/metrics")
		if err != nil {
			return 0, err
		}
		defer body.Close()
		v, _, err := seriesValue(body, series)
		return v, err
	}
	before, err := count()
	if err != nil {
		return fmt.Errorf("cannot check that the BFF admits lane %s: %w", o.Lane, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(o.Target, "/")+"/v1/explore?kind=recent&limit=1", nil)
	if err != nil {
		return err
	}
	for k, v := range o.Header {
		req.Header[k] = v
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w (is `redline up` serving there?)", o.Target, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	after, err := count()
	if err != nil {
		return err
	}
	if after <= before {
		return fmt.Errorf("the BFF at %s did not admit lane %s: its stress.key differs from this one "+
			"(export the same REDLINE_STRESS__KEY for `redline up` and `redline stress`); no traffic was sent", o.Target, o.Lane)
	}
	return nil
}

// laneGuards reads the counters that must not move in a lane run: lane tokens the BFF
// stripped, and lane calls baseline data clients refused.
func (a adminClient) laneGuards(ctx context.Context) (map[string]float64, error) {
	body, err := a.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "redline_lane_rejected_total{") && !strings.HasPrefix(line, "redline_lane_baseline_refused_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("admin /metrics: %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

func guardsCheck(before, after map[string]float64) report.Check {
	var moved []string
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			moved = append(moved, fmt.Sprintf("%s +%g", k, d))
		}
	}
	sort.Strings(moved)
	if len(moved) > 0 {
		return report.Check{Name: "lane isolation held", Detail: "during the run: " + strings.Join(moved, "; ") +
			" (stripped tokens sent requests to the baseline; refusals are lane calls that reached baseline clients)"}
	}
	return report.Check{Name: "lane isolation held", Pass: true, Detail: "no lane token stripped, no lane call refused by a baseline client"}
}

// seriesValue finds one series line in a Prometheus text exposition.
func seriesValue(r io.Reader, series string) (float64, bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			return v, true, err
		}
	}
	return 0, false, sc.Err()
}
