package criticality

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type mapHeader map[string]string

func (m mapHeader) Get(k string) string { return m[k] }
func (m mapHeader) Set(k, v string)     { m[k] = v }

func TestEdge(t *testing.T) {
	p := New(map[string]meta.Criticality{
		"POST /v1/orders":   meta.CriticalPlus,
		"GET /v1/feed/home": meta.Critical,
		"GET /v1/explore":   meta.SheddablePlus,
	}, meta.Sheddable)
	cases := []struct {
		name    string
		op      string
		claimed string
		want    meta.Criticality
	}{
		{"route level without a header", "POST /v1/orders", "", meta.CriticalPlus},
		{"default for unlisted routes", "GET /v1/unlisted", "", meta.Sheddable},
		{"client cannot raise", "GET /v1/explore", "CRITICAL_PLUS", meta.SheddablePlus},
		{"client cannot raise an unlisted route", "GET /v1/unlisted", "CRITICAL", meta.Sheddable},
		{"client may lower", "GET /v1/feed/home", "SHEDDABLE", meta.Sheddable},
		{"client may lower, any case", "POST /v1/orders", "sheddable_plus", meta.SheddablePlus},
		{"same level", "GET /v1/feed/home", "CRITICAL", meta.Critical},
		{"garbage is ignored", "POST /v1/orders", "URGENT", meta.CriticalPlus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := mapHeader{}
			if c.claimed != "" {
				hdr[meta.HeaderCriticality] = c.claimed
			}
			info := &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server, Operation: c.op, Header: hdr}
			// The metadata middleware runs first and believes the header; Edge corrects it.
			h := middleware.Chain(middleware.Metadata(), Edge(p))(func(ctx context.Context, _ any) (any, error) {
				return meta.FromContext(ctx), nil
			})
			got, _ := h(middleware.NewContext(context.Background(), info), nil)
			md := got.(meta.MD)
			if md.Criticality != c.want {
				t.Fatalf("criticality of %s with %q = %v; want %v", c.op, c.claimed, md.Criticality, c.want)
			}
			if md.RequestID == "" {
				t.Fatalf("Edge lost the rest of the metadata: %+v", md)
			}
		})
	}
	st := p.State().(State)
	if st.Lowered != 2 || st.Refused != 3 || st.Assigned != 3 || st.Routes["POST /v1/orders"] != "CRITICAL_PLUS" || st.Default != "SHEDDABLE" {
		t.Fatalf("State() = %+v", st)
	}
}

// TestEdgeCarriedDownstream: what Edge decides is what the next hop's header says.
func TestEdgeCarriedDownstream(t *testing.T) {
	p := New(map[string]meta.Criticality{"GET /v1/explore": meta.Sheddable}, meta.Critical)
	out := mapHeader{}
	client := middleware.Metadata()(func(context.Context, any) (any, error) { return nil, nil })
	server := middleware.Chain(middleware.Metadata(), Edge(p))(func(ctx context.Context, _ any) (any, error) {
		cctx := middleware.NewContext(ctx, &middleware.Info{Kind: middleware.GRPC, Side: middleware.Client, Header: out})
		return client(cctx, nil)
	})
	in := &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server, Operation: "GET /v1/explore",
		Header: mapHeader{meta.HeaderCriticality: "CRITICAL_PLUS"}}
	_, _ = server(middleware.NewContext(context.Background(), in), nil)
	if got := out[meta.HeaderCriticality]; got != "SHEDDABLE" {
		t.Fatalf("outbound %s = %q; want SHEDDABLE", meta.HeaderCriticality, got)
	}
}

func TestFromConfig(t *testing.T) {
	cases := []struct {
		name    string
		in      map[string]string
		want    map[string]meta.Criticality
		wantErr []string // substrings of the error
	}{
		{"all levels", map[string]string{"a": "CRITICAL_PLUS", "b": "critical", "c": "Sheddable_Plus", "d": " SHEDDABLE "},
			map[string]meta.Criticality{"a": meta.CriticalPlus, "b": meta.Critical, "c": meta.SheddablePlus, "d": meta.Sheddable}, nil},
		{"empty table", map[string]string{}, map[string]meta.Criticality{}, nil},
		{"bad entries name their routes", map[string]string{"GET /v1/ok": "CRITICAL", "GET /v1/x": "HIGH", "POST /v1/y": ""}, nil,
			[]string{`route "GET /v1/x": criticality "HIGH"`, `route "POST /v1/y": criticality ""`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromConfig(c.in)
			if c.wantErr != nil {
				if err == nil || !errors.Is(err, ErrUnknownLevel) {
					t.Fatalf("FromConfig(%v) error = %v; want ErrUnknownLevel", c.in, err)
				}
				for _, s := range c.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("FromConfig error %q; want it to contain %q", err, s)
					}
				}
				return
			}
			if err != nil || len(got) != len(c.want) {
				t.Fatalf("FromConfig(%v) = %v, %v; want %v", c.in, got, err, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("FromConfig(%v)[%q] = %v; want %v", c.in, k, got[k], v)
				}
			}
		})
	}
}

func BenchmarkEdge(b *testing.B) {
	p := New(map[string]meta.Criticality{"GET /v1/feed/home": meta.Critical}, meta.Sheddable)
	h := Edge(p)(func(context.Context, any) (any, error) { return nil, nil })
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server,
		Operation: "GET /v1/feed/home", Header: mapHeader{meta.HeaderCriticality: "SHEDDABLE"}})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}
