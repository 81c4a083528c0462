// Package admin serves the operator endpoints of a Redline process: / (the dashboard),
// /healthz (liveness), /readyz (dependencies reachable and not draining), /metrics
// (Prometheus), /debug/pprof/, /config (the running configuration with secrets redacted)
// and /state (a JSON page that the kit and ha packages fill with their live state, plus
// "routes": each server route's requests, errors and latency quantiles).
//
// Everything but the dashboard page, /healthz and /readyz needs "Authorization: Bearer
// TOKEN" when a token is configured; the page holds no data and sends the token the user
// types into it with its own calls.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/internal/serve"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/web"
)

// Check is a readiness check; a non-nil error makes /readyz answer 503.
type Check func(ctx context.Context) error

// Server is the admin endpoint. It implements app.Component and app.Drainer.
type Server struct {
	addr  string
	token string
	mux   *http.ServeMux
	srv   *http.Server
	reg   prometheus.Gatherer

	draining atomic.Bool

	mu     sync.Mutex
	checks map[string]Check
	states map[string]func() any
	config func() any
	serve.Loop
}

// Option configures a Server.
type Option func(*Server)

// Address sets the listen address; the default is "127.0.0.1:0".
func Address(a string) Option { return func(s *Server) { s.addr = a } }

// Token requires "Authorization: Bearer t" on every endpoint but /healthz and /readyz.
// An empty token leaves them open, which only suits loopback.
func Token(t string) Option { return func(s *Server) { s.token = t } }

// Gatherer sets the metrics source; the default is metric.Registry.
func Gatherer(g prometheus.Gatherer) Option { return func(s *Server) { s.reg = g } }

// New returns an admin server.
func New(opts ...Option) *Server {
	s := &Server{addr: "127.0.0.1:0", mux: http.NewServeMux(), reg: metric.Registry,
		checks: map[string]Check{}, states: map[string]func() any{}}
	for _, opt := range opts {
		opt(s)
	}
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(web.Dashboard)
	})
	s.states["routes"] = func() any {
		rows, err := metric.Summary()
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return rows
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	s.mux.Handle("/debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
	s.mux.Handle("/debug/pprof/cmdline", s.auth(http.HandlerFunc(pprof.Cmdline)))
	s.mux.Handle("/debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("/debug/pprof/symbol", s.auth(http.HandlerFunc(pprof.Symbol)))
	s.mux.Handle("/debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	s.mux.Handle("GET /config", s.auth(http.HandlerFunc(s.configz)))
	s.mux.Handle("GET /state", s.auth(http.HandlerFunc(s.statez)))
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// AddCheck registers a named readiness check.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// AddState registers a named section of /state; f is called on every request and must be
// safe for concurrent use.
func (s *Server) AddState(name string, f func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[name] = f
}

// Handle adds an endpoint behind the token, for packages that serve more than state.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, s.auth(h)) }

// SetConfig sets the function /config renders; it must return the redacted
// configuration.
func (s *Server) SetConfig(f func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.config = f
}

// SetDraining makes /readyz fail from now on (app.Drainer).
func (s *Server) SetDraining(d bool) { s.draining.Store(d) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token != "" {
			want := "Bearer " + s.token
			got := r.Header.Get("Authorization")
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="redline-admin"`)
				e := errs.Unauthenticated(errs.ReasonUnauthenticated,
					"admin endpoints need Authorization: Bearer <admin token> (admin.token in the config)")
				writeJSON(w, e.HTTPStatus(), e.ToBody(""))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Readiness is the /readyz body.
type Readiness struct {
	Ready    bool              `json:"ready"`
	Draining bool              `json:"draining"`
	Checks   map[string]string `json:"checks"`
}

// Ready runs every check (each bounded by 1 s) and reports the result.
func (s *Server) Ready(ctx context.Context) Readiness {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	out := Readiness{Ready: true, Draining: s.draining.Load(), Checks: map[string]string{}}
	if out.Draining {
		out.Ready = false
	}
	type result struct{ name, err string }
	ch := make(chan result, len(checks))
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for name, c := range checks {
		go func() {
			msg := "ok"
			if err := c(ctx); err != nil {
				msg = err.Error()
			}
			ch <- result{name, msg}
		}()
	}
	for range checks {
		r := <-ch
		out.Checks[r.name] = r.err
		if r.err != "ok" {
			out.Ready = false
		}
	}
	return out
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := s.Ready(r.Context())
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rd)
}

func (s *Server) configz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	f := s.config
	s.mu.Unlock()
	if f == nil {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	writeJSON(w, http.StatusOK, f())
}

func (s *Server) statez(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.states))
	for k := range s.states {
		names = append(names, k)
	}
	fns := s.states
	s.mu.Unlock()
	sort.Strings(names)
	out := make(map[string]any, len(names))
	for _, n := range names {
		out[n] = fns[n]()
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	return s.Loop.Start(ctx, "admin", s.addr, s.srv.Serve)
}

// Stop shuts the server down within ctx.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return errors.Join(s.Loop.Wait(http.ErrServerClosed), err)
}
