package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/fault"
)

// ChaosConfig configures fault injection (chaos/faults).
type ChaosConfig struct {
	// Enabled lets faults be injected at all; off, /chaos/* is not served and no fault
	// applies. On by default: setting a fault takes the admin token, when there is one.
	Enabled bool `koanf:"enabled"`
	// Faults are set from the config and reload live; each expires (ttl from when it first
	// appears in the config, or until), so a forgotten one removes itself.
	Faults []faults.Spec `koanf:"faults" dynamic:"true"`
	// MaxTTL bounds the life of every fault (default 1h).
	MaxTTL time.Duration `koanf:"max_ttl"`
	// Net configures network faults: proxies in front of servers and stores (netfault.go).
	Net NetConfig `koanf:"net"`
}

// buildChaos makes the fault registry, serves it on the admin endpoint (/chaos/faults,
// /chaos/events) and installs it as the process's injector while the stack runs. Every
// transport and data client of the kit asks it about each call; with no fault set that
// costs a few nanoseconds. A process that runs order, inventory and payment also serves
// the checkout audit (/chaos/audit/checkout, audit.go), so a drill can ask whether its
// faults broke an order.
func (s *Stack) buildChaos() error {
	cfg := s.cfg.Chaos
	if !cfg.Enabled {
		return nil
	}
	reg := faults.New(faults.WithMaxTTL(cfg.MaxTTL), faults.WithLogger(s.logger))
	if err := reg.SetConfig(cfg.Faults); err != nil {
		return fmt.Errorf("chaos.faults: %w", err)
	}
	reg.Register(s.Admin)
	s.faults = reg
	if s.runsCheckout() {
		// The services' databases are opened later, by their builders: the audit looks
		// them up per request.
		serveCheckoutAudit(s.Admin, s.auditCheckout)
	}
	var restore func()
	s.components = append(s.components, app.Hook("faults", func(context.Context) error {
		restore = fault.Install(reg)
		return nil
	}, func(context.Context) error {
		if restore != nil {
			restore()
		}
		return nil
	}))
	return nil
}

// Faults is the fault registry, nil when chaos.enabled is off.
func (s *Stack) Faults() *faults.Registry { return s.faults }
