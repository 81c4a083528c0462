package bloom

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// redisBatch is how many ids go into one pipeline, so one call never builds an unbounded
// pipeline in memory.
const redisBatch = 512

// Redis is a bloom filter in one Redis string, shared by every process that opens it with the
// same name and sizing. Bits are set with pipelined SETBIT and read with pipelined GETBIT, one
// round trip per call (per 512 ids for the batch calls). It is safe for concurrent use.
type Redis struct {
	rdb redis.Cmdable
	key string
	p   Params
}

// NewRedis returns the filter name sized for n keys at rate p, on rdb. Its Redis key is
// name followed by the sizing (":bloom:m<M>:k<K>"), so processes configured differently
// never share, and corrupt, one bit array; the caller puts any lane or environment prefix
// into name. Nothing is sent to Redis until the first call; Redis allocates the string on the
// first Add.
func NewRedis(rdb redis.Cmdable, name string, n int, p float64) (*Redis, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty filter name", ErrBadParams)
	}
	params, err := Optimal(n, p)
	if err != nil {
		return nil, err
	}
	key := name + ":bloom:m" + strconv.FormatUint(params.M, 10) + ":k" + strconv.FormatUint(uint64(params.K), 10)
	return &Redis{rdb: rdb, key: key, p: params}, nil
}

// Key returns the Redis key holding the bits.
func (r *Redis) Key() string { return r.key }

// Params returns the filter's size.
func (r *Redis) Params() Params { return r.p }

// AddIDs adds ids. When it returns nil, every process sees them; when it returns an error,
// some may not have been added, and the caller must not make their rows visible (see the
// package rule) or must call it again.
func (r *Redis) AddIDs(ctx context.Context, ids ...int64) error {
	for start := 0; start < len(ids); start += redisBatch {
		chunk := ids[start:min(start+redisBatch, len(ids))]
		_, err := r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, id := range chunk {
				h1, h2 := hashID(id)
				for i := range r.p.K {
					pipe.SetBit(ctx, r.key, int64(position(h1, h2, i, r.p.M)), 1)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bloom: redis add to %s: %w", r.key, err)
		}
	}
	return nil
}

// MayContainID reports whether id may have been added; false means it certainly was not.
// On a Redis error it returns true with the error, so a caller that only looks at the bool
// falls through to the database, never past an existing row.
func (r *Redis) MayContainID(ctx context.Context, id int64) (bool, error) {
	got, err := r.MayContainIDs(ctx, []int64{id})
	if err != nil {
		return true, err
	}
	return got[0], nil
}

// HasID implements IDs.
func (r *Redis) HasID(ctx context.Context, id int64) (bool, error) { return r.MayContainID(ctx, id) }

// MayContainIDs is MayContainID for many ids in one round trip per 512, in the order of
// ids. On a Redis error every answer is true and the error is returned.
func (r *Redis) MayContainIDs(ctx context.Context, ids []int64) ([]bool, error) {
	out := make([]bool, len(ids))
	for start := 0; start < len(ids); start += redisBatch {
		chunk := ids[start:min(start+redisBatch, len(ids))]
		cmds := make([]*redis.IntCmd, 0, len(chunk)*int(r.p.K))
		_, err := r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, id := range chunk {
				h1, h2 := hashID(id)
				for i := range r.p.K {
					cmds = append(cmds, pipe.GetBit(ctx, r.key, int64(position(h1, h2, i, r.p.M))))
				}
			}
			return nil
		})
		if err != nil {
			for i := range out {
				out[i] = true
			}
			return out, fmt.Errorf("bloom: redis check %s: %w", r.key, err)
		}
		for j := range chunk {
			all := true
			for _, c := range cmds[j*int(r.p.K) : (j+1)*int(r.p.K)] {
				if c.Val() == 0 {
					all = false
					break
				}
			}
			out[start+j] = all
		}
	}
	return out, nil
}

// Stats counts the filter's set bits with BITCOUNT, which is O(M/8) on the server: call it
// for reports, not per request.
func (r *Redis) Stats(ctx context.Context) (Stats, error) {
	set, err := r.rdb.BitCount(ctx, r.key, nil).Result()
	if err != nil {
		return Stats{}, fmt.Errorf("bloom: redis bitcount %s: %w", r.key, err)
	}
	return statsOf(r.p, uint64(set)), nil
}

// Delete removes the filter's key, for rebuilding or a test's cleanup. Until it is filled
// again, the filter answers "no" for every id: stop consulting it first.
func (r *Redis) Delete(ctx context.Context) error {
	if err := r.rdb.Del(ctx, r.key).Err(); err != nil {
		return fmt.Errorf("bloom: redis delete %s: %w", r.key, err)
	}
	return nil
}
