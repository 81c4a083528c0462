package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/metric"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/sre/alert"
	"github.com/redline-dev/redline/sre/gate"
	"github.com/redline-dev/redline/sre/incident"
	"github.com/redline-dev/redline/sre/rules"
	"github.com/redline-dev/redline/sre/slo"
)

// sloStateName is the evaluator's snapshot in the SRE store: budgets survive a restart.
const sloStateName = "slo-evaluator"

// sloSaveEvery is how often the evaluator's snapshot is written (and once more at stop).
const sloSaveEvery = time.Minute

// sloRuntime is the SRE service's SLO side: the evaluator sampling the services' RED metrics,
// the alert router between it and the incident responders, and the gate.
type sloRuntime struct {
	slos   []slo.SLO
	eval   *slo.Evaluator
	router *alert.Router
	source prometheus.Gatherer
	store  *incident.Store
	policy gate.Policy
	every  time.Duration
}

// LoadSLOs reads sre.slos, or returns the demo's defaults when it is empty.
func LoadSLOs(files []string) ([]slo.SLO, error) {
	if len(files) == 0 {
		return slo.Defaults(), nil
	}
	return slo.ParseFiles(files...)
}

// sloDedupKey makes every burn-rate alert of one SLO and severity one incident: the 1h/5m
// and 6h/30m pages of the same outage are the same incident, whether the in-process
// evaluator or Prometheus and Alertmanager fired them. Other alerts keep their fingerprint.
func sloDedupKey(a alert.Alert) string {
	if name := a.Labels["slo"]; name != "" {
		return "slo:" + name + ":" + a.Labels["severity"]
	}
	return alert.Fingerprint(a.Labels)
}

// sloAlert is an evaluator alert as the router and responders take it: the labels of the
// generated Prometheus rules, so both paths look the same on an incident.
func sloAlert(a slo.Alert) alert.Alert {
	labels := rules.AlertLabels(a.SLO, a.Service, a.Condition)
	labels["alertname"] = rules.AlertName(a.Severity)
	out := alert.Alert{
		Labels: labels,
		Annotations: map[string]string{"summary": fmt.Sprintf("%s burns its error budget at %.1fx over %s and %s",
			a.SLO, a.BurnRate, slo.FormatDuration(a.Condition.Long), slo.FormatDuration(a.Condition.Short))},
		// The burn's start, not the firing: the incident's impact starts there, so its time
		// to detect (MTTI) is the evaluator's detection time.
		Status: alert.Firing, StartsAt: a.ImpactStart,
	}
	if out.StartsAt.IsZero() {
		out.StartsAt = a.FiredAt
	}
	if a.State == slo.Resolved {
		out.Status, out.EndsAt = alert.Resolved, a.ResolvedAt
	}
	out.Fingerprint = alert.Fingerprint(labels)
	return out
}

func (s *Stack) buildSLOs(ctx context.Context, store *incident.Store, pager, ticketer *incident.Responder) (*sloRuntime, error) {
	cfg := s.cfg.SRE
	slos, err := LoadSLOs(cfg.SLOs)
	if err != nil {
		return nil, fmt.Errorf("sre.slos: %w", err)
	}
	rt := &sloRuntime{slos: slos, store: store, policy: cfg.Gate, every: cfg.EvalInterval, source: metric.Registry}
	if len(cfg.Scrape) > 0 {
		rt.source = slo.Scrape(cfg.Scrape, s.cfg.Admin.Token, &http.Client{Timeout: 5 * time.Second})
	}
	// Pages escalate through the default policy; tickets open an incident that pages nobody.
	rt.router, err = alert.NewRouter(alert.Config{
		Routes: []alert.Route{{Receiver: "page", Matchers: alert.MustMatchers(`severity="page"`),
			GroupBy: []string{"slo", "service"}, GroupWait: time.Second}},
		Default: alert.Route{Receiver: "ticket", GroupBy: []string{"slo", "service"}, GroupWait: time.Second},
		Inhibit: alert.DefaultInhibitRules(),
	}, func(ctx context.Context, n alert.Notification) error {
		if n.Receiver == "page" {
			return pager.Deliver(ctx, n)
		}
		return ticketer.Deliver(ctx, n)
	}, alert.WithLogger(s.logger))
	if err != nil {
		return nil, err
	}
	rt.eval, err = slo.NewEvaluator(slos, slo.WithNotify(func(a slo.Alert) {
		s.logger.Warn("slo alert", "slo", a.SLO, "service", a.Service, "severity", a.Severity, "state", a.State, "burn_rate", a.BurnRate)
		rt.router.Receive(context.Background(), sloAlert(a))
	}))
	if err != nil {
		return nil, fmt.Errorf("sre.slos: %w", err)
	}
	data, at, err := store.LoadState(ctx, sloStateName)
	if err != nil {
		return nil, fmt.Errorf("sre: load SLO state: %w", err)
	}
	if data != nil {
		// A snapshot that no longer decodes is logged and dropped, not fatal: the budgets
		// start again at 100% rather than the SRE service not starting.
		if err := rt.eval.Restore(data); err != nil {
			s.logger.Error("sre: SLO state not restored; budgets start afresh", "error", err, "saved_at", at)
		} else {
			s.logger.Info("sre: SLO budgets restored", "saved_at", at, "slos", len(slos))
		}
	}
	// The first sample only sets the baseline, so take it now, before any server of this
	// process takes traffic: requests from the first interval then count. (A remote
	// process that does not answer yet is sampled at the first tick instead.)
	_ = rt.eval.Sample(rt.source)
	return rt, nil
}

