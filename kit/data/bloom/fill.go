package bloom

import (
	"context"
	"fmt"
	"math"

	"github.com/redline-dev/redline/kit/data/sqldb"
)

// IDAdder takes ids into a filter; *Filter and *Redis are both one.
type IDAdder interface {
	AddIDs(ctx context.Context, ids ...int64) error
}

var (
	_ IDAdder = (*Filter)(nil)
	_ IDAdder = (*Redis)(nil)
)

// ScanFunc returns up to limit ids greater than after, in ascending order; fewer than limit
// means the scan is over.
type ScanFunc func(ctx context.Context, after int64, limit int) ([]int64, error)

// SQLScan returns a ScanFunc running query on q with the arguments (after, limit). The
// query pages by key, for example
//
//	SELECT id FROM notes WHERE id > ? ORDER BY id LIMIT ?
//
// and may select deleted rows too: an extra id only costs a "maybe".
func SQLScan(q sqldb.Querier, query string) ScanFunc {
	return func(ctx context.Context, after int64, limit int) ([]int64, error) {
		rows, err := q.QueryContext(ctx, query, after, limit)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		ids := make([]int64, 0, limit)
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, rows.Err()
	}
}

// Fill adds every id scan returns to dst, batch ids at a time (1000 when batch <= 0), and
// returns how many it added. Call it before the filter answers its first read (see the
// package rule). It fails when scan returns ids out of order, which would otherwise page
// forever or skip ids.
func Fill(ctx context.Context, dst IDAdder, scan ScanFunc, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	after, n := int64(math.MinInt64), 0
	for {
		ids, err := scan(ctx, after, batch)
		if err != nil {
			return n, fmt.Errorf("bloom: fill: scan after %d: %w", after, err)
		}
		for _, id := range ids {
			if id <= after {
				return n, fmt.Errorf("bloom: fill: scan returned id %d after %d; want ascending ids greater than the last", id, after)
			}
			after = id
		}
		if err := dst.AddIDs(ctx, ids...); err != nil {
			return n, fmt.Errorf("bloom: fill: %w", err)
		}
		n += len(ids)
		if len(ids) < batch {
			return n, nil
		}
	}
}
