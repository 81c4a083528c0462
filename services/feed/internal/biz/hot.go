package biz

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// HotConfig holds the hot-score refresher's knobs; zero fields take the documented defaults.
type HotConfig struct {
	// Interval is how often scores are refreshed (default 1m).
	Interval time.Duration
	// Window is how old a note may be and still be hot (default 72h); older notes leave the
	// hot feed at the next refresh.
	Window time.Duration
	// Candidates is the most notes scored per refresh, the newest of the window (default
	// 5000); older ones leave the hot feed.
	Candidates int
	// Timeout bounds one refresh (default 30s).
	Timeout time.Duration
}

// Refresher recomputes the hot scores of recent notes from their interaction counters, in
// batches of MaxCountBatch: counters change on every like, so they are read periodically
// rather than per event, and every score ages between reads anyway. Between refreshes the
// scores, and so the hot order and its cursors, stand still. Its goroutine is stopped by
// Close.
type Refresher struct {
	store   Store
	counts  CountSource
	clock   clock.Clock
	cfg     HotConfig
	logger  *slog.Logger
	mu      sync.Mutex // one refresh at a time
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// NewRefresher returns a refresher; Start starts its goroutine.
func NewRefresher(store Store, counts CountSource, clk clock.Clock, cfg HotConfig, logger *slog.Logger) *Refresher {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = 72 * time.Hour
	}
	if cfg.Candidates <= 0 {
		cfg.Candidates = 5000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Refresher{store: store, counts: counts, clock: clk, cfg: cfg, logger: logger, done: make(chan struct{})}
}

// Start starts the goroutine, which refreshes at once and then every Interval. Call it at
// most once.
func (r *Refresher) Start() {
	r.stopped = make(chan struct{})
	go r.run()
}

// Refresh scores the window's notes with their current counters and takes the notes that
// left the window off the hot feed. It returns how many notes it scored.
func (r *Refresher) Refresh(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	since := now.Add(-r.cfg.Window).UnixMilli()
	notes, err := r.store.HotCandidates(ctx, since, r.cfg.Candidates)
	if err != nil {
		return 0, err
	}
	for start := 0; start < len(notes); start += MaxCountBatch {
		batch := notes[start:min(start+MaxCountBatch, len(notes))]
		ids := make([]int64, len(batch))
		for i, e := range batch {
			ids[i] = e.NoteID
		}
		counts, err := r.counts.Counts(ctx, ids)
		if err != nil {
			return start, err
		}
		scores := make(map[int64]float64, len(batch))
		for _, e := range batch {
			scores[e.NoteID] = Score(counts[e.NoteID], e.CreatedMS, now)
		}
		if err := r.store.SetScores(ctx, scores); err != nil {
			return start, err
		}
	}
	cutoff := since
	if len(notes) == r.cfg.Candidates {
		cutoff = max(cutoff, notes[len(notes)-1].CreatedMS)
	}
	return len(notes), r.store.ClearScores(ctx, cutoff)
}

// Close stops the goroutine, cancelling the refresh in progress.
func (r *Refresher) Close() error {
	r.once.Do(func() {
		close(r.done)
		if r.stopped != nil {
			<-r.stopped
		}
	})
	return nil
}

func (r *Refresher) run() {
	defer close(r.stopped)
	// Close cuts a refresh in progress short rather than wait out its timeout.
	base, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-r.done:
			stop()
		case <-base.Done():
		}
	}()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(base, r.cfg.Timeout)
		if _, err := r.Refresh(ctx); err != nil && base.Err() == nil {
			r.logger.Warn("feed: hot score refresh failed; scores stay as they were", "err", err)
		}
		cancel()
		select {
		case <-r.done:
			return
		case <-t.C:
		}
	}
}
