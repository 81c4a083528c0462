package stack

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// errLaneNotIsolated refuses lane traffic while the services have no shadow instances.
var errLaneNotIsolated = errs.New(codes.FailedPrecondition, "LANE_NOT_ISOLATED",
	"this deployment runs no shadow instances (stress.shadow: false), so lane traffic is refused rather than let it touch baseline data; "+
		"turn stress.shadow on to run stress tests")

// errLaneKilled refuses lane traffic on a killed service.
var errLaneKilled = errs.New(codes.FailedPrecondition, "LANE_KILLED",
	"stress traffic is switched off here (stress.kill or stress.kill_services); baseline traffic is served")

var lanesKilled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redline_lane_killed_total",
	Help: "Lane requests refused by a stress kill switch, by service."}, []string{"service"})

func init() { metric.Registry.MustRegister(lanesKilled) }

// failClosedLanes refuses every request in a lane at the edge when there are no shadow
// instances: the baseline data clients would refuse it anyway, deeper and later.
func failClosedLanes() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if meta.Lane(ctx) != "" {
				return nil, errLaneNotIsolated
			}
			return next(ctx, req)
		}
	}
}

// laneSwitches holds the kill switches as the config last said.
type laneSwitches struct{ v atomic.Pointer[StressConfig] }

func (l *laneSwitches) set(c StressConfig) {
	c.KillServices = slices.Clone(c.KillServices)
	l.v.Store(&c)
}

func (l *laneSwitches) killed(service string) bool {
	c := l.v.Load()
	return c != nil && (c.Kill || slices.Contains(c.KillServices, service))
}

// laneGuard is the server middleware of every service: lane traffic is refused at once,
// with no retry, while its kill switch is on. Baseline traffic never looks at it.
func (s *Stack) laneGuard(service string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			if meta.Lane(ctx) != "" && s.lanes.killed(service) {
				lanesKilled.WithLabelValues(service).Inc()
				return nil, errLaneKilled
			}
			return next(ctx, req)
		}
	}
}
