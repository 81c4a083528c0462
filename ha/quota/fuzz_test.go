package quota

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/conf"
	"github.com/redline-dev/redline/kit/errs"
)

// FuzzGetCapacity feeds arbitrary requests to the service: it never panics, it answers a
// lease per resource or INVALID_ARGUMENT, and a rejected request changes no grant.
func FuzzGetCapacity(f *testing.F) {
	seeds := []*quotav1.GetCapacityRequest{
		{ClientId: "a", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: 10}}},
		{ClientId: "b", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: 10, Weight: 2, Has: 5, Clients: 3}, {Resource: "b", Demand: 1}}},
		{ClientId: "c", Resources: []*quotav1.ResourceRequest{{Resource: "nope", Demand: 1}}},
		{ClientId: "d", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: -1}}},
		{ClientId: "e", Resources: []*quotav1.ResourceRequest{{Resource: "a", Demand: math.NaN()}}},
		{ClientId: "", Resources: []*quotav1.ResourceRequest{{Resource: "a"}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req quotav1.GetCapacityRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		clk := clock.NewFake(time.Time{})
		s := newTestService(t, clk, map[string]Resource{"a": {Limit: 100}, "b": {Limit: 10}, "c": {Limit: 0}})
		ask(t, s, "other", rr("a", 60), rr("b", 6), rr("c", 1))
		before := grants(t, s)
		reply, err := s.GetCapacity(context.Background(), &req)
		if err != nil {
			if errs.Code(err) != codes.InvalidArgument {
				t.Fatalf("GetCapacity = %v; want a lease or InvalidArgument", err)
			}
			if after := grants(t, s); !equalGrants(before, after) {
				t.Fatalf("a rejected request changed grants: %v -> %v", before, after)
			}
			return
		}
		if len(reply.GetLeases()) != len(req.GetResources()) {
			t.Fatalf("%d leases for %d resources", len(reply.GetLeases()), len(req.GetResources()))
		}
		for _, r := range grants(t, s) {
			var sum float64
			for _, g := range r {
				if !(g >= 0) {
					t.Fatalf("grant %v", g)
				}
				sum += g
			}
			if sum > 100+1e-6 {
				t.Fatalf("grants add up to %v, above every limit", sum)
			}
		}
	})
}

// FuzzConfig feeds arbitrary YAML to the config loader: it never panics, and a config it
// accepts is one the service accepts.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"resources:\n  search: {limit: 150, lease_ttl: 2s, fail_open: true}\n",
		"resources:\n  a: {limit: -1}\n",
		"resources:\n  a: {limit: .nan}\n",
		"resources:\n  a: {limit: 1, lease_ttl: 1ns, refresh: 1h, learning: -1s}\n",
		"resources: {\"\": {limit: 1}}\n",
		"resources: 7\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		var cfg Config
		err := loadYAML(t, dir, b, &cfg)
		if err != nil {
			var ce *conf.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %T %v; want *conf.Error", err, err)
			}
			return
		}
		if _, err := NewService(NewMemoryStore(), cfg.Resources); err != nil {
			t.Fatalf("the loader accepted %q but NewService says %v", b, err)
		}
	})
}
