package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/redline-dev/redline/kit/data/mq"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/search/internal/biz"
)

// IndexerStats counts what the indexer did with the events it was given.
type IndexerStats struct {
	// Applied events changed the index.
	Applied uint64 `json:"applied"`
	// Stale events were older than, or the same as, what the index held: redeliveries and
	// late arrivals. Nothing changed.
	Stale uint64 `json:"stale"`
	// Dropped events could never be indexed (undecodable, no id or version, unknown op);
	// they were acknowledged so they are not redelivered forever.
	Dropped uint64 `json:"dropped"`
	// Failed handlings hit an error (the database) and were left for redelivery.
	Failed uint64 `json:"failed"`
}

// Indexer keeps the index up to date from the queue's note and product events.
type Indexer struct {
	uc                              *biz.Usecase
	log                             *slog.Logger
	applied, stale, dropped, failed atomic.Uint64
	subs                            []mq.Subscription
}

// NewIndexer returns an indexer over uc that reports dropped events to log.
func NewIndexer(uc *biz.Usecase, log *slog.Logger) *Indexer { return &Indexer{uc: uc, log: log} }

// Start subscribes, as durable consumers named durablePrefix-note and durablePrefix-product,
// to event.Note and event.Product. Several processes starting with the same prefix share the
// events; a restarted one resumes where the durable left off.
func (ix *Indexer) Start(ctx context.Context, q mq.Queue, durablePrefix string) error {
	for _, s := range []struct{ subject, durable string }{
		{event.Note, durablePrefix + "-note"},
		{event.Product, durablePrefix + "-product"},
	} {
		sub, err := q.Subscribe(ctx, s.subject, s.durable, ix.Handle)
		if err != nil {
			_ = ix.Close()
			return fmt.Errorf("search: subscribe %s: %w", s.subject, err)
		}
		ix.subs = append(ix.subs, sub)
	}
	return nil
}

// Close stops the subscriptions, waiting for the events in hand.
func (ix *Indexer) Close() error {
	var errs []error
	for _, s := range ix.subs {
		errs = append(errs, s.Stop())
	}
	ix.subs = nil
	return errors.Join(errs...)
}

// Stats returns the indexer's counters.
func (ix *Indexer) Stats() IndexerStats {
	return IndexerStats{Applied: ix.applied.Load(), Stale: ix.stale.Load(), Dropped: ix.dropped.Load(), Failed: ix.failed.Load()}
}

// Handle indexes one event. An event that can never be indexed is acknowledged and counted;
// a database error is returned, so the queue delivers the event again.
func (ix *Indexer) Handle(ctx context.Context, m mq.Message) error {
	d, err := ParseEvent(m.Subject, m.Data)
	if err != nil {
		ix.dropped.Add(1)
		ix.log.WarnContext(ctx, "search: dropped an event that cannot be indexed", "subject", m.Subject, "err", err)
		return nil
	}
	out, err := ix.uc.Apply(ctx, d)
	if err != nil {
		ix.failed.Add(1)
		return err
	}
	if out == biz.Stale {
		ix.stale.Add(1)
	} else {
		ix.applied.Add(1)
	}
	return nil
}

// ParseEvent decodes and validates the event on subject (event.Note or event.Product) into
// the document it makes; an error means it can never be indexed.
func ParseEvent(subject string, data []byte) (*biz.Doc, error) {
	switch subject {
	case event.Note:
		var ev event.NoteEvent
		if err := event.Decode(subject, data, &ev); err != nil {
			return nil, err
		}
		return biz.NoteDoc(ev)
	case event.Product:
		var ev event.ProductEvent
		if err := event.Decode(subject, data, &ev); err != nil {
			return nil, err
		}
		return biz.ProductDoc(ev)
	}
	return nil, fmt.Errorf("search: no documents come from subject %q", subject)
}
