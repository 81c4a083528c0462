package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	"github.com/redline-dev/redline/chaos/procs"
	"github.com/redline-dev/redline/kit/data/mq/mqtest"
	"github.com/redline-dev/redline/kit/log"
	etcdreg "github.com/redline-dev/redline/kit/registry/etcd"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	"github.com/redline-dev/redline/services/stack"
)

func TestUpProcsNeedsSharedRegistryAndQueue(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil, "up", "--procs")
	if code := p.wait(t, 20*time.Second); code != 2 {
		t.Fatalf("exit code = %d; want 2 (usage)", code)
	}
	for _, want := range []string{`registry is "memory"`, "etcd://", `queue is "embedded"`, "nats://"} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("output does not say %q:\n%s", want, p.output())
		}
	}
	p = start(t, dir, nil, "up", "--procs", "--seed")
	if code := p.wait(t, 20*time.Second); code != 2 || !strings.Contains(p.output(), "--seed does not work with --procs") {
		t.Errorf("up --procs --seed = exit %d:\n%s\nwant 2, saying --seed does not work with --procs", code, p.output())
	}
}

// TestUpProcsKillNineCheckout runs checkout journeys against `redline up --procs` while the
// order and inventory processes are killed with SIGKILL five times each, then checks from
// the services' own databases that no order, payment or unit of stock was lost or doubled.
func TestUpProcsKillNineCheckout(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	const (
		loadFor        = 35 * time.Second
		killsEach      = 5
		paymentTimeout = 5 * time.Second
		workers        = 4
		pace           = 100 * time.Millisecond // one journey per worker per pace, at most
		skus           = 8
		initialStock   = 500
	)
	began := time.Now()
	dir := t.TempDir()
	admin, bff, prefix, sup := startProcs(t, dir, paymentTimeout)

	// The shop: products with known stock, created through the services' gRPC APIs (the BFF
	// has no route that creates products).
	initial := seedShop(t, prefix, skus, initialStock)
	tokens := make([]string, workers)
	for i := range tokens {
		tokens[i] = login(t, "http://"+bff+"/v1", fmt.Sprintf("buyer%d", i))
	}

	// The load: each worker places orders of one or two units and pays about 70% of them.
	ld := &checkoutLoad{base: "http://" + bff + "/v1", hc: &http.Client{Timeout: 5 * time.Second}, accepted: map[int64]placed{}}
	loadCtx, stopLoad := context.WithTimeout(context.Background(), loadFor)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { ld.worker(loadCtx, w, tokens[w], initial, pace) })
	}

	// The faults: kill -9 at random moments (seeded), through `redline proc kill`.
	rng := rand.New(rand.NewPCG(9, uint64(killsEach)))
	type kill struct {
		at  time.Duration
		svc string
	}
	var plan []kill
	for i := range 2 * killsEach {
		svc := []string{"order", "inventory"}[i%2]
		plan = append(plan, kill{at: 2*time.Second + time.Duration(rng.Int64N(int64(loadFor-6*time.Second))), svc: svc})
	}
	slices.SortFunc(plan, func(a, b kill) int { return int(a.at - b.at) })
	loadStart := time.Now()
	kills := map[string]int{}
	for _, k := range plan {
		if d := time.Until(loadStart.Add(k.at)); d > 0 {
			time.Sleep(d)
		}
		// A process killed a moment ago may still be starting: kill it once it runs.
		eventually(t, 30*time.Second, k.svc+" running before its kill", func() bool { return procState(t, admin, k.svc).State == procs.Running })
		out, err := exec.Command(binary, "proc", "kill", k.svc, "--admin", "http://"+admin).CombinedOutput()
		if err != nil {
			t.Fatalf("redline proc kill %s: %v\n%s", k.svc, err, out)
		}
		kills[k.svc]++
		t.Logf("%6.2fs  kill -9 %s: %s", time.Since(loadStart).Seconds(), k.svc, strings.TrimSpace(string(out)))
	}
	wg.Wait()
	t.Logf("load done after %v: %s", time.Since(loadStart).Round(time.Millisecond), ld.summary())

	// Every unpaid order closes within payment_timeout (plus the closer's interval); wait
	// until the supervisor's checkout audit says nothing is open, owed or pending.
	settled := time.Now()
	var served stack.CheckoutAudit
	deadline := time.Now().Add(paymentTimeout + 40*time.Second)
	for {
		code, body := get(t, "http://"+admin+"/chaos/audit/checkout")
		served = stack.CheckoutAudit{}
		err := json.Unmarshal([]byte(body), &served)
		if code == http.StatusOK && err == nil && served.Settled && served.Orders["PENDING_PAYMENT"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled within %v of the load's end: GET /chaos/audit/checkout = %d %s", paymentTimeout+40*time.Second, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("settled %v after the load", time.Since(settled).Round(time.Millisecond))

	// The same audit here, for the rows the clients' view is checked against.
	got := auditShop(t, filepath.Join(dir, "data"))
	if !slices.Equal(got.Problems, served.Problems) || !maps.Equal(got.Orders, served.Orders) || !slices.Equal(got.SKUs, served.SKUs) {
		t.Errorf("the supervisor's audit %+v differs from the test's %+v", served, got)
	}
	problems := append(slices.Clone(got.Problems), clientProblems(got, ld.accepted, initial)...)
	for i, p := range problems {
		if i == 20 {
			t.Errorf("... and %d more", len(problems)-i)
			break
		}
		t.Error(p)
	}

	for _, svc := range stack.Services {
		if in := procState(t, admin, svc); in.Admin == "" {
			t.Errorf("%s: %+v; want its admin address", svc, in)
		}
	}
	seen := map[string]procs.Info{}
	for _, svc := range []string{"order", "inventory"} {
		in := procState(t, admin, svc)
		seen[svc] = in
		if in.Restarts != kills[svc] || in.Crashes != 0 || in.State != procs.Running {
			t.Errorf("%s: %+v; want %d restarts, no crash, running", svc, in, kills[svc])
		}
	}
	t.Logf("kills: order %d, inventory %d; restarts seen: order %d, inventory %d", kills["order"], kills["inventory"],
		seen["order"].Restarts, seen["inventory"].Restarts)
	t.Logf("orders: %d accepted, %d in the database %v; payments %v; pay calls accepted %d",
		len(ld.accepted), len(got.OrderRows), got.Orders, got.Payments, ld.paid())
	eventually(t, 30*time.Second, "every process ready after the kills", func() bool { return readyz(admin).Ready })

	// A graceful stop takes every child down with the supervisor.
	var pids []int
	for _, svc := range stack.Services {
		pids = append(pids, procState(t, admin, svc).PID)
	}
	if err := sup.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sup.wait(t, 30*time.Second); code != 0 {
		t.Errorf("supervisor exit code = %d; want 0", code)
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after the supervisor stopped", stack.Services[i], pid)
		}
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// startProcs starts `redline up --procs` with its data in dir, on etcd and NATS (a
// registry prefix and a stream of its own), and waits until every process is ready. It
// returns the supervisor's admin address, the BFF's, the registry prefix and the process.
func startProcs(t *testing.T, dir string, paymentTimeout time.Duration) (admin, bff, prefix string, sup *proc) {
	t.Helper()
	for _, addr := range []string{"127.0.0.1:2379", "127.0.0.1:4222"} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("nothing listens on %s (%v): run scripts/services.sh (etcd and NATS)", addr, err)
		}
		c.Close()
	}
	began := time.Now()
	admin, bff = procsAdminAddr(t), freeAddr(t)
	stamp := time.Now().UnixNano()
	prefix = fmt.Sprintf("/redline-test/%s-%d/", t.Name(), stamp)
	stream := fmt.Sprintf("E2E_PROCS_%d", stamp)
	mqtest.DeleteStreamAtCleanup(t, mqtest.URL, stream)
	cfg := fmt.Sprintf(`data_dir: %q
admin: {addr: %q}
bff: {addr: %q}
quota: {addr: %q}
payprovider: {addr: %q}
sre: {addr: %q}
registry: etcd://127.0.0.1:2379
registry_prefix: %q
registry_ttl: 2s
queue: nats://127.0.0.1:4222
queue_prefix: e2eprocs%d
queue_stream: %s
order: {payment_timeout: %s, close_interval: 1s}
stop_timeout: 5s
`, filepath.Join(dir, "data"), admin, bff, freeAddr(t), freeAddr(t), freeAddr(t), prefix, stamp, stream, paymentTimeout)
	if err := os.WriteFile(filepath.Join(dir, "redline.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sup = start(t, dir, nil, "up", "--procs", "--config", "redline.yaml")
	eventually(t, 90*time.Second, "every process ready", func() bool { return readyz(admin).Ready })
	t.Logf("ready after %v", time.Since(began).Round(time.Millisecond))
	return admin, bff, prefix, sup
}

// procsAdminAddr returns a loopback address whose port and the len(stack.Services) ports
// after it are free, below the kernel's range for port 0: `up --procs` gives those to the
// processes' admin endpoints, and a restarted process must find its port free.
func procsAdminAddr(t *testing.T) string {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for range 50 {
		base := 20000 + r.IntN(12000)
		var ls []net.Listener
		for p := base; p <= base+len(stack.Services); p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == len(stack.Services)+1 {
			return fmt.Sprintf("127.0.0.1:%d", base)
		}
	}
	t.Fatal("no run of free ports between 20000 and 32000")
	return ""
}

// procState asks the supervisor for one process.
func procState(t *testing.T, admin, name string) procs.Info {
	t.Helper()
	_, body := get(t, "http://"+admin+"/chaos/procs")
	var r struct{ Procs []procs.Info }
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("GET /chaos/procs: %v: %s", err, body)
	}
	for _, p := range r.Procs {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no process %s in %s", name, body)
	return procs.Info{}
}

// seedShop creates products of two SKUs each, skus in all, each with stock units, and
// returns the stock by SKU.
func seedShop(t *testing.T, prefix string, skus, stock int) map[int64]int64 {
	t.Helper()
	reg, err := etcdreg.Dial([]string{"127.0.0.1:2379"}, etcdreg.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dial := func(name string) *kitgrpc.Client {
		cc, err := kitgrpc.NewClient(kitgrpc.Scheme+":///"+name, kitgrpc.Registry(reg), kitgrpc.ClientLogger(log.Discard()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	products, inventory := productv1.NewProductClient(dial("product")), inventoryv1.NewInventoryClient(dial("inventory"))
	out := map[int64]int64{}
	for i := range skus / 2 {
		req := &productv1.CreateProductRequest{Title: fmt.Sprintf("kill-9 product %d", i), IdempotencyKey: fmt.Sprintf("kill9-%d", i),
			Skus: []*productv1.SKUInput{{Attributes: map[string]string{"size": "S"}, Price: 1000, Currency: "CNY"},
				{Attributes: map[string]string{"size": "L"}, Price: 1500, Currency: "CNY"}}}
		var p *productv1.ProductInfo
		eventually(t, 20*time.Second, "product created", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p, err = products.CreateProduct(ctx, req)
			return err == nil
		})
		for _, sku := range p.GetSkus() {
			eventually(t, 20*time.Second, "stock set", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, err := inventory.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: sku.GetId(), Quantity: int64(stock)})
				return err == nil
			})
			out[sku.GetId()] = int64(stock)
		}
	}
	return out
}

func login(t *testing.T, base, name string) string {
	t.Helper()
	body := fmt.Sprintf(`{"username":%q,"password":"correct horse battery"}`, name)
	if code, r := post(t, base+"/users", body); code != http.StatusCreated {
		t.Fatalf("register %s = %d %v", name, code, r)
	}
	code, r := post(t, base+"/sessions", body)
	if code != http.StatusCreated {
		t.Fatalf("login %s = %d %v", name, code, r)
	}
	return r["token"].(string)
}

// placed is an order the client got a 2xx for.
type placed struct {
	sku, qty int64
	// paid: a pay call for it got a 2xx.
	paid bool
}

// checkoutLoad places and pays orders through the BFF, retrying what failed the way a
// client would: the same Idempotency-Key for the same checkout.
type checkoutLoad struct {
	base string
	hc   *http.Client

	mu        sync.Mutex
	accepted  map[int64]placed
	gaveUp    int // checkouts that never got a 2xx
	outOfStck int
	failures  map[string]int // non-2xx answers and transport errors, retried
}

func (l *checkoutLoad) worker(ctx context.Context, w int, token string, stock map[int64]int64, pace time.Duration) {
	r := rand.New(rand.NewPCG(uint64(w), 42))
	var ids []int64
	for id := range stock {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sku, qty := ids[r.IntN(len(ids))], int64(1+r.IntN(2))
		body := fmt.Sprintf(`{"items":[{"sku_id":"%d","quantity":%d}]}`, sku, qty)
		status, resp := l.call(ctx, "POST", "/orders", body, token, fmt.Sprintf("kill9-w%d-%d", w, n))
		switch {
		case strings.Contains(resp, "OUT_OF_STOCK"):
			l.mu.Lock()
			l.outOfStck++
			l.mu.Unlock()
			continue
		case status/100 != 2:
			l.mu.Lock()
			l.gaveUp++
			l.mu.Unlock()
			continue
		}
		var o struct{ ID string }
		_ = json.Unmarshal([]byte(resp), &o)
		id, _ := strconv.ParseInt(o.ID, 10, 64)
		p := placed{sku: sku, qty: qty}
		if r.IntN(10) < 7 {
			status, _ = l.call(ctx, "POST", "/orders/"+o.ID+"/pay", "", token, "")
			p.paid = status/100 == 2
		}
		l.mu.Lock()
		l.accepted[id] = p
		l.mu.Unlock()
	}
}

// call sends a request, retrying transport errors, 5xx and 429 up to 8 times; it returns
// the last status (0 for a transport error) and body.
func (l *checkoutLoad) call(ctx context.Context, method, path, body, token, key string) (int, string) {
	status, text := 0, ""
	for attempt := range 8 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 150 * time.Millisecond)
		}
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), method, l.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := l.hc.Do(req)
		if err != nil {
			status, text = 0, err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status, text = resp.StatusCode, string(b)
		}
		if status != 0 && status < 500 && status != http.StatusTooManyRequests {
			return status, text
		}
		l.mu.Lock()
		if l.failures == nil {
			l.failures = map[string]int{}
		}
		l.failures[fmt.Sprintf("%s %s %d", method, strings.Split(path, "/")[1], status)]++
		l.mu.Unlock()
	}
	return status, text
}

