// Package bloom provides bloom filters that answer "this id certainly does not exist" without
// reaching the cache or the database: one in process on atomic words, and one in Redis that
// several processes share, plus Fill, which loads either from a database id scan at start.
//
// # The rule a caller must follow
//
// A bloom filter may say "maybe" for an id that does not exist (a false positive, at about the
// rate it was sized for), but it must never say "no" for an id that does. So:
//
//   - Add an id to the filter BEFORE the row becomes visible to readers (before the INSERT
//     commits), or in the same step. Adding it after the commit leaves a window in which a
//     reader is told "no" for a row that exists. A create that fails after the Add only leaves
//     one more "maybe", which is harmless.
//   - Fill the filter from the database before the first read consults it. Ids created while
//     Fill runs are covered by the first rule.
//   - Treat "maybe" as "ask the cache, then the database", and an error from the Redis filter
//     as "maybe" too (its MayContain methods answer true with the error for that reason).
//   - Deleting a row does not remove its id: a bloom filter cannot forget. Deleted ids keep
//     answering "maybe" and fall through to the database, until the filter is rebuilt under a
//     new name and filled again.
//
// # Hashing
//
// Each key is hashed once with xxhash64; the k bit positions come from double hashing
// (Kirsch and Mitzenmacher: h1 + i·h2, h2 a mix of h1), mapped onto the m bits with a
// multiply-shift instead of a division. The hash has no per-process seed, so processes that
// share a Redis filter agree on every position.
package bloom

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// ErrBadParams is returned when a filter cannot be sized from the given expected count and
// false-positive rate.
var ErrBadParams = errors.New("bloom: bad parameters")

// Limits of the sizing.
const (
	// MaxBits is the largest filter, 2^32 bits (512 MiB): Redis's limit for one string.
	MaxBits = 1 << 32
	// MaxHashes caps k; rates below 1e-9 gain nothing from more.
	MaxHashes = 30
)

// Params are a filter's size: M bits and K hash positions per key.
type Params struct {
	M uint64 `json:"bits"`
	K uint32 `json:"hashes"`
}

// Optimal returns the smallest Params for n expected keys at false-positive rate p:
// m = -n·ln p / (ln 2)², rounded up to a multiple of 64, and k = (m/n)·ln 2, rounded.
func Optimal(n int, p float64) (Params, error) {
	if n < 1 {
		return Params{}, fmt.Errorf("%w: expected count %d, want at least 1", ErrBadParams, n)
	}
	if !(p > 0 && p < 1) { // also rejects NaN
		return Params{}, fmt.Errorf("%w: false-positive rate %v, want 0 < p < 1", ErrBadParams, p)
	}
	m := math.Ceil(-float64(n) * math.Log(p) / (math.Ln2 * math.Ln2))
	m = math.Ceil(m/64) * 64
	if m > MaxBits {
		return Params{}, fmt.Errorf("%w: %d keys at rate %v need %.0f bits, more than %d", ErrBadParams, n, p, m, uint64(MaxBits))
	}
	k := math.Round(m / float64(n) * math.Ln2)
	k = min(max(k, 1), MaxHashes)
	return Params{M: uint64(m), K: uint32(k)}, nil
}

// Rate returns the false-positive rate of p holding n keys: (1 - e^(-k·n/m))^k.
func (p Params) Rate(n int) float64 {
	return math.Pow(1-math.Exp(-float64(p.K)*float64(n)/float64(p.M)), float64(p.K))
}

// hashKey returns the two hashes of key that every position is derived from.
func hashKey(key []byte) (h1, h2 uint64) {
	h1 = xxhash.Sum64(key)
	// splitmix64's finaliser: h2 is well spread even when h1s are close, and odd so the
	// positions of one key do not repeat early.
	h2 = h1 + 0x9e3779b97f4a7c15
	h2 = (h2 ^ h2>>30) * 0xbf58476d1ce4e5b9
	h2 = (h2 ^ h2>>27) * 0x94d049bb133111eb
	h2 ^= h2 >> 31
	return h1, h2 | 1
}

func hashID(id int64) (h1, h2 uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return hashKey(b[:])
}

