package stack_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	"github.com/redline-dev/redline/ha/quota"
	"github.com/redline-dev/redline/kit/data/sqldb/sqldbtest"
	"github.com/redline-dev/redline/kit/errs"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const redisURL = "redis://127.0.0.1:6379/0"

// TestOnPostgresAndRedis runs the walk-through with both services on real PostgreSQL (each
// in a schema of this test's own) and profiles cached in real Redis (under this test's own
// key prefix).
func TestOnPostgresAndRedis(t *testing.T) {
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	ctx := context.Background()
	postgresURL := sqldbtest.PostgresURL()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	suffix := "stack_" + hex.EncodeToString(rnd[:])
	_, userSchema := sqldbtest.Postgres(t, "u")
	_, noteSchema := sqldbtest.Postgres(t, "n")
	prefix := "test:" + suffix + ":"
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})

	s := stacktest.Start(t, func(c *stack.Config) {
		c.User.DB = postgresURL + "&search_path=" + userSchema
		c.Note.DB = postgresURL + "&search_path=" + noteSchema
		c.Cache, c.CachePrefix = redisURL, prefix
	})
	bearer, uid := stacktest.Session(t, s.BFF, "pat")
	r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "on postgres"}, "Authorization", bearer)
	if r.Status != http.StatusCreated {
		t.Fatalf("create note = %d %s", r.Status, r.Body)
	}
	var n struct{ ID string }
	r.JSON(t, &n)
	r = stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"username":"pat"`) {
		t.Fatalf("get note = %d %s", r.Status, r.Body)
	}
	// The author's profile was read through the cache: it is in Redis under our prefix.
	if v, err := rdb.Get(ctx, prefix+"user:profile:"+uid).Result(); err != nil || !strings.Contains(v, `"pat"`) {
		t.Fatalf("redis %suser:profile:%s = %q, %v; want the cached profile", prefix, uid, v, err)
	}
	// And the rows are in this test's schemas.
	assertRows(t, noteSchema, "notes", 1)
	assertRows(t, userSchema, "users", 1)
}

func assertRows(t *testing.T, schema, table string, want int) {
	t.Helper()
	db, err := sql.Open("pgx", sqldbtest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM "` + schema + `".` + table).Scan(&n); err != nil || n != want {
		t.Fatalf("%s.%s has %d rows (%v); want %d", schema, table, n, err, want)
	}
}

func TestQuotaResourcesReloadLive(t *testing.T) {
	s := stacktest.Start(t, nil)
	cfg := stack.Default()
	cfg.Quota.Resources["notes_create"] = quota.Resource{Limit: 7, LeaseTTL: 10 * time.Second}
	s.Apply(cfg) // what a config file reload does
	var state struct {
		HA struct {
			QuotaService struct {
				Resources []struct {
					Resource string  `json:"resource"`
					Limit    float64 `json:"limit"`
				} `json:"resources"`
			} `json:"quota_service"`
		} `json:"ha"`
	}
	stacktest.Do(t, "GET", s.Admin+"/state", nil).JSON(t, &state)
	rs := state.HA.QuotaService.Resources
	if len(rs) != 1 || rs[0].Resource != "notes_create" || rs[0].Limit != 7 {
		t.Fatalf("quota resources after reload = %+v; want notes_create at 7/s", rs)
	}
	bad := stack.Default()
	bad.Quota.Resources["notes_create"] = quota.Resource{Limit: -1}
	s.Apply(bad) // refused: the running limits stay
	stacktest.Do(t, "GET", s.Admin+"/state", nil).JSON(t, &state)
	if rs := state.HA.QuotaService.Resources; len(rs) != 1 || rs[0].Limit != 7 {
		t.Fatalf("an invalid reload changed the limits: %+v", rs)
	}
}

func TestInventoryOverTheWire(t *testing.T) {
	s := stacktest.Start(t, nil)
	conn, err := kitgrpc.NewClient(s.GRPCAddr("inventory"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	inv := inventoryv1.NewInventoryClient(conn)
	ctx := context.Background()
	if _, err := inv.SetStock(ctx, &inventoryv1.SetStockRequest{SkuId: 7, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	items := []*inventoryv1.Item{{SkuId: 7, Quantity: 2}}
	_, err = inv.Reserve(ctx, &inventoryv1.ReserveRequest{OrderId: 1, Items: items})
	if e := errs.From(err); e.Reason != "OUT_OF_STOCK" || e.Metadata["sku_id"] != "7" || e.HTTPStatus() != 412 {
		t.Fatalf("Reserve beyond stock over gRPC = %+v; want OUT_OF_STOCK naming sku 7", e)
	}
}

func TestInteractionOverTheWire(t *testing.T) {
	s := stacktest.Start(t, nil)
	conn, err := kitgrpc.NewClient(s.GRPCAddr("interaction"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	in := interactionv1.NewInteractionClient(conn)
	ctx := context.Background()
	for range 2 { // the second like changes nothing
		if _, err := in.Like(ctx, &interactionv1.ReactRequest{UserId: 1, TargetId: 42}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := in.GetCounts(ctx, &interactionv1.GetCountsRequest{TargetIds: []int64{42}})
	if err != nil || got.GetCounts()[42].GetLikes() != 1 {
		t.Fatalf("GetCounts = %v, %v; want 1 like, seen at once", got, err)
	}
}
