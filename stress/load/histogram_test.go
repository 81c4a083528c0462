package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exact is the nearest-rank quantile of sorted values.
func exact(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

// within reports whether got is within one bucket of want: 1/1024 of it, at least 1 µs.
func within(got, want time.Duration) bool {
	tol := max(want/1024, time.Microsecond)
	return got >= want-tol && got <= want+tol
}

func TestHistogramQuantilesMatchSortedValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform 0-10ms": func() time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) },
		"lognormal": func() time.Duration {
			return time.Duration(math.Exp(r.NormFloat64()*1.5+13) * float64(time.Nanosecond))
		},
		"bimodal stalls": func() time.Duration {
			if r.IntN(5) == 0 {
				return time.Duration(r.Int64N(int64(time.Second)))
			}
			return time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
		},
		"sub-microsecond": func() time.Duration { return time.Duration(r.Int64N(1000)) },
		"up to an hour":   func() time.Duration { return time.Duration(r.Int64N(int64(time.Hour))) },
	}
	qs := []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for name, draw := range dists {
		t.Run(name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]time.Duration, 100_000)
			for i := range vals {
				vals[i] = draw()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(len(vals)) {
				t.Fatalf("Count() = %d; want %d", h.Count(), len(vals))
			}
			if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Errorf("Min, Max = %v, %v; want %v, %v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			got := h.Quantiles(qs...)
			for i, q := range qs {
				if want := exact(vals, q); !within(got[i], want) {
					t.Errorf("Quantile(%v) = %v; want %v within 0.1%%", q, got[i], want)
				}
			}
			var sum time.Duration
			for _, v := range vals {
				sum += v
			}
			if want := sum / time.Duration(len(vals)); h.Mean() != want {
				t.Errorf("Mean() = %v; want %v", h.Mean(), want)
			}
		})
	}
}

func TestHistogramBucketsTileTheRange(t *testing.T) {
	for _, p := range []uint{coarseBits, preciseBits} {
		next := uint64(0)
		last := bucketIndex(p, maxMicros)
		for i := 0; i <= last; i++ {
			low, width := bucketRange(p, i)
			if low != next {
				t.Fatalf("p=%d: bucket %d starts at %d; want %d", p, i, low, next)
			}
			if bucketIndex(p, low) != i || bucketIndex(p, low+width-1) != i {
				t.Fatalf("p=%d: bucket %d [%d, +%d) maps back to %d, %d", p, i, low, width, bucketIndex(p, low), bucketIndex(p, low+width-1))
			}
			if low >= 2<<p && float64(width)/float64(low) > 1/float64(uint64(1)<<p) {
				t.Fatalf("p=%d: bucket %d is %d wide at %d: coarser than 1/%d", p, i, width, low, 1<<p)
			}
			next = low + width
		}
	}
}

func TestHistogramMergeEqualsOneHistogram(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all, parts := NewHistogram(), []*Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
	var wg sync.WaitGroup
	vals := make([][]time.Duration, len(parts))
	for i := range parts {
		for range 20_000 {
			vals[i] = append(vals[i], time.Duration(r.ExpFloat64()*float64(5*time.Millisecond)))
		}
	}
	for i, p := range parts {
		wg.Go(func() {
			for _, v := range vals[i] {
				p.Record(v)
				all.Record(v) // concurrently with the other parts: recording is lock-free
			}
		})
	}
	wg.Wait()
	merged := NewHistogram()
	for _, p := range parts {
		merged.Merge(p)
	}
	if merged.Count() != all.Count() || merged.Max() != all.Max() || merged.Min() != all.Min() || merged.Mean() != all.Mean() {
		t.Fatalf("merged count/min/max/mean = %d %v %v %v; want %d %v %v %v", merged.Count(), merged.Min(), merged.Max(), merged.Mean(),
			all.Count(), all.Min(), all.Max(), all.Mean())
	}
	qs := []float64{0.5, 0.9, 0.99, 0.999, 1}
	if got, want := merged.Quantiles(qs...), all.Quantiles(qs...); !slices.Equal(got, want) {
		t.Fatalf("merged quantiles %v; want %v", got, want)
	}
	merged.Reset()
	if merged.Count() != 0 || merged.Max() != 0 || merged.Quantile(0.5) != 0 {
		t.Fatalf("after Reset: count %d, max %v", merged.Count(), merged.Max())
	}
}

func TestHistogramClampsOutOfRange(t *testing.T) {
	h := NewHistogram()
	h.Record(-time.Second)
	h.Record(3 * time.Hour)
	if h.Count() != 2 || h.Max() != 3*time.Hour || h.Min() != 0 {
		t.Fatalf("count %d max %v min %v; want 2, 3h, 0", h.Count(), h.Max(), h.Min())
	}
	if got := h.Quantile(1); got != 3*time.Hour {
		t.Errorf("Quantile(1) = %v; want the exact max 3h", got)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d = (d + 7919*time.Microsecond) % time.Second
			h.Record(d)
		}
	})
}
