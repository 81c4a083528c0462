package retry

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

// HeaderIdempotencyKey is the header that carries an idempotency key (DESIGN.md section 6).
const HeaderIdempotencyKey = "idempotency-key"

// HeaderCloner is implemented by an outbound middleware.Header that can be copied. A
// transport whose client header implements it declares that its innermost handler is safe
// for concurrent attempts: it sends the header of middleware.FromContext(ctx), not one it
// closed over, and decodes every call into its own reply. Client hedges only through such
// transports (or calls without a header); otherwise it counts refuse/hedge_unsafe and
// retries sequentially.
type HeaderCloner interface {
	Clone() middleware.Header
}

type keyCtx struct{}

// WithIdempotencyKey returns ctx carrying an idempotency key: the call it makes may be
// retried and hedged whatever its operation, and the key is sent as Idempotency-Key.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// IdempotencyKey returns the key set by WithIdempotencyKey, or "".
func IdempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(keyCtx{}).(string)
	return k
}

// Client is the client middleware that applies r to every call.
//
// Place it after (inside) Metadata, Tracing, Logging, Metrics and Deadline and before
// (outside) the breaker: the deadline then bounds the whole call, retries included; the
// RED metrics count calls, while attempts are counted here; every attempt asks the breaker,
// whose local rejection is not retryable and so ends the call. Each retry n sets
// meta.MD.Attempt = n in the attempt's ctx and writes x-redline-attempt on the outbound
// header itself, so the attempt reaches the server whether the Metadata middleware runs
// before Client (the recommended order) or after it.
func Client(r *Retrier) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			c := call{r: r, next: next, req: req, info: info}
			if info != nil {
				c.service, c.op, c.hdr = info.Service, info.Operation, info.Header
			}
			r.Begin()
			if !r.eligible(ctx, info) {
				resp, err := next(ctx, req)
				if err != nil && errs.IsRetryable(err) {
					r.count(c.service, c.op, "refuse", ReasonNotIdempotent)
				}
				return resp, err
			}
			c.inbound = meta.FromContext(ctx).Attempt
			if delay, ok := r.HedgeDelay(c.op); ok {
				if _, cloneable := c.hdr.(HeaderCloner); c.hdr == nil || cloneable {
					return c.hedged(ctx, delay)
				}
				r.count(c.service, c.op, "refuse", ReasonHedgeUnsafe)
			}
			return c.sequential(ctx)
		}
	}
}

// eligible reports whether the call may be retried: a key, a safe HTTP method, or an
// operation declared idempotent. A key from the ctx is put on the header.
func (r *Retrier) eligible(ctx context.Context, info *middleware.Info) bool {
	key := IdempotencyKey(ctx)
	if info == nil {
		return key != "" || r.o.idempotent != nil && r.o.idempotent("")
	}
	if info.Header != nil {
		if key != "" && info.Header.Get(HeaderIdempotencyKey) == "" {
			info.Header.Set(HeaderIdempotencyKey, key)
		}
		if key == "" {
			key = info.Header.Get(HeaderIdempotencyKey)
		}
	}
	if key != "" {
		return true
	}
	if info.Kind == middleware.HTTP {
		switch info.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return true
		}
	}
	return r.o.idempotent != nil && r.o.idempotent(info.Operation)
}

// call is one call through Client.
type call struct {
	r           *Retrier
	next        middleware.Handler
	req         any
	info        *middleware.Info
	hdr         middleware.Header
	service, op string
	inbound     int
}

func (c *call) failure(ctx context.Context, attempt int, err error) Failure {
	dl, _ := ctx.Deadline()
	return Failure{Service: c.service, Operation: c.op, Attempt: attempt, Inbound: c.inbound,
		Deadline: dl, Err: err}
}

