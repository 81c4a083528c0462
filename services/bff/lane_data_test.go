package bff_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
	"github.com/redline-dev/redline/stress/lane"
)

// TestJourneyInALaneLeavesBaselineUntouched runs the whole walk-through (register, follow,
// post, feed, like, comment, search, cart, order, pay with the provider's callback) in a
// lane, on top of baseline data, and proves the baseline never saw it: every baseline
// table has the same rows and checksum after as before, and no baseline row, cache entry
// or queued message holds the run's sentinel. The lane's own reads see its data, and the
// baseline's do not.
func TestJourneyInALaneLeavesBaselineUntouched(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Provider.Delay, c.Stress.Key = 0, laneKey })
	ctx := context.Background()
	start := time.Now().Add(-time.Second)

	// Baseline data first, with the names the lane will use too.
	alice, _ := stacktest.Session(t, s.BFF, "alice")
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "a baseline note"}, "Authorization", alice); r.Status != 201 {
		t.Fatalf("baseline note = %d %s", r.Status, r.Body)
	}
	// Its asynchronous work done (indexed, fanned out), so the snapshot holds still.
	stacktest.Eventually(t, "the baseline note indexed and fanned out", func() (bool, string) {
		r := stacktest.Do(t, "GET", s.BFF+"/v1/search?q=baseline", nil)
		f := stacktest.Do(t, "GET", s.BFF+"/v1/feed", nil, "Authorization", alice)
		return strings.Contains(string(r.Body), "a baseline note") && strings.Contains(string(f.Body), "a baseline note"),
			string(r.Body) + string(f.Body)
	})
	before, err := s.TakeSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	sentinel := "rl" + hex.EncodeToString(b)
	signer, _ := lane.NewSigner(laneKey, nil)
	tok, _ := signer.Sign("journey", time.Hour)
	journey(t, s, journeyIn{
		lane: []string{"X-Redline-Lane", tok},
		ctx:  metadata.AppendToOutgoingContext(ctx, "baggage", "lane=journey"),
		tag:  sentinel,
	})

	// Every service served the lane: the lane crossed every boundary of the journey.
	m := stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body
	for _, svc := range []string{"user", "note", "feed", "interaction", "comment", "history", "search", "product",
		"inventory", "order", "payment"} {
		found := false
		for _, l := range strings.Split(grepLines(m, `lane="journey"`), "\n") {
			if strings.HasPrefix(l, "redline_grpc_server_requests_total{") && strings.Contains(l, `service="`+svc+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s never served lane journey", svc)
		}
	}
	if !strings.Contains(grepLines(m, `lane="shadow"`), `route="/payment.v1.Payment/Callback"`) {
		t.Errorf("the provider's callback did not reach the shadow payment in a lane:\n%s", grepLines(m, "Payment/Callback"))
	}

	after, err := s.TakeSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := before.Diff(after); len(diff) > 0 {
		t.Errorf("the lane changed baseline tables:\n%s", strings.Join(diff, "\n"))
	}
	if len(before) < 20 {
		t.Errorf("the snapshot covers %d tables; want every service's", len(before))
	}
	rep, err := s.ScanLeaks(ctx, sentinel, start)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total() != 0 {
		t.Errorf("leaks of the lane into the baseline: %+v", rep.Leaks)
	}
	scanned := strings.Join(rep.Scanned, "; ")
	for _, want := range []string{"sql note", "sql order", "cache:", "mq:"} {
		if !strings.Contains(scanned, want) {
			t.Errorf("the leak scan skipped %q: %s (skipped %v)", want, scanned, rep.Skipped)
		}
	}
	// The sentinel is where it belongs: in the lane, and not in the baseline's reads.
	inLane := stacktest.Do(t, "GET", s.BFF+"/v1/search?q="+sentinel, nil, "X-Redline-Lane", tok)
	inBase := stacktest.Do(t, "GET", s.BFF+"/v1/search?q="+sentinel, nil)
	if !strings.Contains(string(inLane.Body), sentinel) || strings.Contains(string(inBase.Body), sentinel) {
		t.Fatalf("search for the sentinel: lane %s, baseline %s; want it in the lane only", inLane.Body, inBase.Body)
	}
	// And the scan would have caught a leak: the same sentinel written by the baseline is found.
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "leak " + sentinel}, "Authorization", alice); r.Status != 201 {
		t.Fatalf("baseline note = %d %s", r.Status, r.Body)
	}
	rep, err = s.ScanLeaks(ctx, sentinel, start)
	if err != nil || rep.Total() == 0 || !strings.Contains(strings.Join(leakPlaces(rep), " "), "note.notes.title") {
		t.Fatalf("a baseline row with the sentinel: leaks %+v (%v); want note.notes.title found", rep.Leaks, err)
	}
}

func leakPlaces(r stack.LeakReport) []string {
	var out []string
	for _, l := range r.Leaks {
		out = append(out, l.Where)
	}
	return out
}

