// Package cache provides a byte-value cache with TTLs behind one small interface, backed by an
// in-process sharded LRU map (the embedded default) or by Redis.
//
// A cache from Open, and its Shadow view, check every operation before it reaches the store:
// a baseline cache refuses calls in a lane (see Open), then the fault-injection hook
// (kit/fault) may fail or slow the call with the Point {Kind: cache, Side: client, Service:
// WithService's or ForService's name, Op: the method in lower case (get, mget, set, setnx,
// del, ping)}; the error is returned as the call's. With no injector installed the hook
// costs one atomic load.
package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors callers branch on.
var (
	// ErrNotFound is returned by Get for a key that is absent or expired.
	ErrNotFound = errors.New("cache: not found")
	// ErrClosed is returned by every call on a closed cache.
	ErrClosed = errors.New("cache: closed")
	// ErrUnsupportedDSN is returned by Open for a DSN it does not know.
	ErrUnsupportedDSN = errors.New("cache: unsupported dsn")
)

// Cache stores byte values under string keys with a time to live. A ttl <= 0 means the value
// does not expire. Implementations are safe for concurrent use, and values returned by Get are
// the caller's to keep and change.
type Cache interface {
	// Get returns the value of key, or ErrNotFound when it is absent or expired.
	Get(ctx context.Context, key string) ([]byte, error)
	// MGet returns the values of keys in one round trip, in key order, with nil for a key
	// that is absent or expired. Batch reads (a page of profiles) use it.
	MGet(ctx context.Context, keys ...string) ([][]byte, error)
	// Set stores val under key, replacing any value and its ttl.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val under key only if key is absent, and reports whether it did. Cache-aside
	// fills use it so a stale read cannot overwrite a fresher write.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Del removes keys; absent keys are not an error.
	Del(ctx context.Context, keys ...string) error
	// Ping reports whether the cache can serve.
	Ping(ctx context.Context) error
	// Close releases the cache's resources. Calls after Close return ErrClosed.
	Close() error
}

var (
	_ Cache = (*Memory)(nil)
	_ Cache = (*Redis)(nil)
)

// Clock tells the memory cache the time; tests pass a fake one to expire entries without
// sleeping.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures a cache. Options that do not apply to a backend are ignored by it.
type Option func(*options)

type options struct {
	clock      Clock
	maxEntries int
	shards     int
	janitor    time.Duration
	prefix     string
	service    string
}

func defaultOptions() options {
	return options{
		clock:      systemClock{},
		maxEntries: 100_000,
		shards:     16,
		janitor:    time.Minute,
	}
}

// WithClock sets the memory cache's clock. Default: the system clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithMaxEntries caps the number of entries in the memory cache; past the cap the least
// recently used entry of the key's shard is evicted. Default: 100000.
func WithMaxEntries(n int) Option { return func(o *options) { o.maxEntries = n } }

// WithShards sets how many independently locked shards the memory cache has; more shards mean
// less lock contention and a less exact LRU. Capped at the max entries. Default: 16.
func WithShards(n int) Option { return func(o *options) { o.shards = n } }

// WithJanitorInterval sets how often the memory cache sweeps out expired entries that nobody
// reads (reads drop expired entries anyway). A value <= 0 turns the sweeper off.
// Default: one minute.
func WithJanitorInterval(d time.Duration) Option { return func(o *options) { o.janitor = d } }

// WithPrefix makes the Redis cache prepend p to every key, so caches of several services or
// tests share one Redis without meeting. The memory cache, which nothing shares, ignores it.
// Default: none.
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithService names the service that owns a cache from Open, for the fault-injection hook
// (kit/fault): its Points carry the name as Service. ForService renames a shared cache's
// view instead. Default: "".
func WithService(name string) Option { return func(o *options) { o.service = name } }

// Open opens the cache named by dsn: "memory:" for a NewMemory cache, or a Redis URL
// (redis://host:port/db, rediss:// for TLS) for a NewRedis cache that Open pings first.
// The cache it returns is a baseline cache: every call in a lane (kit/meta.Lane) fails
// with ErrLane. Lane traffic uses Shadow's view of it.
func Open(ctx context.Context, dsn string, opts ...Option) (Cache, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case dsn == "memory:" || dsn == "memory://":
		return baseline{NewMemory(opts...), o.service}, nil
	case strings.HasPrefix(dsn, "redis://"), strings.HasPrefix(dsn, "rediss://"):
		r, err := NewRedis(dsn, opts...)
		if err != nil {
			return nil, err
		}
		if err := r.Ping(ctx); err != nil {
			r.Close()
			return nil, err
		}
		return baseline{r, o.service}, nil
	}
	return nil, fmt.Errorf("%w: %q (want memory: or redis://)", ErrUnsupportedDSN, redact(dsn))
}