// run samples the SLIs every interval, ticks the router every second and saves the
// evaluator's state every minute and once more when ctx ends.
func (rt *sloRuntime) run(ctx context.Context, logger interface {
	Warn(string, ...any)
}) {
	sample := time.NewTicker(rt.every)
	tick := time.NewTicker(time.Second)
	save := time.NewTicker(sloSaveEvery)
	defer sample.Stop()
	defer tick.Stop()
	defer save.Stop()
	persist := func(ctx context.Context) {
		data, err := rt.eval.Snapshot()
		if err == nil {
			err = rt.store.SaveState(ctx, sloStateName, data)
		}
		if err != nil {
			logger.Warn("sre: SLO state not saved", "error", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			persist(stop)
			cancel()
			return
		case <-sample.C:
			// A failed gather (a service down under sre.scrape) skips the sample: reading a
			// partial gather would look like counters going back, a restart.
			if err := rt.eval.Sample(rt.source); err != nil {
				logger.Warn("sre: SLI sample skipped", "error", err)
			}
		case <-tick.C:
			if err := rt.router.Tick(ctx); err != nil {
				logger.Warn("sre: alert delivery failed; retried at the next flush", "error", err)
			}
		case <-save.C:
			persist(ctx)
		}
	}
}

// component runs the loop between the stack's start and stop.
func (rt *sloRuntime) component(s *Stack) app.Component {
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	return app.Hook("slo-evaluator", func(ctx context.Context) error {
		var run context.Context
		run, cancel = context.WithCancel(context.WithoutCancel(ctx))
		wg.Go(func() { rt.run(run, s.logger) })
		return nil
	}, func(context.Context) error {
		if cancel != nil {
			cancel()
		}
		wg.Wait()
		return nil
	})
}

// register adds the SLO routes:
//
//	GET /v1/slos                 every SLO's status: windows, burn rates, budget remaining, firing
//	GET /v1/slos/{name}          one SLO's status and spec
//	GET /v1/gate?service=X       the release gate's decision (allow false: see reasons)
//	GET /v1/alerts               the evaluator's latest alert transitions
//	GET /v1/valet?service=X      per service: volume, availability, latency, errors, tickets
func (rt *sloRuntime) register(srv *kithttp.Server) {
	kithttp.Route(srv, "GET /v1/slos", func(_ context.Context, in *serviceReq) (*slosResp, error) {
		out := &slosResp{SLOs: []slo.Status{}}
		for _, st := range rt.eval.Statuses() {
			if in.service == "" || st.Service == in.service {
				out.SLOs = append(out.SLOs, st)
			}
		}
		return out, nil
	})
	kithttp.Route(srv, "GET /v1/slos/{name}", func(_ context.Context, in *nameReq) (*sloResp, error) {
		st, err := rt.eval.Status(in.name)
		if errors.Is(err, slo.ErrUnknownSLO) {
			return nil, errs.NotFound("SLO_NOT_FOUND", "no SLO %q: `redline slo list` names them", in.name)
		}
		if err != nil {
			return nil, err
		}
		for _, s := range rt.slos {
			if s.Name == in.name {
				return &sloResp{Status: st, Spec: specView(s)}, nil
			}
		}
		return &sloResp{Status: st}, nil
	})
	kithttp.Route(srv, "GET /v1/gate", func(ctx context.Context, in *serviceReq) (*gate.Decision, error) {
		if in.service == "" {
			return nil, errs.InvalidArgument(errs.ReasonInvalidArgument, "service: required, as in /v1/gate?service=note")
		}
		d, err := rt.policy.Decide(ctx, in.service, rt.eval, rt.store, time.Now())
		if err != nil {
			return nil, err
		}
		return &d, nil
	})
	kithttp.Route(srv, "GET /v1/alerts", func(context.Context, *struct{}) (*alertsResp, error) {
		return &alertsResp{Events: rt.eval.Events()}, nil
	})
	kithttp.Route(srv, "GET /v1/valet", func(ctx context.Context, in *serviceReq) (*valetResp, error) {
		return rt.valet(ctx, in.service, time.Now())
	})
}

// valetRow is one service's VALET dashboard line over its SLO period: Volume (the events
// its busiest SLO counts), Availability and Latency (the least budget left among its SLOs of
// each kind), Errors (the highest error ratio of its availability SLOs) and Tickets (the
// incidents opened for it in the period).
type valetRow struct {
	Service      string        `json:"service"`
	Period       time.Duration `json:"period"`
	Volume       float64       `json:"volume"`
	Availability *float64      `json:"availability_budget_left"`
	Latency      *float64      `json:"latency_budget_left"`
	Errors       float64       `json:"error_ratio"`
	Tickets      int           `json:"tickets"`
}

type valetResp struct {
	Services []valetRow `json:"services"`
}

func (rt *sloRuntime) valet(ctx context.Context, service string, now time.Time) (*valetResp, error) {
	kinds := map[string]slo.Kind{}
	for _, s := range rt.slos {
		kinds[s.Name] = s.Indicator.Kind
	}
	rows := map[string]*valetRow{}
	var order []string
	least := func(p **float64, v float64) {
		if *p == nil || v < **p {
			*p = &v
		}
	}
	for _, st := range rt.eval.Statuses() {
		if service != "" && st.Service != service {
			continue
		}
		r := rows[st.Service]
		if r == nil {
			r = &valetRow{Service: st.Service}
			rows[st.Service] = r
			order = append(order, st.Service)
		}
		r.Period = max(r.Period, st.Period.Window)
		r.Volume = max(r.Volume, st.Period.Total)
		if kinds[st.SLO] == slo.Latency {
			least(&r.Latency, st.BudgetRemaining)
			continue
		}
		least(&r.Availability, st.BudgetRemaining)
		r.Errors = max(r.Errors, st.Period.ErrorRatio)
	}
	out := &valetResp{Services: []valetRow{}}
	for _, name := range order {
		r := rows[name]
		list, err := rt.store.List(ctx, incident.Filter{Service: name, Since: now.Add(-r.Period), Limit: incident.DefaultListLimit})
		if err != nil {
			return nil, err
		}
		r.Tickets = len(list)
		out.Services = append(out.Services, *r)
	}
	return out, nil
}

type serviceReq struct{ service string }

func (r *serviceReq) Bind(req *http.Request) error {
	r.service = strings.TrimSpace(req.URL.Query().Get("service"))
	return nil
}

type nameReq struct{ name string }

func (r *nameReq) Bind(req *http.Request) error {
	r.name = req.PathValue("name")
	return nil
}

type slosResp struct {
	SLOs []slo.Status `json:"slos"`
}

type sloResp struct {
	slo.Status
	Spec *sloSpec `json:"spec,omitempty"`
}

// sloSpec is what an operator needs of an SLO's definition next to its status.
type sloSpec struct {
	Description string   `json:"description,omitempty"`
	Kind        string   `json:"kind"`
	Transport   string   `json:"transport"`
	Routes      []string `json:"routes,omitempty"`
	Threshold   string   `json:"threshold,omitempty"`
	Period      string   `json:"period"`
	Budgeting   string   `json:"budgeting"`
	File        string   `json:"file,omitempty"`
}

func specView(s slo.SLO) *sloSpec {
	v := &sloSpec{Description: s.Description, Kind: string(s.Indicator.Kind), Transport: string(s.Indicator.Transport),
		Routes: s.Indicator.Routes, Period: slo.FormatDuration(s.Period), Budgeting: string(s.Budgeting), File: s.File}
	if s.Calendar != "" {
		v.Period = "calendar " + s.Calendar
	}
	if s.Indicator.Threshold > 0 {
		v.Threshold = s.Indicator.Threshold.String()
	}
	return v
}

type alertsResp struct {
	Events []slo.Alert `json:"events"`
}
