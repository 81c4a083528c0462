package data

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/data/bloom"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/hotkey"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/services/note/internal/biz"
)

// NoteTTL bounds how stale a cached note can be if an overwrite is lost.
const NoteTTL = 10 * time.Minute

// ReadPath is what a note read by id goes through, each part optional:
//
//  1. IDs, a bloom filter of every note id: "certainly not" answers NOTE_NOT_FOUND with no
//     cache or database trip (reads of ids that never existed: scrapers, stale links).
//  2. Hot, HeavyKeeper top-K hot-key detection with a short-lived in-process copy of the
//     hottest notes (and of a whitelist known in advance), so a viral note does not send
//     every read to one cache shard.
//  3. Cache, the shared cache-aside layer: filled with set-if-absent after a miss (a stale
//     read can never overwrite a fresher write), overwritten on update, deleted on delete.
//  4. Singleflight: concurrent misses of one note cost one query.
type ReadPath struct {
	IDs   bloom.IDs
	Hot   *hotkey.Local
	Cache cache.Cache
}

// ReadStats counts where reads by id were answered.
type ReadStats struct {
	BloomRejected uint64 `json:"bloom_rejected"`
	DBReads       uint64 `json:"db_reads"`
	CacheHits     uint64 `json:"cache_hits"`
	Hot           any    `json:"hot,omitempty"`
}

// readsTotal counts reads by id by where they were answered, as ReadStats does, for the
// SLO tooling and drills (the Redis-down drill expects the database to take over).
var readsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_note_reads_total",
	Help: "Note reads by id, by source: bloom (rejected by the id filter), cache (a cache hit) or db (a database query; one per batch of misses).",
}, []string{"source"})

var (
	readsBloom = readsTotal.WithLabelValues("bloom")
	readsCache = readsTotal.WithLabelValues("cache")
	readsDB    = readsTotal.WithLabelValues("db")
)

func init() { metric.Registry.MustRegister(readsTotal) }

type reads struct {
	ReadPath
	sf                               singleflight.Group
	bloomRejected, dbReads, cacheHit atomic.Uint64
}

// WithReadPath sets the read path of r's Get and GetMany, and fills the bloom filter from
// the database (every id, deleted ones too: an extra "maybe" is harmless) before returning,
// as the filter's rule requires.
func (r *Repo) WithReadPath(ctx context.Context, p ReadPath) error {
	r.reads = &reads{ReadPath: p}
	if p.IDs == nil {
		return nil
	}
	_, err := bloom.Fill(ctx, p.IDs, bloom.SQLScan(r.db, `SELECT id FROM notes WHERE id > ? ORDER BY id LIMIT ?`), 5000)
	if err != nil {
		return fmt.Errorf("fill the note id filter: %w", err)
	}
	return nil
}

// ReadStats reports where reads were answered.
func (r *Repo) ReadStats() ReadStats {
	if r.reads == nil {
		return ReadStats{}
	}
	s := ReadStats{BloomRejected: r.reads.bloomRejected.Load(), DBReads: r.reads.dbReads.Load(), CacheHits: r.reads.cacheHit.Load()}
	if r.reads.Hot != nil {
		s.Hot = r.reads.Hot.Stats()
	}
	return s
}

func noteKey(id int64) string { return "note:" + strconv.FormatInt(id, 10) }

// Get implements biz.Repo through the read path. A deleted note is not found.
func (r *Repo) Get(ctx context.Context, id int64) (*biz.Note, error) {
	p := r.reads
	if p == nil {
		return r.get(ctx, id)
	}
	if p.IDs != nil {
		// An error answers true ("maybe"): the filter never hides a note.
		if ok, _ := p.IDs.HasID(ctx, id); !ok {
			p.bloomRejected.Add(1)
			readsBloom.Inc()
			return nil, biz.ErrNotFound
		}
	}
	key := noteKey(id)
	load := func(ctx context.Context) ([]byte, error) { return r.loadCached(ctx, key, id) }
	var b []byte
	var err error
	if p.Hot != nil {
		b, err = p.Hot.Get(ctx, key, load)
	} else {
		b, err = load(ctx)
	}
	if err != nil {
		return nil, err
	}
	var n biz.Note
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, errs.Internal(fmt.Errorf("note %d: corrupt cached value: %w", id, err))
	}
	return &n, nil
}

