package cache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Cache on a Redis server, every key under the prefix set by WithPrefix.
type Redis struct {
	client *redis.Client
	prefix string
}

// NewRedis returns a cache on the Redis server at rawURL (redis://[:password@]host:port/db).
// It does not connect until first used; Open pings instead. Only WithPrefix applies.
func NewRedis(rawURL string, opts ...Option) (*Redis, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cache: redis url %q: %w", redact(rawURL), err)
	}
	FailFast(ro)
	return &Redis{client: redis.NewClient(ro), prefix: o.prefix}, nil
}

// FailFastTimeout bounds every step of a cache call to Redis (FailFast).
const FailFastTimeout = 500 * time.Millisecond

// FailFast sets the timeouts and retries the URL left out so that a Redis that is down
// or stalled costs a cache call FailFastTimeout, not go-redis's defaults (a 5 s dial with
// 3 retries): a cache is an optimization, and its callers fall back to the database well
// within their deadline. Options the URL sets (dial_timeout=, read_timeout=, ...) stay.
//
// It also makes each new connection one dial (DialerRetries 1, which no URL option sets):
// go-redis otherwise dials 5 times 100 ms apart before a command attempt fails, so a
// refused Redis cost every cache call ~0.85 s (a pipeline ~1.7 s) however fast the refusal.
// The command retry (MaxRetries) is the one retry.
func FailFast(o *redis.Options) {
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout} {
		if *d == 0 {
			*d = FailFastTimeout
		}
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	if o.DialerRetries <= 0 {
		o.DialerRetries = 1
	}
}

// ttlArg maps the Cache ttl to go-redis, where 0 means no expiry and negative values mean
// something else (KEEPTTL).
func ttlArg(ttl time.Duration) time.Duration { return max(ttl, 0) }

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, r.wrap("get", key, err)
	}
	return v, nil
}

// MGet implements Cache.
func (r *Redis) MGet(ctx context.Context, keys ...string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	vals, err := r.client.MGet(ctx, full...).Result()
	if err != nil {
		return nil, r.wrap("mget", keys[0], err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := r.client.Set(ctx, r.prefix+key, val, ttlArg(ttl)).Err(); err != nil {
		return r.wrap("set", key, err)
	}
	return nil
}

// SetNX implements Cache.
func (r *Redis) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := r.client.SetNX(ctx, r.prefix+key, val, ttlArg(ttl)).Result()
	if err != nil {
		return false, r.wrap("setnx", key, err)
	}
	return ok, nil
}

// Del implements Cache.
func (r *Redis) Del(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	if err := r.client.Del(ctx, full...).Err(); err != nil {
		return r.wrap("del", keys[0], err)
	}
	return nil
}

// Ping implements Cache.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.wrap("ping", "", err)
	}
	return nil
}

// Close closes the connection pool. It is safe to call more than once.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return r.wrap("close", "", err)
	}
	return nil
}

func (r *Redis) wrap(op, key string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%w: redis %s %q: %w", ErrClosed, op, key, err)
	}
	return fmt.Errorf("cache: redis %s %q: %w", op, key, err)
}

// redact hides the password of a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
