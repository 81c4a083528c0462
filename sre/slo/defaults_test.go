package slo

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/metric"
)

// TestDefaults: every default SLO validates, and every route it names exists: BFF routes as
// registered in services/bff, gRPC routes as rpcs in api/*/v1/*.proto.
func TestDefaults(t *testing.T) {
	bff, err := os.ReadFile("../../services/bff/internal/service/bff.go")
	if err != nil {
		t.Fatal(err)
	}
	protos, err := filepath.Glob("../../api/*/v1/*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no protos: %v", err)
	}
	rpcs := map[string]bool{}
	pkgRe, svcRe, rpcRe := regexp.MustCompile(`(?m)^package (\S+);`), regexp.MustCompile(`^service (\w+)`), regexp.MustCompile(`^\s*rpc (\w+)`)
	for _, p := range protos {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pkg, svc := pkgRe.FindSubmatch(b), ""
		for _, line := range strings.Split(string(b), "\n") {
			if m := svcRe.FindStringSubmatch(line); m != nil {
				svc = m[1]
			}
			if m := rpcRe.FindStringSubmatch(line); m != nil && pkg != nil {
				rpcs["/"+string(pkg[1])+"."+svc+"/"+m[1]] = true
			}
		}
	}
	names := map[string]bool{}
	services := map[string]bool{}
	for _, s := range Defaults() {
		if err := s.Validate(); err != nil {
			t.Errorf("default %s: %v", s.Name, err)
		}
		if names[s.Name] {
			t.Errorf("default %s twice", s.Name)
		}
		names[s.Name] = true
		services[s.Service] = true
		for _, r := range s.Indicator.Routes {
			switch s.Indicator.Transport {
			case GRPC:
				if !rpcs[r] {
					t.Errorf("default %s: no rpc %s in api/", s.Name, r)
				}
			case HTTP:
				if !strings.Contains(string(bff), `Route(s, "`+r+`"`) {
					t.Errorf("default %s: the BFF registers no route %q", s.Name, r)
				}
			}
		}
	}
	for _, svc := range []string{"bff", "user", "note", "feed", "comment", "interaction", "history", "search", "product", "inventory", "order", "payment"} {
		if !services[svc] {
			t.Errorf("no default SLO for %s", svc)
		}
	}
	if _, err := NewEvaluator(Defaults()); err != nil {
		t.Fatalf("NewEvaluator(Defaults()) = %v", err)
	}
}

func TestDeclare(t *testing.T) {
	s := AvailabilitySLO("bff", "GET /v1/notes/{id}", 0.999, 30*Day)
	if s.Name != "bff-availability-get-v1-notes-id" || s.Indicator.Transport != HTTP || s.Validate() != nil {
		t.Fatalf("AvailabilitySLO = %+v (%v)", s, s.Validate())
	}
	l := LatencySLO("note", "/note.v1.Note/GetNote", 30*time.Millisecond, 0.99, 30*Day)
	if l.Indicator.Transport != GRPC || l.Validate() == nil {
		t.Fatalf("LatencySLO(30ms) = %+v; want a gRPC SLO that fails validation (30ms is no bucket)", l)
	}
}

// TestSampleRegistry reads the kit's real RED families: errors are the server-fault codes,
// latency counts requests above the threshold bucket, other services and stress lanes are
// left out.
func TestSampleRegistry(t *testing.T) {
	const svc = "slo-sample-test"
	avail := AvailabilitySLO(svc, "GET /v1/x", 0.999, 30*Day, WithName("avail"))
	lat := LatencySLO(svc, "/x.v1.X/Get", 50*time.Millisecond, 0.99, 30*Day, WithName("lat"))
	clk := clock.NewFake(time.Time{})
	e, err := NewEvaluator([]SLO{avail, lat}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Sample(metric.Registry); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		metric.HTTPServer.Observe(svc, "GET /v1/x", "GET", "200", "", time.Millisecond)
	}
	metric.HTTPServer.Observe(svc, "GET /v1/x", "GET", "503", "", time.Millisecond)
	metric.HTTPServer.Observe(svc, "GET /v1/x", "GET", "404", "", time.Millisecond)
	metric.HTTPServer.Observe(svc, "GET /v1/x", "GET", "500", "stress", time.Millisecond)
	metric.HTTPServer.Observe(svc, "GET /v1/y", "GET", "500", "", time.Millisecond)
	metric.GRPCServer.Observe(svc, "/x.v1.X/Get", "unary", "OK", "", 10*time.Millisecond)
	metric.GRPCServer.Observe(svc, "/x.v1.X/Get", "unary", "OK", "", 50*time.Millisecond)
	metric.GRPCServer.Observe(svc, "/x.v1.X/Get", "unary", "Internal", "", 80*time.Millisecond)
	clk.Advance(time.Minute)
	if err := e.Sample(metric.Registry); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		bad, total float64
	}{{"avail", 1, 8}, {"lat", 1, 3}} {
		st, err := e.Status(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Period.Bad != tc.bad || st.Period.Total != tc.total {
			t.Errorf("%s: period = %v/%v; want %v/%v", tc.name, st.Period.Bad, st.Period.Total, tc.bad, tc.total)
		}
	}
	for _, code := range []string{"500", "503", "Internal", "Unavailable", "DeadlineExceeded"} {
		if !ServerError(code) {
			t.Errorf("ServerError(%q) = false; want true", code)
		}
	}
	for _, code := range []string{"200", "404", "429", "OK", "NotFound", "ResourceExhausted", "InvalidArgument"} {
		if ServerError(code) {
			t.Errorf("ServerError(%q) = true; want false", code)
		}
	}
}
