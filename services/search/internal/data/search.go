// Package data implements the search service's repository: an inverted index in two SQL
// tables, docs and postings, that runs unchanged on SQLite and PostgreSQL.
//
// PostgreSQL's full-text search was the alternative where PostgreSQL is the store. It was
// not taken: its 'simple' configuration does not split Chinese, which is most of RedNote's
// text, so it would need this tokeniser anyway, and two engines would then rank and page
// differently. One index, one tokeniser and one SQL text keep both engines' results the same,
// and the SQLite tests prove the PostgreSQL behaviour.
//
// A document changes in one transaction: a conditional upsert of its docs row (applied only
// when the event's version is newer) and, when it applied, the replacement of its postings.
// On PostgreSQL the upsert locks the row, so two processes applying versions of one document
// at once are serialised and the newer one wins either way; on SQLite every write
// transaction holds the write lock.
package data

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/search/internal/biz"
)

// postingsPerInsert bounds one INSERT's rows (four parameters each), well inside SQLite's and
// PostgreSQL's parameter limits.
const postingsPerInsert = 250

// Repo implements biz.Repo.
type Repo struct{ db *sqldb.DB }

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db.
func NewRepo(db *sqldb.DB) *Repo { return &Repo{db: db} }

// Apply implements biz.Repo.
func (r *Repo) Apply(ctx context.Context, d *biz.Doc) (bool, error) {
	applied := false
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		deleted := 0
		if d.Deleted {
			deleted = 1
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO docs (kind, doc_id, version, deleted, title, author_id, min_price,
				currency, recency_ms, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (kind, doc_id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
				title = excluded.title, author_id = excluded.author_id, min_price = excluded.min_price,
				currency = excluded.currency, recency_ms = excluded.recency_ms, updated_at = excluded.updated_at
			WHERE docs.version < excluded.version`,
			string(d.Kind), d.ID, d.Version, deleted, d.Title, d.AuthorID, d.MinPrice, d.Currency, d.RecencyMS,
			time.Now().UnixMilli())
		if err != nil {
			return fmt.Errorf("upsert doc %s %d: %w", d.Kind, d.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("upsert doc %s %d: %w", d.Kind, d.ID, err)
		}
		if n == 0 {
			return nil // stale: this version or a newer one is stored
		}
		applied = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM postings WHERE kind = ? AND doc_id = ?`, string(d.Kind), d.ID); err != nil {
			return fmt.Errorf("delete postings of %s %d: %w", d.Kind, d.ID, err)
		}
		return insertPostings(ctx, tx, d)
	})
	if err != nil {
		return false, errs.Internal(err)
	}
	return applied, nil
}

// insertPostings writes d's terms in term order, a batch of rows per statement.
func insertPostings(ctx context.Context, tx *sqldb.Tx, d *biz.Doc) error {
	terms := make([]string, 0, len(d.Terms))
	for t := range d.Terms {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	for start := 0; start < len(terms); start += postingsPerInsert {
		chunk := terms[start:min(start+postingsPerInsert, len(terms))]
		var q strings.Builder
		q.WriteString(`INSERT INTO postings (term, kind, doc_id, weight) VALUES `)
		args := make([]any, 0, 4*len(chunk))
		for i, t := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?)")
			args = append(args, t, string(d.Kind), d.ID, d.Terms[t])
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert postings of %s %d: %w", d.Kind, d.ID, err)
		}
	}
	return nil
}

// Search implements biz.Repo. The inner query finds the documents holding every term (one
// posting per term, so the count equals the number of terms) and sums their weights; the
// row-value comparison resumes after the cursor's position in the same order the rows are
// sorted in.
func (r *Repo) Search(ctx context.Context, q biz.Query) ([]biz.Hit, error) {
	if len(q.Terms) == 0 {
		return nil, errs.Internal(errors.New("search without terms"))
	}
	marks, args := sqldb.In(q.Terms)
	var sb strings.Builder
	sb.WriteString(`SELECT d.kind, d.doc_id, d.title, d.author_id, d.min_price, d.currency, d.recency_ms, m.score
		FROM (SELECT kind, doc_id, SUM(weight) AS score FROM postings WHERE term IN (` + marks + `)`)
	if q.Kind != biz.KindAll {
		sb.WriteString(` AND kind = ?`)
		args = append(args, string(q.Kind))
	}
	sb.WriteString(` GROUP BY kind, doc_id HAVING COUNT(*) = ?) m
		JOIN docs d ON d.kind = m.kind AND d.doc_id = m.doc_id
		WHERE d.deleted = 0`)
	args = append(args, len(q.Terms))
	if a := q.After; a != nil {
		sb.WriteString(` AND (m.score, d.recency_ms, d.kind, d.doc_id) < (?, ?, ?, ?)`)
		args = append(args, a.Score, a.RecencyMS, string(a.Kind), a.ID)
	}
	sb.WriteString(` ORDER BY m.score DESC, d.recency_ms DESC, d.kind DESC, d.doc_id DESC LIMIT ?`)
	args = append(args, q.Limit)
	rows, err := r.db.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("search: %w", err))
	}
	defer rows.Close()
	hits := make([]biz.Hit, 0, q.Limit)
	for rows.Next() {
		var h biz.Hit
		var kind string
		if err := rows.Scan(&kind, &h.ID, &h.Title, &h.AuthorID, &h.MinPrice, &h.Currency, &h.RecencyMS, &h.Score); err != nil {
			return nil, errs.Internal(fmt.Errorf("search: %w", err))
		}
		h.Kind = biz.Kind(kind)
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("search: %w", err))
	}
	return hits, nil
}
