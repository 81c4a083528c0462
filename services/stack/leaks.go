package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/meta"
)

// Leak checks for stress runs. A run writes a sentinel (its run id) into what it creates;
// afterwards nothing of the baseline may hold it. Both endpoints below are on the admin
// server, behind its token, because only the process holds every baseline client:
//
//	GET /stress/snapshot              row count and checksum of every baseline table
//	GET /stress/leaks?sentinel=S&since=RFC3339
//	                                  baseline rows, cache entries and queued messages
//	                                  holding S (messages from since on)

// TableSum is one baseline table: its rows and an order-independent checksum of them
// (volatile columns left out).
type TableSum struct {
	Rows int64  `json:"rows"`
	Sum  string `json:"sum"` // hex of the sum of every row's FNV-1a hash
}

// Snapshot is every baseline table of this process, by "service.table".
type Snapshot map[string]TableSum

// Leak is one place of the baseline that holds the sentinel.
type Leak struct {
	Store string `json:"store"` // sql, cache or mq
	Where string `json:"where"` // service.table.column, cache key, or subject
	Count int    `json:"count"`
}

// LeakReport is what ScanLeaks found.
type LeakReport struct {
	Sentinel string   `json:"sentinel"`
	Leaks    []Leak   `json:"leaks"`
	Scanned  []string `json:"scanned"` // the stores looked at, with what they hold
	Skipped  []string `json:"skipped,omitempty"`
}

// Total is the number of places and rows holding the sentinel.
func (r LeakReport) Total() int {
	n := 0
	for _, l := range r.Leaks {
		n += l.Count
	}
	return n
}

// validSentinel keeps sentinels to what a run id is, so a scan cannot match everything.
func validSentinel(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') { // no LIKE wildcards
			return false
		}
	}
	return true
}

func (s *Stack) baselineDBs() []string {
	var names []string
	for name, pair := range s.dbPairs {
		if pair[0] != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// volatile are the columns baseline jobs rewrite on a clock, whatever the traffic: left out
// of checksums, so a snapshot moves only when rows are written for a reason. (feed's hot
// refresher rescores recent notes every minute.)
var volatile = map[string]bool{"feed.feed_notes.score": true}

// TakeSnapshot sums every baseline table, volatile columns left out.
func (s *Stack) TakeSnapshot(ctx context.Context) (Snapshot, error) {
	out := Snapshot{}
	for _, name := range s.baselineDBs() {
		db := s.dbPairs[name][0]
		cols, err := db.Columns(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, table := range tables(cols) {
			var skip []string
			for _, c := range cols {
				if c.Table == table && volatile[name+"."+table+"."+c.Name] {
					skip = append(skip, c.Name)
				}
			}
			sum, err := tableSum(ctx, db, table, skip)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, table, err)
			}
			out[name+"."+table] = sum
		}
	}
	return out, nil
}

func tables(cols []sqldb.Column) []string {
	var out []string
	for _, c := range cols {
		if len(out) == 0 || out[len(out)-1] != c.Table {
			out = append(out, c.Table)
		}
	}
	return out
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func tableSum(ctx context.Context, db *sqldb.DB, table string, skip []string) (TableSum, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table))
	if err != nil {
		return TableSum{}, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return TableSum{}, err
	}
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var ts TableSum
	var sum uint64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return TableSum{}, err
		}
		h := fnv.New64a()
		for i, v := range vals {
			if slices.Contains(skip, names[i]) {
				continue
			}
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fmt.Fprintf(h, "%v\x1f", v)
		}
		sum += h.Sum64()
		ts.Rows++
	}
	ts.Sum = fmt.Sprintf("%016x", sum)
	return ts, rows.Err()
}

// Diff lists the tables whose rows or checksum differ between two snapshots.
func (a Snapshot) Diff(b Snapshot) []string {
	var out []string
	for k, va := range a {
		vb, ok := b[k]
		switch {
		case !ok:
			out = append(out, k+" is gone")
		case va != vb:
			out = append(out, fmt.Sprintf("%s: %d rows (sum %s) → %d rows (sum %s)", k, va.Rows, va.Sum, vb.Rows, vb.Sum))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+" is new")
		}
	}
	slices.Sort(out)
	return out
}

// scanner is what the process's JetStream queues can do beyond mq.Queue.
type scanner interface {
	Scan(ctx context.Context, since time.Time, limit int, fn func(subject string, header map[string]string, data []byte) bool) error
}

// maxScan bounds each store's scan.
const maxScan = 1_000_000

