// Package note wires the note service: notes with media references, tags and linked
// products, idempotent creation, and newest-first cursor pages per author and per tag.
//
// With a queue (WithQueue), every create, update and soft delete is announced as an
// event.NoteEvent on event.Note, through a transactional outbox: the event row is written in
// the transaction of the change, and a relay publishes it afterwards, nudged right after the
// commit and polling in case a nudge was missed or a publish failed. A crash between the
// commit and the publication loses nothing; the event is published by the next relay that
// runs, in this process or another. Delivery is at least once (consumers are idempotent and
// order changes by Version), and several note instances may relay from one database: each
// claims a disjoint batch under a lease.
package note

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/data/bloom"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/hotkey"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/note/internal/biz"
	"github.com/redline-dev/redline/services/note/internal/data"
	"github.com/redline-dev/redline/services/note/internal/service"
	"github.com/redline-dev/redline/services/note/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "note"

// Idempotent lists the methods callers may retry: the reads, and UpdateNote and DeleteNote,
// which set absolute state. CreateNote is made safe to
// repeat by its idempotency_key field, which callers set from the client's Idempotency-Key.
var Idempotent = []string{notev1.Note_GetNote_FullMethodName, notev1.Note_GetNotes_FullMethodName, notev1.Note_ListByAuthor_FullMethodName,
	notev1.Note_ListByTag_FullMethodName, notev1.Note_UpdateNote_FullMethodName, notev1.Note_DeleteNote_FullMethodName}

// Option configures New.
type Option func(*options)

type options struct {
	queue mq.Queue
	clock clock.Clock
	relay []biz.RelayOption
	reads data.ReadPath
}

// WithCache puts the shared cache in front of note reads by id: cache-aside, filled with
// set-if-absent, overwritten on update. Default none.
func WithCache(c cache.Cache) Option { return func(o *options) { o.reads.Cache = c } }

// WithHotKeys serves the hottest notes (HeavyKeeper top-K, and any whitelisted keys, named
// "note:<id>") from a short-lived in-process copy. Default none.
func WithHotKeys(l *hotkey.Local) Option { return func(o *options) { o.reads.Hot = l } }

// WithIDFilter answers reads of ids that never existed from a bloom filter of note ids,
// which New fills from the database. Use one Redis filter when several note instances run,
// so each sees the others' new ids. Default none.
func WithIDFilter(f bloom.IDs) Option { return func(o *options) { o.reads.IDs = f } }

// WithQueue publishes note events on q through the outbox and its relay. Default nil: no
// events are written or published.
func WithQueue(q mq.Queue) Option { return func(o *options) { o.queue = q } }

// WithClock sets the clock that stamps notes, versions and the relay's leases. Default the
// wall clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets where failed background relay rounds are reported. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.relay = append(o.relay, biz.RelayLogger(l)) }
}

// RelayInterval is how often the relay polls the outbox when not nudged by a change: for the
// events of a process that died, and for retries. Default 1s.
func RelayInterval(d time.Duration) Option {
	return func(o *options) { o.relay = append(o.relay, biz.RelayInterval(d)) }
}

// RelayRetry is how long an event waits after a failed publish before it is tried again.
// Default 1s.
func RelayRetry(d time.Duration) Option {
	return func(o *options) { o.relay = append(o.relay, biz.RelayRetry(d)) }
}

// RelayLease is how long a relay owns the events it claimed before another relay may take
// them. It must be longer than a round of publishes (RelayTimeout). Default 30s.
func RelayLease(d time.Duration) Option {
	return func(o *options) { o.relay = append(o.relay, biz.RelayLease(d)) }
}

// RelayTimeout bounds one round of claims and publishes, and the last one at Close.
// Default 5s.
func RelayTimeout(d time.Duration) Option {
	return func(o *options) { o.relay = append(o.relay, biz.RelayTimeout(d)) }
}

// RelayBatch is how many events a relay claims at once. Default 100.
func RelayBatch(n int) Option {
	return func(o *options) { o.relay = append(o.relay, biz.RelayBatch(n)) }
}

// Server is the note service: a notev1.NoteServer, and the io.Closer of its outbox relay.
type Server struct {
	notev1.NoteServer
	relay *biz.Relay
	repo  *data.Repo
}

// ReadStats reports where reads by id were answered: rejected by the id filter, served by
// the hot-key copy or the cache, or read from the database. For the admin /state page.
func (s *Server) ReadStats() data.ReadStats { return s.repo.ReadStats() }

// Close stops the outbox relay after a last round of publishes; events it cannot publish
// stay in the outbox for the next start. Close the server after the gRPC server stops taking
// calls and before the queue closes. Without a queue it does nothing.
func (s *Server) Close() error {
	if s.relay == nil {
		return nil
	}
	return s.relay.Close()
}

// Flush publishes the events waiting in the outbox now, instead of at the relay's next
// round, and returns how many it published.
func (s *Server) Flush(ctx context.Context) (int, error) {
	if s.relay == nil {
		return 0, nil
	}
	return s.relay.Flush(ctx)
}

// New migrates db and returns the service. With WithQueue it also starts the outbox relay:
// Close the returned Server to stop it.
func New(ctx context.Context, db *sqldb.DB, opts ...Option) (*Server, error) {
	o := options{clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, fmt.Errorf("note: migrate: %w", err)
	}
	repo := data.NewRepo(db, o.queue != nil)
	if o.reads != (data.ReadPath{}) {
		if err := repo.WithReadPath(ctx, o.reads); err != nil {
			return nil, fmt.Errorf("note: %w", err)
		}
	}
	s := &Server{repo: repo}
	var nudge func()
	if o.queue != nil {
		s.relay = biz.NewRelay(repo, o.queue, append([]biz.RelayOption{biz.RelayClock(o.clock)}, o.relay...)...)
		nudge = s.relay.Nudge
		s.relay.Start()
	}
	s.NoteServer = service.New(biz.NewUsecase(repo, o.clock, nudge))
	return s, nil
}
