package stack

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/payment/provider"
)

// DefaultProviderTimeout is payment.provider_timeout's default: the most one charge call to
// the provider may take, whatever the caller's deadline (the retry loop's is 30 s).
const DefaultProviderTimeout = 2 * time.Second

// providerCharger charges through the kit's HTTP client, so a call to the provider, a third
// party, gets what every call between our services gets: a deadline (the caller's, at
// most payment.provider_timeout), the SRE breaker of the payprovider target, tuned by
// payment.provider_breaker (a slow or failing provider is throttled locally and fails
// fast with BREAKER_OPEN, instead of holding every payment request for its timeout), a
// forced-degradation switch
// (ha.degrade.forced: [payprovider]), fault injection (kind http, side client, target
// payprovider) and client metrics. POST /charge carries no idempotency key, so the call
// itself is not retried: a Pay the provider did not take leaves its payment PENDING, and
// the payment service's retry loop charges it again (the provider keys charges by
// payment), through the same breaker, once the provider answers.
//
// The provider's URL is resolved at each charge: in one process the mock's port is known
// only once it listens. The lane is stripped on the way out (kithttp.ThirdParty).
type providerCharger struct {
	url     func() string
	ha      *ha.Client
	logger  *slog.Logger
	timeout time.Duration
	shadow  bool // refuses charges that could not be called back in a lane

	mu   sync.Mutex
	base string
	c    *kithttp.Client
}

func (s *Stack) newProviderCharger(url func() string) *providerCharger {
	cfg := s.cfg.HA
	pb := s.cfg.Payment.ProviderBreaker
	cfg.Breaker.Off = cfg.Breaker.Off || pb.Off
	cfg.Breaker.K = cmp.Or(pb.K, cfg.Breaker.K)
	cfg.Breaker.Window = cmp.Or(pb.Window, cfg.Breaker.Window)
	cfg.Breaker.MinRequests = cmp.Or(pb.MinRequests, cfg.Breaker.MinRequests)
	h := ha.NewClient(cfg, s.switches, nil)
	key := ProviderName
	if s.shadow {
		key += " (shadow)"
	}
	s.haClients[key] = h
	return &providerCharger{url: url, ha: h, logger: s.logger, timeout: s.cfg.Payment.ProviderTimeout, shadow: s.shadow}
}

func (c *providerCharger) Charge(ctx context.Context, req provider.ChargeRequest) error {
	if c.shadow && req.CallbackURL == "" {
		return errors.New("a shadow payment cannot be called back without a lane token: set stress.key")
	}
	return c.client().Do(ctx, http.MethodPost, "/charge", nil, req, nil)
}

// client returns the kit client of the provider's current URL; the HA parts are shared by
// every client it makes, so the breaker's state survives a change of URL.
func (c *providerCharger) client() *kithttp.Client {
	base := c.url()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil || c.base != base {
		c.base = base
		c.c = kithttp.NewClient(ProviderName, base, kithttp.ClientHA(c.ha), kithttp.ClientLogger(c.logger),
			kithttp.ClientDeadline(middleware.DeadlineConfig{Default: c.timeout}),
			kithttp.HTTPClient(&http.Client{Transport: kithttp.ThirdParty(nil)}))
	}
	return c.c
}
