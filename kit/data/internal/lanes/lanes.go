// Package lanes holds what the data clients share to fail closed on lanes: the error a
// baseline client returns to a request in a lane, and its counter.
package lanes

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/metric"
)

// ErrBaseline is returned by a baseline data client (SQL, cache, queue) called in a lane.
var ErrBaseline = errs.New(codes.FailedPrecondition, "LANE_NOT_ISOLATED",
	"a request in a lane reached a baseline data client and was refused; lane traffic must use the shadow clients")

var refused = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_lane_baseline_refused_total",
	Help: "Calls in a lane refused by a baseline data client, by client (sql|cache|mq). Any is a bug.",
}, []string{"client"})

func init() { metric.Registry.MustRegister(refused) }

// Refused counts one refused call of client.
func Refused(client string) { refused.WithLabelValues(client).Inc() }

// Counter returns the refusal counter of client, for tests.
func Counter(client string) prometheus.Counter { return refused.WithLabelValues(client) }
