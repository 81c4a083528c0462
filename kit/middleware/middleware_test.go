package middleware

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
)

func TestChainOrder(t *testing.T) {
	var trace []string
	mark := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, req any) (any, error) {
				trace = append(trace, name+">")
				resp, err := next(ctx, req)
				trace = append(trace, "<"+name)
				return resp, err
			}
		}
	}
	h := Chain(mark("a"), mark("b"))(func(context.Context, any) (any, error) {
		trace = append(trace, "handler")
		return nil, nil
	})
	_, _ = h(context.Background(), nil)
	if got := fmt.Sprint(trace); got != "[a> b> handler <b <a]" {
		t.Fatalf("order = %s", got)
	}
}

func TestDeadlineBudget(t *testing.T) {
	cases := []struct {
		name    string
		cfg     DeadlineConfig
		inbound time.Duration // 0: caller sent none
		op      string
		want    time.Duration // budget the handler sees; 0: refused
	}{
		{"default when caller sent none", DeadlineConfig{Default: 100 * time.Millisecond}, 0, "", 100 * time.Millisecond},
		{"caller's budget less margin", DeadlineConfig{Default: time.Second, Margin: 5 * time.Millisecond}, 50 * time.Millisecond, "", 45 * time.Millisecond},
		{"default caps a generous caller", DeadlineConfig{Default: 100 * time.Millisecond}, time.Minute, "", 100 * time.Millisecond},
		{"per-operation override", DeadlineConfig{Default: 100 * time.Millisecond, Operations: map[string]time.Duration{"/slow": time.Second}}, 0, "/slow", time.Second},
		{"no time left after margin", DeadlineConfig{Default: time.Second, Margin: 10 * time.Millisecond}, 5 * time.Millisecond, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := &Info{Kind: HTTP, Side: Server, Operation: c.op, Timeout: c.inbound, Start: time.Now()}
			var got time.Duration
			called := false
			h := Deadline(c.cfg)(func(ctx context.Context, _ any) (any, error) {
				called = true
				dl, _ := ctx.Deadline()
				got = time.Until(dl)
				return nil, nil
			})
			_, err := h(NewContext(context.Background(), info), nil)
			if c.want == 0 {
				if called || errs.Reason(err) != errs.ReasonDeadlineConsumed {
					t.Fatalf("called = %v, err = %v; want refused with %s", called, err, errs.ReasonDeadlineConsumed)
				}
				return
			}
			// Never more than the budget; "less" only by the time the test took to get here,
			// which a loaded machine may stretch, hence the wide lower bound.
			if got > c.want || got < c.want/2 {
				t.Fatalf("handler budget = %v; want about %v", got, c.want)
			}
		})
	}
}

func TestMetadataServerGeneratesRequestID(t *testing.T) {
	hdr := mapHeader{}
	reply := mapHeader{}
	info := &Info{Kind: HTTP, Side: Server, Header: hdr, Reply: reply}
	var md meta.MD
	h := Metadata()(func(ctx context.Context, _ any) (any, error) {
		md = meta.FromContext(ctx)
		return nil, nil
	})
	_, _ = h(NewContext(context.Background(), info), nil)
	if md.RequestID == "" || reply.Get(meta.HeaderRequestID) != md.RequestID {
		t.Fatalf("request id %q, reply header %q; want a generated id echoed", md.RequestID, reply.Get(meta.HeaderRequestID))
	}
	if a, b := NewRequestID(), NewRequestID(); a == b {
		t.Fatalf("NewRequestID repeated %q", a)
	}
}

type mapHeader map[string]string

func (m mapHeader) Get(k string) string { return m[k] }
func (m mapHeader) Set(k, v string)     { m[k] = v }
