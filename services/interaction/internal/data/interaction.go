// Package data implements the interaction service's repositories on kit/data SQL.
package data

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/interaction/internal/biz"
)

// Repo implements biz.Repo and biz.CounterStore.
type Repo struct{ db *sqldb.DB }

var (
	_ biz.Repo         = (*Repo)(nil)
	_ biz.CounterStore = (*Repo)(nil)
)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

func table(kind biz.Kind) string {
	if kind == biz.Like {
		return "likes"
	}
	return "collects"
}

// React implements biz.Repo. The (user_id, target_id) primary key decides which of
// concurrent repeats changes the row; the others affect nothing.
func (r *Repo) React(ctx context.Context, kind biz.Kind, user, target int64, on bool, at time.Time) (bool, error) {
	var (
		res sql.Result
		err error
	)
	if on {
		res, err = r.db.ExecContext(ctx, `INSERT INTO `+table(kind)+` (user_id, target_id, created_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, user, target, at.UnixMilli())
	} else {
		res, err = r.db.ExecContext(ctx, `DELETE FROM `+table(kind)+` WHERE user_id = ? AND target_id = ?`, user, target)
	}
	if err != nil {
		return false, errs.Internal(fmt.Errorf("%s: %w", table(kind), err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errs.Internal(fmt.Errorf("%s: rows affected: %w", table(kind), err))
	}
	return n == 1, nil
}

// ViewerStates implements biz.Repo with one query over both tables.
func (r *Repo) ViewerStates(ctx context.Context, user int64, targets []int64) (map[int64]biz.ViewerState, error) {
	in, targetArgs := sqldb.In(targets)
	args := make([]any, 0, 2*len(targets)+2)
	args = append(append(args, user), targetArgs...)
	args = append(append(args, user), targetArgs...)
	rows, err := r.db.QueryContext(ctx, `SELECT target_id, 1 FROM likes WHERE user_id = ? AND target_id IN (`+in+`)
		UNION ALL SELECT target_id, 2 FROM collects WHERE user_id = ? AND target_id IN (`+in+`)`, args...)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("viewer states: %w", err))
	}
	defer rows.Close()
	out := make(map[int64]biz.ViewerState, len(targets))
	for rows.Next() {
		var target int64
		var kind biz.Kind
		if err := rows.Scan(&target, &kind); err != nil {
			return nil, errs.Internal(fmt.Errorf("viewer states: %w", err))
		}
		s := out[target]
		if kind == biz.Like {
			s.Liked = true
		} else {
			s.Collected = true
		}
		out[target] = s
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("viewer states: %w", err))
	}
	return out, nil
}

// Counts implements biz.CounterStore.
func (r *Repo) Counts(ctx context.Context, targets []int64) (map[int64]biz.Counts, error) {
	marks, args := sqldb.In(targets)
	rows, err := r.db.QueryContext(ctx, `SELECT target_id, likes, collects, comments, views FROM counters
		WHERE target_id IN (`+marks+`)`, args...)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("counts: %w", err))
	}
	defer rows.Close()
	out := make(map[int64]biz.Counts, len(targets))
	for rows.Next() {
		var t int64
		var c biz.Counts
		if err := rows.Scan(&t, &c.Likes, &c.Collects, &c.Comments, &c.Views); err != nil {
			return nil, errs.Internal(fmt.Errorf("counts: %w", err))
		}
		out[t] = c
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("counts: %w", err))
	}
	return out, nil
}

// UpsertRows is the number of targets one counters upsert statement carries.
const UpsertRows = 200

const upsertTail = ` ON CONFLICT (target_id) DO UPDATE SET likes = counters.likes + excluded.likes,
	collects = counters.collects + excluded.collects, comments = counters.comments + excluded.comments,
	views = counters.views + excluded.views`

// AddCounts implements biz.CounterStore: one multi-row upsert per UpsertRows targets, in
// one transaction when there is more than one. Targets go in id order, so concurrent
// flushes from several processes lock rows in the same order and cannot deadlock.
func (r *Repo) AddCounts(ctx context.Context, deltas map[int64]biz.Counts) error {
	if len(deltas) == 0 {
		return nil
	}
	targets := make([]int64, 0, len(deltas))
	for t := range deltas {
		targets = append(targets, t)
	}
	slices.Sort(targets)
	write := func(q sqldb.Querier) error {
		for chunk := range slices.Chunk(targets, UpsertRows) {
			args := make([]any, 0, 5*len(chunk))
			for _, t := range chunk {
				d := deltas[t]
				args = append(args, t, d.Likes, d.Collects, d.Comments, d.Views)
			}
			values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", len(chunk)), ", ")
			if _, err := q.ExecContext(ctx, `INSERT INTO counters (target_id, likes, collects, comments, views)
				VALUES `+values+upsertTail, args...); err != nil {
				return fmt.Errorf("upsert counters: %w", err)
			}
		}
		return nil
	}
	var err error
	if len(targets) <= UpsertRows {
		err = write(r.db)
	} else {
		err = r.db.InTx(ctx, func(tx *sqldb.Tx) error { return write(tx) })
	}
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}
