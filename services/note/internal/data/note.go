// Package data implements the note service's repository and outbox on kit/data SQL.
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
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/note/internal/biz"
)

// Repo implements biz.Repo, and biz.Outbox over the note_outbox table.
type Repo struct {
	db     *sqldb.DB
	events bool
	reads  *reads // nil: reads go straight to the database
}

var (
	_ biz.Repo   = (*Repo)(nil)
	_ biz.Outbox = (*Repo)(nil)
)

// NewRepo returns a repository over db. With events, every change also writes its
// event.NoteEvent to the outbox, in the change's transaction.
func NewRepo(db *sqldb.DB, events bool) *Repo { return &Repo{db: db, events: events} }

const cols = `id, author_id, title, body, tags, media, product_ids, idempotency_key, created_at, version`

// Create implements biz.Repo. The unique (author_id, idempotency_key) index makes a repeat
// a no-op, after which the first note is read back. The note, its tag index and its event
// are written in one transaction.
func (r *Repo) Create(ctx context.Context, n *biz.Note) (*biz.Note, error) {
	tags, _ := json.Marshal(nonNil(n.Tags))
	media, _ := json.Marshal(nonNil(n.Media))
	products, _ := json.Marshal(nonNil(n.ProductIDs))
	var idem any
	if n.IdempotencyKey != "" {
		idem = n.IdempotencyKey
	}
	if err := r.creating(ctx, n.ID); err != nil {
		return nil, err
	}
	inserted := false
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notes (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
			n.ID, n.AuthorID, n.Title, n.Body, string(tags), string(media), string(products), idem,
			n.CreatedAt.UnixMilli(), n.Version)
		if err != nil {
			return fmt.Errorf("insert note: %w", err)
		}
		if rows, _ := res.RowsAffected(); rows != 1 {
			return nil
		}
		inserted = true
		if err := writeTags(ctx, tx, n.ID, n.Tags); err != nil {
			return err
		}
		return r.writeEvent(ctx, tx, noteEvent(event.Created, n))
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

// nextVersion is the SQL of a note's next version given the change time twice: the change
// time, or one more than the current version when that is not later.
const nextVersion = `CASE WHEN version < ? THEN ? ELSE version + 1 END`

// Update implements biz.Repo.
func (r *Repo) Update(ctx context.Context, n *biz.Note, at time.Time) error {
	tags, _ := json.Marshal(nonNil(n.Tags))
	media, _ := json.Marshal(nonNil(n.Media))
	products, _ := json.Marshal(nonNil(n.ProductIDs))
	ms := at.UnixMilli()
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE notes SET title = ?, body = ?, tags = ?, media = ?, product_ids = ?,
			version = `+nextVersion+` WHERE id = ? AND deleted_at = 0 RETURNING version`,
			n.Title, n.Body, string(tags), string(media), string(products), ms, ms, n.ID).Scan(&n.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return biz.ErrNotFound // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("update note: %w", err)
		}
		if err := writeTags(ctx, tx, n.ID, n.Tags); err != nil {
			return err
		}
		return r.writeEvent(ctx, tx, noteEvent(event.Updated, n))
	})
	if errors.Is(err, biz.ErrNotFound) {
		return biz.ErrNotFound
	}
	if err != nil {
		return errs.Internal(err)
	}
	r.written(ctx, n)
	return nil
}

// Delete implements biz.Repo: a soft delete; the tag index entries go with it.
func (r *Repo) Delete(ctx context.Context, id int64, at time.Time) (bool, error) {
	changed := false
	ms := at.UnixMilli()
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		ev := event.NoteEvent{Op: event.Deleted, ID: id}
		err := tx.QueryRowContext(ctx, `UPDATE notes SET deleted_at = ?, version = `+nextVersion+`
			WHERE id = ? AND deleted_at = 0 RETURNING author_id, created_at, version`, ms, ms, ms, id).
			Scan(&ev.AuthorID, &ev.CreatedMS, &ev.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already deleted
		}
		if err != nil {
			return fmt.Errorf("delete note: %w", err)
		}
		changed = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM note_tags WHERE note_id = ?`, id); err != nil {
			return fmt.Errorf("delete tags: %w", err)
		}
		return r.writeEvent(ctx, tx, ev)
	})
	if err != nil {
		return false, errs.Internal(err)
	}
	r.removed(ctx, id)
	return changed, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func scan(row interface{ Scan(...any) error }) (*biz.Note, error) {
	var n biz.Note
	var tags, media, products string
	var idem sql.NullString
	var created int64
	if err := row.Scan(&n.ID, &n.AuthorID, &n.Title, &n.Body, &tags, &media, &products, &idem, &created, &n.Version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, biz.ErrNotFound
		}
		return nil, errs.Internal(fmt.Errorf("scan note: %w", err))
	}
	if err := errors.Join(json.Unmarshal([]byte(tags), &n.Tags), json.Unmarshal([]byte(media), &n.Media),
		json.Unmarshal([]byte(products), &n.ProductIDs)); err != nil {
		return nil, errs.Internal(fmt.Errorf("note %d: corrupt tags, media or products: %w", n.ID, err))
	}
	n.IdempotencyKey = idem.String
	n.CreatedAt = time.UnixMilli(created).UTC()
	return &n, nil
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
