// Command overload-server is the server side of bench/overload_test.go: one HTTP server on
// loopback with a CPU-bound handler (POST /v1/work: decode a small JSON body, chain
// -rounds SHA-256 hashes of a 1 KiB block, about 2.6 ms on the machine of the recorded run,
// answer JSON), protected by one of:
//
//	baseline  plain net/http, no protection
//	redline   the kit's HTTP server as users get it: kithttp.NewServer with its default
//	          chain, HA included (CPU report, CoDel admission queue, adaptive shedder,
//	          bulkhead), built from ha.Default(); not an Edge server
//	kratos    a kratos transport/http server with middleware/ratelimit.Server() (aegis BBR
//	          with its defaults), as a kratos user writes it
//	gozero    plain net/http wrapped in go-zero's rest SheddingHandler logic around
//	          core/load.NewAdaptiveShedder() with its defaults
//
// It prints "listening on <host:port>" once it serves, then a "STAT <json>" line every
// 500 ms with what the variant's shedder sees (its CPU reading, in-flight count, limit), and
// runs until killed. The benchmark starts it pinned to one core with GOMAXPROCS=1.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/go-kratos/aegis/ratelimit/bbr"
	kratoslog "github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware/ratelimit"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/zeromicro/go-zero/core/load"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stat"

	"github.com/redline-dev/redline/ha"
	klog "github.com/redline-dev/redline/kit/log"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

type workReq struct {
	ID int `json:"id"`
}

type workResp struct {
	ID  int    `json:"id"`
	Sum string `json:"sum"`
}

var rounds = 3000

// work is the handler every variant runs: fixed CPU work, no sleeping, no ctx checks.
func work(_ context.Context, in *workReq) (*workResp, error) {
	var buf [1024]byte
	buf[0] = byte(in.ID)
	for range rounds {
		s := sha256.Sum256(buf[:])
		copy(buf[:32], s[:])
	}
	return &workResp{ID: in.ID, Sum: hex.EncodeToString(buf[:8])}, nil
}

// plainHandler is work as a net/http handler, with the kit's strict JSON decoding and
// encoding so that every variant does the same per-request work.
func plainHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/work", func(w http.ResponseWriter, r *http.Request) {
		var in workReq
		if err := kithttp.DecodeJSON(r.Body, kithttp.DefaultMaxBody, &in); err != nil {
			kithttp.WriteError(w, err)
			return
		}
		out, _ := work(r.Context(), &in)
		kithttp.WriteJSON(w, http.StatusOK, out)
	})
	return mux
}

// statusWriter records the status, as go-zero's response.WithCodeResponseWriter does.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// goZeroShedding is go-zero's rest/handler.SheddingHandler less its stat counters and log
// line: Allow, 503 on a drop, Fail on a 503 answer, else Pass.
func goZeroShedding(s load.Shedder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Allow()
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		cw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if cw.code == http.StatusServiceUnavailable {
				p.Fail()
			} else {
				p.Pass()
			}
		}()
		next.ServeHTTP(cw, r)
	})
}

func main() {
	variant := flag.String("variant", "baseline", "baseline, redline, kratos or gozero")
	flag.IntVar(&rounds, "rounds", rounds, "SHA-256 rounds of 1 KiB per request")
	flag.Parse()
	if err := run(*variant); err != nil {
		fmt.Fprintln(os.Stderr, "overload-server:", err)
		os.Exit(1)
	}
}

func run(variant string) error {
	ctx := context.Background()
	var stats func() any
	var addr string
	switch variant {
	case "baseline", "gozero":
		h := plainHandler()
		if variant == "gozero" {
			// go-zero logs every dropped request (logx.Error in shouldDrop) and a stat line
			// a minute; off, so that go-zero pays no logging the others do not pay.
			logx.Disable()
			s := load.NewAdaptiveShedder()
			h = goZeroShedding(s, h)
			stats = func() any { return map[string]any{"cpu": float64(stat.CpuUsage()) / 1000} }
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(lis) }()
		addr = lis.Addr().String()
	case "redline":
		// Exactly what kithttp.NewServer builds without the HA option (ha.Default(), not
		// edge), built here only so that its state can be printed.
		h, err := ha.NewServer("overload", ha.Default(), false)
		if err != nil {
			return err
		}
		opts := []kithttp.ServerOption{kithttp.Address("127.0.0.1:0"), kithttp.Logger(klog.Discard()), kithttp.HA(h)}
		s := kithttp.NewServer("overload", opts...)
		kithttp.Route(s, "POST /v1/work", work)
		if err := s.Start(ctx); err != nil {
			return err
		}
		addr = s.Endpoint()
		stats = h.State
	case "kratos":
		l := bbr.NewLimiter() // what ratelimit.Server() builds by default
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		kratoslog.SetLogger(kratoslog.NewStdLogger(discard{}))
		srv := khttp.NewServer(khttp.Listener(lis), khttp.Middleware(ratelimit.Server(ratelimit.WithLimiter(l))))
		r := srv.Route("/")
		r.POST("/v1/work", func(ctx khttp.Context) error {
			var in workReq
			if err := ctx.Bind(&in); err != nil {
				return err
			}
			h := ctx.Middleware(func(ctx context.Context, req any) (any, error) {
				return work(ctx, req.(*workReq))
			})
			out, err := h(ctx, &in)
			if err != nil {
				return err
			}
			return ctx.Result(http.StatusOK, out)
		})
		go func() { _ = srv.Start(ctx) }()
		addr = lis.Addr().String()
		stats = func() any { return l.Stat() }
	default:
		return fmt.Errorf("unknown variant %q", variant)
	}
	fmt.Printf("listening on %s\n", stripScheme(addr))
	var seq atomic.Int64
	for range time.Tick(500 * time.Millisecond) {
		line := map[string]any{"seq": seq.Add(1), "goroutines": runtime.NumGoroutine()}
		if stats != nil {
			line["shedder"] = stats()
		}
		b, _ := json.Marshal(line)
		fmt.Printf("STAT %s\n", b)
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func stripScheme(a string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(a) > len(p) && a[:len(p)] == p {
			return a[len(p):]
		}
	}
	return a
}
