package order_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	orderv1 "github.com/redline-dev/redline/api/order/v1"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/services/order/ordertest"
)

// BenchmarkCreateOrder measures full order placement on PostgreSQL: the order service's
// CreateOrder over loopback gRPC, which snapshots prices from the product service (gRPC),
// inserts the order and its items, reserves stock in the inventory service (gRPC) and marks
// the order PENDING_PAYMENT. Each service has its own schema and pool; each server handles
// at most ordertest.MaxConcurrentCalls calls at once. It runs 64 concurrent clients and
// reports orders/s, plus the mean time of the two downstream calls. "spread" orders 1 to 3
// of 1000 SKUs; "hot-sku" has every order take the same SKU, whose stock row serializes
// them. Skipped when PostgreSQL does not answer.
func BenchmarkCreateOrder(b *testing.B) {
	db, err := sqldb.Open(context.Background(), sqldbtest.PostgresURL())
	if err != nil {
		b.Skipf("PostgreSQL not reachable: %v", err)
	}
	db.Close()
	for _, bc := range []struct {
		name string
		skus int
	}{{"spread", 1000}, {"hot-sku", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			s := ordertest.Start(b, ordertest.Postgres)
			var skus []int64
			for len(skus) < bc.skus {
				skus = append(skus, s.SKUs(b, min(50, bc.skus-len(skus)), 1299, "USD", 1_000_000_000)...)
			}
			var seq atomic.Int64
			b.SetParallelism(32) // 64 clients on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					req := &orderv1.CreateOrderRequest{UserId: 1 + n%5000, IdempotencyKey: "bench-" + strconv.FormatInt(n, 10)}
					picked := map[int64]bool{}
					for range 1 + rand.IntN(min(3, len(skus))) {
						sku := skus[rand.IntN(len(skus))]
						if !picked[sku] {
							picked[sku] = true
							req.Items = append(req.Items, &orderv1.OrderItemRequest{SkuId: sku, Quantity: 1 + rand.Int64N(3)})
						}
					}
					if _, err := s.Orders.CreateOrder(context.Background(), req); err != nil {
						b.Errorf("CreateOrder = %v", err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
			if n := s.Catalog.Calls.Load(); n > 0 {
				b.ReportMetric(float64(s.Catalog.Nanos.Load())/float64(n)/1e6, "getskus-ms")
			}
			if n := s.Stock.Reserves.Load(); n > 0 {
				b.ReportMetric(float64(s.Stock.ReserveNanos.Load())/float64(n)/1e6, "reserve-ms")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}
