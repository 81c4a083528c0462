package netfault

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	toxiproxytoxics "github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
)

// libraryToxic returns the toxic id as the library's chain on proxy name holds it, or nil.
func (p *Proxies) libraryToxic(name, id string) *toxiproxytoxics.ToxicWrapper {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.proxies[name]
	if !ok {
		return nil
	}
	return e.p.Toxics.GetToxic(id)
}

func (p *Proxies) libraryToxicCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.proxies[name].p.Toxics.GetToxicArray())
}

func TestProxyForwards(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	for _, msg := range []string{"hello", strings.Repeat("x", 64<<10)} {
		if err := roundTrip(c, msg); err != nil {
			t.Fatalf("round trip of %d bytes: %v", len(msg), err)
		}
	}
	l := e.px.List()
	if len(l) != 1 || l[0].Name != "echo" || l[0].Upstream != e.up.addr() || !l[0].Enabled || l[0].Listen != e.px.Addr("echo") {
		t.Fatalf("List() = %+v; want echo, enabled, in front of %s", l, e.up.addr())
	}
}

func TestLatencyDelaysBytes(t *testing.T) {
	e := newEnv(t)
	tox := e.addToxic(t, ToxicSpec{Type: TypeLatency, Attributes: Attributes{Latency: "120ms"}})
	w := e.px.libraryToxic("echo", tox.ID)
	if w == nil {
		t.Fatalf("toxic %s is not on the library's proxy", tox.ID)
	}
	lat, ok := w.Toxic.(*toxiproxytoxics.LatencyToxic)
	if !ok || lat.Latency != 120 || w.Stream != Downstream || w.Toxicity != 1 {
		t.Fatalf("library toxic = %+v (%T %+v); want latency 120 ms downstream, toxicity 1", w, w.Toxic, w.Toxic)
	}
	c := e.dial(t)
	start := time.Now()
	if err := roundTrip(c, "ping"); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: a slow machine may add to it, never take from it.
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Fatalf("round trip through a 120ms latency toxic took %v", d)
	}
}

// TestToxicOnOpenConnection: a toxic added while a connection is open acts on it (gRPC
// and pooled store connections live long), and removing it lets bytes flow again.
func TestToxicOnOpenConnection(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t)
	if err := roundTrip(c, "before"); err != nil {
		t.Fatal(err)
	}
	tox := e.addToxic(t, ToxicSpec{Type: TypeLatency, Stream: Upstream, Attributes: Attributes{Latency: "80ms"}})
	start := time.Now()
	if err := roundTrip(c, "during"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("round trip on an open connection under an 80ms upstream latency took %v", d)
	}
	if err := e.px.RemoveToxic(tox.ID); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, "after"); err != nil {
		t.Fatalf("round trip after the toxic went: %v", err)
	}
}

func TestResetPeerClosesTheConnection(t *testing.T) {
	e := newEnv(t)
	e.addToxic(t, ToxicSpec{Type: TypeResetPeer})
	c := e.dial(t)
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 16))
	if err == nil {
		t.Fatalf("read %d bytes through reset_peer; want the connection reset", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read = %v: the connection hung instead of being reset", err)
	}
}

func TestLimitDataCutsAfterBytes(t *testing.T) {
	e := newEnv(t)
	e.addToxic(t, ToxicSpec{Type: TypeLimitData, Attributes: Attributes{Bytes: 10}})
	c := e.dial(t)
	if _, err := io.WriteString(c, strings.Repeat("a", 100)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("read = %v: the connection was not closed", err)
		}
	}
	if len(got) != 10 {
		t.Fatalf("read %d bytes through limit_data 10; want 10", len(got))
	}
}

