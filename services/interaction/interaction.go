// Package interaction wires the interaction service: likes and collects unique per user and
// target, viewer state for lists, and like, collect, comment and view counters written back
// to the database in batches.
package interaction

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/interaction/internal/biz"
	"github.com/redline-dev/redline/services/interaction/internal/data"
	"github.com/redline-dev/redline/services/interaction/internal/service"
	"github.com/redline-dev/redline/services/interaction/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "interaction"

// Idempotent lists the methods callers may retry: the reads, and Like, Unlike, Collect and
// Uncollect, which set absolute state. RecordView and RecordComment add to a counter and are
// not safe to repeat.
var Idempotent = []string{
	interactionv1.Interaction_Like_FullMethodName, interactionv1.Interaction_Unlike_FullMethodName,
	interactionv1.Interaction_Collect_FullMethodName, interactionv1.Interaction_Uncollect_FullMethodName,
	interactionv1.Interaction_GetCounts_FullMethodName, interactionv1.Interaction_GetViewerState_FullMethodName,
}

// Option configures New.
type Option func(*options)

type options struct {
	clock   clock.Clock
	batcher []biz.BatcherOption
}

// FlushInterval is how long a counter change may wait in memory before it is written to
// the database. Default 100ms.
func FlushInterval(d time.Duration) Option {
	return func(o *options) { o.batcher = append(o.batcher, biz.FlushInterval(d)) }
}

// MaxPending is the number of targets with unwritten counter changes that forces a write
// before FlushInterval is up. Default 1000.
func MaxPending(n int) Option {
	return func(o *options) { o.batcher = append(o.batcher, biz.MaxPending(n)) }
}

// StoredTTL is how long counters read from the database are reused for reads (this
// instance's own changes always show at once; another instance's within the TTL). 0 reads
// the database every time. Default 1s.
func StoredTTL(d time.Duration) Option {
	return func(o *options) { o.batcher = append(o.batcher, biz.StoredTTL(d)) }
}

// WithClock sets the clock that stamps reactions and ages counter changes. Default the wall
// clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where failed background counter writes are reported. Default
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.batcher = append(o.batcher, biz.WithLogger(l)) }
}

// New migrates db and returns the gRPC service and the closer of its counter batcher, which
// writes what is pending and stops. Close it after the server stops taking calls.
func New(ctx context.Context, db *sqldb.DB, opts ...Option) (interactionv1.InteractionServer, io.Closer, error) {
	o := options{clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("interaction: migrate: %w", err)
	}
	repo := data.NewRepo(db)
	counters := biz.NewBatcher(repo, append([]biz.BatcherOption{biz.WithClock(o.clock)}, o.batcher...)...)
	return service.New(biz.NewUsecase(repo, counters, o.clock)), counters, nil
}
