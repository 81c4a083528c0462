package degrade

import (
	"container/list"
	"context"
	"hash/maphash"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

// HeaderDegraded marks a reply that LastGood served in place of a failed one: its value is
// "last-good" or "default".
const HeaderDegraded = "X-Redline-Degraded"

// HeaderDegradedAge is the age in whole seconds of a last good reply.
const HeaderDegradedAge = "X-Redline-Degraded-Age"

// KeyFunc returns the cache key of a request, or "" to leave it alone (no caching, no
// default). req is the request as the middleware sees it (*http.Request on an HTTP server).
type KeyFunc func(ctx context.Context, info *middleware.Info, req any) string

// MaxEntries bounds the number of last good responses kept (LastGood); the default is
// DefaultMaxEntries.
func MaxEntries(n int) Option { return func(o *options) { o.maxEntries = n } }

// MaxAge sets the age past which a last good response is no longer served (LastGood); the
// default is DefaultMaxAge.
func MaxAge(d time.Duration) Option { return func(o *options) { o.maxAge = d } }

// Defaults sets the response served per route (operation) when a request fails and no good
// one is cached (LastGood); the default is none. The values are shared by every request
// and must not be modified.
func Defaults(m map[string]any) Option { return func(o *options) { o.defaults = m } }

// Key sets the cache key of a request (LastGood); the default is LastGoodKey.
func Key(f KeyFunc) Option { return func(o *options) { o.key = f } }

var tokenSeed = maphash.MakeSeed()

// LastGoodKey keys GET and HEAD requests of an HTTP server by route, path and query, lane
// and caller, and leaves every other request alone. The lane keeps stress traffic and
// baseline traffic from ever seeing each other's answers. The caller is the authenticated
// subject when there is one, else a hash of the Authorization header, so that a personal
// page is never served to someone else, even when LastGood runs before auth.Require.
func LastGoodKey(ctx context.Context, info *middleware.Info, req any) string {
	r, ok := req.(*http.Request)
	if !ok || info.Kind != middleware.HTTP || info.Side != middleware.Server ||
		(r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return ""
	}
	caller := ""
	if sub, ok := auth.Subject(ctx); ok {
		caller = "u" + strconv.FormatInt(sub, 10)
	} else if a := r.Header.Get("Authorization"); a != "" {
		caller = "t" + strconv.FormatUint(maphash.String(tokenSeed, a), 36)
	}
	return info.Operation + "\x00" + r.URL.RequestURI() + "\x00" + meta.Lane(ctx) + "\x00" + caller
}

// LastGood is the BFF's cache of last good responses, bounded in size and age, with default
// responses per route. It is safe for concurrent use.
type LastGood struct {
	o options

	mu  sync.Mutex
	m   map[string]*list.Element // of *goodEntry
	lru list.List                // front: most recently stored

	counters                                   counterCache
	stored, servedGood, servedDefault, missing atomic.Uint64
}

type goodEntry struct {
	key    string
	op     string
	resp   any
	status int
	at     time.Time
}

// NewLastGood returns a LastGood. It reads the MaxEntries, MaxAge, Defaults, Key,
// Degradable and Clock options.
func NewLastGood(opts ...Option) *LastGood {
	return &LastGood{o: newOptions(opts), m: map[string]*list.Element{}}
}

// Server is the BFF server middleware of l. It remembers each successful response of a
// request that l's Key keys; when such a request fails with a degradable error it answers
// with the last good response for the same key (if younger than MaxAge), marked with the
// reply header X-Redline-Degraded: last-good, else with the route's default response, marked
// X-Redline-Degraded: default, else with the error. A non-degradable failure (a 404, say)
// forgets the key, so a deleted resource is not resurrected later.
func Server(l *LastGood) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			key := l.o.key(ctx, info, req)
			if key == "" {
				return next(ctx, req)
			}
			resp, err := next(ctx, req)
			if err == nil {
				l.store(key, info, resp)
				l.counters.pass(info.Operation).Inc()
				return resp, nil
			}
			if !l.o.degradable(err) {
				if errs.Code(err) != codes.Canceled {
					l.forget(key)
				}
				return resp, err
			}
			reason := errs.Code(err).String()
			if e, age, ok := l.lookup(key); ok {
				if info.Reply != nil {
					info.Reply.Set(HeaderDegraded, "last-good")
					info.Reply.Set(HeaderDegradedAge, strconv.FormatInt(int64(age/time.Second), 10))
				}
				info.Status = e.status
				l.servedGood.Add(1)
				count(info.Operation, "last_good", reason)
				return e.resp, nil
			}
			if d, ok := l.o.defaults[info.Operation]; ok {
				if info.Reply != nil {
					info.Reply.Set(HeaderDegraded, "default")
				}
				l.servedDefault.Add(1)
				count(info.Operation, "default", reason)
				return d, nil
			}
			l.missing.Add(1)
			count(info.Operation, "fail", reason)
			return resp, err
		}
	}
}

