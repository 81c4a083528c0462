// Package data implements the note service's repository on kit/data SQL.
package data

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
// a no-op, after which the first note is read back.
func (r *Repo) Create(ctx context.Context, n *biz.Note) (*biz.Note, error) {
	tags, _ := json.Marshal(nonNil(n.Tags))
	media, _ := json.Marshal(nonNil(n.Media))
	var idem any
	if n.IdempotencyKey != "" {
		idem = n.IdempotencyKey
	}
	res, err := r.db.ExecContext(ctx, `INSERT INTO notes (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		n.ID, n.AuthorID, n.Title, n.Body, string(tags), string(media), idem, n.CreatedAt.UnixMilli())
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("insert note: %w", err))
	}
	if rows, _ := res.RowsAffected(); rows == 1 {
		return n, nil
	}
	return scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM notes WHERE author_id = ? AND idempotency_key = ?`,
		n.AuthorID, n.IdempotencyKey))
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

// Get implements biz.Repo.
func (r *Repo) Get(ctx context.Context, id int64) (*biz.Note, error) {
	return scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM notes WHERE id = ?`, id))
}

// ListByAuthor implements biz.Repo.
func (r *Repo) ListByAuthor(ctx context.Context, author, before int64, limit int) ([]*biz.Note, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+cols+` FROM notes WHERE author_id = ? AND id < ?
		ORDER BY id DESC LIMIT ?`, author, before, limit)
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