// loadCached is cache-aside with singleflight: the cache, then one query per note however
// many readers miss at once, filling the cache only if nothing is there.
func (r *Repo) loadCached(ctx context.Context, key string, id int64) ([]byte, error) {
	p := r.reads
	if p.Cache != nil {
		if b, err := p.Cache.Get(ctx, key); err == nil {
			p.cacheHit.Add(1)
			readsCache.Inc()
			return b, nil
		}
		// A cache error is not the reader's problem: fall through to the database.
	}
	v, err, _ := p.sf.Do(key, func() (any, error) {
		n, err := r.get(ctx, id)
		if err != nil {
			return nil, err
		}
		return p.fill(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// fill encodes a note just read from the database and puts it in the cache, set-if-absent:
// a concurrent writer's overwrite is never replaced by an older read.
func (p *reads) fill(ctx context.Context, n *biz.Note) ([]byte, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return nil, errs.Internal(err)
	}
	if p.Cache != nil {
		_, _ = p.Cache.SetNX(ctx, noteKey(n.ID), b, NoteTTL)
	}
	return b, nil
}

func (r *Repo) get(ctx context.Context, id int64) (*biz.Note, error) {
	if r.reads != nil {
		r.reads.dbReads.Add(1)
		readsDB.Inc()
	}
	return scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM notes WHERE id = ? AND deleted_at = 0`, id))
}

// GetMany implements biz.Repo: one cache round trip for every id, one query for the
// misses (the bloom filter drops ids that never existed first), set-if-absent fills.
func (r *Repo) GetMany(ctx context.Context, ids []int64) ([]*biz.Note, error) {
	p := r.reads
	if p == nil {
		p = &reads{}
	}
	keep := ids[:0:0]
	for _, id := range ids {
		if p.IDs != nil {
			if ok, _ := p.IDs.HasID(ctx, id); !ok {
				p.bloomRejected.Add(1)
				readsBloom.Inc()
				continue
			}
		}
		keep = append(keep, id)
	}
	found := make(map[int64]*biz.Note, len(keep))
	missing := keep
	if p.Cache != nil && len(keep) > 0 {
		keys := make([]string, len(keep))
		for i, id := range keep {
			keys[i] = noteKey(id)
		}
		missing = nil
		vals, err := p.Cache.MGet(ctx, keys...)
		for i, id := range keep {
			var n biz.Note
			if err == nil && vals[i] != nil && json.Unmarshal(vals[i], &n) == nil {
				found[id] = &n
				p.cacheHit.Add(1)
				readsCache.Inc()
			} else {
				missing = append(missing, id)
			}
		}
	}
	if len(missing) > 0 {
		p.dbReads.Add(1)
		readsDB.Inc()
		marks, args := sqldb.In(missing)
		notes, err := r.list(ctx, `SELECT `+cols+` FROM notes WHERE id IN (`+marks+`) AND deleted_at = 0`, args...)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			found[n.ID] = n
			if p.Cache != nil {
				_, _ = p.fill(ctx, n)
			}
		}
	}
	out := make([]*biz.Note, 0, len(found))
	for _, id := range ids {
		if n, ok := found[id]; ok {
			out = append(out, n)
			delete(found, id) // each once
		}
	}
	return out, nil
}

// creating adds a new note's id to the filter before its row commits (the filter's rule).
// If the shared filter cannot take it, the create fails rather than leave a note that
// reads would call missing.
func (r *Repo) creating(ctx context.Context, id int64) error {
	if r.reads == nil || r.reads.IDs == nil {
		return nil
	}
	if err := r.reads.IDs.AddIDs(ctx, id); err != nil {
		return errs.New(codes.Unavailable, "ID_FILTER_UNAVAILABLE",
			"the note id filter cannot record the new note: retry shortly").WithCause(err)
	}
	return nil
}

// written overwrites the cached copy of a changed note, so the next read sees it without a
// database trip, and drops the local hot copy. If the overwrite fails the entry is deleted;
// if that fails too, NoteTTL bounds the staleness. Other processes' hot copies age out
// within the hot-key TTL.
func (r *Repo) written(ctx context.Context, n *biz.Note) {
	p := r.reads
	if p == nil {
		return
	}
	key := noteKey(n.ID)
	if p.Cache != nil {
		b, err := json.Marshal(n)
		if err == nil {
			err = p.Cache.Set(ctx, key, b, NoteTTL)
		}
		if err != nil {
			_ = p.Cache.Del(ctx, key)
		}
	}
	if p.Hot != nil {
		p.Hot.Invalidate(key)
	}
}

// removed drops a deleted note from the caches.
func (r *Repo) removed(ctx context.Context, id int64) {
	p := r.reads
	if p == nil {
		return
	}
	key := noteKey(id)
	if p.Cache != nil {
		_ = p.Cache.Del(ctx, key)
	}
	if p.Hot != nil {
		p.Hot.Invalidate(key)
	}
}
