// Package data implements the note service's repository on kit/data SQL.
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
	"github.com/redline-dev/redline/services/note/internal/biz"
)

// Repo implements biz.Repo.
type Repo struct{ db *sqldb.DB }

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

const cols = `id, author_id, title, body, tags, media, idempotency_key, created_at`

// Create implements biz.Repo. The unique (author_id, idempotency_key) index makes a repeat
// a no-op, after which the first note is read back. The note and its tag index are written
// in one transaction.
func (r *Repo) Create(ctx context.Context, n *biz.Note) (*biz.Note, error) {
	tags, _ := json.Marshal(nonNil(n.Tags))
	media, _ := json.Marshal(nonNil(n.Media))
	var idem any
	if n.IdempotencyKey != "" {
		idem = n.IdempotencyKey
	}
	inserted := false
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notes (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
			n.ID, n.AuthorID, n.Title, n.Body, string(tags), string(media), idem, n.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert note: %w", err)
		}
		if rows, _ := res.RowsAffected(); rows != 1 {
			return nil
		}
		inserted = true
		return writeTags(ctx, tx, n.ID, n.Tags)
	})
	if err != nil {
		return nil, errs.Internal(err)
	}
	if inserted {
		return n, nil
	}
	return scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM notes WHERE author_id = ? AND idempotency_key = ?`,
		n.AuthorID, n.IdempotencyKey))
}

func writeTags(ctx context.Context, tx *sqldb.Tx, noteID int64, tags []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM note_tags WHERE note_id = ?`, noteID); err != nil {
		return fmt.Errorf("clear tags: %w", err)
	}
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO note_tags (tag, note_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, t, noteID); err != nil {
			return fmt.Errorf("insert tag: %w", err)
		}
	}
	return nil
}

// Update implements biz.Repo.
func (r *Repo) Update(ctx context.Context, n *biz.Note) error {
	tags, _ := json.Marshal(nonNil(n.Tags))
	media, _ := json.Marshal(nonNil(n.Media))
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notes SET title = ?, body = ?, tags = ?, media = ?
			WHERE id = ? AND deleted_at = 0`, n.Title, n.Body, string(tags), string(media), n.ID)
		if err != nil {
			return fmt.Errorf("update note: %w", err)
		}
		if rows, _ := res.RowsAffected(); rows != 1 {
			return biz.ErrNotFound // deleted meanwhile
		}
		return writeTags(ctx, tx, n.ID, n.Tags)
	})
	if errors.Is(err, biz.ErrNotFound) {
		return biz.ErrNotFound
	}
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}

// Delete implements biz.Repo: a soft delete; the tag index entries go with it.
func (r *Repo) Delete(ctx context.Context, id int64, at time.Time) (bool, error) {
	changed := false
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notes SET deleted_at = ? WHERE id = ? AND deleted_at = 0`, at.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("delete note: %w", err)
		}
		if rows, _ := res.RowsAffected(); rows == 1 {
			changed = true
			_, err = tx.ExecContext(ctx, `DELETE FROM note_tags WHERE note_id = ?`, id)
		}
		return err
	})
	if err != nil {
		return false, errs.Internal(err)
	}
	return changed, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scan(row interface{ Scan(...any) error }) (*biz.Note, error) {
	var n biz.Note
	var tags, media string
	var idem sql.NullString
	var created int64
	if err := row.Scan(&n.ID, &n.AuthorID, &n.Title, &n.Body, &tags, &media, &idem, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, biz.ErrNotFound
		}
		return nil, errs.Internal(fmt.Errorf("scan note: %w", err))
	}
	if err := errors.Join(json.Unmarshal([]byte(tags), &n.Tags), json.Unmarshal([]byte(media), &n.Media)); err != nil {
		return nil, errs.Internal(fmt.Errorf("note %d: corrupt tags or media: %w", n.ID, err))
	}
	n.IdempotencyKey = idem.String
	n.CreatedAt = time.UnixMilli(created).UTC()
	return &n, nil
}

// Get implements biz.Repo. A deleted note is not found.
func (r *Repo) Get(ctx context.Context, id int64) (*biz.Note, error) {
	return scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM notes WHERE id = ? AND deleted_at = 0`, id))
}

// ListByAuthor implements biz.Repo.
func (r *Repo) ListByAuthor(ctx context.Context, author, before int64, limit int) ([]*biz.Note, error) {
	return r.list(ctx, `SELECT `+cols+` FROM notes WHERE author_id = ? AND id < ? AND deleted_at = 0
		ORDER BY id DESC LIMIT ?`, author, before, limit)
}

// ListByTag implements biz.Repo.
func (r *Repo) ListByTag(ctx context.Context, tag string, before int64, limit int) ([]*biz.Note, error) {
	return r.list(ctx, `SELECT `+prefixed("n.", cols)+` FROM note_tags t JOIN notes n ON n.id = t.note_id
		WHERE t.tag = ? AND t.note_id < ? AND n.deleted_at = 0 ORDER BY t.note_id DESC LIMIT ?`, tag, before, limit)
}

func prefixed(p, columns string) string {
	parts := strings.Split(columns, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

func (r *Repo) list(ctx context.Context, query string, args ...any) ([]*biz.Note, error) {
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("list notes: %w", err))
	}
	defer rows.Close()
	var out []*biz.Note
	for rows.Next() {
		n, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("list notes: %w", err))
	}
	return out, nil
}
