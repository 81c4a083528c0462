package quota

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
)

func rr(resource string, demand float64) *quotav1.ResourceRequest {
	return &quotav1.ResourceRequest{Resource: resource, Demand: demand}
}

func ask(t *testing.T, s *Service, client string, rs ...*quotav1.ResourceRequest) []*quotav1.Lease {
	t.Helper()
	reply, err := s.GetCapacity(context.Background(), &quotav1.GetCapacityRequest{ClientId: client, Resources: rs})
	if err != nil {
		t.Fatalf("GetCapacity(%s): %v", client, err)
	}
	return reply.GetLeases()
}

// grants returns every client's grant per resource, as Status shows it.
func grants(t *testing.T, s *Service) map[string]map[string]float64 {
	t.Helper()
	st, err := s.Status(context.Background(), &quotav1.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	out := map[string]map[string]float64{}
	for _, r := range st.GetResources() {
		out[r.GetResource()] = map[string]float64{}
		for _, c := range r.GetClients() {
			out[r.GetResource()][c.GetClientId()] = c.GetGranted()
		}
	}
	return out
}

func newTestService(t *testing.T, clk clock.Clock, res map[string]Resource) *Service {
	t.Helper()
	s, err := NewService(NewMemoryStore(), res, ServiceClock(clk), ServiceLogger(log.Discard()))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return s
}

func TestServiceFairAndConservative(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := newTestService(t, clk, map[string]Resource{"search": {Limit: 150, LeaseTTL: 2 * time.Second}})
	// The biggest asks first and gets everything; the others must wait for its renewal.
	if l := ask(t, s, "c", rr("search", 200))[0]; l.GetRate() != 150 || l.GetClients() != 1 {
		t.Fatalf("lone client: lease %v; want rate 150, 1 client", l)
	}
	l := ask(t, s, "a", rr("search", 10))[0]
	if l.GetRate() != 0 || l.GetRefreshMs() != 200 || l.GetClients() != 2 {
		t.Fatalf("a while c holds all: lease %v; want rate 0, refresh 200 ms, 2 clients", l)
	}
	ask(t, s, "b", rr("search", 50))
	if l := ask(t, s, "c", rr("search", 200))[0]; l.GetRate() != 90 {
		t.Fatalf("c renewing: rate %v; want its fair share 90", l.GetRate())
	}
	ask(t, s, "a", rr("search", 10))
	ask(t, s, "b", rr("search", 50))
	want := map[string]float64{"a": 10, "b": 50, "c": 90}
	for id, g := range grants(t, s)["search"] {
		if g != want[id] {
			t.Fatalf("grant of %s = %v; want %v", id, g, want[id])
		}
	}
	// Leases expire: a client that stops renewing leaves.
	clk.Advance(2*time.Second + time.Millisecond)
	if l := ask(t, s, "a", rr("search", 10))[0]; l.GetClients() != 1 || l.GetRate() != 10 {
		t.Fatalf("after expiry: lease %v; want 1 client, rate 10", l)
	}
}

func TestServiceLearning(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := newTestService(t, clk, map[string]Resource{"r": {Limit: 100, LeaseTTL: time.Second}})
	// A fresh service hears from a client that knew 4 clients and lives on 100/4.
	req := &quotav1.ResourceRequest{Resource: "r", Demand: 80, Has: 25, Clients: 4}
	reply, err := s.GetCapacity(context.Background(), &quotav1.GetCapacityRequest{ClientId: "a", Resources: []*quotav1.ResourceRequest{req}})
	if err != nil {
		t.Fatal(err)
	}
	if l := reply.GetLeases()[0]; l.GetRate() != 25 || l.GetRefreshMs() == 0 {
		t.Fatalf("learning: lease %v; want rate 25 (what it has) and a refresh", l)
	}
	for _, id := range []string{"b", "c"} {
		ask(t, s, id, &quotav1.ResourceRequest{Resource: "r", Demand: 10, Has: 25, Clients: 4})
	}
	// The fourth of the four ends learning: grants go back to the fair rule.
	if l := ask(t, s, "d", &quotav1.ResourceRequest{Resource: "r", Demand: 10, Has: 25, Clients: 4})[0]; l.GetRate() != 10 {
		t.Fatalf("after learning: lease %v; want rate 10", l)
	}
	if l := ask(t, s, "a", &quotav1.ResourceRequest{Resource: "r", Demand: 80, Has: 25, Clients: 4})[0]; l.GetRate() != 70 {
		t.Fatalf("after learning: a's lease %v; want 70", l)
	}
}

func TestServiceBadInput(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	long := strings.Repeat("x", MaxNameLen+1)
	many := make([]*quotav1.ResourceRequest, MaxBatch+1)
	for i := range many {
		many[i] = rr("a", 1)
	}
	tests := []struct {
		name     string
		req      *quotav1.GetCapacityRequest
		reason   string
		resource string
	}{
		{"unknown resource", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{rr("a", 1), rr("nope", 1)}}, ReasonUnknownResource, "nope"},
		{"negative demand", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{rr("a", 1), rr("b", -1)}}, ReasonInvalidDemand, "b"},
		{"NaN demand", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{rr("a", nan)}}, ReasonInvalidDemand, "a"},
		{"infinite demand", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{rr("a", inf)}}, ReasonInvalidDemand, "a"},
		{"infinite weight", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: 1, Weight: inf}}}, ReasonInvalidDemand, "a"},
		{"negative has", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: 1, Has: -1}}}, ReasonInvalidDemand, "a"},
		{"negative clients", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: 1, Clients: -1}}}, ReasonInvalidRequest, "a"},
		{"duplicate resource", &quotav1.GetCapacityRequest{ClientId: "x", Resources: []*quotav1.ResourceRequest{rr("a", 1), rr("a", 2)}}, ReasonInvalidRequest, "a"},
		{"no client id", &quotav1.GetCapacityRequest{Resources: []*quotav1.ResourceRequest{rr("a", 1)}}, ReasonInvalidRequest, ""},
		{"long client id", &quotav1.GetCapacityRequest{ClientId: long, Resources: []*quotav1.ResourceRequest{rr("a", 1)}}, ReasonInvalidRequest, ""},
		{"control character in client id", &quotav1.GetCapacityRequest{ClientId: "a\nb", Resources: []*quotav1.ResourceRequest{rr("a", 1)}}, ReasonInvalidRequest, ""},
		{"no resources", &quotav1.GetCapacityRequest{ClientId: "x"}, ReasonInvalidRequest, ""},
		{"too many resources", &quotav1.GetCapacityRequest{ClientId: "x", Resources: many}, ReasonInvalidRequest, ""},
		{"nil request", nil, ReasonInvalidRequest, ""},
	}
	clk := clock.NewFake(time.Time{})
	s := newTestService(t, clk, map[string]Resource{"a": {Limit: 100}, "b": {Limit: 10}})
	ask(t, s, "other", rr("a", 70), rr("b", 4))
	before := grants(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.GetCapacity(context.Background(), tt.req)
			e := errs.From(err)
			if err == nil || e.Code != codes.InvalidArgument || e.Reason != tt.reason || e.Metadata[MetadataResource] != tt.resource {
				t.Fatalf("GetCapacity = %v; want InvalidArgument %s naming %q", err, tt.reason, tt.resource)
			}
			if !strings.HasPrefix(e.Message, "quota: ") {
				t.Fatalf("message %q does not say where it comes from", e.Message)
			}
			if after := grants(t, s); !equalGrants(before, after) {
				t.Fatalf("grants changed by a bad request: %v -> %v", before, after)
			}
		})
	}
}

