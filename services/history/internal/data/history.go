// Package data implements the history service's store on kit/data SQL.
package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/history/internal/biz"
)

// Repo implements biz.Store.
type Repo struct{ db *sqldb.DB }

var _ biz.Store = (*Repo)(nil)

// NewRepo returns a store over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

// UpsertRows is the number of views one upsert statement carries, and TrimUsers the number
// of users one trim check covers.
const (
	UpsertRows = 500
	TrimUsers  = 200
)

// MaxStatements bounds the statements Upsert runs for views: one upsert per UpsertRows
// views, and per TrimUsers distinct users one count and at most one trim.
func MaxStatements(views []biz.View) int {
	return (len(views)+UpsertRows-1)/UpsertRows + 2*((len(users(views))+TrimUsers-1)/TrimUsers)
}

// users returns the distinct users of views sorted by user.
func users(views []biz.View) []int64 {
	var out []int64
	for i, v := range views {
		if i == 0 || views[i-1].UserID != v.UserID {
			out = append(out, v.UserID)
		}
	}
	return out
}

// Upsert implements biz.Store in one transaction: multi-row upserts that keep the later
// time; then, per TrimUsers users written, a count that finds those over keep rows and, only
// when there are some, one statement deleting everything past their keep newest rows.
// Counting first keeps the common flush cheap: ranking every row of every user written
// costs far more than counting them through the (user_id, viewed_at, note_id) index.
func (r *Repo) Upsert(ctx context.Context, views []biz.View, keep int) error {
	if len(views) == 0 {
		return nil
	}
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for chunk := range slices.Chunk(views, UpsertRows) {
			args := make([]any, 0, 3*len(chunk))
			for _, v := range chunk {
				args = append(args, v.UserID, v.NoteID, v.At)
			}
			values := strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)), ", ")
			if _, err := tx.ExecContext(ctx, `INSERT INTO history (user_id, note_id, viewed_at) VALUES `+values+`
				ON CONFLICT (user_id, note_id) DO UPDATE SET viewed_at = excluded.viewed_at
				WHERE excluded.viewed_at > history.viewed_at`, args...); err != nil {
				return fmt.Errorf("upsert history: %w", err)
			}
		}
		for chunk := range slices.Chunk(users(views), TrimUsers) {
			if err := trim(ctx, tx, chunk, keep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}

// trim deletes the rows of users past their keep newest.
func trim(ctx context.Context, tx *sqldb.Tx, users []int64, keep int) error {
	marks, args := sqldb.In(users)
	rows, err := tx.QueryContext(ctx, `SELECT user_id FROM history WHERE user_id IN (`+marks+`)
		GROUP BY user_id HAVING COUNT(*) > ?`, append(args, keep)...)
	if err != nil {
		return fmt.Errorf("count history: %w", err)
	}
	var over []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return fmt.Errorf("count history: %w", err)
		}
		over = append(over, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count history: %w", err)
	}
	if len(over) == 0 {
		return nil
	}
	marks, args = sqldb.In(over)
	if _, err := tx.ExecContext(ctx, `DELETE FROM history WHERE (user_id, note_id) IN (
		SELECT user_id, note_id FROM (
			SELECT user_id, note_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY viewed_at DESC, note_id DESC) AS n
			FROM history WHERE user_id IN (`+marks+`)) ranked
		WHERE n > ?)`, append(args, keep)...); err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	return nil
}

// List implements biz.Store.
func (r *Repo) List(ctx context.Context, user int64, p biz.Pos, limit int) ([]biz.Entry, int64, error) {
	var clearedAt int64
	err := r.db.QueryRowContext(ctx, `SELECT cleared_at FROM history_clears WHERE user_id = ?`, user).Scan(&clearedAt)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, errs.Internal(fmt.Errorf("history clear time: %w", err))
	}
	rows, err := r.db.QueryContext(ctx, `SELECT note_id, viewed_at FROM history
		WHERE user_id = ? AND viewed_at > ? AND (viewed_at < ? OR (viewed_at = ? AND note_id < ?))
		ORDER BY viewed_at DESC, note_id DESC LIMIT ?`, user, clearedAt, p.At, p.At, p.NoteID, limit)
	if err != nil {
		return nil, 0, errs.Internal(fmt.Errorf("list history: %w", err))
	}
	defer rows.Close()
	out := make([]biz.Entry, 0, limit)
	for rows.Next() {
		var e biz.Entry
		if err := rows.Scan(&e.NoteID, &e.At); err != nil {
			return nil, 0, errs.Internal(fmt.Errorf("list history: %w", err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, errs.Internal(fmt.Errorf("list history: %w", err))
	}
	return out, clearedAt, nil
}

// Clear implements biz.Store.
func (r *Repo) Clear(ctx context.Context, user, at int64) error {
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM history WHERE user_id = ?`, user); err != nil {
			return fmt.Errorf("clear history: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO history_clears (user_id, cleared_at) VALUES (?, ?)
			ON CONFLICT (user_id) DO UPDATE SET cleared_at = excluded.cleared_at
			WHERE excluded.cleared_at > history_clears.cleared_at`, user, at); err != nil {
			return fmt.Errorf("record clear: %w", err)
		}
		return nil
	})
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}
