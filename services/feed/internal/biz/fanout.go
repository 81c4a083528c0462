package biz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/services/event"
)

// Errors of the fan-out.
var (
	// ErrClosed answers an event submitted after Close; the queue delivers it again later.
	ErrClosed = errors.New("feed: fan-out closed")
	// ErrBadEvent wraps an event payload that does not decode or lacks what its op needs.
	ErrBadEvent = errors.New("feed: bad note event")
)

// DecodeNoteEvent reads an event.Note payload and checks it: every op needs the note id and
// a version; created and updated also need the author and the creation time.
func DecodeNoteEvent(data []byte) (event.NoteEvent, error) {
	var ev event.NoteEvent
	if err := event.Decode(event.Note, data, &ev); err != nil {
		return ev, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	switch {
	case ev.ID <= 0 || ev.Version <= 0:
		return ev, fmt.Errorf("%w: id and version must be > 0", ErrBadEvent)
	case ev.Op == event.Deleted:
		return ev, nil
	case ev.Op != event.Created && ev.Op != event.Updated:
		return ev, fmt.Errorf("%w: unknown op %q", ErrBadEvent, ev.Op)
	case ev.AuthorID <= 0 || ev.CreatedMS <= 0:
		return ev, fmt.Errorf("%w: %s needs author_id and created_ms > 0", ErrBadEvent, ev.Op)
	}
	return ev, nil
}

// FanOutConfig holds the fan-out's knobs; zero fields take the documented defaults.
type FanOutConfig struct {
	// Threshold is the most followers an author may have and still be fanned out to
	// (default 1000); an author with more is marked big and pulled at read time.
	Threshold int
	// InboxCap is how many rows an inbox keeps, the newest (default 1000). An inbox is
	// trimmed once it has grown by a tenth of the cap since its last trim, so it holds at
	// most 1.1 times the cap and a trim is paid once per InboxCap/10 rows.
	InboxCap int
	// MaxBatch is the most events applied together (default 64).
	MaxBatch int
	// Timeout bounds one batch: its follower lookups and its writes (default 20s). Keep it
	// below the queue's ack wait.
	Timeout time.Duration
}

// FanOut applies note events to the feed in batches: the events that wait while a batch is
// being written form the next one, so under load many events share the follower lookups'
// round trips and each transaction, and a quiet queue pays no batching delay. Every
// Submit returns once its event is stored (or failed), so the queue acknowledges only
// stored events. Applying an event twice changes nothing: notes are versioned and inbox
// rows are inserted if absent. Its goroutine is stopped by Close.
type FanOut struct {
	store  Store
	graph  FollowGraph
	clock  clock.Clock
	cfg    FanOutConfig
	logger *slog.Logger

	in       chan *job
	done     chan struct{}
	stopped  chan struct{}
	once     sync.Once
	rejected atomic.Uint64
}

type job struct {
	ctx context.Context
	ev  event.NoteEvent
	res chan error
}

// NewFanOut returns a fan-out writing to store and starts its goroutine.
func NewFanOut(store Store, graph FollowGraph, clk clock.Clock, cfg FanOutConfig, logger *slog.Logger) *FanOut {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 1000
	}
	if cfg.InboxCap <= 0 {
		cfg.InboxCap = 1000
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	f := &FanOut{store: store, graph: graph, clock: clk, cfg: cfg, logger: logger,
		in: make(chan *job, cfg.MaxBatch), done: make(chan struct{}), stopped: make(chan struct{})}
	go f.run()
	return f
}

// Handle is the queue handler of event.Note: it decodes the event and submits it. A payload
// that is not a valid event is counted and acknowledged, since it will not get better on
// redelivery.
func (f *FanOut) Handle(ctx context.Context, data []byte) error {
	ev, err := DecodeNoteEvent(data)
	if err != nil {
		f.rejected.Add(1)
		f.logger.Warn("feed: dropping a bad note event", "err", err)
		return nil
	}
	return f.Submit(ctx, ev)
}

// Rejected returns how many payloads Handle dropped as bad events.
func (f *FanOut) Rejected() uint64 { return f.rejected.Load() }

// Submit applies ev in the next batch and returns once that batch is written.
func (f *FanOut) Submit(ctx context.Context, ev event.NoteEvent) error {
	j := &job{ctx: ctx, ev: ev, res: make(chan error, 1)}
	select {
	case f.in <- j:
	case <-f.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.res:
		return err
	case <-f.stopped:
		select {
		case err := <-j.res:
			return err
		default:
			return ErrClosed // queued as the fan-out closed; the queue delivers it again
		}
	case <-ctx.Done():
		return ctx.Err() // the batch goes on; a redelivery finds the event applied
	}
}

// Close stops the goroutine after the batch in progress. Stop the queue subscription that
// feeds it first, so no handler waits on a closed fan-out.
func (f *FanOut) Close() error {
	f.once.Do(func() {
		close(f.done)
		<-f.stopped
	})
	return nil
}

func (f *FanOut) run() {
	defer close(f.stopped)
	for {
		var batch []*job
		select {
		case <-f.done:
			return
		case j := <-f.in:
			batch = append(batch, j)
		}
	gather: // whatever else is queued joins, without waiting for more
		for len(batch) < f.cfg.MaxBatch {
			select {
			case j := <-f.in:
				batch = append(batch, j)
			default:
				break gather
			}
		}
		f.apply(batch)
	}
}

// apply writes a batch, one group per lane so colored events reach only their lane's data,
// and answers every job.
func (f *FanOut) apply(batch []*job) {
	byLane := map[string][]*job{}
	for _, j := range batch {
		lane := meta.Lane(j.ctx)
		byLane[lane] = append(byLane[lane], j)
	}
	for lane, jobs := range byLane {
		ctx, cancel := context.WithTimeout(meta.NewContext(context.Background(), meta.MD{Lane: lane}), f.cfg.Timeout)
		evs := make([]event.NoteEvent, len(jobs))
		for i, j := range jobs {
			evs[i] = j.ev
		}
		err := f.Process(ctx, evs)
		cancel()
		if err != nil {
			f.logger.Warn("feed: fan-out batch failed; its events will be redelivered", "events", len(evs), "err", err)
		}
		for _, j := range jobs {
			j.res <- err
		}
	}
}

// Process applies events: it stores the latest state of every note, removes deleted notes
// from the inboxes, and delivers every live note not yet fanned out to its author's
// followers (or, for a big author, to the author alone). It is idempotent.
func (f *FanOut) Process(ctx context.Context, evs []event.NoteEvent) error {
	now := f.clock.Now()
	latest := make(map[int64]event.NoteEvent, len(evs))
	for _, ev := range evs {
		if cur, ok := latest[ev.ID]; !ok || ev.Version > cur.Version {
			latest[ev.ID] = ev
		}
	}
	states := make([]NoteState, 0, len(latest))
	for _, id := range slices.Sorted(maps.Keys(latest)) {
		ev := latest[id]
		states = append(states, NoteState{NoteID: ev.ID, AuthorID: ev.AuthorID, CreatedMS: ev.CreatedMS,
			Version: ev.Version, Deleted: ev.Op == event.Deleted, Score: Score(Counts{}, ev.CreatedMS, now)})
	}
	fresh, err := f.store.ApplyNotes(ctx, states)
	if err != nil || len(fresh) == 0 {
		return err
	}
	authors := make([]int64, 0, len(fresh))
	for _, e := range fresh {
		authors = append(authors, e.AuthorID)
	}
	slices.Sort(authors)
	authors = slices.Compact(authors)
	big, err := f.store.BigAuthors(ctx, authors)
	if err != nil {
		return err
	}
	recipients := make(map[int64][]int64, len(authors))
	for _, a := range authors {
		if big[a] {
			recipients[a] = []int64{a}
			continue
		}
		followers, err := f.graph.Followers(ctx, a, f.cfg.Threshold)
		if err != nil {
			return fmt.Errorf("followers of %d: %w", a, err)
		}
		if len(followers) > f.cfg.Threshold {
			if err := f.store.MarkBig(ctx, a, len(followers), now); err != nil {
				return err
			}
			recipients[a] = []int64{a}
			continue
		}
		recipients[a] = append(followers, a) // authors see their own notes
	}
	ds := make([]Delivery, 0, len(fresh))
	for _, e := range fresh {
		ds = append(ds, Delivery{Entry: e, Users: recipients[e.AuthorID]})
	}
	slices.SortFunc(ds, func(a, b Delivery) int { return cmp.Compare(a.NoteID, b.NoteID) })
	return f.store.Deliver(ctx, ds, f.cfg.InboxCap, max(f.cfg.InboxCap/10, 1))
}