func equalGrants(a, b map[string]map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for r, m := range a {
		if len(m) != len(b[r]) {
			return false
		}
		for id, g := range m {
			if b[r][id] != g {
				return false
			}
		}
	}
	return true
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		res  map[string]Resource
	}{
		{"negative limit", map[string]Resource{"a": {Limit: -1}}},
		{"NaN limit", map[string]Resource{"a": {Limit: math.NaN()}}},
		{"infinite limit", map[string]Resource{"a": {Limit: math.Inf(1)}}},
		{"short lease", map[string]Resource{"a": {Limit: 1, LeaseTTL: time.Millisecond}}},
		{"negative lease", map[string]Resource{"a": {Limit: 1, LeaseTTL: -time.Second}}},
		{"long learning", map[string]Resource{"a": {Limit: 1, Learning: 2 * MaxLeaseTTL}}},
		{"empty name", map[string]Resource{"": {Limit: 1}}},
		{"bad name", map[string]Resource{"a\x00": {Limit: 1}}},
	}
	clk := clock.NewFake(time.Time{})
	s := newTestService(t, clk, map[string]Resource{"a": {Limit: 100}})
	ask(t, s, "c", rr("a", 50))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewService(NewMemoryStore(), tt.res); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewService(%v) = %v; want ErrInvalidConfig", tt.res, err)
			}
			if err := s.SetResources(tt.res); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("SetResources(%v) = %v; want ErrInvalidConfig", tt.res, err)
			}
			if l := ask(t, s, "c", rr("a", 50))[0]; l.GetRate() != 50 || l.GetLimit() != 100 {
				t.Fatalf("after a rejected config: lease %v; want the old config's rate 50 of 100", l)
			}
		})
	}
	if _, err := NewService(nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewService(nil store) = %v; want ErrInvalidConfig", err)
	}
}

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name, yaml string
		ok         bool
	}{
		{"valid", "resources:\n  search: {limit: 150, lease_ttl: 2s, fail_open: true}\n", true},
		{"negative limit", "resources:\n  search: {limit: -1}\n", false},
		{"bad duration", "resources:\n  search: {limit: 1, lease_ttl: soon}\n", false},
		{"unknown key", "resources:\n  search: {limt: 1}\n", false},
		{"not a map", "resources: [1, 2]\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			err := loadYAML(t, t.TempDir(), []byte(tt.yaml), &cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("Load(%q) = %v; want ok=%v", tt.yaml, err, tt.ok)
			}
			if tt.ok {
				if r := cfg.Resources["search"]; r.Limit != 150 || r.LeaseTTL != 2*time.Second || !r.FailOpen {
					t.Fatalf("decoded %+v", r)
				}
			}
		})
	}
}

