// Package data implements the feed service's store on kit/data SQL.
package data

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/feed/internal/biz"
)

// Store implements biz.Store.
type Store struct{ db *sqldb.DB }

var _ biz.Store = (*Store)(nil)

// NewStore returns a store over db.
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

// Rows per multi-row statement, keeping every statement well under SQLite's and
// PostgreSQL's bound-parameter limits.
const (
	noteChunk  = 100
	inboxChunk = 250
	idChunk    = 500
)

// chunks calls fn with consecutive slices of at most n items of s.
func chunks[T any](s []T, n int, fn func([]T) error) error {
	for len(s) > 0 {
		k := min(n, len(s))
		if err := fn(s[:k]); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}

// values returns rows groups of cols placeholders: "(?, ?), (?, ?)".
func values(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}

func internal(what string, err error) error {
	return errs.Internal(fmt.Errorf("feed: %s: %w", what, err))
}

// ApplyNotes implements biz.Store. The version guard is in the upsert's WHERE, so an older
// event arriving late, or one arriving twice, changes nothing; a zero author or creation
// time (a Deleted event may carry neither) keeps the stored one.
func (s *Store) ApplyNotes(ctx context.Context, states []biz.NoteState) ([]biz.Entry, error) {
	ids := make([]int64, len(states))
	var deleted []int64
	for i, st := range states {
		ids[i] = st.NoteID
		if st.Deleted {
			deleted = append(deleted, st.NoteID)
		}
	}
	var fresh []biz.Entry
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		err := chunks(states, noteChunk, func(part []biz.NoteState) error {
			args := make([]any, 0, 6*len(part))
			for _, st := range part {
				del, score := 0, st.Score
				if st.Deleted {
					del, score = 1, 0
				}
				args = append(args, st.NoteID, st.AuthorID, st.CreatedMS, st.Version, del, score)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO feed_notes (note_id, author_id, created_ms, version, deleted, score)
				VALUES `+values(len(part), 6)+` ON CONFLICT (note_id) DO UPDATE SET
				author_id = CASE WHEN excluded.author_id > 0 THEN excluded.author_id ELSE feed_notes.author_id END,
				created_ms = CASE WHEN excluded.created_ms > 0 THEN excluded.created_ms ELSE feed_notes.created_ms END,
				version = excluded.version, deleted = excluded.deleted,
				score = CASE WHEN excluded.deleted = 1 THEN 0 ELSE feed_notes.score END
				WHERE feed_notes.version < excluded.version`, args...)
			return err
		})
		if err != nil {
			return fmt.Errorf("upsert notes: %w", err)
		}
		err = chunks(deleted, idChunk, func(part []int64) error {
			marks, args := sqldb.In(part)
			_, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE note_id IN (`+marks+`)`, args...)
			return err
		})
		if err != nil {
			return fmt.Errorf("remove deleted notes from inboxes: %w", err)
		}
		return chunks(ids, idChunk, func(part []int64) error {
			marks, args := sqldb.In(part)
			got, err := entries(tx.QueryContext(ctx, `SELECT note_id, author_id, created_ms FROM feed_notes
				WHERE note_id IN (`+marks+`) AND deleted = 0 AND fanned_out = 0`, args...))
			fresh = append(fresh, got...)
			return err
		})
	})
	if err != nil {
		return nil, internal("apply note events", err)
	}
	return fresh, nil
}

// BigAuthors implements biz.Store.
func (s *Store) BigAuthors(ctx context.Context, authors []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	err := chunks(authors, idChunk, func(part []int64) error {
		marks, args := sqldb.In(part)
		return eachID(s.db.QueryContext(ctx, `SELECT author_id FROM big_authors WHERE author_id IN (`+marks+`)`, args...))(
			func(id int64) { out[id] = true })
	})
	if err != nil {
		return nil, internal("read big authors", err)
	}
	return out, nil
}