// TestUnsignedLaneNeverRoutes: a forged, expired or smuggled lane is stripped at the edge,
// so the request is plain baseline traffic: it is served from baseline data, never from
// shadow data, and carries no lane into the baseline's stores.
func TestUnsignedLaneNeverRoutes(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Stress.Key = laneKey })
	signer, _ := lane.NewSigner(laneKey, nil)
	good, _ := signer.Sign("unsigned", time.Hour)
	past, _ := lane.NewSigner(laneKey, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	expired, _ := past.Sign("unsigned", time.Hour)
	other, _ := lane.NewSigner("another-key-0123456789abcdef", nil)
	forged, _ := other.Sign("unsigned", time.Hour)
	bearer, _ := stacktest.Session(t, s.BFF, "dave")
	for name, h := range map[string][]string{
		"forged":   {"X-Redline-Lane", forged},
		"expired":  {"X-Redline-Lane", expired},
		"garbage":  {"X-Redline-Lane", "v1.unsigned.1.x"},
		"baggage":  {"Baggage", "lane=unsigned"},
		"tampered": {"X-Redline-Lane", strings.Replace(good, "unsigned", "unsignee", 1)},
	} {
		r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "sent as " + name}, append(h, "Authorization", bearer)...)
		if r.Status != 201 {
			t.Fatalf("%s: create = %d %s; want it served as baseline", name, r.Status, r.Body)
		}
		var n struct{ ID string }
		r.JSON(t, &n)
		if r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil); r.Status != 200 {
			t.Errorf("%s: the note is not in the baseline (%d)", name, r.Status)
		}
		if r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil, "X-Redline-Lane", good); r.Status != 404 {
			t.Errorf("%s: the note is in the shadow (%d)", name, r.Status)
		}
	}
	m := stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body
	if l := grepLines(m, `lane="unsigned"`); strings.Contains(l, "POST /v1/notes") || strings.Contains(l, "CreateNote") {
		t.Errorf("an unsigned lane reached the metrics:\n%s", l)
	}
	if !strings.Contains(grepLines(m, "redline_lane_rejected_total"), `reason="expired"`) {
		t.Errorf("expired tokens are not counted:\n%s", grepLines(m, "redline_lane_rejected_total"))
	}
}

// TestShadowJobsStayInTheShadow: a shadow instance's background work is in a lane too.
// An order placed in a lane and never paid is closed by the shadow order closer, whose
// Release must reach the shadow inventory (the stock comes back there) and never the
// baseline one.
func TestShadowJobsStayInTheShadow(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Stress.Key = laneKey
		c.Order.PaymentTimeout, c.Order.CloseInterval = time.Second, 50*time.Millisecond
	})
	signer, _ := lane.NewSigner(laneKey, nil)
	tok, _ := signer.Sign("closer", time.Hour)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "baggage", "lane=closer")
	p, err := productv1.NewProductClient(s.Conn(t, "product")).CreateProduct(ctx, &productv1.CreateProductRequest{
		Title: "lane tea", Skus: []*productv1.SKUInput{{Price: 100, Currency: "CNY"}}})
	if err != nil {
		t.Fatal(err)
	}
	sku := p.GetSkus()[0].GetId()
	stock := inventoryv1.NewInventoryClient(s.Conn(t, "inventory"))
	if _, err := stock.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: sku, Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	// Metrics are the process's: other tests' baseline releases count too, so compare.
	baselineReleases := func() string {
		var out []string
		for _, l := range strings.Split(grepLines(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body, "/inventory.v1.Inventory/Release"), "\n") {
			if strings.HasPrefix(l, "redline_grpc_server_requests_total{") && strings.Contains(l, `lane=""`) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	before := baselineReleases()
	bearer, _ := stacktest.Session(t, s.BFF, "erin", "X-Redline-Lane", tok)
	r := stacktest.Do(t, "POST", s.BFF+"/v1/orders", map[string]any{"items": []map[string]any{{"sku_id": fmt.Sprint(sku), "quantity": 2}}},
		"Authorization", bearer, "X-Redline-Lane", tok, "Idempotency-Key", "closer-1")
	if r.Status != 201 {
		t.Fatalf("order in a lane = %d %s", r.Status, r.Body)
	}
	stacktest.Eventually(t, "the unpaid lane order closed and its stock back in the shadow", func() (bool, string) {
		st, err := stock.GetStock(ctx, &inventoryv1.GetStockRequest{SkuIds: []int64{sku}})
		if err != nil {
			return false, err.Error()
		}
		return st.GetStocks()[0].GetAvailable() == 3 && st.GetStocks()[0].GetReserved() == 0, st.String()
	})
	if after := baselineReleases(); after != before {
		t.Errorf("the shadow closer reached the baseline inventory:\n%s\nbefore:\n%s", after, before)
	}
}
