package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/sre/incident"
)

// callTimeout bounds each call to the admin or SRE API.
const callTimeout = 10 * time.Second

// api calls a JSON HTTP API behind an optional bearer token: the admin endpoint's
// /chaos/faults, or the SRE API's incidents.
type api struct {
	base, token string
	hc          *http.Client
}

// errNotFound is a 404 answer.
var errNotFound = errors.New("not found")

// errPrecondition is a 412 answer: the supervisor cannot kill or pause a process that is
// not running (yet).
var errPrecondition = errors.New("precondition failed")

func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, raw, err := kithttp.CallJSON(ctx, a.hc, method, a.base+path, a.token, body, 1<<20)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s%s: %w", method, a.base, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s%s: %w: %s", method, a.base, path, errNotFound, strings.TrimSpace(string(raw)))
	case resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%s %s%s: %w: %s", method, a.base, path, errPrecondition, strings.TrimSpace(string(raw)))
	case resp.StatusCode >= 300:
		return fmt.Errorf("%s %s%s: %s: %s", method, a.base, path, resp.Status, strings.TrimSpace(string(raw)))
	case out == nil:
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s%s: decode the answer: %w", method, a.base, path, err)
	}
	return nil
}

// addFault adds spec through POST /chaos/faults and returns the fault as added.
func (a *api) addFault(ctx context.Context, spec faults.Spec) (faults.Fault, error) {
	var f faults.Fault
	err := a.do(ctx, http.MethodPost, "/chaos/faults", spec, &f)
	return f, err
}

// removeFault removes fault id; a fault already gone (expired, cleared) is errNotFound.
func (a *api) removeFault(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/chaos/faults/"+url.PathEscape(id), nil, nil)
}

// clearFaults removes every fault, the big red button, and returns how many there were.
func (a *api) clearFaults(ctx context.Context) (int, error) {
	var r struct {
		Removed int `json:"removed"`
	}
	err := a.do(ctx, http.MethodDelete, "/chaos/faults", nil, &r)
	return r.Removed, err
}

// timeline records the drill on an incident of the SRE API: opened at the start (SEV4,
// no escalation policy, so nobody is paged), a drill entry per phase, fault and abort,
// resolved at the end. Its failures are warnings: the record is not what keeps the
// drill safe. A nil timeline records nothing.
type timeline struct {
	api  *api
	id   string
	warn func(string)
}

const actor = "redline drill"

func (t *timeline) open(ctx context.Context, d *Drill, runID, service string) {
	if t == nil {
		return
	}
	var inc incident.Incident
	text := "game-day drill " + d.Name + ", run " + runID
	if d.Description != "" {
		text += ": " + d.Description
	}
	err := t.api.do(ctx, http.MethodPost, "/v1/incidents", map[string]any{
		"title": "drill " + d.Name, "service": service, "severity": incident.SEV4, "policy": "",
		"dedup_key": "drill:" + d.Name + ":" + runID, "actor": actor, "text": text,
	}, &inc)
	if err != nil {
		t.warn("incident timeline: open: " + err.Error())
		return
	}
	t.id = inc.ID
}

func (t *timeline) note(ctx context.Context, text string) {
	if t == nil || t.id == "" {
		return
	}
	err := t.api.do(ctx, http.MethodPost, "/v1/incidents/"+url.PathEscape(t.id)+"/timeline",
		map[string]any{"kind": incident.KindDrill, "actor": actor, "text": text}, nil)
	if err != nil {
		t.warn("incident timeline: " + err.Error())
	}
}

func (t *timeline) resolve(ctx context.Context, text string) {
	if t == nil || t.id == "" {
		return
	}
	err := t.api.do(ctx, http.MethodPost, "/v1/incidents/"+url.PathEscape(t.id)+"/resolve",
		map[string]any{"actor": actor, "text": text}, nil)
	if err != nil {
		t.warn("incident timeline: resolve: " + err.Error())
	}
}
