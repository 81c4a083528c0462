// Package quota provides a distributed rate limit: a quota service that shares each
// resource's global rate max-min fairly among the client instances that use it, and a
// client that consumes its share locally, with no network call on the hot path, and falls
// back safely when the service is gone.
//
// # Service
//
// Service implements the gRPC API of api/quota/v1 (register it on a kit gRPC server with
// quotav1.RegisterQuotaServer). A client reports its demand for a batch of resources and
// gets a lease per resource: a rate, a TTL, the number N of clients and the global limit.
// Allocation is max-min fair (MaxMin): demands are met in ascending order of demand/weight,
// nobody gets more than it asked, the rest share what is left by weight. Grants are
// conservative: a client gets at most its fair share and at most the limit minus what the
// other live leases hold, so the leases in force never add up to more than the limit; a
// client whose grant is below its fair share is told to come back soon (Lease.refresh_ms),
// and every client renews every Resource.Refresh, a fraction of the TTL, so capacity moves
// to where demand went within a refresh while a lease still outlasts a short outage.
// After a restart or an outage (no request for a resource for a whole TTL, or a fresh
// store) the service is in learning mode for up to Resource.Learning: it grants nobody more
// than it already has (the client's reported fallback rate or held lease) until as many
// clients have reported as the largest N they last knew, so clients living on global/N
// are counted before anyone gets more.
//
// State lives in a Store: RedisStore (WATCH/MULTI transactions, so several service
// instances can serve together) or MemoryStore (tests and the embedded default). Each
// client's demand and lease carries its expiry, so a dead client's share returns to the
// pool one lease TTL after its last renewal. Expiry is judged by the service's clock, so
// instances sharing a Redis need clocks synchronized to well within a TTL.
//
// # Client
//
// Client.Allow(resource) takes a token from a local GCRA bucket at the leased rate. A
// background goroutine (stopped by Close) measures demand (attempts a second, EWMA),
// renews every lease in one batched RPC when the service says (Lease.refresh_ms, at most
// 2/3 of the TTL), and pulls early when demand jumps or local tokens run out. When the
// service is unreachable or answers UNAVAILABLE a client keeps its last lease until it
// expires, then uses global/N (N = the last known number of clients), never the global
// rate; a fail-open resource (Policy.FailOpen or Resource.FailOpen) admits everything
// instead. Every change of mode is logged and counted.
//
// Server is the middleware that maps operations to resources and rejects with
// errs.New(codes.ResourceExhausted, "QUOTA_EXCEEDED", ...) and retry_after_ms.
//
// # Defaults
//
//   - Resource.LeaseTTL: 10 s (DefaultLeaseTTL); Resource.Refresh: a quarter of the TTL
//     (2.5 s); Resource.Learning: the TTL.
//   - Client renewal: every Refresh (sooner when the service asks: a tenth of the TTL while
//     its grant is below its fair share); retries after a failure 100 ms doubling to 2 s.
//   - Client demand: EWMA with time constant 2 s, sampled every 500 ms (every 100 ms while
//     starved); reported as max(measured × 1.25, 1/s) (Headroom, MinDemand); a change
//     of more than 20% is reported at once, at most every 100 ms (MinInterval).
//   - Client bucket burst: 250 ms worth of the rate (Burst), so ten full buckets add at
//     most 2.5% to a 10 s window.
//   - Before its first lease a resource admits nothing (Policy.InitialRate 0) unless it
//     fails open.
//   - RPC timeout 1 s; Release on Close with a 200 ms timeout.
//   - Clock: clock.Real{}; Logger: slog.Default().
package quota

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultLeaseTTL is the lease TTL of a resource that sets none.
const DefaultLeaseTTL = 10 * time.Second

// Bounds of what the service accepts.
const (
	MinLeaseTTL   = 100 * time.Millisecond
	MinRefresh    = 10 * time.Millisecond
	MaxLeaseTTL   = time.Hour
	MaxNameLen    = 128
	MaxBatch      = 256
	MaxClientsFor = 1 << 20 // the largest N a client may report
)

// Reasons of the errors the service returns.
const (
	ReasonUnknownResource  = "UNKNOWN_RESOURCE"
	ReasonInvalidDemand    = "INVALID_DEMAND"
	ReasonInvalidRequest   = "INVALID_REQUEST"
	ReasonStoreUnavailable = "QUOTA_STORE_UNAVAILABLE"
	// ReasonQuotaExceeded is the reason of the middleware's rejections.
	ReasonQuotaExceeded = "QUOTA_EXCEEDED"
)

