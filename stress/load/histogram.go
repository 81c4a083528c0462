package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout. Values are whole microseconds. The first row counts 0..2^(p+1)-1
// one by one; every further row covers one power of two with 2^p linear buckets, so a
// bucket is never wider than 1/2^p of its lower bound. With p = 10 that is 0.098%: three
// significant digits, as HdrHistogram's default.
const (
	preciseBits = 10                                   // 3 significant digits
	coarseBits  = 6                                    // 2 digits: the per-second histograms
	maxMicros   = uint64(time.Hour / time.Microsecond) // the highest trackable value
)

// Histogram counts latencies from 1 µs to 1 h with three significant digits (a relative
// error under 0.1%), in fixed log-linear buckets like HdrHistogram. Recording is lock-free
// (one atomic add), so goroutines record concurrently; histograms of the same layout merge.
// Values above an hour count as an hour; Max keeps the exact largest value.
type Histogram struct {
	bits   uint // linear buckets per power of two: 1<<bits
	counts []atomic.Uint64
	sum    atomic.Int64 // nanoseconds
	min    atomic.Int64 // nanoseconds; math.MaxInt64 when empty
	max    atomic.Int64 // nanoseconds
}

// NewHistogram returns an empty histogram with three significant digits (about 190 KB).
func NewHistogram() *Histogram { return newHistogram(preciseBits) }

func newHistogram(p uint) *Histogram {
	h := &Histogram{bits: p, counts: make([]atomic.Uint64, bucketIndex(p, maxMicros)+1)}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketIndex is the bucket of v microseconds in a layout of 2^p buckets per power of two.
func bucketIndex(p uint, v uint64) int {
	first := uint64(2) << p // the first row counts 0..first-1 exactly
	if v < first {
		return int(v)
	}
	e := uint(bits.Len64(v)) - (p + 1) // v>>e is in [first/2, first)
	return int(first) + int(e-1)<<p + int(v>>e) - int(first/2)
}

// bucketRange is the lowest value of bucket i and its width, in microseconds.
func bucketRange(p uint, i int) (low, width uint64) {
	first := 2 << p
	if i < first {
		return uint64(i), 1
	}
	e := uint((i-first)>>p) + 1
	sub := uint64((i-first)&(1<<p-1)) + uint64(first/2)
	return sub << e, 1 << e
}

// Record adds one value. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	us := uint64(d / time.Microsecond)
	if us > maxMicros {
		us = maxMicros
	}
	h.counts[bucketIndex(h.bits, us)].Add(1)
	h.sum.Add(int64(d))
	for m := h.max.Load(); int64(d) > m && !h.max.CompareAndSwap(m, int64(d)); m = h.max.Load() {
	}
	for m := h.min.Load(); int64(d) < m && !h.min.CompareAndSwap(m, int64(d)); m = h.min.Load() {
	}
}

// Merge adds o's counts to h. Both must come from the same constructor.
func (h *Histogram) Merge(o *Histogram) {
	if h.bits != o.bits {
		panic("load: Merge of histograms with different layouts")
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.sum.Add(o.sum.Load())
	for m, om := h.max.Load(), o.max.Load(); om > m && !h.max.CompareAndSwap(m, om); m = h.max.Load() {
	}
	for m, om := h.min.Load(), o.min.Load(); om < m && !h.min.CompareAndSwap(m, om); m = h.min.Load() {
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Max is the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min is the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration {
	if m := h.min.Load(); m != math.MaxInt64 {
		return time.Duration(m)
	}
	return 0
}

// Mean is the exact mean of the values recorded; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1; 0.99 is p99): the highest value
// of the bucket holding the ⌈q·n⌉-th smallest value, bounded by Min and Max, and Max
// itself for the largest. It is within one bucket (0.1%, at least 1 µs) of the exact
// nearest-rank quantile; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	return h.Quantiles(q)[0]
}

// Quantiles returns Quantile for each of qs, which must be in ascending order, in one pass.
func (h *Histogram) Quantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	counts := make([]uint64, len(h.counts))
	var n uint64
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return out
	}
	lo, hi := h.Min(), h.Max()
	var seen uint64
	i := 0
	for k, q := range qs {
		rank := uint64(math.Ceil(math.Max(0, math.Min(1, q)) * float64(n)))
		rank = max(rank, 1)
		if rank >= n {
			out[k] = hi // the largest value is known exactly
			continue
		}
		for ; i < len(counts); i++ {
			if seen+counts[i] >= rank {
				break
			}
			seen += counts[i]
		}
		if i == len(counts) { // a concurrent Record moved the total: the last bucket
			out[k] = hi
			continue
		}
		low, width := bucketRange(h.bits, i)
		v := time.Duration(low+width-1) * time.Microsecond
		out[k] = min(max(v, lo), hi)
	}
	return out
}

// Reset empties the histogram. It must not race with Record.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.sum.Store(0)
	h.min.Store(math.MaxInt64)
	h.max.Store(0)
}
