// Package data implements the product service's repositories on kit/data SQL.
//
// A change to a product and the outbox row describing it commit in one transaction, so an
// event is published if and only if its change happened. Updates and deletes are
// conditional on the version read before them (optimistic locking), so concurrent changes
// never interleave within one product.
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
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/services/product/internal/biz"
)

// Repo implements biz.Repo, biz.OutboxStore and biz.CartRepo.
type Repo struct{ db *sqldb.DB }

var (
	_ biz.Repo        = (*Repo)(nil)
	_ biz.OutboxStore = (*Repo)(nil)
	_ biz.CartRepo    = (*Repo)(nil)
)

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

func writeOutbox(ctx context.Context, tx *sqldb.Tx, ev *biz.Outbound, at time.Time) error {
	if ev == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, subject, payload, created_at) VALUES (?, ?, ?, ?)`,
		id.New(), ev.Subject, string(ev.Payload), at.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Create implements biz.Repo.
func (r *Repo) Create(ctx context.Context, p *biz.SPU, ev *biz.Outbound) (*biz.SPU, error) {
	tags, err := json.Marshal(p.Tags)
	if err != nil {
		return nil, errs.Internal(err)
	}
	created := true
	err = r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO spus (id, title, description, tags, min_price, currency, version,
			idempotency_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			p.ID, p.Title, p.Description, string(tags), p.MinPrice, p.Currency, p.Version, nullable(p.IdempotencyKey),
			p.CreatedAt.UnixMilli(), p.UpdatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert spu: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			created = false // the idempotency key is taken: the first creation stands
			return err
		}
		values := make([]string, 0, len(p.SKUs))
		args := make([]any, 0, 6*len(p.SKUs))
		for i, s := range p.SKUs {
			attrs, err := json.Marshal(s.Attributes)
			if err != nil {
				return err
			}
			values = append(values, "(?, ?, ?, ?, ?, ?)")
			args = append(args, s.ID, p.ID, i, string(attrs), s.Price, s.Currency)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO skus (id, spu_id, position, attributes, price, currency) VALUES `+
			strings.Join(values, ", "), args...); err != nil {
			return fmt.Errorf("insert skus: %w", err)
		}
		return writeOutbox(ctx, tx, ev, p.UpdatedAt)
	})
	if err != nil {
		return nil, fail(err)
	}
	if created {
		return p, nil
	}
	var spuID int64
	err = r.db.QueryRowContext(ctx, `SELECT id FROM spus WHERE idempotency_key = ?`, p.IdempotencyKey).Scan(&spuID)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("spu by idempotency key: %w", err))
	}
	return r.load(ctx, r.db, spuID, true)
}

const spuCols = `id, title, description, tags, min_price, currency, version, idempotency_key, created_at, updated_at`

func scanSPU(row interface{ Scan(...any) error }) (*biz.SPU, error) {
	p := &biz.SPU{}
	var tags string
	var idem sql.NullString
	var created, updated int64
	if err := row.Scan(&p.ID, &p.Title, &p.Description, &tags, &p.MinPrice, &p.Currency, &p.Version, &idem,
		&created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &p.Tags); err != nil {
		return nil, fmt.Errorf("spu %d tags: %w", p.ID, err)
	}
	p.IdempotencyKey = idem.String
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return p, nil
}

// load reads a product with its SKUs; ErrNotFound when absent, or deleted unless
// withDeleted.
func (r *Repo) load(ctx context.Context, q sqldb.Querier, spuID int64, withDeleted bool) (*biz.SPU, error) {
	query := `SELECT ` + spuCols + ` FROM spus WHERE id = ?`
	if !withDeleted {
		query += ` AND deleted_at = 0`
	}
	p, err := scanSPU(q.QueryRowContext(ctx, query, spuID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, biz.ErrNotFound
	}
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("load spu %d: %w", spuID, err))
	}
	if err := r.attachSKUs(ctx, q, []*biz.SPU{p}); err != nil {
		return nil, err
	}
	return p, nil
}

