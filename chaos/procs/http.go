package procs

import (
	"io"
	"net/http"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// MaxBody bounds the body of a POST of the admin API.
const MaxBody = 4 << 10

// Mux is where Register adds the admin API: the kit's admin server, or an http.ServeMux.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// KillRequest is the optional body of POST /chaos/procs/{name}/kill.
type KillRequest struct {
	// RestartAfter is how long the process stays down, e.g. "2s"; default 0, at most
	// MaxRestartAfter.
	RestartAfter string `json:"restart_after,omitempty"`
}

// PauseRequest is the optional body of POST /chaos/procs/{name}/pause.
type PauseRequest struct {
	// For is how long the pause lasts, e.g. "10s"; default DefaultPause, at most MaxPause.
	For string `json:"for,omitempty"`
}

// Register adds the admin API of s to mux (the admin server, behind its token):
//
//	GET  /chaos/procs                   {"procs": [Info...]}
//	POST /chaos/procs/{name}/kill       KillRequest, optional
//	POST /chaos/procs/{name}/stop
//	POST /chaos/procs/{name}/start
//	POST /chaos/procs/{name}/pause      PauseRequest, optional
//	POST /chaos/procs/{name}/resume
//	POST /chaos/procs/{name}/restart
//
// A POST answers 200 with the process's Info; 400 names the bad field, 404 is an unknown
// process or action, 412 a fault the state does not allow.
func (s *Supervisor) Register(mux Mux) {
	mux.Handle("GET /chaos/procs", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		kithttp.WriteJSON(w, http.StatusOK, map[string][]Info{"procs": s.List()})
	}))
	mux.Handle("POST /chaos/procs/{name}/{action}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.serveAction(r.PathValue("name"), r.PathValue("action"), r.Body)
		if err != nil {
			kithttp.WriteError(w, err)
			return
		}
		kithttp.WriteJSON(w, http.StatusOK, in)
	}))
}

func (s *Supervisor) serveAction(name, action string, body io.Reader) (Info, error) {
	switch action {
	case "kill":
		var req KillRequest
		if err := kithttp.DecodeOptionalJSON(body, MaxBody, &req); err != nil {
			return Info{}, err
		}
		d, err := parseDuration("restart_after", req.RestartAfter)
		if err != nil {
			return Info{}, err
		}
		return s.Kill(name, d)
	case "pause":
		var req PauseRequest
		if err := kithttp.DecodeOptionalJSON(body, MaxBody, &req); err != nil {
			return Info{}, err
		}
		d, err := parseDuration("for", req.For)
		if err != nil {
			return Info{}, err
		}
		return s.Pause(name, d)
	}
	do := map[string]func(string) (Info, error){"stop": s.Stop, "start": s.Start, "resume": s.Resume, "restart": s.Restart}[action]
	if do == nil {
		return Info{}, errs.NotFound(ReasonNotFound, "no action %q: kill, stop, start, pause, resume or restart", action)
	}
	if err := kithttp.DecodeOptionalJSON(body, MaxBody, &struct{}{}); err != nil {
		return Info{}, err
	}
	return do(name)
}

// parseDuration parses field's value; empty is 0.
func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badField(field, "%s: %q is not a duration such as 2s", field, v)
	}
	return d, nil
}
