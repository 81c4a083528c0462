package stack

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/sre/gate"
	"github.com/redline-dev/redline/sre/incident"
	"github.com/redline-dev/redline/sre/oncall"
)

// SREName is the SRE service: incidents, the Alertmanager receiver, on-call escalation.
const SREName = "sre"

// SREConfig configures the SRE service.
type SREConfig struct {
	// Addr is its HTTP API: incidents, the Alertmanager webhook, who is on call.
	Addr string `koanf:"addr"`
	// DB holds incidents and escalations; default sqlite:<data_dir>/sre.db.
	DB     string       `koanf:"db"`
	OnCall OnCallConfig `koanf:"oncall"`
	// SLOs are OpenSLO spec files (sre/slo); empty: the demo's defaults (slo.Defaults).
	SLOs []string `koanf:"slos"`
	// Scrape lists the metrics URLs of the services the SLOs measure, e.g. their admin
	// endpoints' /metrics (sent the admin token); empty: this process's own registry, which
	// in `redline up` holds every service.
	Scrape []string `koanf:"scrape"`
	// EvalInterval is how often the SLIs are sampled (the 5 s buckets of the short windows).
	EvalInterval time.Duration `koanf:"eval_interval"`
	// Gate is the error budget policy of the release gate.
	Gate gate.Policy `koanf:"gate"`
}

// OnCallConfig is the default escalation policy: the primary rotation, then the
// secondary rotation, then the manager, each paged when the level before has not
// acknowledged within AckTimeout.
type OnCallConfig struct {
	Primary   []string `koanf:"primary"`
	Secondary []string `koanf:"secondary"`
	Manager   string   `koanf:"manager"`
	// Rotation is each person's shift; handoffs are on Mondays 09:00 UTC for weekly ones.
	Rotation   time.Duration `koanf:"rotation"`
	AckTimeout time.Duration `koanf:"ack_timeout"`
	// Webhook receives every page as JSON; empty: pages are logged only.
	Webhook string `koanf:"webhook"`
}

// rotationEpoch anchors every rotation: a Monday, 09:00 UTC.
var rotationEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// DefaultPolicy is the escalation policy alerts without an escalation_policy label get.
const DefaultPolicy = "default"

func (c OnCallConfig) directory() oncall.Directory {
	return oncall.Directory{
		Schedules: map[string]oncall.Schedule{
			"primary":   {Name: "primary", Layers: []oncall.Layer{{Name: "primary", Users: c.Primary, Start: rotationEpoch, Length: c.Rotation}}},
			"secondary": {Name: "secondary", Layers: []oncall.Layer{{Name: "secondary", Users: c.Secondary, Start: rotationEpoch, Length: c.Rotation}}},
		},
		Policies: map[string]oncall.Policy{DefaultPolicy: {Name: DefaultPolicy, Levels: []oncall.Level{
			{Schedule: "primary", Timeout: c.AckTimeout},
			{Schedule: "secondary", Timeout: c.AckTimeout},
			{User: c.Manager, Timeout: c.AckTimeout},
		}}},
	}
}

func (s *Stack) buildSRE(ctx context.Context) error {
	cfg := s.cfg.SRE
	db, err := s.openDB(ctx, SREName, s.cfg.dsn(SREName, cfg.DB))
	if err != nil {
		return err
	}
	// The postmortem draft states the budget an incident spent; the evaluator that knows it
	// is built on the store, so the store asks it through rt once it exists.
	var rt *sloRuntime
	store, err := incident.Open(ctx, db, incident.WithImpact(func(inc *incident.Incident) string {
		if rt == nil {
			return ""
		}
		return gate.ImpactText(rt.eval, inc, time.Now())
	}))
	if err != nil {
		return fmt.Errorf("sre: %w", err)
	}
	var notifier oncall.Notifier = oncall.NewLog(s.logger)
	if cfg.OnCall.Webhook != "" {
		notifier = oncall.NewWebhook(cfg.OnCall.Webhook, &http.Client{Timeout: 10 * time.Second, Transport: kithttp.ThirdParty(nil)})
	}
	dir := cfg.OnCall.directory()
	esc, err := oncall.NewEscalator(store, dir, notifier, oncall.WithLogger(s.logger))
	if err != nil {
		return fmt.Errorf("sre.oncall: %w", err)
	}
	// The escalator resumes what the store says is due: a restart continues escalations.
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	s.components = append(s.components, app.Hook("escalator", func(ctx context.Context) error {
		var run context.Context
		run, cancel = context.WithCancel(context.WithoutCancel(ctx))
		wg.Go(func() {
			if err := esc.Run(run, time.Second); err != nil && !errors.Is(err, context.Canceled) {
				s.logger.Error("escalator stopped", "error", err)
			}
		})
		return nil
	}, func(context.Context) error {
		if cancel != nil {
			cancel()
		}
		wg.Wait()
		return nil
	}))
	pager := incident.NewResponder(store, esc, incident.WithDefaultPolicy(DefaultPolicy), incident.WithDedupKey(sloDedupKey))
	ticketer := incident.NewResponder(store, esc, incident.WithDefaultPolicy(""), incident.WithDedupKey(sloDedupKey))
	rt, err = s.buildSLOs(ctx, store, pager, ticketer)
	if err != nil {
		return err
	}
	s.components = append(s.components, rt.component(s))
	srv := kithttp.NewServer(SREName, kithttp.Address(cfg.Addr), kithttp.Logger(s.logger),
		kithttp.Middleware(requireToken(s.cfg.Admin.Token)))
	incident.Register(srv, store, pager)
	rt.register(srv)
	kithttp.Route(srv, "GET /v1/oncall", func(_ context.Context, _ *struct{}) (*onCallView, error) {
		return onCallNow(dir, time.Now())
	})
	s.sre = srv
	s.components = append(s.components, srv)
	return nil
}

// onCallView is who each level of the default policy would page now.
type onCallView struct {
	Policy string         `json:"policy"`
	At     time.Time      `json:"at"`
	Levels []onCallTarget `json:"levels"`
}

type onCallTarget struct {
	Level      int    `json:"level"`
	User       string `json:"user"`
	AckTimeout string `json:"ack_timeout"`
}

func onCallNow(dir oncall.Directory, at time.Time) (*onCallView, error) {
	v := &onCallView{Policy: DefaultPolicy, At: at.UTC()}
	for i := range dir.Policies[DefaultPolicy].Levels {
		user, timeout, err := dir.Target(DefaultPolicy, i, at)
		if err != nil {
			return nil, err
		}
		v.Levels = append(v.Levels, onCallTarget{Level: i, User: user, AckTimeout: timeout.String()})
	}
	return v, nil
}

// requireToken refuses requests without "Authorization: Bearer token" (the admin token);
// an empty token leaves the API open, which only suits loopback, like the admin endpoint.
func requireToken(token string) middleware.Middleware {
	want := []byte("Bearer " + token)
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if token == "" {
				return next(ctx, req)
			}
			info := middleware.FromContext(ctx)
			if info == nil || subtle.ConstantTimeCompare([]byte(info.Header.Get("authorization")), want) != 1 {
				return nil, errs.New(codes.Unauthenticated, "ADMIN_TOKEN_REQUIRED",
					"the SRE API needs Authorization: Bearer <admin token> (admin.token in the config)")
			}
			return next(ctx, req)
		}
	}
}

// SREURL is the SRE API's base URL, "" when this process does not run it.
func (s *Stack) SREURL() string {
	if s.sre == nil {
		return ""
	}
	return "http://" + s.sre.Endpoint()
}
