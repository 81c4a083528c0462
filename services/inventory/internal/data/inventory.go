// Package data implements the inventory service's repository on kit/data SQL.
//
// Every change runs in one transaction. Stock never goes negative because each decrement is
// conditional (WHERE available >= ?) and a short item rolls the whole reservation back;
// stock rows are always updated in SKU order, so two reservations cannot deadlock. A
// reservation changes state only through UPDATE ... WHERE state = 'reserved', so of two
// racing Confirm and Release calls exactly one moves it and the other sees the result.
package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/inventory/internal/biz"
)

// Repo implements biz.Repo.
type Repo struct{ db *sqldb.DB }

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

// fail passes the service's own errors through and hides anything else as Internal.
func fail(err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return e
	}
	return errs.Internal(err)
}

// SetStock implements biz.Repo.
func (r *Repo) SetStock(ctx context.Context, sku, available int64) (biz.Stock, error) {
	s := biz.Stock{SKU: sku}
	err := r.db.QueryRowContext(ctx, `INSERT INTO stock (sku_id, available, reserved, updated_at) VALUES (?, ?, 0, ?)
		ON CONFLICT (sku_id) DO UPDATE SET available = excluded.available, updated_at = excluded.updated_at
		RETURNING available, reserved`, sku, available, time.Now().UnixMilli()).Scan(&s.Available, &s.Reserved)
	if err != nil {
		return biz.Stock{}, errs.Internal(fmt.Errorf("set stock %d: %w", sku, err))
	}
	return s, nil
}

// GetStock implements biz.Repo.
func (r *Repo) GetStock(ctx context.Context, skus []int64) ([]biz.Stock, error) {
	marks, args := sqldb.In(skus)
	rows, err := r.db.QueryContext(ctx, `SELECT sku_id, available, reserved FROM stock WHERE sku_id IN (`+marks+`)`, args...)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("get stock: %w", err))
	}
	defer rows.Close()
	found := make(map[int64]biz.Stock, len(skus))
	for rows.Next() {
		var s biz.Stock
		if err := rows.Scan(&s.SKU, &s.Available, &s.Reserved); err != nil {
			return nil, errs.Internal(fmt.Errorf("get stock: %w", err))
		}
		found[s.SKU] = s
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("get stock: %w", err))
	}
	out := make([]biz.Stock, len(skus))
	for i, s := range skus {
		out[i] = found[s]
		out[i].SKU = s
	}
	return out, nil
}

// Reserve implements biz.Repo. The reservation row goes in first: on PostgreSQL a second
// Reserve for the same order waits on it and then finds the first one's outcome.
func (r *Repo) Reserve(ctx context.Context, res *biz.Reservation) (*biz.Reservation, error) {
	var out *biz.Reservation
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		ins, err := tx.ExecContext(ctx, `INSERT INTO reservations (order_id, state, created_at, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
			res.OrderID, string(res.State), res.CreatedAt.UnixMilli(), res.UpdatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert reservation: %w", err)
		}
		if n, err := ins.RowsAffected(); err != nil || n != 1 {
			out, err = load(ctx, tx, res.OrderID)
			return err
		}
		at := res.CreatedAt.UnixMilli()
		for _, it := range res.Items {
			upd, err := tx.ExecContext(ctx, `UPDATE stock SET available = available - ?, reserved = reserved + ?, updated_at = ?
				WHERE sku_id = ? AND available >= ?`, it.Quantity, it.Quantity, at, it.SKU, it.Quantity)
			if err != nil {
				return fmt.Errorf("take stock of sku %d: %w", it.SKU, err)
			}
			if n, err := upd.RowsAffected(); err != nil || n != 1 {
				return biz.OutOfStock(it.SKU) // rolls back every item taken so far
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO reservation_items (order_id, sku_id, quantity) VALUES (?, ?, ?)`,
				res.OrderID, it.SKU, it.Quantity); err != nil {
				return fmt.Errorf("insert reservation item: %w", err)
			}
		}
		out = res
		return nil
	})
	if err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// Settle implements biz.Repo.
