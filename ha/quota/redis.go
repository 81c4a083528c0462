package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redline-dev/redline/ha/clock"
)

// DefaultGCAfter is how long a resource's Redis hash outlives its last write.
const DefaultGCAfter = 10 * time.Minute

// ErrConflict is returned when an Update lost its optimistic transaction too many times in a
// row to other writers.
var ErrConflict = errors.New("quota: too many conflicting updates")

// maxTxAttempts bounds the optimistic retries of one Update.
const maxTxAttempts = 32

// RedisStore is a Store in Redis: one hash per resource under a key prefix, a field "m"
// for the resource's own state and a field "c:<client>" per client, updated in WATCH/MULTI
// transactions so that several service instances can share it. The hash expires
// DefaultGCAfter after its last write, only to collect garbage: lease expiry is judged by the
// service's clock, not by Redis TTLs. Every key of one store shares the hash tag {prefix},
// so that a batch is one slot on a Redis cluster.
type RedisStore struct {
	rdb     redis.UniversalClient
	prefix  string
	gcAfter time.Duration
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on rdb under prefix (for example "quota"). The caller owns
// rdb; for a fast UNAVAILABLE during an outage, give it short dial and read timeouts and
// few retries.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: "{" + prefix + "}:", gcAfter: DefaultGCAfter}
}

func (s *RedisStore) key(resource string) string { return s.prefix + resource }

type redisMeta struct {
	Seen       time.Time `json:"seen"`
	LearnUntil time.Time `json:"learn_until"`
	LearnN     int       `json:"learn_n"`
}

// Update implements Store.
func (s *RedisStore) Update(ctx context.Context, resources []string, fn func(map[string]*ResourceState) error) error {
	keys := make([]string, len(resources))
	for i, r := range resources {
		keys[i] = s.key(r)
	}
	var fnErr error
	txf := func(tx *redis.Tx) error {
		states, err := s.read(ctx, tx, resources)
		if err != nil {
			return err
		}
		if err := fn(states); err != nil {
			fnErr = err
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range resources {
				fields, err := encode(states[r])
				if err != nil {
					return err
				}
				p.Del(ctx, keys[i])
				p.HSet(ctx, keys[i], fields)
				p.PExpire(ctx, keys[i], s.gcAfter)
			}
			return nil
		})
		return err
	}
	for attempt := range maxTxAttempts {
		err := s.rdb.Watch(ctx, txf, keys...)
		switch {
		case err == nil:
			return nil
		case fnErr != nil:
			return fnErr
		case errors.Is(err, redis.TxFailedErr):
			// Another instance wrote first. Back off a random moment that grows with the
			// attempt, so instances racing on a hot resource spread out instead of colliding
			// in lockstep.
			if err := sleepJitter(ctx, attempt); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("quota: redis update: %w", err)
	}
	return ErrConflict
}

// View implements Store.
func (s *RedisStore) View(ctx context.Context, resources []string) (map[string]*ResourceState, error) {
	states, err := s.read(ctx, s.rdb, resources)
	if err != nil {
		return nil, fmt.Errorf("quota: redis view: %w", err)
	}
	return states, nil
}

func (s *RedisStore) read(ctx context.Context, c redis.Cmdable, resources []string) (map[string]*ResourceState, error) {
	cmds := make([]*redis.MapStringStringCmd, len(resources))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range resources {
			cmds[i] = p.HGetAll(ctx, s.key(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*ResourceState, len(resources))
	for i, r := range resources {
		st, err := decode(cmds[i].Val())
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", r, err)
		}
		out[r] = st
	}
	return out, nil
}

func encode(st *ResourceState) (map[string]any, error) {
	fields := make(map[string]any, len(st.Clients)+1)
	m, err := json.Marshal(redisMeta{Seen: st.Seen, LearnUntil: st.LearnUntil, LearnN: st.LearnN})
	if err != nil {
		return nil, err
	}
	fields["m"] = m
	for id, c := range st.Clients {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		fields["c:"+id] = b
	}
	return fields, nil
}

func decode(h map[string]string) (*ResourceState, error) {
	st := newState()
	for f, v := range h {
		if f == "m" {
			var m redisMeta
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				return nil, fmt.Errorf("corrupt state: %w", err)
			}
			st.Seen, st.LearnUntil, st.LearnN = m.Seen, m.LearnUntil, m.LearnN
			continue
		}
		id, ok := strings.CutPrefix(f, "c:")
		if !ok {
			continue
		}
		var c ClientRecord
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			return nil, fmt.Errorf("corrupt client %q: %w", id, err)
		}
		st.Clients[id] = &c
	}
	return st, nil
}

// sleepJitter waits a random time in [0, min(attempt+1, 20) × 200 µs), or until ctx ends.
func sleepJitter(ctx context.Context, attempt int) error {
	return clock.Sleep(ctx, time.Duration(rand.Int64N(int64(min(attempt+1, 20))*int64(200*time.Microsecond))))
}