// MarkBig implements biz.Store.
func (s *Store) MarkBig(ctx context.Context, author int64, followers int, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO big_authors (author_id, followers, marked_ms) VALUES (?, ?, ?)
		ON CONFLICT (author_id) DO UPDATE SET followers = excluded.followers`, author, followers, at.UnixMilli())
	if err != nil {
		return internal("mark big author", err)
	}
	return nil
}

type inboxRow struct{ user, note, author, created int64 }

// Deliver implements biz.Store. Marking the notes fanned out first, only where they are
// still live, takes their rows' locks: a concurrent delete of one of them either ran before
// (and the note gets no inbox rows) or waits, and then removes the rows written here.
func (s *Store) Deliver(ctx context.Context, ds []biz.Delivery, limit, slack int) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.NoteID
	}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		live := map[int64]bool{}
		err := chunks(ids, idChunk, func(part []int64) error {
			marks, args := sqldb.In(part)
			return eachID(tx.QueryContext(ctx, `UPDATE feed_notes SET fanned_out = 1
				WHERE note_id IN (`+marks+`) AND deleted = 0 RETURNING note_id`, args...))(func(id int64) { live[id] = true })
		})
		if err != nil {
			return fmt.Errorf("mark fanned out: %w", err)
		}
		var rows []inboxRow
		for _, d := range ds {
			if live[d.NoteID] {
				for _, u := range d.Users {
					rows = append(rows, inboxRow{u, d.NoteID, d.AuthorID, d.CreatedMS})
				}
			}
		}
		// One order for every writer, so concurrent fan-outs wait for each other's row locks
		// rather than deadlock.
		slices.SortFunc(rows, func(a, b inboxRow) int {
			if a.user != b.user {
				return cmp.Compare(a.user, b.user)
			}
			return cmp.Compare(a.note, b.note)
		})
		added := map[int64]int64{}
		err = chunks(rows, inboxChunk, func(part []inboxRow) error {
			args := make([]any, 0, 4*len(part))
			for _, r := range part {
				args = append(args, r.user, r.note, r.author, r.created)
			}
			return eachID(tx.QueryContext(ctx, `INSERT INTO inbox (user_id, note_id, author_id, created_ms)
				VALUES `+values(len(part), 4)+` ON CONFLICT DO NOTHING RETURNING user_id`, args...))(func(u int64) { added[u]++ })
		})
		if err != nil {
			return fmt.Errorf("insert inbox rows: %w", err)
		}
		return countAndTrim(ctx, tx, added, limit, slack)
	})
	if err != nil {
		return internal("deliver", err)
	}
	return nil
}

// countAndTrim adds the rows just added to each inbox's count, and trims every inbox whose
// count passed limit+slack to its newest limit rows. The count of a trimmed inbox restarts
// from its real size.
func countAndTrim(ctx context.Context, tx *sqldb.Tx, added map[int64]int64, limit, slack int) error {
	users := make([]int64, 0, len(added))
	for u := range added {
		users = append(users, u)
	}
	slices.Sort(users)
	var over []int64
	err := chunks(users, idChunk/2, func(part []int64) error {
		args := make([]any, 0, 2*len(part))
		for _, u := range part {
			args = append(args, u, added[u])
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO inbox_counts (user_id, n) VALUES `+values(len(part), 2)+`
			ON CONFLICT (user_id) DO UPDATE SET n = inbox_counts.n + excluded.n RETURNING user_id, n`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u, n int64
			if err := rows.Scan(&u, &n); err != nil {
				return err
			}
			if n > int64(limit+slack) {
				over = append(over, u)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("count inbox rows: %w", err)
	}
	for _, u := range over {
		if err := trim(ctx, tx, u, limit); err != nil {
			return fmt.Errorf("trim inbox of %d: %w", u, err)
		}
	}
	return nil
}

// trim deletes all but user's newest limit inbox rows: one index walk to the limit-th row,
// one range delete behind it.
func trim(ctx context.Context, tx *sqldb.Tx, user int64, limit int) error {
	var created, note int64
	err := tx.QueryRowContext(ctx, `SELECT created_ms, note_id FROM inbox WHERE user_id = ?
		ORDER BY created_ms DESC, note_id DESC LIMIT 1 OFFSET ?`, user, limit-1).Scan(&created, &note)
	switch {
	case errors.Is(err, sql.ErrNoRows): // fewer than limit rows: nothing to trim
	case err != nil:
		return err
	default:
		if _, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE user_id = ? AND (created_ms, note_id) < (?, ?)`,
			user, created, note); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE inbox_counts SET n = (SELECT COUNT(*) FROM inbox WHERE user_id = ?)
		WHERE user_id = ?`, user, user)
	return err
}

// eachID returns a function that calls fn with the single id column of every row and
// closes the rows; it returns the query's error, if any, instead.
func eachID(rows *sql.Rows, err error) func(fn func(int64)) error {
	return func(fn func(int64)) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			fn(id)
		}
		return rows.Err()
	}
}