// attemptCtx returns the ctx of attempt n. With clone, the attempt gets its own copy of the
// Info and header, so concurrent attempts share nothing mutable.
func (c *call) attemptCtx(ctx context.Context, n int, clone bool) context.Context {
	hdr := c.hdr
	if clone && hdr != nil {
		hdr = hdr.(HeaderCloner).Clone()
		info := *c.info
		info.Header = hdr
		ctx = middleware.NewContext(ctx, &info)
	}
	if n == 0 {
		return ctx
	}
	md := meta.FromContext(ctx)
	if md.RequestID == "" && hdr != nil {
		// An inner Metadata middleware made the first attempt's id; keep it.
		md.RequestID = hdr.Get(meta.HeaderRequestID)
	}
	md.Attempt = n
	if hdr != nil {
		hdr.Set(meta.HeaderAttempt, strconv.Itoa(n))
	}
	return meta.NewContext(ctx, md)
}

func (c *call) sequential(ctx context.Context) (any, error) {
	clk := c.r.o.clock
	track := c.r.tracks(c.op) // the clock is read only when the latency is needed
	for n := 0; ; n++ {
		actx := ctx
		if n > 0 {
			actx = c.attemptCtx(ctx, n, false)
		}
		var start time.Time
		if track && n == 0 {
			start = clk.Now()
		}
		resp, err := c.next(actx, c.req)
		if err == nil {
			if track && n == 0 {
				c.r.lat.observe(c.op, clk.Now().Sub(start))
			}
			return resp, nil
		}
		d := c.r.OnFailure(clk.Now(), c.failure(ctx, n, err))
		if !d.Retry {
			return resp, d.Err
		}
		if c.r.o.sleep(ctx, d.Delay) != nil {
			c.r.count(c.service, c.op, "refuse", ReasonCanceled)
			return resp, err
		}
	}
}

type result struct {
	resp any
	err  error
	n    int
	took time.Duration
}

// hedged runs the call with a hedge after delay. Every attempt runs in its own goroutine
// on its own cancellable ctx; this goroutine decides, and returns only after all of them
// (and the hedge timer) have returned.
//
// c is a copy: the goroutines capture it, and the sequential path then keeps its call on
// the stack.
func (c call) hedged(ctx context.Context, delay time.Duration) (any, error) {
	r, clk := c.r, c.r.o.clock
	results := make(chan result, r.o.maxAttempts)
	cancels := make([]context.CancelFunc, 0, r.o.maxAttempts)
	var wg sync.WaitGroup
	launch := func(n int) {
		actx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		actx = c.attemptCtx(actx, n, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := clk.Now()
			resp, err := c.next(actx, c.req)
			results <- result{resp: resp, err: err, n: n, took: clk.Now().Sub(start)}
		}()
	}
	timerCtx, stopTimer := context.WithCancel(ctx)
	fire := make(chan struct{}, 1)
	arm := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.o.sleep(timerCtx, delay) == nil {
				fire <- struct{}{}
			}
		}()
	}
	finish := func() {
		stopTimer()
		for _, cancel := range cancels {
			cancel()
		}
		wg.Wait()
	}

	launch(0)
	attempts, inflight, firstDone := 1, 1, false
	arm()
	for {
		select {
		case <-fire:
			if inflight == 0 || attempts >= r.o.maxAttempts || !r.TryHedge(clk.Now(), c.service, c.op, attempts) {
				continue
			}
			launch(attempts)
			attempts++
			inflight++
			if attempts < r.o.maxAttempts {
				arm()
			}
		case res := <-results:
			inflight--
			firstDone = firstDone || res.n == 0
			if res.err == nil {
				switch {
				case res.n == 0:
					r.Observe(c.op, res.took)
				case !firstDone:
					// The first attempt lost: record the lower bound we know.
					r.Observe(c.op, delay)
				}
				finish()
				return res.resp, nil
			}
			if inflight > 0 && errs.IsRetryable(res.err) {
				continue // another attempt may still succeed
			}
			d := r.OnFailure(clk.Now(), c.failure(ctx, attempts-1, res.err))
			if !d.Retry {
				finish()
				return res.resp, d.Err
			}
			if r.o.sleep(ctx, d.Delay) != nil {
				r.count(c.service, c.op, "refuse", ReasonCanceled)
				finish()
				return res.resp, res.err
			}
			launch(attempts)
			attempts++
			inflight++
		}
	}
}
