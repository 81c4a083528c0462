package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// DefaultStatusTimeout bounds the store read of Service.State.
const DefaultStatusTimeout = time.Second

// Service is the quota service: it implements quotav1.QuotaServer on a Store. It is safe
// for concurrent use; several Services may share one RedisStore.
type Service struct {
	quotav1.UnimplementedQuotaServer
	store     Store
	o         serviceOptions
	resources atomic.Pointer[map[string]Resource]
}

var _ quotav1.QuotaServer = (*Service)(nil)

type serviceOptions struct {
	clock  clock.Clock
	logger *slog.Logger
}

// ServiceOption configures a Service.
type ServiceOption func(*serviceOptions)

// ServiceClock sets the time source that leases and expiry are judged by; the default is
// clock.Real{}.
func ServiceClock(c clock.Clock) ServiceOption { return func(o *serviceOptions) { o.clock = c } }

// ServiceLogger sets the logger of configuration changes and store failures; the default
// is slog.Default().
func ServiceLogger(l *slog.Logger) ServiceOption { return func(o *serviceOptions) { o.logger = l } }

// NewService returns a service sharing resources through store. It fails on an invalid
// resource map (see ValidateResources).
func NewService(store Store, resources map[string]Resource, opts ...ServiceOption) (*Service, error) {
	o := serviceOptions{clock: clock.Real{}, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	s := &Service{store: store, o: o}
	if err := s.SetResources(resources); err != nil {
		return nil, err
	}
	return s, nil
}

// SetResources replaces the resource map, for a config reload. An invalid map changes
// nothing. Clients of a removed resource get UNKNOWN_RESOURCE from then on; a lowered limit
// applies to each client at its next renewal.
func (s *Service) SetResources(resources map[string]Resource) error {
	if err := ValidateResources(resources); err != nil {
		return err
	}
	m := make(map[string]Resource, len(resources))
	for name, r := range resources {
		m[name] = r.withDefaults()
	}
	s.resources.Store(&m)
	s.o.logger.Info("quota resources set", "resources", len(m))
	return nil
}

// Resources returns the resource map in force, with defaults filled in.
func (s *Service) Resources() map[string]Resource {
	m := *s.resources.Load()
	out := make(map[string]Resource, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// invalid builds an INVALID_ARGUMENT error, naming the resource when there is one.
func invalid(reason, resource, format string, args ...any) *errs.Error {
	e := errs.InvalidArgument(reason, "quota: "+format, args...)
	if resource != "" {
		e = e.WithMetadata(MetadataResource, resource)
	}
	return e
}

func validFloat(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 }

// validate checks a request against the resources in force, before any state is touched.
func validate(req *quotav1.GetCapacityRequest, res map[string]Resource) *errs.Error {
	if err := validName(req.GetClientId()); err != nil {
		return invalid(ReasonInvalidRequest, "", "client_id %q: %v", req.GetClientId(), err)
	}
	rs := req.GetResources()
	if len(rs) == 0 || len(rs) > MaxBatch {
		return invalid(ReasonInvalidRequest, "", "%d resources in one request: want 1..%d", len(rs), MaxBatch)
	}
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		name := r.GetResource()
		if _, ok := res[name]; !ok {
			return invalid(ReasonUnknownResource, name, "unknown resource %q (not in the service's config)", name)
		}
		if seen[name] {
			return invalid(ReasonInvalidRequest, name, "resource %q listed twice", name)
		}
		seen[name] = true
		switch {
		case !validFloat(r.GetDemand()):
			return invalid(ReasonInvalidDemand, name, "resource %q: demand %v: want a finite rate >= 0", name, r.GetDemand())
		case !validFloat(r.GetWeight()):
			return invalid(ReasonInvalidDemand, name, "resource %q: weight %v: want a finite number >= 0", name, r.GetWeight())
		case !validFloat(r.GetHas()):
			return invalid(ReasonInvalidDemand, name, "resource %q: has %v: want a finite rate >= 0", name, r.GetHas())
		case r.GetClients() < 0 || r.GetClients() > MaxClientsFor:
			return invalid(ReasonInvalidRequest, name, "resource %q: clients %d: want 0..%d", name, r.GetClients(), MaxClientsFor)
		}
	}
	return nil
}

// storeError maps a store failure to the error a client sees.
func storeError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return errs.Internal(ctx.Err())
	}
	return errs.New(codes.Unavailable, ReasonStoreUnavailable, "quota: "+op+": store unavailable").WithCause(err)
}