func TestDisableRefusesAndEnableRestores(t *testing.T) {
	e := newEnv(t)
	addr := e.px.Addr("echo")
	open := e.dial(t)
	if err := roundTrip(open, "before"); err != nil {
		t.Fatal(err)
	}
	p, err := e.px.Disable("echo", OutageSpec{TTL: "30s", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled || p.Outage == nil || !p.Outage.ExpiresAt.Equal(e.clk.Now().Add(30*time.Second)) || p.Outage.Reason != "test" {
		t.Fatalf("Disable = %+v; want disabled with a 30s outage", p)
	}
	if n, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatalf("an open connection read %d bytes after Disable; want it dropped", n)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatal("dial a disabled proxy succeeded; want refused")
	}
	p, err = e.px.Enable("echo")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled || p.Outage != nil || p.Listen != addr {
		t.Fatalf("Enable = %+v; want enabled on %s", p, addr)
	}
	if err := roundTrip(e.dial(t), "after"); err != nil {
		t.Fatalf("round trip after Enable: %v", err)
	}
	if _, err := e.px.Enable("echo"); err != nil {
		t.Fatalf("Enable of an enabled proxy = %v; want nil", err)
	}
	if _, err := e.px.Disable("nope", OutageSpec{}); errs.Code(err) != codes.NotFound {
		t.Fatalf("Disable(nope) = %v; want NotFound", err)
	}
}

func TestExpiryRemovesToxicsAndEndsOutages(t *testing.T) {
	e := newEnv(t)
	short := e.addToxic(t, ToxicSpec{Type: TypeLatency, Attributes: Attributes{Latency: "1s"}, TTL: "1m"})
	long := e.addToxic(t, ToxicSpec{Type: TypeBandwidth, Attributes: Attributes{Rate: 1}})
	if !long.ExpiresAt.Equal(long.AddedAt.Add(DefaultTTL)) || long.TTL != "5m0s" {
		t.Fatalf("a toxic without ttl = %+v; want DefaultTTL", long)
	}
	if _, err := e.px.Disable("echo", OutageSpec{TTL: "90s"}); err != nil {
		t.Fatal(err)
	}

	e.clk.Advance(59 * time.Second)
	if n := e.px.Sweep(); n != 0 || e.px.libraryToxic("echo", short.ID) == nil {
		t.Fatalf("Sweep at 59s removed %d; want the 1m toxic still there", n)
	}
	e.clk.Advance(time.Second)
	if n := e.px.Sweep(); n != 1 {
		t.Fatalf("Sweep at 1m = %d; want 1", n)
	}
	if e.px.libraryToxic("echo", short.ID) != nil || e.px.libraryToxic("echo", long.ID) == nil {
		t.Fatal("after the 1m sweep the library's chain still has the expired toxic, or lost the live one")
	}
	e.clk.Advance(30 * time.Second)
	if n := e.px.Sweep(); n != 1 {
		t.Fatalf("Sweep at 90s = %d; want 1 (the outage)", n)
	}
	if err := roundTrip(e.dial(t), "back"); err != nil {
		t.Fatalf("round trip after the outage expired: %v", err)
	}
	e.clk.Advance(DefaultTTL)
	if l := e.px.List(); len(l[0].Toxics) != 0 || e.px.libraryToxicCount("echo") != 0 {
		t.Fatalf("List after every ttl = %+v; want no toxics (library: %d)", l, e.px.libraryToxicCount("echo"))
	}
}

func TestBackgroundSweepRemovesExpired(t *testing.T) {
	up := newEcho(t)
	clk := clock.NewFake(time.Time{})
	px := New(WithClock(clk), WithSweepInterval(time.Millisecond), WithLogger(log.Discard()))
	defer px.Close()
	if _, err := px.Add("echo", "", up.addr()); err != nil {
		t.Fatal(err)
	}
	tox, err := px.AddToxic(ToxicSpec{Proxy: "echo", Type: TypeLatency, Attributes: Attributes{Latency: "1ms"}, TTL: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	// Polls the library's chain, not List (which sweeps by itself): only the background
	// sweep can remove the toxic. Nothing else calls the Proxies meanwhile.
	for px.libraryToxic("echo", tox.ID) != nil {
		time.Sleep(time.Millisecond)
	}
}

func TestAddToxicRefuses(t *testing.T) {
	e := newEnv(t)
	e.addToxic(t, ToxicSpec{ID: "taken", Type: TypeTimeout})
	_, err := e.px.AddToxic(ToxicSpec{Proxy: "redis", Type: TypeTimeout})
	wantBad(t, err, "proxy", `no proxy "redis"; there are: echo`)
	_, err = e.px.AddToxic(ToxicSpec{Proxy: "echo", Type: TypeTimeout, TTL: "2h"})
	wantBad(t, err, "ttl", "over the limit of 1h0m0s")
	if _, err = e.px.AddToxic(ToxicSpec{ID: "taken", Proxy: "echo", Type: TypeTimeout}); errs.Code(err) != codes.AlreadyExists {
		t.Fatalf("AddToxic with a taken id = %v; want AlreadyExists", err)
	}
	if err := e.px.RemoveToxic("nope"); errs.Code(err) != codes.NotFound {
		t.Fatalf("RemoveToxic(nope) = %v; want NotFound", err)
	}
	for i := len(e.px.List()[0].Toxics); i < MaxToxics; i++ {
		e.addToxic(t, ToxicSpec{Type: TypeLimitData, Attributes: Attributes{Bytes: 1 << 30}})
	}
	if _, err = e.px.AddToxic(ToxicSpec{Proxy: "echo", Type: TypeTimeout}); errs.Code(err) != codes.ResourceExhausted {
		t.Fatalf("AddToxic beyond MaxToxics = %v; want ResourceExhausted", err)
	}
}

func TestAddProxyRefuses(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, listen, upstream, field string }{
		{"Bad_Name", "", "127.0.0.1:1", "name"},
		{"x", "nope", "127.0.0.1:1", "listen"},
		{"x", "", "127.0.0.1", "upstream"},
		{"x", "", "127.0.0.1:0", "upstream"},
	} {
		_, err := e.px.Add(tc.name, tc.listen, tc.upstream)
		wantBad(t, err, tc.field, tc.field)
	}
	if _, err := e.px.Add("echo", "", e.up.addr()); errs.Code(err) != codes.AlreadyExists {
		t.Fatalf("Add(echo) again = %v; want AlreadyExists", err)
	}
	e.addToxic(t, ToxicSpec{Type: TypeTimeout})
	if err := e.px.Remove("echo"); err != nil {
		t.Fatal(err)
	}
	if e.px.Addr("echo") != "" || len(e.px.List()) != 0 {
		t.Fatal("the removed proxy is still listed")
	}
	if err := e.px.Remove("echo"); errs.Code(err) != codes.NotFound {
		t.Fatalf("Remove(echo) again = %v; want NotFound", err)
	}
}

func TestResetClearsEverything(t *testing.T) {
	e := newEnv(t)
	e.addToxic(t, ToxicSpec{Type: TypeTimeout})
	e.addToxic(t, ToxicSpec{Type: TypeLatency, Stream: Upstream, Attributes: Attributes{Latency: "1s"}})
	if _, err := e.px.Disable("echo", OutageSpec{}); err != nil {
		t.Fatal(err)
	}
	removed, enabled, err := e.px.Reset()
	if err != nil || removed != 2 || enabled != 1 {
		t.Fatalf("Reset() = %d, %d, %v; want 2, 1, nil", removed, enabled, err)
	}
	if e.px.libraryToxicCount("echo") != 0 {
		t.Fatal("toxics are left on the library's proxy after Reset")
	}
	if err := roundTrip(e.dial(t), "clean"); err != nil {
		t.Fatalf("round trip after Reset: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	active := testutil.ToFloat64(toxicsActive)
	total := testutil.ToFloat64(toxicsTotal.WithLabelValues("echo", TypeSlicer))
	tox := e.addToxic(t, ToxicSpec{Type: TypeSlicer, Attributes: Attributes{AverageSize: 8}})
	e.addToxic(t, ToxicSpec{Type: TypeSlicer, Attributes: Attributes{AverageSize: 8}, TTL: "1s"})
	if got := testutil.ToFloat64(toxicsActive); got != active+2 {
		t.Fatalf("toxics_active = %v after adding 2; want %v", got, active+2)
	}
	if got := testutil.ToFloat64(toxicsTotal.WithLabelValues("echo", TypeSlicer)); got != total+2 {
		t.Fatalf("toxics_total{echo,slicer} = %v; want %v", got, total+2)
	}
	e.clk.Advance(time.Second)
	e.px.Sweep()
	if err := e.px.RemoveToxic(tox.ID); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(toxicsActive); got != active {
		t.Fatalf("toxics_active = %v after one expired and one removed; want %v", got, active)
	}
	e.addToxic(t, ToxicSpec{Type: TypeSlicer, Attributes: Attributes{AverageSize: 8}})
	if err := e.px.Close(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(toxicsActive); got != active {
		t.Fatalf("toxics_active = %v after Close; want %v", got, active)
	}
}

func TestClosed(t *testing.T) {
	e := newEnv(t)
	addr := e.px.Addr("echo")
	if err := e.px.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatal("dial a closed Proxies' proxy succeeded")
	}
	if _, err := e.px.Add("x", "", e.up.addr()); errs.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Add after Close = %v; want FailedPrecondition", err)
	}
	if _, err := e.px.AddToxic(ToxicSpec{Proxy: "echo", Type: TypeTimeout}); errs.Code(err) != codes.FailedPrecondition {
		t.Fatalf("AddToxic after Close = %v; want FailedPrecondition", err)
	}
}
