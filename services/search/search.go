// Package search wires the search service: notes and products by keyword, indexed from the
// note and product events of services/event.
//
// Guarantees:
//
//   - Idempotent and ordered by version: an event is applied only when its Version is newer
//     than the version the index holds for its (kind, id), so a redelivered event changes
//     nothing and an older one arriving late never overwrites a newer one. A delete leaves a
//     tombstone with its version, so a late create or update cannot resurrect the document.
//   - Atomic per document: a document's row and its postings change in one transaction.
//   - Eventually consistent: a write shows in results once its event is handled; an event
//     that fails on the database is delivered again (kit/data/mq), and one that can never be
//     indexed is acknowledged and counted in IndexerStats.Dropped.
//   - The same results on SQLite and PostgreSQL: both hold the same inverted index (see
//     internal/data for why not PostgreSQL full text).
//
// Text is indexed as lower-cased latin words and, for Chinese and Japanese, as character
// bigrams plus single characters; a query matches documents holding all of its terms, ranked
// by weighted occurrences (title and tags count double), then newest first.
package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	searchv1 "github.com/redline-dev/redline/api/search/v1"
	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/search/internal/biz"
	"github.com/redline-dev/redline/services/search/internal/data"
	"github.com/redline-dev/redline/services/search/internal/service"
	"github.com/redline-dev/redline/services/search/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "search"

// Idempotent lists the methods callers may retry: Search, which only reads.
var Idempotent = []string{searchv1.Search_Search_FullMethodName}

// Option configures New.
type Option func(*options)

type options struct {
	log     *slog.Logger
	durable string
}

// WithLogger sets where dropped events are reported. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithDurable sets the prefix of the durable consumer names (prefix-note, prefix-product).
// Processes with the same prefix share the events between them. Default: "search".
func WithDurable(prefix string) Option { return func(o *options) { o.durable = prefix } }

// IndexerStats counts what the indexer did with the events it was given.
type IndexerStats = service.IndexerStats

// Indexer is the running event consumer. Close it after the gRPC server has stopped and
// before closing the queue and the database.
type Indexer struct{ ix *service.Indexer }

// Close stops the subscriptions, waiting for the events being indexed.
func (i *Indexer) Close() error { return i.ix.Close() }

// Stats returns the indexer's counters, for the admin /state page.
func (i *Indexer) Stats() IndexerStats { return i.ix.Stats() }

// New migrates db, starts indexing the note and product events of q, and returns the gRPC
// service and the running Indexer.
func New(ctx context.Context, db *sqldb.DB, q mq.Queue, opts ...Option) (searchv1.SearchServer, *Indexer, error) {
	o := options{log: slog.Default(), durable: "search"}
	for _, opt := range opts {
		opt(&o)
	}
	if q == nil {
		return nil, nil, errors.New("search: a queue is required: the index is fed by events")
	}
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, nil, fmt.Errorf("search: migrate: %w", err)
	}
	uc := biz.NewUsecase(data.NewRepo(db))
	ix := service.NewIndexer(uc, o.log)
	if err := ix.Start(ctx, q, o.durable); err != nil {
		return nil, nil, err
	}
	return service.New(uc), &Indexer{ix: ix}, nil
}