// ScanLeaks looks for sentinel in every baseline store of this process: text columns of
// every table, cache keys and values, and queued messages from since on (their payloads
// and lane headers).
func (s *Stack) ScanLeaks(ctx context.Context, sentinel string, since time.Time) (LeakReport, error) {
	if !validSentinel(sentinel) {
		return LeakReport{}, errors.New("sentinel: 8 to 64 of a-z, 0-9 and - (a stress run id)")
	}
	r := LeakReport{Sentinel: sentinel, Leaks: []Leak{}}
	like := "%" + sentinel + "%"
	for _, name := range s.baselineDBs() {
		db := s.dbPairs[name][0]
		cols, err := db.Columns(ctx)
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		n := 0
		for _, c := range cols {
			if !strings.EqualFold(c.Type, "text") {
				continue
			}
			n++
			var count int
			q := `SELECT count(*) FROM ` + quoteIdent(c.Table) + ` WHERE ` + quoteIdent(c.Name) + ` LIKE ?`
			if err := db.QueryRowContext(ctx, q, like).Scan(&count); err != nil {
				return r, fmt.Errorf("%s.%s.%s: %w", name, c.Table, c.Name, err)
			}
			if count > 0 {
				r.Leaks = append(r.Leaks, Leak{Store: "sql", Where: name + "." + c.Table + "." + c.Name, Count: count})
			}
		}
		r.Scanned = append(r.Scanned, fmt.Sprintf("sql %s: %d text columns", name, n))
	}
	if s.cache != nil {
		n := 0
		err := cache.ScanBaseline(ctx, s.cache, maxScan, func(key string, val []byte) bool {
			n++
			if strings.Contains(key, sentinel) || strings.Contains(string(val), sentinel) {
				r.Leaks = append(r.Leaks, Leak{Store: "cache", Where: key, Count: 1})
			}
			return true
		})
		switch {
		case errors.Is(err, cache.ErrNoScan):
			r.Skipped = append(r.Skipped, "cache: cannot be scanned")
		case err != nil:
			return r, fmt.Errorf("cache: %w", err)
		case n >= maxScan:
			r.Skipped = append(r.Skipped, fmt.Sprintf("cache: stopped after %d entries", n))
		default:
			r.Scanned = append(r.Scanned, fmt.Sprintf("cache: %d baseline entries", n))
		}
	}
	for key, q := range s.queues {
		if key.shadow {
			continue
		}
		sc, ok := q.(scanner)
		if !ok {
			r.Skipped = append(r.Skipped, "mq: cannot be scanned")
			break
		}
		n := 0
		bySubject := map[string]int{}
		err := sc.Scan(ctx, since, maxScan, func(subject string, header map[string]string, data []byte) bool {
			n++
			if strings.Contains(string(data), sentinel) || meta.LaneFromBaggage(header[meta.HeaderBaggage]) != "" {
				bySubject[subject]++
			}
			return true
		})
		if err != nil {
			return r, fmt.Errorf("mq: %w", err)
		}
		for subject, c := range bySubject {
			r.Leaks = append(r.Leaks, Leak{Store: "mq", Where: subject, Count: c})
		}
		if n >= maxScan {
			r.Skipped = append(r.Skipped, fmt.Sprintf("mq: stopped after %d messages", n))
		} else {
			r.Scanned = append(r.Scanned, fmt.Sprintf("mq: %d baseline messages since %s", n, since.UTC().Format(time.RFC3339)))
		}
		break // every queue of the process shares one stream
	}
	slices.SortFunc(r.Leaks, func(a, b Leak) int { return strings.Compare(a.Store+a.Where, b.Store+b.Where) })
	return r, nil
}

// serveLeakChecks adds the two endpoints to the admin server.
func (s *Stack) serveLeakChecks() {
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, status int, err error) {
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
	s.Admin.Handle("GET /stress/snapshot", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap, err := s.TakeSnapshot(r.Context())
		if err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, snap)
	}))
	s.Admin.Handle("GET /stress/leaks", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since := time.Now().Add(-time.Hour)
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fail(w, http.StatusBadRequest, fmt.Errorf("since: want RFC 3339, like 2026-11-25T20:00:00Z: %w", err))
				return
			}
			since = t
		}
		rep, err := s.ScanLeaks(r.Context(), r.URL.Query().Get("sentinel"), since)
		if err != nil {
			status := http.StatusInternalServerError
			if rep.Sentinel == "" {
				status = http.StatusBadRequest
			}
			fail(w, status, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	}))
}