func loadYAML(t testing.TB, dir string, b []byte, dst *Config) error {
	path := filepath.Join(dir, "quota.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := conf.Load(dst, conf.WithFile(path), conf.WithEnv("REDLINE_QUOTA_TEST_NONE_"))
	if err == nil {
		_ = c.Close()
	}
	return err
}

func TestSetResourcesDynamic(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := newTestService(t, clk, map[string]Resource{"a": {Limit: 100}})
	ask(t, s, "c", rr("a", 500))
	if err := s.SetResources(map[string]Resource{"a": {Limit: 200}, "b": {Limit: 5}}); err != nil {
		t.Fatal(err)
	}
	if ls := ask(t, s, "c", rr("a", 500), rr("b", 500)); ls[0].GetRate() != 200 || ls[1].GetRate() != 5 {
		t.Fatalf("after raising a and adding b: %v; want 200 and 5", ls)
	}
	if err := s.SetResources(map[string]Resource{"b": {Limit: 5}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetCapacity(context.Background(), &quotav1.GetCapacityRequest{ClientId: "c", Resources: []*quotav1.ResourceRequest{rr("a", 1)}})
	if errs.Reason(err) != ReasonUnknownResource {
		t.Fatalf("removed resource: %v; want %s", err, ReasonUnknownResource)
	}
}
