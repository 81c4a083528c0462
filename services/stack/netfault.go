package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/redline-dev/redline/chaos/netfault"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/services/comment"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/history"
	"github.com/redline-dev/redline/services/interaction"
	"github.com/redline-dev/redline/services/inventory"
	"github.com/redline-dev/redline/services/note"
	"github.com/redline-dev/redline/services/order"
	"github.com/redline-dev/redline/services/payment"
	"github.com/redline-dev/redline/services/product"
	"github.com/redline-dev/redline/services/search"
	"github.com/redline-dev/redline/services/user"
)

// NetConfig configures network faults (chaos/netfault): TCP proxies in the path of the
// process's connections, on which the admin API (/chaos/net) sets latency, bandwidth
// limits, resets and outages.
type NetConfig struct {
	// Enabled puts a proxy in front of every gRPC server of the process, named after its
	// service ("note", "quota"), or for a further replica after its instance ("note-2",
	// see note.replicas); the registry hands out the proxy's address, so every call
	// between services crosses it. Off by default: each hop then costs one more loopback
	// connection (tens of microseconds). Needs chaos.enabled.
	Enabled bool `koanf:"enabled"`
	// Dependencies also puts a proxy in front of each external store the process uses,
	// and its clients dial the proxy: "redis" (cache, quota.store), "postgres" (the
	// services' db DSNs) and "nats" (queue). A second distinct server of a kind is
	// "redis-2", and so on. Embedded stores (memory:, SQLite, the embedded NATS) have no
	// connection to break and get none. On by default; it matters only with Enabled.
	Dependencies bool `koanf:"dependencies"`
}

// buildNetFault makes the proxies when chaos.net.enabled is on, serves their admin API
// (/chaos/net) and points the store clients at their proxies by rewriting the stack's copy
// of the config. The gRPC servers' proxies come at registration (netAddr). The proxies
// close after everything that uses them stops.
func (s *Stack) buildNetFault() error {
	cfg := s.cfg.Chaos
	if !cfg.Net.Enabled {
		return nil
	}
	if !cfg.Enabled {
		return errors.New("chaos.net.enabled needs chaos.enabled: network faults are set through the /chaos/* admin API")
	}
	px := netfault.New(netfault.WithMaxTTL(cfg.MaxTTL), netfault.WithLogger(s.logger))
	s.components = append(s.components, app.Hook("netfault", nil, func(context.Context) error { return px.Close() }))
	s.netFaults = px
	px.Register(s.Admin)
	if !cfg.Net.Dependencies {
		return nil
	}
	c, err := s.proxyDependencies(px)
	if err != nil {
		return fmt.Errorf("chaos.net.dependencies: %w", err)
	}
	s.cfg = c
	return nil
}

// NetFaults is the network fault proxies, nil when chaos.net.enabled is off.
func (s *Stack) NetFaults() *netfault.Proxies { return s.netFaults }

// netAddr is the address to register for the gRPC server instance at endpoint (a
// service's first replica is named after the service, the others "note-2", ...): its
// proxy's, named instance and started here on the same host, when chaos.net.enabled is on;
// else endpoint itself.
func (s *Stack) netAddr(instance, endpoint string) (string, error) {
	if s.netFaults == nil {
		return endpoint, nil
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", fmt.Errorf("%s: proxy: %w", instance, err)
	}
	p, err := s.netFaults.Add(instance, net.JoinHostPort(host, "0"), endpoint)
	if err != nil {
		return "", fmt.Errorf("%s: proxy: %w", instance, err)
	}
	return p.Listen, nil
}

// dbFields are the database DSNs of the services that keep data, by service.
func dbFields(c *Config) map[string]*string {
	return map[string]*string{user.Name: &c.User.DB, note.Name: &c.Note.DB, interaction.Name: &c.Interaction.DB,
		inventory.Name: &c.Inventory.DB, product.Name: &c.Product.DB, order.Name: &c.Order.DB, payment.Name: &c.Payment.DB,
		feed.Name: &c.Feed.DB, comment.Name: &c.Comment.DB, history.Name: &c.History.DB, search.Name: &c.Search.DB,
		SREName: &c.SRE.DB}
}

// proxyDependencies returns a copy of the config whose store URLs of the services this
// process runs point at proxies in front of the real servers.
func (s *Stack) proxyDependencies(px *netfault.Proxies) (*Config, error) {
	c := *s.cfg
	d := depProxies{px: px, names: map[string]string{}, count: map[string]int{}}
	if strings.HasPrefix(c.Cache, "redis://") {
		if err := d.rewrite("cache", "redis", "6379", &c.Cache); err != nil {
			return nil, err
		}
	}
	if slices.Contains(s.services, QuotaName) && strings.HasPrefix(c.Quota.Store, "redis://") {
		if err := d.rewrite("quota.store", "redis", "6379", &c.Quota.Store); err != nil {
			return nil, err
		}
	}
	fields := dbFields(&c)
	for _, svc := range s.services { // in start order, so names are stable
		f, ok := fields[svc]
		if !ok || !(strings.HasPrefix(*f, "postgres://") || strings.HasPrefix(*f, "postgresql://")) {
			continue
		}
		if err := d.rewrite(svc+".db", "postgres", "5432", f); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(c.Queue, "nats://") && slices.ContainsFunc(s.services, func(n string) bool { return slices.Contains(queueUsers, n) }) {
		if err := d.rewrite("queue", "nats", "4222", &c.Queue); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// depProxies names and starts the proxies of the stores: one per distinct server.
type depProxies struct {
	px    *netfault.Proxies
	names map[string]string // "kind upstream" → proxy name
	count map[string]int    // by kind
}

// rewrite points the URL in *dsn (the config key key) at the proxy of its server, starting
// one named kind (kind-2, ... for further servers) on first sight.
func (d *depProxies) rewrite(key, kind, defaultPort string, dsn *string) error {
	u, err := url.Parse(*dsn)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %s: not a URL with a host", key, conf.RedactURL(*dsn))
	}
	if strings.Contains(u.Host, ",") || u.Query().Has("host") {
		return fmt.Errorf("%s %s: several hosts; a proxy has one upstream: name one server or turn chaos.net.dependencies off",
			key, conf.RedactURL(*dsn))
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	name, ok := d.names[kind+" "+upstream]
	if !ok {
		d.count[kind]++
		name = kind
		if n := d.count[kind]; n > 1 {
			name = fmt.Sprintf("%s-%d", kind, n)
		}
		if _, err := d.px.Add(name, "", upstream); err != nil {
			return fmt.Errorf("%s: proxy %s: %w", key, name, err)
		}
		d.names[kind+" "+upstream] = name
	}
	u.Host = d.px.Addr(name)
	*dsn = u.String()
	return nil
}