func (l *LastGood) store(key string, info *middleware.Info, resp any) {
	now := l.o.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stored.Add(1)
	if el := l.m[key]; el != nil {
		e := el.Value.(*goodEntry)
		e.resp, e.status, e.at = resp, info.Status, now
		l.lru.MoveToFront(el)
		return
	}
	for len(l.m) >= l.o.maxEntries {
		l.remove(l.lru.Back())
	}
	l.m[key] = l.lru.PushFront(&goodEntry{key: key, op: info.Operation, resp: resp, status: info.Status, at: now})
}

// lookup returns the entry of key and its age, dropping it when it is too old.
func (l *LastGood) lookup(key string) (goodEntry, time.Duration, bool) {
	now := l.o.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.m[key]
	if el == nil {
		return goodEntry{}, 0, false
	}
	e := el.Value.(*goodEntry)
	age := now.Sub(e.at)
	if age > l.o.maxAge {
		l.remove(el)
		return goodEntry{}, 0, false
	}
	return *e, age, true
}

func (l *LastGood) forget(key string) {
	l.mu.Lock()
	if el := l.m[key]; el != nil {
		l.remove(el)
	}
	l.mu.Unlock()
}

func (l *LastGood) remove(el *list.Element) {
	delete(l.m, l.lru.Remove(el).(*goodEntry).key)
}

// LastGoodState is the JSON snapshot of a LastGood for the admin page.
type LastGoodState struct {
	Entries    int    `json:"entries"`
	MaxEntries int    `json:"max_entries"`
	MaxAge     string `json:"max_age"`
	// EntriesByRoute counts the cached responses of each route.
	EntriesByRoute map[string]int `json:"entries_by_route"`
	// Defaults lists the routes that have a default response.
	Defaults      []string `json:"defaults"`
	Stored        uint64   `json:"stored"`
	ServedGood    uint64   `json:"served_last_good"`
	ServedDefault uint64   `json:"served_default"`
	// Missing counts degradable failures with nothing to serve in their place.
	Missing uint64 `json:"missing"`
}

// State returns a LastGoodState.
func (l *LastGood) State() any {
	st := LastGoodState{MaxEntries: l.o.maxEntries, MaxAge: l.o.maxAge.String(), EntriesByRoute: map[string]int{},
		Defaults: []string{}, Stored: l.stored.Load(), ServedGood: l.servedGood.Load(),
		ServedDefault: l.servedDefault.Load(), Missing: l.missing.Load()}
	l.mu.Lock()
	st.Entries = len(l.m)
	for _, el := range l.m {
		st.EntriesByRoute[el.Value.(*goodEntry).op]++
	}
	l.mu.Unlock()
	for op := range l.o.defaults {
		st.Defaults = append(st.Defaults, op)
	}
	sort.Strings(st.Defaults)
	return st
}
