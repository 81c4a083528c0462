package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/seed"
)

// TestRedNoteLoad is the backend's read and write benchmark, on `redline up` as a user runs
// it: the binary in its own process, seeded with the demo data set, and vegeta in this
// process driving the BFF with an open model (constant arrival rate):
//
//   - home feed (GET /v1/feed, 50 signed-in users): inbox + pull merge, then the note
//     cards (GetNotes, GetUsers, GetCounts, GetViewerState) through the BFF;
//
//   - explore (GET /v1/explore?kind=hot, anonymous): hot ranking plus cards;
//
//   - orders (POST /v1/orders, one unit of a random SKU, a fresh Idempotency-Key each): with
//     REDLINE_BENCH_PG=1 the product, inventory and order services run on PostgreSQL. After
//     the run, each SKU's stock must have dropped by exactly the number of orders accepted
//     for it.
//
//     REDLINE_BENCH_REDNOTE=1 go test -run TestRedNoteLoad -v -timeout 20m .
//
// Knobs: REDLINE_BENCH_FEED_RATE (2000), REDLINE_BENCH_ORDER_RATE (500),
// REDLINE_BENCH_DURATION (20s), REDLINE_BENCH_PG (0). README.md, "RedNote", records runs.
func TestRedNoteLoad(t *testing.T) {
	if os.Getenv("REDLINE_BENCH_REDNOTE") == "" {
		t.Skip("set REDLINE_BENCH_REDNOTE=1 to run the RedNote load benchmark (about 2 minutes)")
	}
	feedRate := envFloat(t, "REDLINE_BENCH_FEED_RATE", 2000)
	orderRate := envFloat(t, "REDLINE_BENCH_ORDER_RATE", 500)
	duration := envDuration(t, "REDLINE_BENCH_DURATION", 20*time.Second)

	bin := filepath.Join(t.TempDir(), "redline")
	build := exec.Command("go", "build", "-o", bin, "./cmd/redline")
	build.Dir, build.Stderr = "..", os.Stderr // the main module, with its own go.sum
	if err := build.Run(); err != nil {
		t.Fatalf("build redline: %v", err)
	}
	dir := t.TempDir()
	bff, admin, provider, quota := freePort(t), freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(bin, "up", "--seed", "--data_dir", dir, "--bff.addr", bff, "--admin.addr", admin,
		"--quota.addr", quota, "--log.level", "warn")
	// Every request comes from 127.0.0.1, one caller to the edge rate limit (100/s): off,
	// since this measures capacity, not the per-caller limit.
	cmd.Env = append(os.Environ(), "REDLINE_PAYPROVIDER__ADDR="+provider, "REDLINE_HA__RATELIMIT__OFF=true",
		// Unpaid orders close after the run, not during it, so the stock check can bound them.
		fmt.Sprintf("REDLINE_ORDER__PAYMENT_TIMEOUT=%s", duration+20*time.Second), "REDLINE_ORDER__CLOSE_INTERVAL=1s")
	// REDLINE_BENCH_SHED_OFF=1 turns the shedder off: it reads the machine's CPU, which here
	// includes this load generator, so it measures what the stack does without it.
	if os.Getenv("REDLINE_BENCH_SHED_OFF") == "1" {
		cmd.Env = append(cmd.Env, "REDLINE_HA__SHED__OFF=true")
	}
	if os.Getenv("REDLINE_BENCH_PG") == "1" {
		for _, svc := range []string{"product", "inventory", "order"} {
			cmd.Env = append(cmd.Env, fmt.Sprintf("REDLINE_%s__DB=%s", strings.ToUpper(svc), pgSchema(t, "bench_"+svc)))
		}
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("redline up output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, "seeded")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("seed did not finish within 3 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	base := "http://" + bff + "/v1"
	var tokens []string
	for i := range 50 {
		var s struct{ Token string }
		post(t, base+"/sessions", fmt.Sprintf(`{"username":%q,"password":%q}`, seed.UserName(i), seed.DemoPassword), "", &s)
		tokens = append(tokens, "Bearer "+s.Token)
	}

	var i int
	var mu sync.Mutex
	next := func() string {
		mu.Lock()
		defer mu.Unlock()
		i++
		return tokens[i%len(tokens)]
	}
	feed := func(tgt *vegeta.Target) error {
		*tgt = vegeta.Target{Method: "GET", URL: base + "/feed", Header: http.Header{"Authorization": {next()}}}
		return nil
	}
	explore := func(tgt *vegeta.Target) error {
		*tgt = vegeta.Target{Method: "GET", URL: base + "/explore?kind=hot"}
		return nil
	}
	t.Logf("machine: %d CPUs, %s", runtime.NumCPU(), cpuModel())
	if path := os.Getenv("REDLINE_BENCH_PROFILE"); path != "" {
		// A CPU profile of the server during the home-feed attack.
		go func() {
			resp, err := http.Get("http://" + admin + "/debug/pprof/profile?seconds=" + fmt.Sprint(int(duration.Seconds()/2)))
			if err != nil {
				t.Logf("profile: %v", err)
				return
			}
			defer resp.Body.Close()
			f, _ := os.Create(path)
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
		}()
	}
	report(t, "home feed", openAttack(feedRate, duration, feed))
	report(t, "explore hot", openAttack(feedRate, duration, explore))

	// Orders: a random unit of the seeded SKUs, each SKU's stock read before and after.
	var page struct {
		Products []struct {
			ID   string
			SKUs []struct{ ID string } `json:"skus"`
		}
	}
	get(t, base+"/products?limit=50", &page)
	stockOf := func() map[string]int64 {
		out := map[string]int64{}
		for _, p := range page.Products {
			var v struct {
				SKUs []struct {
					ID    string
					Stock int64
				} `json:"skus"`
			}
			get(t, base+"/products/"+p.ID, &v)
			for _, s := range v.SKUs {
				out[s.ID] = s.Stock
			}
		}
		return out
	}
	var skus []string
	for _, p := range page.Products {
		for _, s := range p.SKUs {
			skus = append(skus, s.ID)
		}
	}
	before := stockOf()
	r := rand.New(rand.NewPCG(1, 1))
	var n int
	orders := func(tgt *vegeta.Target) error {
		mu.Lock()
		n++
		sku, key := skus[r.IntN(len(skus))], fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n)
		mu.Unlock()
		*tgt = vegeta.Target{Method: "POST", URL: base + "/orders",
			Body:   []byte(`{"items":[{"sku_id":"` + sku + `","quantity":1}]}`),
			Header: http.Header{"Authorization": {next()}, "Idempotency-Key": {key}}}
		return nil
	}
	res := openAttack(orderRate, duration, orders)
	report(t, "orders", res)
	// The stock must balance against the orders that exist, not the answers: an order whose
	// client gave up at the edge budget (504) may still have been placed. Its state says
	// little in that moment ("creating" may or may not hold its reservation yet), so the
	// bench checks two things it can be sure of:
	//   - now, every SKU's stock fell by at least the units of orders answered 201, and by
	//     at most the units of every order not closed;
	//   - once order.payment_timeout has passed (the run's length + 20s), every unpaid order has closed
	//     itself and every unit is back: stock equals what it was before, on every SKU.
	var soldOut, created int
	confirmed := map[string]int64{}
	for _, x := range res {
		switch x.Code {
		case http.StatusCreated:
			created++
			var o struct {
				Items []struct {
					SKUID string `json:"sku_id"`
				}
			}
			if json.Unmarshal(x.Body, &o) != nil || len(o.Items) != 1 {
				t.Fatalf("order answer %s", x.Body)
			}
			confirmed[o.Items[0].SKUID]++
		case http.StatusPreconditionFailed:
			soldOut++
		}
	}
	open := func() (map[string]int64, int) {
		held, n := map[string]int64{}, 0
		for _, tok := range tokens {
			cursor := ""
			for range 1000 {
				var p struct {
					Orders []struct {
						State string
						Items []struct {
							SKUID    string `json:"sku_id"`
							Quantity int64
						}
					}
					NextCursor string `json:"next_cursor"`
				}
				req, _ := http.NewRequest("GET", base+"/orders?limit=50&cursor="+cursor, nil)
				req.Header.Set("Authorization", tok)
				do(t, req, &p)
				for _, o := range p.Orders {
					if o.State != "closed" {
						n++
						for _, it := range o.Items {
							held[it.SKUID] += it.Quantity
						}
					}
				}
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
		}
		return held, n
	}
	held, placed := open()
	after := stockOf()
	var total int64
	for _, sku := range skus {
		total += confirmed[sku]
		if fell := before[sku] - after[sku]; fell < confirmed[sku] || fell > held[sku] || after[sku] < 0 {
			t.Errorf("sku %s: stock %d → %d; want a fall between %d (answered 201) and %d (not closed)",
				sku, before[sku], after[sku], confirmed[sku], held[sku])
		}
	}
	t.Logf("orders: %d answered 201 (%.0f/s), %d not closed in all, %d sold out; stock within bounds on every SKU: %v",
		total, float64(total)/duration.Seconds(), placed, soldOut, !t.Failed())
	settle := time.Now().Add(duration + 90*time.Second)
	for {
		now, n := stockOf(), 0
		for _, sku := range skus {
			if now[sku] != before[sku] {
				n++
			}
		}
		if _, stillOpen := open(); n == 0 && stillOpen == 0 {
			t.Logf("orders: after the payment timeout every order closed and all stock returned, exactly")
			break
		}
		if time.Now().After(settle) {
			t.Fatalf("well past the payment timeout %d SKUs still differ from their initial stock", n)
		}
		time.Sleep(time.Second)
	}
}

// openAttack runs one open-model attack and returns every result.
func openAttack(rate float64, d time.Duration, tg vegeta.Targeter) []vegeta.Result {
	atk := vegeta.NewAttacker(vegeta.Timeout(2*time.Second), vegeta.Workers(64), vegeta.MaxWorkers(2048), vegeta.KeepAlive(true))
	var out []vegeta.Result
	for res := range atk.Attack(tg, vegeta.Rate{Freq: int(rate), Per: time.Second}, d, "") {
		out = append(out, *res)
	}
	return out
}

func report(t *testing.T, name string, res []vegeta.Result) {
	var m vegeta.Metrics
	for i := range res {
		m.Add(&res[i])
	}
	m.Close()
	reasons := map[string]int{}
	for _, r := range res {
		if r.Code >= 300 {
			var b struct{ Error struct{ Reason string } }
			_ = json.Unmarshal(r.Body, &b)
			reasons[fmt.Sprint(r.Code)+" "+b.Error.Reason]++
		}
	}
	defer t.Logf("%-12s refusals by reason: %v", name, reasons)
	t.Logf("%-12s rate %.0f/s  throughput %.0f/s  success %.4f  p50 %v  p90 %v  p99 %v  max %v  codes %v",
		name, m.Rate, m.Throughput, m.Success, m.Latencies.P50.Round(10*time.Microsecond), m.Latencies.P90.Round(10*time.Microsecond),
		m.Latencies.P99.Round(10*time.Microsecond), m.Latencies.Max.Round(10*time.Microsecond), m.StatusCodes)
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func pgSchema(t *testing.T, prefix string) string {
	url := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	schema := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	db, err := sqldb.Open(context.Background(), url, sqldb.WithSchema(schema))
	if err != nil {
		t.Fatalf("PostgreSQL: %v (run scripts/services.sh)", err)
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		db.Close()
	})
	return url + "&search_path=" + schema
}

func post(t *testing.T, url, body, auth string, v any) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	do(t, req, v)
}

func get(t *testing.T, url string, v any) {
	req, _ := http.NewRequest("GET", url, nil)
	do(t, req, v)
}

func do(t *testing.T, req *http.Request, v any) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s = %d", req.Method, req.URL, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
