// Package data implements the order service's repository on kit/data SQL, and the ports to
// the product and inventory services over their gRPC clients.
//
// An order and its items are inserted in one transaction; the unique (user_id,
// idempotency_key) index decides which of racing repeats inserts. Every state change is one
// conditional UPDATE ... WHERE state IN (...), so of racing changes exactly one applies, on
// one instance or several.
package data

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/order/internal/biz"
)

// Repo implements biz.Repo.
type Repo struct{ db *sqldb.DB }

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

// Insert implements biz.Repo. On PostgreSQL the order and its items go in one statement
// (a data-modifying CTE), one round trip and one implicit transaction instead of four round
// trips: order placement is the shop's hot path. SQLite, which has no such CTE, gets the
// same rows in an explicit transaction.
func (r *Repo) Insert(ctx context.Context, o *biz.Order) (*biz.Order, bool, error) {
	var (
		created bool
		err     error
	)
	if r.db.Dialect() == sqldb.DialectPostgres {
		created, err = r.insertOne(ctx, o)
	} else {
		created, err = r.insertTx(ctx, o)
	}
	if err != nil {
		return nil, false, errs.Internal(err)
	}
	if created {
		return o, true, nil
	}
	stored, err := r.ByKey(ctx, o.UserID, o.IdempotencyKey)
	return stored, false, err
}

const insertOrder = `INSERT INTO orders (id, user_id, idempotency_key, request_hash, state, total, currency,
	created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (user_id, idempotency_key) DO NOTHING`

func orderArgs(o *biz.Order) []any {
	return []any{o.ID, o.UserID, o.IdempotencyKey, o.RequestHash, string(o.State), o.Total, o.Currency,
		o.CreatedAt.UnixMilli(), o.UpdatedAt.UnixMilli(), o.ExpiresAt.UnixMilli()}
}

// itemArgs returns the items' columns after order_id, six per item.
func itemArgs(o *biz.Order) ([]any, error) {
	args := make([]any, 0, 6*len(o.Items))
	for _, it := range o.Items {
		attrs, err := json.Marshal(it.Attributes)
		if err != nil {
			return nil, err
		}
		args = append(args, it.SKUID, it.SPUID, it.Title, string(attrs), it.UnitPrice, it.Quantity)
	}
	return args, nil
}

// insertOne inserts the order and its items in one PostgreSQL statement; it inserts no
// item when the order's key is taken, and every order has an item.
func (r *Repo) insertOne(ctx context.Context, o *biz.Order) (bool, error) {
	items, err := itemArgs(o)
	if err != nil {
		return false, err
	}
	row := "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT))"
	values := strings.TrimSuffix(strings.Repeat(row+", ", len(o.Items)), ", ")
	res, err := r.db.ExecContext(ctx, `WITH o AS (`+insertOrder+` RETURNING id)
		INSERT INTO order_items (order_id, sku_id, spu_id, title, attributes, unit_price, quantity)
		SELECT o.id, v.sku_id, v.spu_id, v.title, v.attributes, v.unit_price, v.quantity
		FROM o CROSS JOIN (VALUES `+values+`) AS v (sku_id, spu_id, title, attributes, unit_price, quantity)`,
		append(orderArgs(o), items...)...)
	if err != nil {
		return false, fmt.Errorf("insert order: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert order: %w", err)
	}
	return n > 0, nil
}