// MetadataResource is the error metadata key naming the offending resource.
const MetadataResource = "resource"

// MetadataRetryAfter is the error metadata key of a rejection's delay, in whole
// milliseconds, after which the local bucket has a token again.
const MetadataRetryAfter = "retry_after_ms"

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("quota: invalid config")

// Config is the service's configuration: the resources it shares. It is safe to reload at
// run time (Service.SetResources).
type Config struct {
	// Resources maps a resource name to its global limit and lease settings.
	Resources map[string]Resource `koanf:"resources" dynamic:"true" json:"resources"`
}

// Validate checks every resource.
func (c Config) Validate() error { return ValidateResources(c.Resources) }

// Resource is one shared resource.
type Resource struct {
	// Limit is the global rate, in requests a second, shared by all clients (finite, >= 0;
	// 0 grants nothing).
	Limit float64 `koanf:"limit" json:"limit"`
	// LeaseTTL is how long a lease holds; 0 means DefaultLeaseTTL (MinLeaseTTL..MaxLeaseTTL).
	LeaseTTL time.Duration `koanf:"lease_ttl" json:"lease_ttl"`
	// FailOpen makes clients admit everything when they have neither a lease nor the service:
	// for non-critical resources, where availability beats the limit.
	FailOpen bool `koanf:"fail_open" json:"fail_open"`
	// Refresh is how often clients renew; 0 means LeaseTTL/4. Short refreshes move capacity
	// to where demand went quickly; long leases keep clients safe while the service is
	// away (MinRefresh..LeaseTTL·2/3).
	Refresh time.Duration `koanf:"refresh" json:"refresh"`
	// Learning bounds the learning mode after a restart or outage; 0 means LeaseTTL, a
	// negative value turns learning off (faster recovery, overshoot while clients that are
	// on their fallback rate come back).
	Learning time.Duration `koanf:"learning" json:"learning"`
}

// Validate checks r.
func (r Resource) Validate() error {
	switch {
	case math.IsNaN(r.Limit) || math.IsInf(r.Limit, 0) || r.Limit < 0:
		return fmt.Errorf("%w: limit %v: want a finite rate >= 0", ErrInvalidConfig, r.Limit)
	case r.LeaseTTL != 0 && (r.LeaseTTL < MinLeaseTTL || r.LeaseTTL > MaxLeaseTTL):
		return fmt.Errorf("%w: lease_ttl %v: want 0 (default %v) or %v..%v", ErrInvalidConfig,
			r.LeaseTTL, DefaultLeaseTTL, MinLeaseTTL, MaxLeaseTTL)
	case r.Refresh != 0 && (r.Refresh < MinRefresh || r.Refresh > r.withDefaults().LeaseTTL*2/3):
		return fmt.Errorf("%w: refresh %v: want 0 (lease_ttl/4) or %v..lease_ttl·2/3", ErrInvalidConfig, r.Refresh, MinRefresh)
	case r.Learning > MaxLeaseTTL:
		return fmt.Errorf("%w: learning %v: want at most %v", ErrInvalidConfig, r.Learning, MaxLeaseTTL)
	}
	return nil
}

// withDefaults fills the zero values of r.
func (r Resource) withDefaults() Resource {
	if r.LeaseTTL == 0 {
		r.LeaseTTL = DefaultLeaseTTL
	}
	if r.Refresh == 0 {
		r.Refresh = r.LeaseTTL / 4
	}
	if r.Learning == 0 {
		r.Learning = r.LeaseTTL
	}
	return r
}

// ValidateResources checks a resource map: names of 1..MaxNameLen bytes of printable
// UTF-8, and valid resources.
func ValidateResources(m map[string]Resource) error {
	for name, r := range m {
		if err := validName(name); err != nil {
			return fmt.Errorf("%w: resource %q: %w", ErrInvalidConfig, name, err)
		}
		if err := r.Validate(); err != nil {
			return fmt.Errorf("resource %q: %w", name, err)
		}
	}
	return nil
}

var errBadName = errors.New("want 1..128 bytes of printable UTF-8")

func validName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen || !utf8.ValidString(s) {
		return errBadName
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return errBadName
		}
	}
	return nil
}
