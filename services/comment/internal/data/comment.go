// Package data implements the comment service's repository on kit/data SQL.
//
// Every change runs in one transaction, and rows are locked root first: a reply's insert
// and a reply's delete update the root's reply count before (delete) or right after
// (insert, whose new row nobody else can wait on) touching the reply, and a root's delete
// hides the root, then its replies. So on PostgreSQL a reply written while its root is
// deleted either lands before the delete, which then hides it, or finds the root deleted
// and is written hidden; and no two of these deadlock.
package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/comment/internal/biz"
)

// Repo implements biz.Repo.
type Repo struct{ db *sqldb.DB }

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

const columns = `id, note_id, user_id, root_id, parent_id, body, reply_count, created_at, deleted_at`

type scanner interface{ Scan(dest ...any) error }

func scan(s scanner) (*biz.Comment, error) {
	var c biz.Comment
	err := s.Scan(&c.ID, &c.NoteID, &c.UserID, &c.RootID, &c.ParentID, &c.Body, &c.ReplyCount, &c.CreatedAt, &c.DeletedAt)
	return &c, err
}

func list(rows *sql.Rows, err error) ([]*biz.Comment, error) {
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("list comments: %w", err))
	}
	defer rows.Close()
	var out []*biz.Comment
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, errs.Internal(fmt.Errorf("list comments: %w", err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("list comments: %w", err))
	}
	return out, nil
}

// Insert implements biz.Repo.
func (r *Repo) Insert(ctx context.Context, c *biz.Comment) (bool, error) {
	var inserted bool
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO comments (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0)
			ON CONFLICT (id) DO NOTHING`, c.ID, c.NoteID, c.UserID, c.RootID, c.ParentID, c.Body, c.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert comment %d: %w", c.ID, err)
		}
		if inserted, err = affected(res); err != nil || !inserted || c.IsRoot() {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE comments SET reply_count = reply_count + 1 WHERE id = ? AND deleted_at = 0`, c.RootID)
		if err != nil {
			return fmt.Errorf("count reply of %d: %w", c.RootID, err)
		}
		if visible, err := affected(res); err != nil || visible {
			return err
		}
		// The root is deleted: the reply is hidden with it, as if it had been there.
		if _, err := tx.ExecContext(ctx, `UPDATE comments SET deleted_at = (SELECT deleted_at FROM comments WHERE id = ?)
			WHERE id = ?`, c.RootID, c.ID); err != nil {
			return fmt.Errorf("hide reply %d: %w", c.ID, err)
		}
		return nil
	})
	if err != nil {
		return false, errs.Internal(err)
	}
	return inserted, nil
}

func affected(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("rows affected: %w", err)
	}
	return n > 0, nil
}

// Get implements biz.Repo.
func (r *Repo) Get(ctx context.Context, id int64) (*biz.Comment, error) {
	c, err := scan(r.db.QueryRowContext(ctx, `SELECT `+columns+` FROM comments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, biz.ErrCommentNotFound
	}
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("get comment %d: %w", id, err))
	}
	return c, nil
}

// errHidden rolls back a delete that found the comment already hidden.
var errHidden = errors.New("already hidden")

// Delete implements biz.Repo.
func (r *Repo) Delete(ctx context.Context, c *biz.Comment, at int64) ([]int64, error) {
	var hidden []int64
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if !c.IsRoot() {
			// The root first (see the package comment); undone below if the reply is hidden.
			if _, err := tx.ExecContext(ctx, `UPDATE comments SET reply_count = reply_count - 1 WHERE id = ?`, c.RootID); err != nil {
				return fmt.Errorf("uncount reply of %d: %w", c.RootID, err)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE comments SET deleted_at = ? WHERE id = ? AND deleted_at = 0`, at, c.ID)
		if err != nil {
			return fmt.Errorf("delete comment %d: %w", c.ID, err)
		}
		ok, err := affected(res)
		if err != nil {
			return err
		}
		if !ok {
			return errHidden
		}
		hidden = append(hidden, c.ID)
		if !c.IsRoot() {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `UPDATE comments SET deleted_at = ? WHERE root_id = ? AND deleted_at = 0 RETURNING id`, at, c.ID)
		if err != nil {
			return fmt.Errorf("hide replies of %d: %w", c.ID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("hide replies of %d: %w", c.ID, err)
			}
			hidden = append(hidden, id)
		}
		return rows.Err()
	})
	if errors.Is(err, errHidden) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.Internal(err)
	}
	return hidden, nil
}

