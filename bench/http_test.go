package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	khttp "github.com/go-kratos/kratos/v2/transport/http"

	rhttp "github.com/redline-dev/redline/kit/transport/http"
)

type echoReq struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type echoResp struct {
	Greeting string `json:"greeting"`
	Count    int    `json:"count"`
}

// echo is the handler logic every HTTP variant runs.
func echo(_ context.Context, in *echoReq) (*echoResp, error) {
	return &echoResp{Greeting: "hello " + in.Name, Count: in.Count + 1}, nil
}

const echoPath = "/v1/echo"

var echoBody = []byte(`{"name":"redline","count":41}`)

// recorder is a ResponseWriter that reuses its header map and body buffer, so the harness
// itself allocates nothing per request.
type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func (r *recorder) reset() {
	clear(r.h)
	r.code = http.StatusOK
	r.body.Reset()
}

// nethttpHandler is the bare handler: a net/http ServeMux route with the same decoding,
// handler and encoding as the kit route, and no middleware at all.
func nethttpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+echoPath, func(w http.ResponseWriter, r *http.Request) {
		var in echoReq
		if err := rhttp.DecodeJSON(r.Body, rhttp.DefaultMaxBody, &in); err != nil {
			rhttp.WriteError(w, err)
			return
		}
		out, err := echo(r.Context(), &in)
		if err != nil {
			rhttp.WriteError(w, err)
			return
		}
		rhttp.WriteJSON(w, http.StatusOK, out)
	})
	return mux
}

func kitHTTP(opts ...rhttp.ServerOption) http.Handler {
	s := rhttp.NewServer("bench", opts...)
	rhttp.Route(s, "POST "+echoPath, echo)
	return s
}

// kratosHTTP is a kratos HTTP server with one route written as protoc-gen-go-http generates
// it: bind the body, run the server's middleware around the handler, write the result.
func kratosHTTP(opts ...khttp.ServerOption) http.Handler {
	srv := khttp.NewServer(opts...)
	r := srv.Route("/")
	r.POST(echoPath, func(ctx khttp.Context) error {
		var in echoReq
		if err := ctx.Bind(&in); err != nil {
			return err
		}
		h := ctx.Middleware(func(ctx context.Context, req any) (any, error) {
			return echo(ctx, req.(*echoReq))
		})
		out, err := h(ctx, &in)
		if err != nil {
			return err
		}
		return ctx.Result(http.StatusOK, out)
	})
	return srv
}

type httpCase struct {
	name string
	h    func(b *testing.B) http.Handler
}

func httpCases() []httpCase {
	return []httpCase{
		{"nethttp", func(*testing.B) http.Handler { return nethttpHandler() }},
		{"bare", func(*testing.B) http.Handler { return kitHTTP(rhttp.WithoutDefaults()) }},
		{"kit", func(*testing.B) http.Handler { return kitHTTP(rhttp.Logger(kitLogger(true))) }},
		{"kit-nolog", func(*testing.B) http.Handler { return kitHTTP(rhttp.Logger(kitLogger(false))) }},
		// kratos-bare: no middleware and no transport timeout (a cancel ctx instead), so that
		// kratos' chain overhead includes its deadline as the kit's does.
		{"kratos-bare", func(*testing.B) http.Handler { return kratosHTTP(khttp.Timeout(0)) }},
		{"kratos", func(b *testing.B) http.Handler { return kratosHTTP(khttp.Middleware(kratosChain(b, true)...)) }},
		{"kratos-nolog", func(b *testing.B) http.Handler { return kratosHTTP(khttp.Middleware(kratosChain(b, false)...)) }},
	}
}

// BenchmarkHTTPServer serves one small JSON request in process through each server's
// ServeHTTP. The request and response writer are reused, so every allocation counted is the
// server's.
func BenchmarkHTTPServer(b *testing.B) {
	for _, c := range httpCases() {
		b.Run(c.name, func(b *testing.B) {
			h := c.h(b)
			body := bytes.NewReader(echoBody)
			rc := io.NopCloser(body)
			req := httptest.NewRequest(http.MethodPost, echoPath, nil)
			req.Header.Set("Content-Type", "application/json")
			w := &recorder{h: http.Header{}}
			serve := func() {
				body.Reset(echoBody)
				req.Body = rc
				w.reset()
				h.ServeHTTP(w, req)
			}
			serve()
			checkEcho(b, w)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve()
			}
		})
	}
}

func checkEcho(tb testing.TB, w *recorder) {
	tb.Helper()
	var out echoResp
	if err := json.Unmarshal(w.body.Bytes(), &out); err != nil || w.code != http.StatusOK ||
		out != (echoResp{Greeting: "hello redline", Count: 42}) {
		tb.Fatalf("response = %d %q (%v); want 200 and the echo", w.code, w.body.String(), err)
	}
}