func (l *checkoutLoad) paid() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.accepted {
		if p.paid {
			n++
		}
	}
	return n
}

func (l *checkoutLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d orders accepted, %d out of stock, %d gave up; retried answers %v", len(l.accepted), l.outOfStck, l.gaveUp, l.failures)
}

// auditShop audits the checkout from the services' databases under dataDir, opened
// read-only as the supervisor opens them.
func auditShop(t *testing.T, dataDir string) *stack.CheckoutAudit {
	t.Helper()
	cfg := stack.Default()
	cfg.DataDir = dataDir
	auditor := stack.NewCheckoutAuditor(cfg)
	defer auditor.Close()
	a, err := auditor.Audit(context.Background())
	if err != nil {
		t.Fatalf("checkout audit: %v", err)
	}
	return a
}

// clientProblems checks what the clients were told against the audit of a settled shop:
// every order accepted is there, PAID or CLOSED, with the items ordered, and has a payment
// when pay got a 2xx; every SKU holds its initial stock (available, reserved or sold), none
// of it reserved. stack.AuditCheckout has checked the databases against each other.
func clientProblems(a *stack.CheckoutAudit, accepted map[int64]placed, initial map[int64]int64) []string {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for id, p := range accepted {
		o, ok := a.OrderRows[id]
		switch {
		case !ok:
			fail("order %d: the client got a 2xx, but it is not in the database", id)
		case o.State != "PAID" && o.State != "CLOSED":
			fail("order %d: state %s; want PAID or CLOSED", id, o.State)
		case o.Items[p.sku] != p.qty:
			fail("order %d: items %v; the client ordered %d of SKU %d", id, o.Items, p.qty, p.sku)
		case p.paid && len(a.PaymentRows[id]) == 0:
			fail("order %d: pay got a 2xx, but there is no payment", id)
		}
	}
	seeded := &stack.CheckoutAudit{}
	for sku, n := range initial {
		seeded.SKUs = append(seeded.SKUs, stack.SKUStock{SKU: sku, Available: n})
	}
	for _, c := range a.Conserved(seeded) {
		fail("%s (from the initial stock)", c)
	}
	for _, s := range a.SKUs {
		if s.Reserved != 0 {
			fail("SKU %d: %d units still reserved after every order settled", s.SKU, s.Reserved)
		}
	}
	slices.Sort(out)
	return out
}

