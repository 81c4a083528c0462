// Package history wires the history service: each user's browsing history, one entry per
// note with the latest view, newest first, capped per user.
//
// The write path is built for volume. RecordView only touches memory: views coalesce in a
// buffer keyed by user and note where the latest view wins, and a background flush writes
// them as multi-row upserts in one transaction, every FlushInterval or as soon as
// MaxPending views are waiting, so a burst costs the database a handful of statements
// however many views it holds. The guarantees:
//
//   - Read your writes: List merges the user's buffered views with the stored ones, so a
//     view shows at once, on the instance that took it.
//   - Last write wins: a stored view is only replaced by a later one, in memory and in SQL
//     (ON CONFLICT ... WHERE excluded.viewed_at > viewed_at), whatever order flushes land.
//   - Clear wins: Clear waits for a flush in progress, deletes the stored rows, records the
//     time of the clear and drops the buffered views made until then. List hides any row
//     viewed at or before the user's last clear, so a view another instance still had
//     buffered cannot bring history back either. A view in the clear's own millisecond
//     counts as before it.
//   - Bounded memory: at MaxBuffered pending views (the database is down or slow) views of
//     new notes are dropped, answered HISTORY_BUFFER_FULL and counted in Stats().Dropped;
//     RecordView never blocks on the database. Views buffered when a process dies are lost:
//     history is best effort.
//   - Each flush trims the users it wrote to their Keep newest entries.
package history

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	historyv1 "github.com/redline-dev/redline/api/history/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/history/internal/biz"
	"github.com/redline-dev/redline/services/history/internal/data"
	"github.com/redline-dev/redline/services/history/internal/service"
	"github.com/redline-dev/redline/services/history/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "history"

// Idempotent lists the methods callers may retry: all of them. A repeated RecordView only
// moves the view's time forward, List reads and Clear sets absolute state.
var Idempotent = []string{
	historyv1.History_RecordView_FullMethodName,
	historyv1.History_List_FullMethodName,
	historyv1.History_Clear_FullMethodName,
}

// Option configures New.
type Option func(*options)

type options struct {
	clock  clock.Clock
	buffer []biz.BufferOption
}

// FlushInterval is how long a view may wait in memory before it is written. Default 1s.
func FlushInterval(d time.Duration) Option {
	return func(o *options) { o.buffer = append(o.buffer, biz.FlushInterval(d)) }
}

// MaxPending is the number of buffered views (distinct user and note pairs) that starts a
// flush before FlushInterval is up. Default 2000.
func MaxPending(n int) Option {
	return func(o *options) { o.buffer = append(o.buffer, biz.MaxPending(n)) }
}

// MaxBuffered bounds the buffered views; past it, views of new notes are dropped and
// counted. Default 100,000 (a few MB).
func MaxBuffered(n int) Option {
	return func(o *options) { o.buffer = append(o.buffer, biz.MaxBuffered(n)) }
}

// Keep is how many entries each user's history keeps, newest first. Default 500.
func Keep(n int) Option { return func(o *options) { o.buffer = append(o.buffer, biz.Keep(n)) } }

// FlushTimeout bounds one background flush, and the final one in Close. Default 5s.
func FlushTimeout(d time.Duration) Option {
	return func(o *options) { o.buffer = append(o.buffer, biz.FlushTimeout(d)) }
}

// WithClock sets the clock that stamps views and clears and ages buffered views. Default
// the wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where failed background flushes are reported. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.buffer = append(o.buffer, biz.WithLogger(l)) }
}

// Stats counts what the view buffer did since New.
type Stats = biz.BufferStats

// Writer owns the view buffer's flush goroutine.
type Writer struct{ b *biz.Buffer }

// Close writes what is buffered and stops the goroutine. Close it after the server stops
// taking calls, and before the database closes.
func (w *Writer) Close() error { return w.b.Close() }

// Stats returns the buffer's counters: pending, dropped, flushes, failed flushes, views
// written.
func (w *Writer) Stats() Stats { return w.b.Stats() }

// New migrates db and returns the gRPC service and the Writer that flushes its buffer.
func New(ctx context.Context, db *sqldb.DB, opts ...Option) (historyv1.HistoryServer, *Writer, error) {
	o := options{clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("history: migrate: %w", err)
	}
	repo := data.NewRepo(db)
	buf := biz.NewBuffer(repo, append([]biz.BufferOption{biz.WithClock(o.clock)}, o.buffer...)...)
	return service.New(biz.NewUsecase(repo, buf, o.clock)), &Writer{b: buf}, nil
}
