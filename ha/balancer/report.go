package balancer

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/redline-dev/redline/kit/middleware"
)

// CPUKey is the response metadata key that carries the server's CPU to balancers: a
// decimal integer in per mille of the CPU the server may use (its cgroup quota, else the
// host's cores), 0 idle to 1000 saturated. gRPC servers send it as a trailer (so it is
// there on errors too); HTTP servers as a response header.
const CPUKey = "x-redline-cpu"

// cpuStrings holds "0".."1000", so reporting does not format a number per request.
var cpuStrings = func() []string {
	s := make([]string, 1001)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// ReportCPU returns server middleware that reports cpu() (per mille, clamped to 0–1000)
// under CPUKey on every response: a gRPC trailer, or an HTTP response header. It belongs
// in the server chain, anywhere (it does not change the request); put it outside the
// shedder so that rejected requests carry the CPU too. cpu should be cheap (a value the
// shedder samples in the background); a nil cpu makes the middleware a no-op.
func ReportCPU(cpu func() int64) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		if cpu == nil {
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil || info.Side != middleware.Server {
				return next(ctx, req)
			}
			if info.Kind == middleware.HTTP && info.Reply != nil {
				info.Reply.Set(CPUKey, cpuString(cpu()))
			}
			resp, err := next(ctx, req)
			if info.Kind == middleware.GRPC {
				// Measured after the handler: the freshest value. SetTrailer fails only
				// outside a gRPC server stream, where there is nobody to tell.
				_ = grpc.SetTrailer(ctx, metadata.MD{CPUKey: {cpuString(cpu())}})
			}
			return resp, err
		}
	}
}

func cpuString(v int64) string { return cpuStrings[min(max(v, 0), 1000)] }