func (r *Repo) Settle(ctx context.Context, orderID int64, to biz.State, at time.Time) (*biz.Reservation, error) {
	var out *biz.Reservation
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		// Two rounds at most: when the empty released row loses to a Reserve that committed
		// meanwhile, the second round finds that reservation.
		for range 2 {
			moved, err := tx.ExecContext(ctx, `UPDATE reservations SET state = ?, updated_at = ? WHERE order_id = ? AND state = ?`,
				string(to), at.UnixMilli(), orderID, string(biz.StateReserved))
			if err != nil {
				return fmt.Errorf("move reservation to %s: %w", to, err)
			}
			if n, err := moved.RowsAffected(); err == nil && n == 1 {
				if out, err = load(ctx, tx, orderID); err != nil {
					return err
				}
				return settleStock(ctx, tx, out.Items, to, at)
			}
			out, err = load(ctx, tx, orderID)
			if !errors.Is(err, biz.ErrNotFound) {
				return err
			}
			if to != biz.StateReleased {
				return biz.ErrNotFound
			}
			ins, err := tx.ExecContext(ctx, `INSERT INTO reservations (order_id, state, created_at, updated_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`, orderID, string(to), at.UnixMilli(), at.UnixMilli())
			if err != nil {
				return fmt.Errorf("insert released reservation: %w", err)
			}
			if n, err := ins.RowsAffected(); err == nil && n == 1 {
				out = &biz.Reservation{OrderID: orderID, State: to, CreatedAt: at.Truncate(time.Millisecond),
					UpdatedAt: at.Truncate(time.Millisecond)}
				return nil
			}
		}
		return fmt.Errorf("order %d: reservation neither found nor created", orderID)
	})
	if err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// settleStock moves items out of reserved: gone for good on confirm, back to available on
// release.
func settleStock(ctx context.Context, tx *sqldb.Tx, items []biz.Item, to biz.State, at time.Time) error {
	q := `UPDATE stock SET reserved = reserved - ?, updated_at = ? WHERE sku_id = ? AND reserved >= ?`
	if to == biz.StateReleased {
		q = `UPDATE stock SET reserved = reserved - ?, available = available + ?, updated_at = ? WHERE sku_id = ? AND reserved >= ?`
	}
	for _, it := range items {
		args := []any{it.Quantity, at.UnixMilli(), it.SKU, it.Quantity}
		if to == biz.StateReleased {
			args = []any{it.Quantity, it.Quantity, at.UnixMilli(), it.SKU, it.Quantity}
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("settle sku %d: %w", it.SKU, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			// Only a hand-edited stock row can get here: reserved always covers reservations.
			return fmt.Errorf("settle sku %d: reserved stock is missing", it.SKU)
		}
	}
	return nil
}

// load reads an order's reservation with its items sorted by SKU; biz.ErrNotFound when absent.
func load(ctx context.Context, q sqldb.Querier, orderID int64) (*biz.Reservation, error) {
	res := &biz.Reservation{OrderID: orderID}
	var state string
	var created, updated int64
	err := q.QueryRowContext(ctx, `SELECT state, created_at, updated_at FROM reservations WHERE order_id = ?`, orderID).
		Scan(&state, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, biz.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load reservation %d: %w", orderID, err)
	}
	res.State = biz.State(state)
	res.CreatedAt, res.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	rows, err := q.QueryContext(ctx, `SELECT sku_id, quantity FROM reservation_items WHERE order_id = ? ORDER BY sku_id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("load reservation items %d: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it biz.Item
		if err := rows.Scan(&it.SKU, &it.Quantity); err != nil {
			return nil, fmt.Errorf("load reservation items %d: %w", orderID, err)
		}
		res.Items = append(res.Items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load reservation items %d: %w", orderID, err)
	}
	return res, nil
}