// insertTx inserts the order and its items in a transaction.
func (r *Repo) insertTx(ctx context.Context, o *biz.Order) (bool, error) {
	items, err := itemArgs(o)
	if err != nil {
		return false, err
	}
	created := false
	err = r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, insertOrder, orderArgs(o)...)
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", len(o.Items)), ", ")
		args := make([]any, 0, 7*len(o.Items))
		for i := range o.Items {
			args = append(append(args, o.ID), items[6*i:6*i+6]...)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO order_items (order_id, sku_id, spu_id, title, attributes,
			unit_price, quantity) VALUES `+values, args...); err != nil {
			return fmt.Errorf("insert order items: %w", err)
		}
		created = true
		return nil
	})
	return created, err
}

const cols = `id, user_id, idempotency_key, request_hash, state, total, currency, payment_id, close_reason,
	close_detail, created_at, updated_at, expires_at`

func scan(row interface{ Scan(...any) error }) (*biz.Order, error) {
	o := &biz.Order{}
	var state string
	var created, updated, expires int64
	if err := row.Scan(&o.ID, &o.UserID, &o.IdempotencyKey, &o.RequestHash, &state, &o.Total, &o.Currency,
		&o.PaymentID, &o.CloseReason, &o.CloseDetail, &created, &updated, &expires); err != nil {
		return nil, err
	}
	o.State = biz.State(state)
	o.CreatedAt, o.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	o.ExpiresAt = time.UnixMilli(expires).UTC()
	return o, nil
}

// one reads the order query selects, with its items.
func (r *Repo) one(ctx context.Context, query string, args ...any) (*biz.Order, error) {
	o, err := scan(r.db.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, biz.ErrNotFound
	}
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("load order: %w", err))
	}
	if err := r.attachItems(ctx, []*biz.Order{o}); err != nil {
		return nil, err
	}
	return o, nil
}

// attachItems fills the items of orders, sorted by SKU, in one query.
func (r *Repo) attachItems(ctx context.Context, orders []*biz.Order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := make(map[int64]*biz.Order, len(orders))
	ids := make([]int64, len(orders))
	for i, o := range orders {
		byID[o.ID], ids[i] = o, o.ID
	}
	marks, args := sqldb.In(ids)
	rows, err := r.db.QueryContext(ctx, `SELECT order_id, sku_id, spu_id, title, attributes, unit_price, quantity
		FROM order_items WHERE order_id IN (`+marks+`) ORDER BY order_id, sku_id`, args...)
	if err != nil {
		return errs.Internal(fmt.Errorf("load order items: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var orderID int64
		var it biz.Item
		var attrs string
		if err := rows.Scan(&orderID, &it.SKUID, &it.SPUID, &it.Title, &attrs, &it.UnitPrice, &it.Quantity); err != nil {
			return errs.Internal(fmt.Errorf("load order items: %w", err))
		}
		if err := json.Unmarshal([]byte(attrs), &it.Attributes); err != nil {
			return errs.Internal(fmt.Errorf("order %d item %d attributes: %w", orderID, it.SKUID, err))
		}
		byID[orderID].Items = append(byID[orderID].Items, it)
	}
	if err := rows.Err(); err != nil {
		return errs.Internal(fmt.Errorf("load order items: %w", err))
	}
	return nil
}

// ByKey implements biz.Repo.
func (r *Repo) ByKey(ctx context.Context, user int64, key string) (*biz.Order, error) {
	return r.one(ctx, `SELECT `+cols+` FROM orders WHERE user_id = ? AND idempotency_key = ?`, user, key)
}

// Get implements biz.Repo.
func (r *Repo) Get(ctx context.Context, orderID int64) (*biz.Order, error) {
	return r.one(ctx, `SELECT `+cols+` FROM orders WHERE id = ?`, orderID)
}

// List implements biz.Repo.
func (r *Repo) List(ctx context.Context, user, before int64, limit int) ([]*biz.Order, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+cols+` FROM orders WHERE user_id = ? AND id < ?
		ORDER BY id DESC LIMIT ?`, user, before, limit)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("list orders: %w", err))
	}
	var out []*biz.Order
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, errs.Internal(fmt.Errorf("list orders: %w", err))
		}
		out = append(out, o)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("list orders: %w", err))
	}
	if err := r.attachItems(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Transition implements biz.Repo.
func (r *Repo) Transition(ctx context.Context, orderID int64, from []biz.State, c biz.Change) (bool, error) {
	set := `state = ?, updated_at = ?`
	args := []any{string(c.To), c.At.UnixMilli()}
	if c.PaymentID != 0 {
		set += `, payment_id = ?`
		args = append(args, c.PaymentID)
	}
	if c.CloseReason != "" {
		set += `, close_reason = ?, close_detail = ?`
		args = append(args, c.CloseReason, c.CloseDetail)
	}
	if c.Settle {
		set += `, settle_pending = 1`
	}
	states := make([]string, len(from))
	for i, s := range from {
		states[i] = string(s)
	}
	marks, stateArgs := sqldb.In(states)
	where := ` WHERE id = ? AND state IN (` + marks + `)`
	args = append(append(args, orderID), stateArgs...)
	if !c.ExpiredBy.IsZero() {
		where += ` AND (expires_at <= ? OR state = 'CREATING' AND updated_at <= ?)`
		args = append(args, c.ExpiredBy.UnixMilli(), creatingCutoff(c.CreatingBefore))
	}
	res, err := r.db.ExecContext(ctx, `UPDATE orders SET `+set+where, args...)
	if err != nil {
		return false, errs.Internal(fmt.Errorf("order %d to %s: %w", orderID, c.To, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errs.Internal(fmt.Errorf("order %d to %s: %w", orderID, c.To, err))
	}
	return n == 1, nil
}

// creatingCutoff is the updated_at at or before which a CREATING order is stuck: before, or
// -1 (no order is that old) when before is zero, the create timeout being off.
func creatingCutoff(before time.Time) int64 {
	if before.IsZero() {
		return -1
	}
	return before.UnixMilli()
}

// Settled implements biz.Repo.
func (r *Repo) Settled(ctx context.Context, orderID int64) error {
	if _, err := r.db.ExecContext(ctx, `UPDATE orders SET settle_pending = 0 WHERE id = ?`, orderID); err != nil {
		return errs.Internal(fmt.Errorf("order %d settled: %w", orderID, err))
	}
	return nil
}

// Expired implements biz.Repo.
func (r *Repo) Expired(ctx context.Context, now, creatingBefore time.Time, limit int) ([]int64, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id FROM orders WHERE state IN ('CREATING', 'PENDING_PAYMENT')
		AND (expires_at <= ? OR state = 'CREATING' AND updated_at <= ?) ORDER BY expires_at LIMIT ?`,
		now.UnixMilli(), creatingCutoff(creatingBefore), limit)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("expired orders: %w", err))
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var orderID int64
		if err := rows.Scan(&orderID); err != nil {
			return nil, errs.Internal(fmt.Errorf("expired orders: %w", err))
		}
		out = append(out, orderID)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("expired orders: %w", err))
	}
	return out, nil
}

// Unsettled implements biz.Repo.
func (r *Repo) Unsettled(ctx context.Context, before time.Time, limit int) (map[int64]biz.State, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, state FROM orders WHERE settle_pending = 1 AND updated_at <= ?
		ORDER BY updated_at LIMIT ?`, before.UnixMilli(), limit)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("unsettled orders: %w", err))
	}
	defer rows.Close()
	out := map[int64]biz.State{}
	for rows.Next() {
		var orderID int64
		var state string
		if err := rows.Scan(&orderID, &state); err != nil {
			return nil, errs.Internal(fmt.Errorf("unsettled orders: %w", err))
		}
		out[orderID] = biz.State(state)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("unsettled orders: %w", err))
	}
	return out, nil
}