// GetCapacity implements quotav1.QuotaServer.
func (s *Service) GetCapacity(ctx context.Context, req *quotav1.GetCapacityRequest) (*quotav1.GetCapacityReply, error) {
	res := *s.resources.Load()
	if err := validate(req, res); err != nil {
		serviceRequests.WithLabelValues("get_capacity", "invalid", err.Reason).Inc()
		return nil, err
	}
	names := make([]string, len(req.GetResources()))
	for i, r := range req.GetResources() {
		names[i] = r.GetResource()
	}
	var leases []*quotav1.Lease
	err := s.store.Update(ctx, names, func(states map[string]*ResourceState) error {
		now := s.o.clock.Now()
		leases = make([]*quotav1.Lease, len(names))
		for i, r := range req.GetResources() {
			leases[i] = grant(states[names[i]], req.GetClientId(), r, res[names[i]], now)
		}
		return nil
	})
	if err != nil {
		serviceRequests.WithLabelValues("get_capacity", "unavailable", ReasonStoreUnavailable).Inc()
		return nil, storeError(ctx, "get capacity", err)
	}
	serviceRequests.WithLabelValues("get_capacity", "ok", "").Inc()
	return &quotav1.GetCapacityReply{Leases: leases}, nil
}

// grant updates st for one client's request and returns its lease. It is the whole
// allocation rule; see the package doc.
func grant(st *ResourceState, client string, r *quotav1.ResourceRequest, cfg Resource, now time.Time) *quotav1.Lease {
	prune(st, now)
	ttl := cfg.LeaseTTL
	if cfg.Learning > 0 && (st.Seen.IsZero() || now.Sub(st.Seen) > ttl) {
		st.LearnUntil, st.LearnN = now.Add(cfg.Learning), 0
	}
	st.Seen = now
	rec := st.Clients[client]
	if rec == nil {
		rec = &ClientRecord{}
		st.Clients[client] = rec
	}
	rec.Demand, rec.Weight, rec.Has = r.GetDemand(), r.GetWeight(), r.GetHas()
	if rec.Weight == 0 {
		rec.Weight = 1
	}
	learning := now.Before(st.LearnUntil)
	if learning {
		st.LearnN = max(st.LearnN, int(r.GetClients()))
		if len(st.Clients) >= st.LearnN {
			// Everyone the clients knew of has reported: what is outstanding is known.
			st.LearnUntil, learning = time.Time{}, false
		}
	}
	ids, targets := fairShares(st, cfg.Limit)
	target := targets[slices.Index(ids, client)]
	var g float64
	if learning {
		g = min(target, rec.Has)
	} else {
		var others float64
		for id, c := range st.Clients {
			if id != client {
				others += c.Grant
			}
		}
		g = min(target, max(0, cfg.Limit-others))
	}
	rec.Grant, rec.Renewed, rec.Expires = g, now, now.Add(ttl)
	lease := &quotav1.Lease{Resource: r.GetResource(), Rate: g, TtlMs: ttl.Milliseconds(),
		Clients: int32(len(st.Clients)), Limit: cfg.Limit, FailOpen: cfg.FailOpen}
	const eps = 1e-9
	refresh := cfg.Refresh
	switch {
	case learning || g < target-eps*max(1, target):
		// More is due to this client as soon as others renew (or learning ends).
		refresh = min(refresh, ttl/10)
	case g < rec.Demand-eps*max(1, rec.Demand):
		// Unsatisfied: come back when the next other lease expires, in case its holder died.
		if next := nextExpiry(st, client, now); next > 0 {
			refresh = min(refresh, next+time.Millisecond)
		}
	}
	lease.RefreshMs = max(1, refresh.Milliseconds())
	return lease
}

// prune drops expired clients.
func prune(st *ResourceState, now time.Time) {
	for id, c := range st.Clients {
		if !c.Expires.After(now) {
			delete(st.Clients, id)
		}
	}
}

