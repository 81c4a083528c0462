package shed

import "time"

// bucket counts the requests that finished in one slice of the window and their summed
// response time.
type bucket struct {
	id   int64 // absolute slice number: now / width
	pass int64
	rt   time.Duration
}

// window is a ring of buckets on the shedder's clock. It answers the two BBR inputs: the
// most requests finished in one bucket (maxPass, the current bucket included, so the
// estimate rises as soon as throughput does) and the least mean response time of a
// finished bucket (minRT). Callers hold the shedder's lock.
type window struct {
	b     []bucket
	width time.Duration

	// The finished buckets change only when the current one rotates, so their summary is
	// cached per current bucket id.
	cacheID  int64
	cacheOK  bool
	cacheMax int64
	cacheMin time.Duration
}

func newWindow(buckets int, width time.Duration) window {
	return window{b: make([]bucket, buckets), width: width, cacheID: -1}
}

func (w *window) id(now time.Time) int64 { return now.UnixNano() / int64(w.width) }

func (w *window) cur(id int64) *bucket {
	b := &w.b[int(id%int64(len(w.b)))]
	if b.id != id {
		*b = bucket{id: id}
	}
	return b
}

// add records one finished request.
func (w *window) add(now time.Time, rt time.Duration) {
	b := w.cur(w.id(now))
	b.pass++
	b.rt += rt
}

// stats returns maxPass over the window and minRT over its finished buckets; ok is false
// while no finished bucket has a request.
func (w *window) stats(now time.Time) (maxPass int64, minRT time.Duration, ok bool) {
	id := w.id(now)
	if id != w.cacheID {
		w.cacheID, w.cacheOK, w.cacheMax, w.cacheMin = id, false, 0, 0
		n := int64(len(w.b))
		for i := range w.b {
			b := &w.b[i]
			if b.id <= id-n || b.id >= id || b.pass == 0 {
				continue // stale, current, or empty
			}
			w.cacheMax = max(w.cacheMax, b.pass)
			if m := b.rt / time.Duration(b.pass); !w.cacheOK || m < w.cacheMin {
				w.cacheMin, w.cacheOK = m, true
			}
		}
	}
	maxPass = w.cacheMax
	if c := &w.b[int(id%int64(len(w.b)))]; c.id == id {
		maxPass = max(maxPass, c.pass)
	}
	return maxPass, w.cacheMin, w.cacheOK
}
