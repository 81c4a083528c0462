// Package data implements the payment service's repository on kit/data SQL.
//
// The unique index on order_id makes a payment per order at most one, whatever races. A
// callback is applied by one conditional UPDATE ... WHERE state = 'PENDING', so of replayed
// or racing callbacks exactly one changes the payment.
package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/payment/internal/biz"
)

// Repo implements biz.Repo.
type Repo struct{ db *sqldb.DB }

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

const cols = `id, order_id, user_id, amount, currency, state, provider_ref, charge_sent, mark_paid_owed,
	created_at, updated_at`

func scan(row interface{ Scan(...any) error }) (*biz.Payment, error) {
	p := &biz.Payment{}
	var state string
	var sent, owed int
	var created, updated int64
	if err := row.Scan(&p.ID, &p.OrderID, &p.UserID, &p.Amount, &p.Currency, &state, &p.ProviderRef, &sent, &owed,
		&created, &updated); err != nil {
		return nil, err
	}
	p.State, p.ChargeSent, p.MarkPaidOwed = biz.State(state), sent == 1, owed == 1
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return p, nil
}

func (r *Repo) one(ctx context.Context, query string, args ...any) (*biz.Payment, error) {
	p, err := scan(r.db.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, biz.ErrNotFound
	}
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("load payment: %w", err))
	}
	return p, nil
}

// Insert implements biz.Repo.
func (r *Repo) Insert(ctx context.Context, p *biz.Payment) (*biz.Payment, bool, error) {
	res, err := r.db.ExecContext(ctx, `INSERT INTO payments (id, order_id, user_id, amount, currency, state,
		created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
		p.ID, p.OrderID, p.UserID, p.Amount, p.Currency, string(p.State), p.CreatedAt.UnixMilli(), p.UpdatedAt.UnixMilli())
	if err != nil {
		return nil, false, errs.Internal(fmt.Errorf("insert payment: %w", err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return p, true, nil
	}
	stored, err := r.ByOrder(ctx, p.OrderID)
	return stored, false, err
}

// ByOrder implements biz.Repo.
func (r *Repo) ByOrder(ctx context.Context, orderID int64) (*biz.Payment, error) {
	return r.one(ctx, `SELECT `+cols+` FROM payments WHERE order_id = ?`, orderID)
}

// Get implements biz.Repo.
func (r *Repo) Get(ctx context.Context, paymentID int64) (*biz.Payment, error) {
	return r.one(ctx, `SELECT `+cols+` FROM payments WHERE id = ?`, paymentID)
}

func (r *Repo) exec(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := r.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, errs.Internal(fmt.Errorf("%s: %w", what, err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.Internal(fmt.Errorf("%s: %w", what, err))
	}
	return n, nil
}

// ChargeSent implements biz.Repo. It leaves updated_at alone: it is not a change a caller
// sees.
func (r *Repo) ChargeSent(ctx context.Context, paymentID int64) error {
	_, err := r.exec(ctx, "charge sent", `UPDATE payments SET charge_sent = 1 WHERE id = ?`, paymentID)
	return err
}

// Resolve implements biz.Repo.
func (r *Repo) Resolve(ctx context.Context, paymentID int64, to biz.State, ref string, at time.Time) (bool, error) {
	owed := 0
	if to == biz.StateSucceeded {
		owed = 1
	}
	n, err := r.exec(ctx, "resolve payment", `UPDATE payments SET state = ?, provider_ref = ?, mark_paid_owed = ?,
		charge_sent = 1, updated_at = ? WHERE id = ? AND state = 'PENDING'`, string(to), ref, owed, at.UnixMilli(), paymentID)
	return n == 1, err
}

// MarkPaidDone implements biz.Repo.
func (r *Repo) MarkPaidDone(ctx context.Context, paymentID int64, refund bool, at time.Time) error {
	var err error
	if refund {
		_, err = r.exec(ctx, "refund required", `UPDATE payments SET mark_paid_owed = 0, state = 'REFUND_REQUIRED',
			updated_at = ? WHERE id = ? AND mark_paid_owed = 1`, at.UnixMilli(), paymentID)
	} else {
		_, err = r.exec(ctx, "mark paid done", `UPDATE payments SET mark_paid_owed = 0 WHERE id = ?`, paymentID)
	}
	return err
}

// Owed implements biz.Repo.
func (r *Repo) Owed(ctx context.Context, before time.Time, limit int) ([]*biz.Payment, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+cols+` FROM payments
		WHERE (mark_paid_owed = 1 OR (state = 'PENDING' AND charge_sent = 0)) AND updated_at <= ?
		ORDER BY updated_at LIMIT ?`, before.UnixMilli(), limit)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("owed payments: %w", err))
	}
	defer rows.Close()
	var out []*biz.Payment
	for rows.Next() {
		p, err := scan(rows)
		if err != nil {
			return nil, errs.Internal(fmt.Errorf("owed payments: %w", err))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("owed payments: %w", err))
	}
	return out, nil
}