// fairShares returns the client ids in order and their max-min fair shares.
func fairShares(st *ResourceState, limit float64) ([]string, []float64) {
	ids := make([]string, 0, len(st.Clients))
	for id := range st.Clients {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	demands, weights := make([]float64, len(ids)), make([]float64, len(ids))
	for i, id := range ids {
		demands[i], weights[i] = st.Clients[id].Demand, st.Clients[id].Weight
	}
	return ids, MaxMin(limit, demands, weights)
}

// nextExpiry is the time until the soonest expiry of another client's lease, or 0.
func nextExpiry(st *ResourceState, client string, now time.Time) time.Duration {
	var next time.Duration
	for id, c := range st.Clients {
		if d := c.Expires.Sub(now); id != client && d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// Release implements quotav1.QuotaServer.
func (s *Service) Release(ctx context.Context, req *quotav1.ReleaseRequest) (*quotav1.ReleaseReply, error) {
	if err := validName(req.GetClientId()); err != nil {
		return nil, invalid(ReasonInvalidRequest, "", "client_id %q: %v", req.GetClientId(), err)
	}
	if len(req.GetResources()) > MaxBatch {
		return nil, invalid(ReasonInvalidRequest, "", "%d resources in one request: want at most %d", len(req.GetResources()), MaxBatch)
	}
	res := *s.resources.Load()
	var names []string
	for _, name := range req.GetResources() {
		if _, ok := res[name]; ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return &quotav1.ReleaseReply{}, nil
	}
	err := s.store.Update(ctx, names, func(states map[string]*ResourceState) error {
		for _, name := range names {
			delete(states[name].Clients, req.GetClientId())
		}
		return nil
	})
	if err != nil {
		serviceRequests.WithLabelValues("release", "unavailable", ReasonStoreUnavailable).Inc()
		return nil, storeError(ctx, "release", err)
	}
	serviceRequests.WithLabelValues("release", "ok", "").Inc()
	return &quotav1.ReleaseReply{}, nil
}

// Status implements quotav1.QuotaServer: every configured resource, sorted by name, with
// its live clients sorted by id.
func (s *Service) Status(ctx context.Context, _ *quotav1.StatusRequest) (*quotav1.StatusReply, error) {
	res := *s.resources.Load()
	names := make([]string, 0, len(res))
	for name := range res {
		names = append(names, name)
	}
	sort.Strings(names)
	reply := &quotav1.StatusReply{}
	if len(names) == 0 {
		return reply, nil
	}
	states, err := s.store.View(ctx, names)
	if err != nil {
		return nil, storeError(ctx, "status", err)
	}
	now := s.o.clock.Now()
	for _, name := range names {
		cfg, st := res[name], states[name]
		prune(st, now)
		rs := &quotav1.ResourceStatus{Resource: name, Limit: cfg.Limit, LeaseTtlMs: cfg.LeaseTTL.Milliseconds(),
			FailOpen: cfg.FailOpen, Learning: now.Before(st.LearnUntil)}
		ids, _ := fairShares(st, cfg.Limit)
		for _, id := range ids {
			c := st.Clients[id]
			rs.Demand += c.Demand
			rs.Granted += c.Grant
			rs.Clients = append(rs.Clients, &quotav1.ClientStatus{ClientId: id, Demand: c.Demand, Weight: c.Weight,
				Has: c.Has, Granted: c.Grant, LeaseAgeMs: now.Sub(c.Renewed).Milliseconds(),
				ExpiresInMs: c.Expires.Sub(now).Milliseconds()})
		}
		reply.Resources = append(reply.Resources, rs)
	}
	return reply, nil
}

// ServiceState is the JSON snapshot of a Service for the admin page.
type ServiceState struct {
	Resources []*quotav1.ResourceStatus `json:"resources"`
	// Error is set when the store could not be read.
	Error string `json:"error,omitempty"`
}

// State returns a ServiceState, reading the store with DefaultStatusTimeout.
func (s *Service) State() any {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStatusTimeout)
	defer cancel()
	st, err := s.Status(ctx, &quotav1.StatusRequest{})
	if err != nil {
		var e *errs.Error
		if errors.As(err, &e) && e.Unwrap() != nil {
			return ServiceState{Error: fmt.Sprintf("%v: %v", e.Message, e.Unwrap())}
		}
		return ServiceState{Error: err.Error()}
	}
	return ServiceState{Resources: st.GetResources()}
}