// position returns the i-th bit position of a key in a filter of m bits.
func position(h1, h2 uint64, i uint32, m uint64) uint64 {
	hi, _ := bits.Mul64(h1+uint64(i)*h2, m)
	return hi
}

// Filter is an in-process bloom filter. It is safe for concurrent use: bits are set with
// atomic OR and read with atomic loads, so Add and MayContain never block each other.
type Filter struct {
	p     Params
	words []atomic.Uint64
}

// New returns an empty filter sized for n keys at false-positive rate p (see Optimal).
func New(n int, p float64) (*Filter, error) {
	params, err := Optimal(n, p)
	if err != nil {
		return nil, err
	}
	return &Filter{p: params, words: make([]atomic.Uint64, params.M/64)}, nil
}

// Params returns the filter's size.
func (f *Filter) Params() Params { return f.p }

// IDs is what both filters offer for int64 ids, for callers that take either: the
// in-process Filter in one process, Redis where several processes share the filter.
type IDs interface {
	// AddIDs adds ids; see the package rule on when.
	AddIDs(ctx context.Context, ids ...int64) error
	// HasID reports whether id may be in the set. false is certain; an error comes with true.
	HasID(ctx context.Context, id int64) (bool, error)
}

var (
	_ IDs = (*Filter)(nil)
	_ IDs = (*Redis)(nil)
)

// HasID implements IDs.
func (f *Filter) HasID(_ context.Context, id int64) (bool, error) { return f.MayContainID(id), nil }

func (f *Filter) add(h1, h2 uint64) {
	for i := range f.p.K {
		pos := position(h1, h2, i, f.p.M)
		w := &f.words[pos/64]
		bit := uint64(1) << (pos % 64)
		if w.Load()&bit == 0 { // skip the locked instruction when the bit is already set
			w.Or(bit)
		}
	}
}

func (f *Filter) has(h1, h2 uint64) bool {
	for i := range f.p.K {
		pos := position(h1, h2, i, f.p.M)
		if f.words[pos/64].Load()&(1<<(pos%64)) == 0 {
			return false
		}
	}
	return true
}

// Add adds key. Once Add returns, MayContain(key) is true in every goroutine.
func (f *Filter) Add(key []byte) { f.add(hashKey(key)) }

// MayContain reports whether key may have been added; false means it certainly was not.
func (f *Filter) MayContain(key []byte) bool { return f.has(hashKey(key)) }

// AddID adds an id.
func (f *Filter) AddID(id int64) { f.add(hashID(id)) }

// MayContainID reports whether id may have been added; false means it certainly was not.
func (f *Filter) MayContainID(id int64) bool { return f.has(hashID(id)) }

// Stats describes a filter's fill, for the admin /state page.
type Stats struct {
	Params
	// BitsSet is how many of the M bits are 1.
	BitsSet uint64 `json:"bits_set"`
	// EstimatedKeys is the number of distinct keys the fill suggests: -(m/k)·ln(1 - set/m).
	EstimatedKeys float64 `json:"estimated_keys"`
	// EstimatedRate is the false-positive rate now: (set/m)^k. Past the rate the filter was
	// sized for, it holds more keys than planned and should be rebuilt larger.
	EstimatedRate float64 `json:"estimated_rate"`
}

func statsOf(p Params, set uint64) Stats {
	frac := float64(set) / float64(p.M)
	return Stats{
		Params:        p,
		BitsSet:       set,
		EstimatedKeys: -float64(p.M) / float64(p.K) * math.Log1p(-frac),
		EstimatedRate: math.Pow(frac, float64(p.K)),
	}
}

// Stats counts the filter's set bits; it reads every word, so call it for reports, not per
// request.
func (f *Filter) Stats() Stats {
	var set uint64
	for i := range f.words {
		set += uint64(bits.OnesCount64(f.words[i].Load()))
	}
	return statsOf(f.p, set)
}

// AddIDs adds ids. It never fails; it has Redis's signature so Fill loads either filter.
func (f *Filter) AddIDs(_ context.Context, ids ...int64) error {
	for _, id := range ids {
		f.AddID(id)
	}
	return nil
}