// TestKillNineClientChecksCatchBrokenShops: the checks of the clients' view catch what
// they are for. (The checks between the databases are stack.AuditCheckout's, tested
// there.)
func TestKillNineClientChecksCatchBrokenShops(t *testing.T) {
	healthy := func() (*stack.CheckoutAudit, map[int64]placed) {
		a := &stack.CheckoutAudit{
			OrderRows: map[int64]stack.OrderRow{
				100: {ID: 100, State: "PAID", PaymentID: 7, Items: map[int64]int64{1: 2}},
				101: {ID: 101, State: "CLOSED", CloseReason: "EXPIRED", Items: map[int64]int64{2: 1}},
			},
			PaymentRows: map[int64][]stack.PaymentRow{100: {{ID: 7, OrderID: 100, State: "SUCCEEDED"}},
				101: {{ID: 8, OrderID: 101, State: "REFUND_REQUIRED"}}},
			SKUs: []stack.SKUStock{{SKU: 1, Available: 8, Sold: 2}, {SKU: 2, Available: 5}},
		}
		return a, map[int64]placed{100: {sku: 1, qty: 2, paid: true}, 101: {sku: 2, qty: 1, paid: true}}
	}
	initial := map[int64]int64{1: 10, 2: 5}
	if a, accepted := healthy(); len(clientProblems(a, accepted, initial)) != 0 {
		t.Fatalf("a healthy shop has problems: %v", clientProblems(a, accepted, initial))
	}
	order := func(a *stack.CheckoutAudit, id int64, change func(*stack.OrderRow)) {
		o := a.OrderRows[id]
		change(&o)
		a.OrderRows[id] = o
	}
	for _, tt := range []struct {
		name   string
		damage func(*stack.CheckoutAudit)
		want   string
	}{
		{"accepted order lost", func(a *stack.CheckoutAudit) { delete(a.OrderRows, 101) }, "not in the database"},
		{"order left open", func(a *stack.CheckoutAudit) { order(a, 101, func(o *stack.OrderRow) { o.State = "PENDING_PAYMENT" }) },
			"want PAID or CLOSED"},
		{"other items", func(a *stack.CheckoutAudit) {
			order(a, 100, func(o *stack.OrderRow) { o.Items = map[int64]int64{1: 3} })
		}, "the client ordered 2 of SKU 1"},
		{"paid without a payment", func(a *stack.CheckoutAudit) { delete(a.PaymentRows, 100) }, "there is no payment"},
		{"a unit of stock leaked", func(a *stack.CheckoutAudit) { a.SKUs[1].Available = 4 }, "SKU 2: total 5 → 4"},
		{"stock still reserved", func(a *stack.CheckoutAudit) { a.SKUs[0] = stack.SKUStock{SKU: 1, Available: 7, Reserved: 1, Sold: 2} },
			"still reserved"},
		{"stock row lost", func(a *stack.CheckoutAudit) { a.SKUs = a.SKUs[:1] }, "SKU 2 is gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, accepted := healthy()
			tt.damage(a)
			problems := clientProblems(a, accepted, initial)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems = %q; want one saying %q", problems, tt.want)
			}
		})
	}
}

func TestProcsCommandRefusesBadDurations(t *testing.T) {
	for _, args := range [][]string{{"pause", "order", "--for", "11m"}, {"pause", "order", "--for", "0s"},
		{"kill", "order", "--restart-after", "-1s"}} {
		// Refused before anything is sent: nothing listens on port 1.
		p := start(t, t.TempDir(), nil, append([]string{"proc"}, append(args, "--admin", "http://127.0.0.1:1")...)...)
		if code := p.wait(t, 20*time.Second); code != 2 || !strings.Contains(p.output(), args[2]) {
			t.Errorf("redline proc %v = exit %d:\n%s\nwant 2, naming %s", args, code, p.output(), args[2])
		}
	}
}