// entries scans rows of (note_id, author_id, created_ms[, score]).
func entries(rows *sql.Rows, err error) ([]biz.Entry, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []biz.Entry
	for rows.Next() {
		var e biz.Entry
		dest := []any{&e.NoteID, &e.AuthorID, &e.CreatedMS}
		if len(cols) == 4 {
			dest = append(dest, &e.Score)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// feedOrder is the home and recent feeds' order and the position filter that resumes it.
const feedOrder = ` AND (created_ms, note_id) < (?, ?) ORDER BY created_ms DESC, note_id DESC LIMIT ?`

// Inbox implements biz.Store.
func (s *Store) Inbox(ctx context.Context, user int64, p biz.Pos, limit int) ([]biz.Entry, error) {
	out, err := entries(s.db.QueryContext(ctx, `SELECT note_id, author_id, created_ms FROM inbox
		WHERE user_id = ?`+feedOrder, user, p.Major, p.NoteID, limit))
	if err != nil {
		return nil, internal("read inbox", err)
	}
	return out, nil
}

// RemoveFromInbox implements biz.Store.
func (s *Store) RemoveFromInbox(ctx context.Context, user int64, notes []int64) error {
	err := chunks(notes, idChunk, func(part []int64) error {
		marks, args := sqldb.In(part)
		_, err := s.db.ExecContext(ctx, `DELETE FROM inbox WHERE user_id = ? AND note_id IN (`+marks+`)`,
			append([]any{user}, args...)...)
		return err
	})
	if err != nil {
		return internal("remove from inbox", err)
	}
	return nil
}

// ByAuthors implements biz.Store. Each author gets a subquery that walks the
// (author_id, created_ms, note_id) index backwards and stops after limit rows, and the
// union of the subqueries is sorted: the cost is authors × limit rows, however many notes
// the authors have. (One IN query would sort every note of every author.) Statements hold
// at most 100 subqueries, under SQLite's limit on compound selects; their results merge
// here.
func (s *Store) ByAuthors(ctx context.Context, authors []int64, p biz.Pos, limit int) ([]biz.Entry, error) {
	var out []biz.Entry
	err := chunks(authors, 100, func(part []int64) error {
		subs := make([]string, len(part))
		args := make([]any, 0, 4*len(part)+1)
		for i, a := range part {
			subs[i] = fmt.Sprintf(`SELECT * FROM (SELECT note_id, author_id, created_ms FROM feed_notes
				WHERE author_id = ? AND deleted = 0%s) a%d`, feedOrder, i)
			args = append(args, a, p.Major, p.NoteID, limit)
		}
		got, err := entries(s.db.QueryContext(ctx, `SELECT note_id, author_id, created_ms FROM (`+
			strings.Join(subs, " UNION ALL ")+`) pulled ORDER BY created_ms DESC, note_id DESC LIMIT ?`, append(args, limit)...))
		out = append(out, got...)
		return err
	})
	if err != nil {
		return nil, internal("read big authors' notes", err)
	}
	if len(authors) > 100 { // several statements: merge their orders
		slices.SortFunc(out, func(a, b biz.Entry) int {
			return cmp.Or(-cmp.Compare(a.CreatedMS, b.CreatedMS), -cmp.Compare(a.NoteID, b.NoteID))
		})
		out = out[:min(len(out), limit)]
	}
	return out, nil
}

// Recent implements biz.Store.
func (s *Store) Recent(ctx context.Context, p biz.Pos, limit int) ([]biz.Entry, error) {
	out, err := entries(s.db.QueryContext(ctx, `SELECT note_id, author_id, created_ms FROM feed_notes
		WHERE deleted = 0`+feedOrder, p.Major, p.NoteID, limit))
	if err != nil {
		return nil, internal("read recent notes", err)
	}
	return out, nil
}

// Hot implements biz.Store.
func (s *Store) Hot(ctx context.Context, p biz.Pos, limit int) ([]biz.Entry, error) {
	query := `SELECT note_id, author_id, created_ms, score FROM feed_notes WHERE score > 0 AND deleted = 0`
	args := []any{}
	if p != biz.Start { // Start's bits are no score
		query += ` AND (score, note_id) < (?, ?)`
		args = append(args, math.Float64frombits(uint64(p.Major)), p.NoteID)
	}
	out, err := entries(s.db.QueryContext(ctx, query+` ORDER BY score DESC, note_id DESC LIMIT ?`, append(args, limit)...))
	if err != nil {
		return nil, internal("read hot notes", err)
	}
	return out, nil
}

// HotCandidates implements biz.Store.
func (s *Store) HotCandidates(ctx context.Context, sinceMS int64, limit int) ([]biz.Entry, error) {
	out, err := entries(s.db.QueryContext(ctx, `SELECT note_id, author_id, created_ms FROM feed_notes
		WHERE deleted = 0 AND created_ms >= ? ORDER BY created_ms DESC, note_id DESC LIMIT ?`, sinceMS, limit))
	if err != nil {
		return nil, internal("read hot candidates", err)
	}
	return out, nil
}

// SetScores implements biz.Store.
func (s *Store) SetScores(ctx context.Context, scores map[int64]float64) error {
	ids := make([]int64, 0, len(scores))
	for id := range scores {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE feed_notes SET score = ? WHERE note_id = ? AND deleted = 0`,
				scores[id], id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return internal("set scores", err)
	}
	return nil
}

// ClearScores implements biz.Store.
func (s *Store) ClearScores(ctx context.Context, beforeMS int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE feed_notes SET score = 0 WHERE score > 0 AND created_ms < ?`, beforeMS); err != nil {
		return internal("clear old scores", err)
	}
	return nil
}