// attachSKUs fills the SKUs of products in one query.
func (r *Repo) attachSKUs(ctx context.Context, q sqldb.Querier, ps []*biz.SPU) error {
	if len(ps) == 0 {
		return nil
	}
	byID := make(map[int64]*biz.SPU, len(ps))
	ids := make([]int64, len(ps))
	for i, p := range ps {
		byID[p.ID], ids[i] = p, p.ID
	}
	marks, args := sqldb.In(ids)
	rows, err := q.QueryContext(ctx, `SELECT id, spu_id, attributes, price, currency FROM skus
		WHERE spu_id IN (`+marks+`) ORDER BY spu_id, position`, args...)
	if err != nil {
		return errs.Internal(fmt.Errorf("load skus: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var s biz.SKU
		var attrs string
		if err := rows.Scan(&s.ID, &s.SPUID, &attrs, &s.Price, &s.Currency); err != nil {
			return errs.Internal(fmt.Errorf("load skus: %w", err))
		}
		if err := json.Unmarshal([]byte(attrs), &s.Attributes); err != nil {
			return errs.Internal(fmt.Errorf("sku %d attributes: %w", s.ID, err))
		}
		p := byID[s.SPUID]
		s.Title = p.Title
		p.SKUs = append(p.SKUs, s)
	}
	if err := rows.Err(); err != nil {
		return errs.Internal(fmt.Errorf("load skus: %w", err))
	}
	return nil
}

// Get implements biz.Repo.
func (r *Repo) Get(ctx context.Context, spuID int64) (*biz.SPU, error) {
	return r.load(ctx, r.db, spuID, false)
}

// List implements biz.Repo.
func (r *Repo) List(ctx context.Context, before int64, limit int) ([]*biz.SPU, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+spuCols+` FROM spus WHERE id < ? AND deleted_at = 0
		ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("list spus: %w", err))
	}
	var out []*biz.SPU
	for rows.Next() {
		p, err := scanSPU(rows)
		if err != nil {
			rows.Close()
			return nil, errs.Internal(fmt.Errorf("list spus: %w", err))
		}
		out = append(out, p)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("list spus: %w", err))
	}
	if err := r.attachSKUs(ctx, r.db, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Update implements biz.Repo.
func (r *Repo) Update(ctx context.Context, p *biz.SPU, prev int64, ev *biz.Outbound) (bool, error) {
	tags, err := json.Marshal(p.Tags)
	if err != nil {
		return false, errs.Internal(err)
	}
	ok := false
	err = r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE spus SET title = ?, description = ?, tags = ?, min_price = ?, version = ?,
			updated_at = ? WHERE id = ? AND version = ? AND deleted_at = 0`,
			p.Title, p.Description, string(tags), p.MinPrice, p.Version, p.UpdatedAt.UnixMilli(), p.ID, prev)
		if err != nil {
			return fmt.Errorf("update spu: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err // lost to another change: the caller reads again
		}
		// The version check above holds the row, so these prices belong to this update.
		for _, s := range p.SKUs {
			if _, err := tx.ExecContext(ctx, `UPDATE skus SET price = ? WHERE id = ? AND spu_id = ?`, s.Price, s.ID, p.ID); err != nil {
				return fmt.Errorf("update sku %d: %w", s.ID, err)
			}
		}
		ok = true
		return writeOutbox(ctx, tx, ev, p.UpdatedAt)
	})
	if err != nil {
		return false, fail(err)
	}
	return ok, nil
}

// Head implements biz.Repo.
func (r *Repo) Head(ctx context.Context, spuID int64) (int64, bool, error) {
	var version, deletedAt int64
	err := r.db.QueryRowContext(ctx, `SELECT version, deleted_at FROM spus WHERE id = ?`, spuID).Scan(&version, &deletedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, biz.ErrNotFound
	}
	if err != nil {
		return 0, false, errs.Internal(fmt.Errorf("spu %d: %w", spuID, err))
	}
	return version, deletedAt > 0, nil
}

// Delete implements biz.Repo.
func (r *Repo) Delete(ctx context.Context, spuID, prev int64, at time.Time, version int64, ev *biz.Outbound) (bool, error) {
	ok := false
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE spus SET deleted_at = ?, updated_at = ?, version = ?
			WHERE id = ? AND version = ? AND deleted_at = 0`, at.UnixMilli(), at.UnixMilli(), version, spuID, prev)
		if err != nil {
			return fmt.Errorf("delete spu: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		ok = true
		return writeOutbox(ctx, tx, ev, at)
	})
	if err != nil {
		return false, fail(err)
	}
	return ok, nil
}

// GetSKUs implements biz.Repo.
func (r *Repo) GetSKUs(ctx context.Context, ids []int64) (map[int64]biz.SKU, error) {
	marks, args := sqldb.In(ids)
	rows, err := r.db.QueryContext(ctx, `SELECT k.id, k.spu_id, s.title, k.attributes, k.price, k.currency
		FROM skus k JOIN spus s ON s.id = k.spu_id WHERE k.id IN (`+marks+`) AND s.deleted_at = 0`, args...)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("get skus: %w", err))
	}
	defer rows.Close()
	out := make(map[int64]biz.SKU, len(ids))
	for rows.Next() {
		var s biz.SKU
		var attrs string
		if err := rows.Scan(&s.ID, &s.SPUID, &s.Title, &attrs, &s.Price, &s.Currency); err != nil {
			return nil, errs.Internal(fmt.Errorf("get skus: %w", err))
		}
		if err := json.Unmarshal([]byte(attrs), &s.Attributes); err != nil {
			return nil, errs.Internal(fmt.Errorf("sku %d attributes: %w", s.ID, err))
		}
		out[s.ID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("get skus: %w", err))
	}
	return out, nil
}

// Pending implements biz.OutboxStore.
func (r *Repo) Pending(ctx context.Context, limit int) ([]biz.Message, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, subject, payload FROM outbox ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []biz.Message
	for rows.Next() {
		var m biz.Message
		var payload string
		if err := rows.Scan(&m.ID, &m.Subject, &payload); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		m.Payload = []byte(payload)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// Done implements biz.OutboxStore.
func (r *Repo) Done(ctx context.Context, ids []int64) error {
	marks, args := sqldb.In(ids)
	if _, err := r.db.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (`+marks+`)`, args...); err != nil {
		return fmt.Errorf("clear outbox: %w", err)
	}
	return nil
}