// ListRoots implements biz.Repo.
func (r *Repo) ListRoots(ctx context.Context, note int64, order biz.Order, p biz.RootPos, limit int) ([]*biz.Comment, error) {
	if order == biz.New {
		return list(r.db.QueryContext(ctx, `SELECT `+columns+` FROM comments
			WHERE note_id = ? AND root_id = 0 AND deleted_at = 0 AND id < ?
			ORDER BY id DESC LIMIT ?`, note, p.ID, limit))
	}
	return list(r.db.QueryContext(ctx, `SELECT `+columns+` FROM comments
		WHERE note_id = ? AND root_id = 0 AND deleted_at = 0 AND (reply_count < ? OR (reply_count = ? AND id < ?))
		ORDER BY reply_count DESC, id DESC LIMIT ?`, note, p.Replies, p.Replies, p.ID, limit))
}

// FirstReplies implements biz.Repo with one windowed query.
func (r *Repo) FirstReplies(ctx context.Context, roots []int64, n int) (map[int64][]*biz.Comment, error) {
	out := make(map[int64][]*biz.Comment, len(roots))
	if len(roots) == 0 || n <= 0 {
		return out, nil
	}
	marks, args := sqldb.In(roots)
	replies, err := list(r.db.QueryContext(ctx, `SELECT `+columns+` FROM (
			SELECT `+columns+`, ROW_NUMBER() OVER (PARTITION BY root_id ORDER BY id) AS n
			FROM comments WHERE root_id IN (`+marks+`) AND deleted_at = 0) ranked
		WHERE n <= ? ORDER BY root_id, id`, append(args, n)...))
	if err != nil {
		return nil, err
	}
	for _, c := range replies {
		out[c.RootID] = append(out[c.RootID], c)
	}
	return out, nil
}

// ListReplies implements biz.Repo.
func (r *Repo) ListReplies(ctx context.Context, root, after int64, limit int) ([]*biz.Comment, error) {
	return list(r.db.QueryContext(ctx, `SELECT `+columns+` FROM comments
		WHERE root_id = ? AND deleted_at = 0 AND id > ? ORDER BY id LIMIT ?`, root, after, limit))
}

// needsSync is the condition of a comment whose counter is behind; it matches the partial
// index comments_unsynced.
const needsSync = `((counted = 0 AND deleted_at = 0) OR (counted = 1 AND deleted_at <> 0))`

// ClaimCount implements biz.CountLedger with one conditional update.
func (r *Repo) ClaimCount(ctx context.Context, id, now, lease int64) (int64, int32, bool, error) {
	var note int64
	var counted int
	err := r.db.QueryRowContext(ctx, `UPDATE comments SET count_lease = ?
		WHERE id = ? AND count_lease < ? AND `+needsSync+` RETURNING note_id, counted`, lease, id, now).Scan(&note, &counted)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, errs.Internal(fmt.Errorf("claim count of %d: %w", id, err))
	}
	if counted == 0 {
		return note, 1, true, nil
	}
	return note, -1, true, nil
}

// SettleCount implements biz.CountLedger.
func (r *Repo) SettleCount(ctx context.Context, id, lease int64, counted bool) (bool, error) {
	c := 0
	if counted {
		c = 1
	}
	res, err := r.db.ExecContext(ctx, `UPDATE comments SET counted = ?, count_lease = 0 WHERE id = ? AND count_lease = ?`, c, id, lease)
	if err != nil {
		return false, errs.Internal(fmt.Errorf("settle count of %d: %w", id, err))
	}
	held, err := affected(res)
	if err != nil {
		return false, errs.Internal(err)
	}
	return held, nil
}

// ReleaseCount implements biz.CountLedger.
func (r *Repo) ReleaseCount(ctx context.Context, id, lease int64) error {
	if _, err := r.db.ExecContext(ctx, `UPDATE comments SET count_lease = 0 WHERE id = ? AND count_lease = ?`, id, lease); err != nil {
		return errs.Internal(fmt.Errorf("release count of %d: %w", id, err))
	}
	return nil
}

// UnsyncedCounts implements biz.CountLedger.
func (r *Repo) UnsyncedCounts(ctx context.Context, now int64, limit int) ([]int64, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id FROM comments WHERE `+needsSync+` AND count_lease < ? ORDER BY id LIMIT ?`, now, limit)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("unsynced counts: %w", err))
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, errs.Internal(fmt.Errorf("unsynced counts: %w", err))
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("unsynced counts: %w", err))
	}
	return ids, nil
}
