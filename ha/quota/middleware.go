package quota

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
)

// Server is the server middleware: a request whose operation (the gRPC full method, or the
// HTTP route pattern such as "POST /v1/search") is listed in resources takes a token of
// that resource from c, and is rejected with ResourceExhausted QUOTA_EXCEEDED, metadata
// retry_after_ms and, on HTTP, a Retry-After header, when there is none. Other operations
// pass untouched. The rejection is not retryable: retrying at once only spends the same
// empty bucket. Put it in the server chain where the edge rate limit goes (after
// criticality and auth), so the global limit applies to the requests a local limit let in.
func Server(c *Client, resources map[string]string) middleware.Middleware {
	ops := make(map[string]string, len(resources))
	for op, res := range resources {
		ops[op] = res
	}
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			res, ok := ops[info.Operation]
			if !ok {
				return next(ctx, req)
			}
			if ok, wait := c.allow(res); !ok {
				return nil, rejection(info, res, wait)
			}
			return next(ctx, req)
		}
	}
}

func rejection(info *middleware.Info, res string, wait time.Duration) error {
	ms := max(1, (wait+time.Millisecond-1)/time.Millisecond)
	if info.Reply != nil {
		info.Reply.Set("Retry-After", strconv.FormatInt(int64(max(1, (wait+time.Second-1)/time.Second)), 10))
	}
	return errs.New(codes.ResourceExhausted, ReasonQuotaExceeded,
		fmt.Sprintf("global quota of %s exceeded for %s: retry after %s", res, info.Operation, ms*time.Millisecond)).
		WithMetadata(MetadataRetryAfter, strconv.FormatInt(int64(ms), 10)).
		WithMetadata(MetadataResource, res)
}

// Local adapts an in-process quota server to quotav1.QuotaClient: for a service embedded
// in the same process (the `redline up` default) and for simulations.
func Local(s quotav1.QuotaServer) quotav1.QuotaClient { return local{s} }

type local struct{ s quotav1.QuotaServer }

func (l local) GetCapacity(ctx context.Context, in *quotav1.GetCapacityRequest, _ ...grpc.CallOption) (*quotav1.GetCapacityReply, error) {
	return l.s.GetCapacity(ctx, in)
}

func (l local) Release(ctx context.Context, in *quotav1.ReleaseRequest, _ ...grpc.CallOption) (*quotav1.ReleaseReply, error) {
	return l.s.Release(ctx, in)
}

func (l local) Status(ctx context.Context, in *quotav1.StatusRequest, _ ...grpc.CallOption) (*quotav1.StatusReply, error) {
	return l.s.Status(ctx, in)
}
