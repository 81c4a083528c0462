package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/meta"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	"github.com/redline-dev/redline/services/seed"
)

// SeededMarker is the file in data_dir that records a finished seed; delete it to seed
// again.
const SeededMarker = "seeded"

// Seeder returns a component that, once everything listens, loads the demo data set
// (services/seed) in the background, logging its progress, unless data_dir already holds
// a finished seed. Stopping the process stops the seed; a later --seed completes it.
func (s *Stack) Seeder(opts seed.Options) app.Component {
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	marker := filepath.Join(s.cfg.DataDir, SeededMarker)
	// The shadow's own marker: a data_dir seeded before shadow data existed gets it too
	// (the seed is idempotent, so the baseline's part only checks what is there).
	shadowMarker := marker + "-shadow"
	return app.Hook("seed", func(ctx context.Context) error {
		_, errBase := os.Stat(marker)
		_, errShadow := os.Stat(shadowMarker)
		if errBase == nil && (errShadow == nil || !s.cfg.Stress.Shadow) {
			s.logger.Info("seed: data_dir already seeded; delete " + marker + " to seed again")
			return nil
		}
		var c seed.Clients
		conns := map[string]*kitgrpc.Client{}
		for _, name := range []string{"user", "note", "interaction", "product", "inventory"} {
			// Plain clients: a batch job backs off when the services shed it, instead of
			// spending the interactive traffic's retry budget.
			cc, err := kitgrpc.NewClient(kitgrpc.Scheme+":///"+name, kitgrpc.Registry(s.reg), kitgrpc.ClientLogger(s.logger))
			if err != nil {
				return err
			}
			conns[name] = cc
		}
		c.Users, c.Notes = userv1.NewUserClient(conns["user"]), notev1.NewNoteClient(conns["note"])
		c.Interactions = interactionv1.NewInteractionClient(conns["interaction"])
		c.Shop = seed.Catalog{Product: productv1.NewProductClient(conns["product"]), Inventory: inventoryv1.NewInventoryClient(conns["inventory"])}
		last := map[string]time.Time{}
		opts.Progress = func(stage string, done, total int) {
			if time.Since(last[stage]) > 2*time.Second || done == total {
				last[stage] = time.Now()
				s.logger.Info("seed", "stage", stage, "done", done, "total", total)
			}
		}
		var run context.Context
		run, cancel = context.WithCancel(context.WithoutCancel(ctx))
		wg.Go(func() {
			defer func() {
				for _, cc := range conns {
					_ = cc.Close()
				}
			}()
			start := time.Now()
			s.logger.Info("seed: loading the demo data set", "users", opts.Users, "notes", opts.Notes, "products", opts.Products)
			res, err := seed.Run(run, c, opts)
			if err == nil && s.cfg.Stress.Shadow {
				// The same data set again, in a lane: the shadow instances get it, so a stress
				// run logs in as the demo users and buys the demo products without touching
				// theirs.
				s.logger.Info("seed: the same data set into the shadow data, for stress lanes")
				if _, err = seed.Run(meta.WithLane(run, meta.ShadowLane), c, opts); err == nil {
					_ = os.WriteFile(shadowMarker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
				}
			}
			switch {
			case errors.Is(err, context.Canceled):
				s.logger.Warn("seed: stopped before it finished; run with --seed again to complete it")
			case err != nil:
				s.logger.Error("seed failed; run with --seed again to complete it", "error", err)
			default:
				_ = os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
				s.logger.Info("seed: done", "took", time.Since(start).Round(time.Millisecond), "users", res.Users,
					"follows", res.Follows, "notes", res.Notes, "likes", res.Likes, "products", res.Products,
					"login", seed.DemoUser+" / "+seed.DemoPassword)
			}
		})
		return nil
	}, func(context.Context) error {
		if cancel != nil {
			cancel()
		}
		wg.Wait()
		return nil
	})
}
