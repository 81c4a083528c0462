package scenario

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/redline-dev/redline/stress/load"
)

// Env is where and how a scenario runs.
type Env struct {
	// BaseURL overrides the scenario's base_url when set.
	BaseURL string
	// Client sends the requests; default load.NewClient(10 s, 0).
	Client *http.Client
	// Header is added to every request, users' steps included (e.g. a lane token).
	Header http.Header
	// RunID is {{.run_id}}: put it in what the run creates, so it can be found later.
	RunID string
}

// Runner runs a scenario: Setup logs its users in, then it is the load.Doer of a run.
type Runner struct {
	s        *Scenario
	env      Env
	base     string
	cum      []float64 // cumulative journey weights
	sessions []map[string]any
}

var _ load.Doer = (*Runner)(nil)

// NewRunner returns a Runner of s in env. It fails when neither env nor the scenario gives
// a base URL.
func (s *Scenario) NewRunner(env Env) (*Runner, error) {
	base := env.BaseURL
	if base == "" {
		base = s.BaseURL
	}
	u, err := url.Parse(base)
	if base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s: no http(s) base URL (got %q): set base_url or pass the target", ErrInvalid, s.file, base)
	}
	if env.Client == nil {
		env.Client = load.NewClient(10*time.Second, 0)
	}
	r := &Runner{s: s, env: env, base: strings.TrimRight(base, "/")}
	var sum float64
	for _, j := range s.jour {
		sum += j.weight
		r.cum = append(r.cum, sum)
	}
	return r, nil
}

// Users is the number of sessions Setup logs in.
func (r *Runner) Users() int {
	if r.s.users == nil {
		return 0
	}
	return r.s.users.count
}

// Setup logs the scenario's users in, parallel at a time, before the load; it is not
// measured. Overload answers are retried (SetupAttempts); it stops at the first other
// failure and says which user and step failed.
func (r *Runner) Setup(ctx context.Context, parallel int) error {
	u := r.s.users
	if u == nil {
		return nil
	}
	r.sessions = make([]map[string]any, u.count)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Go(func() {
			for i := range next {
				sess, err := r.login(ctx, i)
				if err != nil {
					cancel(err)
					return
				}
				r.sessions[i] = sess
			}
		})
	}
