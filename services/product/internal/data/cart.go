package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/product/internal/biz"
)

// SetItem implements biz.CartRepo. The size check and the write share a transaction; on
// PostgreSQL two adds racing for the last free place can both pass it, so MaxCartItems is
// a limit against abuse, not an exact bound.
func (r *Repo) SetItem(ctx context.Context, user, sku, quantity int64, at time.Time) error {
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM skus k JOIN spus s ON s.id = k.spu_id
			WHERE k.id = ? AND s.deleted_at = 0`, sku).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return biz.ErrSKUNotFound
		}
		if err != nil {
			return fmt.Errorf("check sku %d: %w", sku, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE cart_items SET quantity = ?, updated_at = ? WHERE user_id = ? AND sku_id = ?`,
			quantity, at.UnixMilli(), user, sku)
		if err != nil {
			return fmt.Errorf("update cart item: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var count int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM cart_items WHERE user_id = ?`, user).Scan(&count); err != nil {
			return fmt.Errorf("count cart: %w", err)
		}
		if count >= biz.MaxCartItems {
			return biz.ErrCartFull
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO cart_items (user_id, sku_id, quantity, added_at, updated_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, sku_id) DO UPDATE SET quantity = excluded.quantity,
			updated_at = excluded.updated_at`, user, sku, quantity, at.UnixMilli(), at.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert cart item: %w", err)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// RemoveItems implements biz.CartRepo.
func (r *Repo) RemoveItems(ctx context.Context, user int64, skus []int64) error {
	marks, args := sqldb.In(skus)
	if _, err := r.db.ExecContext(ctx, `DELETE FROM cart_items WHERE user_id = ? AND sku_id IN (`+marks+`)`,
		append([]any{user}, args...)...); err != nil {
		return errs.Internal(fmt.Errorf("remove cart items: %w", err))
	}
	return nil
}

// Items implements biz.CartRepo.
func (r *Repo) Items(ctx context.Context, user int64) ([]biz.CartItem, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT sku_id, quantity, added_at FROM cart_items WHERE user_id = ?
		ORDER BY added_at DESC, sku_id DESC LIMIT ?`, user, biz.MaxCartItems*2)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("cart: %w", err))
	}
	defer rows.Close()
	var out []biz.CartItem
	for rows.Next() {
		var it biz.CartItem
		var added int64
		if err := rows.Scan(&it.SKUID, &it.Quantity, &added); err != nil {
			return nil, errs.Internal(fmt.Errorf("cart: %w", err))
		}
		it.AddedAt = time.UnixMilli(added).UTC()
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("cart: %w", err))
	}
	return out, nil
}
