package stack

import (
	"context"
	"fmt"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/meta"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/bff"
	"github.com/redline-dev/redline/services/payment/provider"
	"github.com/redline-dev/redline/stress/lane"
)

// Shadow twins.
//
// With stress.shadow on (the default), every service that keeps data is built twice: the
// baseline instance, and a shadow instance whose database is the shadow twin (sqldb.Shadow),
// whose cache keys are under cache.ShadowPrefix, whose queue is the shadow stream
// (mq.Shadow), whose payment provider is the mock, and whose calls to other services are
// always in a lane. The service's gRPC server (each of them, with note.replicas) carries
// both: a request in a lane is dispatched to the shadow instance, any other to the
// baseline one.
//
// So lane isolation holds by construction, in-process state included: hot-key copies,
// bloom filters, singleflight groups, batchers, outbox relays and periodic jobs each
// exist once per side, and the shadow side has no handle on baseline data at all. The data
// clients check it again: a baseline client refuses a call in a lane (LANE_NOT_ISOLATED).

// noShadow are the services without data of their own: no twin.
var noShadow = map[string]bool{QuotaName: true, ProviderName: true, bff.Name: true, SREName: true}

// routed is one gRPC service registered by both instances of a service, served by every
// replica's server.
type routed struct {
	srvs         []*kitgrpc.Server
	desc         *grpc.ServiceDesc
	base, shadow any
}

// registrar records what a builder registers, for registerRoutes.
type registrar struct {
	s      *Stack
	srvs   []*kitgrpc.Server // the service's replicas; none for a shadow instance
	shadow bool
}

func (r registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	rt, ok := r.s.routes[desc.ServiceName]
	if !ok {
		rt = &routed{desc: desc}
		r.s.routes[desc.ServiceName] = rt
		r.s.routeOrder = append(r.s.routeOrder, desc.ServiceName)
	}
	if r.shadow {
		rt.shadow = impl
		return
	}
	rt.srvs, rt.base = r.srvs, impl
}

// registerRoutes registers every recorded service on its servers (every replica) with
// handlers that pick the instance by the request's lane. Without a shadow instance a lane
// request reaches the baseline one, whose data clients refuse it.
func (s *Stack) registerRoutes() error {
	for _, name := range s.routeOrder {
		rt := s.routes[name]
		if len(rt.srvs) == 0 {
			return fmt.Errorf("%s: a shadow instance without a baseline one", name)
		}
		if rt.shadow == nil { // no twin: lane calls reach the baseline, whose clients refuse them
			for _, srv := range rt.srvs {
				srv.RegisterService(rt.desc, rt.base)
			}
			continue
		}
		desc := *rt.desc
		desc.Methods = make([]grpc.MethodDesc, len(rt.desc.Methods))
		for i, m := range rt.desc.Methods {
			h, shadow := m.Handler, rt.shadow
			m.Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				if incomingLane(ctx) != "" {
					srv = shadow
				}
				return h(srv, ctx, dec, ic)
			}
			desc.Methods[i] = m
		}
		desc.Streams = make([]grpc.StreamDesc, len(rt.desc.Streams))
		for i, st := range rt.desc.Streams {
			h, shadow := st.Handler, rt.shadow
			st.Handler = func(srv any, stream grpc.ServerStream) error {
				if incomingLane(stream.Context()) != "" {
					srv = shadow
				}
				return h(srv, stream)
			}
			desc.Streams[i] = st
		}
		for _, srv := range rt.srvs {
			srv.RegisterService(&desc, rt.base)
		}
	}
	return nil
}

// incomingLane reads the lane of an incoming gRPC call from its first baggage value,
// exactly as the server's metadata middleware (meta.Extract) will.
func incomingLane(ctx context.Context) string {
	// ValueFromIncomingContext copies one key's values, not the whole metadata.
	if v := metadata.ValueFromIncomingContext(ctx, meta.HeaderBaggage); len(v) > 0 {
		return meta.LaneFromBaggage(v[0])
	}
	return ""
}

// shadowLane is the lane of the shadow instances' own work (calls, publishes, callbacks)
// that no lane request started: this process's lane when it is a lane instance, else
// meta.ShadowLane.
func (s *Stack) shadowLane() string {
	if s.cfg.Lane != "" {
		return s.cfg.Lane
	}
	return meta.ShadowLane
}

// compareShadows checks every shadow database against its baseline once both are migrated.
func (s *Stack) compareShadows(ctx context.Context) error {
	for name, pair := range s.dbPairs {
		if pair[0] == nil || pair[1] == nil {
			continue
		}
		if err := sqldb.CompareSchemas(ctx, pair[0], pair[1]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// shadowProviderURL is the payment provider of the shadow payment instance: the mock this
// process runs, or one started for it. A lane never reaches a real provider.
func (s *Stack) shadowProviderURL() (func() string, error) {
	if s.provider != nil {
		return func() string { return "http://" + s.provider.Endpoint() }, nil
	}
	mock := provider.NewServer([]byte(s.cfg.Payment.Secret), provider.WithLogger(s.logger))
	srv := kithttp.NewServer(ProviderName+"-shadow", kithttp.Address("127.0.0.1:0"), kithttp.Logger(s.logger))
	srv.Handle("/", mock)
	s.components = append(s.components, app.Hook("shadow payprovider callbacks", nil, func(context.Context) error { return mock.Close() }), srv)
	return func() string { return "http://" + srv.Endpoint() }, nil
}

// shadowCallbackURL is where the provider calls the shadow payment instance back: the
// BFF's callback route with a lane token in the URL (a webhook cannot set headers), so the
// callback reaches the shadow instance. When no token can be made (no stress key) it is
// "", and the shadow charger refuses to charge: a callback without a lane would reach the
// baseline payment instance.
func (s *Stack) shadowCallbackURL(base func() string) func() string {
	return func() string {
		raw := base()
		if s.cfg.Stress.Key == "" || raw == "" {
			return ""
		}
		u, err := url.Parse(raw)
		if err != nil {
			return ""
		}
		signer, err := lane.NewSigner(s.cfg.Stress.Key, nil)
		if err != nil {
			return ""
		}
		// The longest a token may live: the mock replays a payment's first callback URL.
		tok, err := signer.Sign(s.shadowLane(), lane.MaxTTL)
		if err != nil {
			return ""
		}
		q := u.Query()
		q.Set(meta.QueryLaneToken, tok)
		u.RawQuery = q.Encode()
		return u.String()
	}
}