feed:
	for i := range u.count {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// login runs the users' steps for user i and returns its session.
func (r *Runner) login(ctx context.Context, i int) (map[string]any, error) {
	u := r.s.users
	vars := r.scope()
	vars[VarUser] = i
	sess := map[string]any{}
	for _, v := range u.vars {
		s, err := render(v.tmpl, vars)
		if err != nil {
			return nil, fmt.Errorf("users: user %d var %s: %w", i, v.name, err)
		}
		sess[v.name] = s
	}
	for k, v := range sess {
		vars[k] = v
	}
	for _, st := range u.steps {
		if err := r.sendRetrying(ctx, st, vars); err != nil {
			return nil, fmt.Errorf("users: user %d step %q: %w", i, st.name, err)
		}
		for _, e := range st.extract {
			sess[e.name] = vars[e.name]
		}
	}
	return sess, nil
}

// SetupAttempts bounds the tries of each users step: logging in hashes passwords, which a
// busy server may shed, and Setup is not measured, so it backs off and tries again.
const SetupAttempts = 5

// sendRetrying sends a users step, retrying overload answers (429, 502, 503, 504) and
// timeouts with exponential backoff from 200 ms.
func (r *Runner) sendRetrying(ctx context.Context, st *step, vars map[string]any) error {
	for attempt := 1; ; attempt++ {
		_, _, err := r.send(ctx, st, vars, nil)
		if err == nil || attempt == SetupAttempts || !overloaded(err) {
			return err
		}
		t := time.NewTimer(200 * time.Millisecond << (attempt - 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func overloaded(err error) bool {
	e := load.Classify(err)
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return e.Kind == load.KindTimeout
}

// scope returns a fresh variable map with data and run_id.
func (r *Runner) scope() map[string]any {
	vars := make(map[string]any, len(r.s.data)+16)
	for k, v := range r.s.data {
		vars[k] = v
	}
	vars[VarRunID] = r.env.RunID
	return vars
}

// Do implements load.Doer: one journey, picked by weight, as a random user.
func (r *Runner) Do(ctx context.Context, it *load.Iteration) {
	j := r.s.jour[0]
	if len(r.cum) > 1 {
		x := mrand.Float64() * r.cum[len(r.cum)-1]
		k, _ := slices.BinarySearch(r.cum, x)
		j = r.s.jour[min(k, len(r.s.jour)-1)]
	}
	vars := r.scope()
	if len(r.sessions) > 0 {
		for k, v := range r.sessions[mrand.IntN(len(r.sessions))] {
			vars[k] = v
		}
	}
	for _, v := range j.vars {
		s, err := render(v.tmpl, vars)
		if err != nil {
			_ = it.Step(j.name+"/"+j.steps[0].name, func() (int, error) {
				return 0, &load.Error{Kind: load.KindOther, Detail: fmt.Sprintf("var %s: %v", v.name, err)}
			})
			return
		}
		vars[v.name] = s
	}
	for _, st := range j.steps {
		stop := false
		err := it.Step(j.name+"/"+st.name, func() (int, error) {
			status, s, err := r.send(ctx, st, vars, r.s.headers)
			stop = s
			return status, err
		})
		if err != nil || stop {
			return
		}
	}
}

// send makes one step's request with vars, and stores what it extracts in vars. stop is
// true for a stop_on status.
func (r *Runner) send(ctx context.Context, st *step, vars map[string]any, headers []header) (status int, stop bool, err error) {
	path, err := render(st.path, vars)
	if err != nil {
		return 0, false, &load.Error{Kind: load.KindOther, Detail: "path: " + err.Error()}
	}
	body, err := render(st.body, vars)
	if err != nil {
		return 0, false, &load.Error{Kind: load.KindOther, Detail: "body: " + err.Error()}
	}
	var req *http.Request
	if body == "" {
		req, err = http.NewRequestWithContext(ctx, st.method, r.base+path, nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, st.method, r.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		return 0, false, &load.Error{Kind: load.KindOther, Detail: err.Error()}
	}
	for k, v := range r.env.Header {
		req.Header[k] = v
	}
	for _, hs := range [][]header{headers, st.headers} {
		for _, h := range hs {
			v, err := render(h.tmpl, vars)
			if err != nil {
				return 0, false, &load.Error{Kind: load.KindOther, Detail: "header " + h.name + ": " + err.Error()}
			}
			req.Header.Set(h.name, v)
		}
	}
	expect := func(code int) bool {
		if slices.Contains(st.stopOn, code) {
			return true
		}
		if len(st.expect) == 0 {
			return load.Success(code)
		}
		return slices.Contains(st.expect, code)
	}
	status, resp, err := load.Send(r.env.Client, req, expect)
	if err != nil {
		return status, false, err
	}
	if slices.Contains(st.stopOn, status) {
		return status, true, nil
	}
	if len(st.extract) > 0 {
		doc, err := decode(resp)
		for _, e := range st.extract {
			var v string
			if err == nil {
				v, err = extract(doc, e.path)
			}
			if err != nil {
				return status, false, &load.Error{Kind: load.KindExtract, Status: status,
					Detail: fmt.Sprintf("%s %s: extract %s: %v", st.method, req.URL.Path, e.name, err)}
			}
			vars[e.name] = v
		}
	}
	return status, false, nil
}

func render(t *template.Template, vars map[string]any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

// NewRunID returns prefix and 10 random characters of a-z0-9: a run's id, which the
// scenario puts ({{.run_id}}) in what the run creates, so it can be found later.
func NewRunID(prefix string) string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, len(prefix)+10)
	copy(b, prefix)
	_, _ = rand.Read(b[len(prefix):])
	for i := len(prefix); i < len(b); i++ {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}
