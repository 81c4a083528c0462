package data

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/trace"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/note/internal/biz"
)

// noteEvent describes n after a change of kind op.
func noteEvent(op event.Op, n *biz.Note) event.NoteEvent {
	return event.NoteEvent{Op: op, ID: n.ID, AuthorID: n.AuthorID, Title: n.Title, Body: n.Body,
		Tags: n.Tags, ProductIDs: n.ProductIDs, CreatedMS: n.CreatedAt.UnixMilli(), Version: n.Version}
}

// writeEvent adds ev to the outbox inside tx, with the metadata and trace context of ctx, when
// events are on.
func (r *Repo) writeEvent(ctx context.Context, tx *sqldb.Tx, ev event.NoteEvent) error {
	if !r.events {
		return nil
	}
	payload, err := event.Encode(ev)
	if err != nil {
		return fmt.Errorf("encode note event: %w", err)
	}
	carrier := meta.MapCarrier{}
	meta.Inject(ctx, carrier)
	trace.Inject(ctx, carrier)
	header, _ := json.Marshal(carrier) // a map of strings always marshals
	_, err = tx.ExecContext(ctx, `INSERT INTO note_outbox (id, subject, payload, header, created_at)
		VALUES (?, ?, ?, ?, ?)`, id.New(), event.Note, string(payload), string(header), ev.Version)
	if err != nil {
		return fmt.Errorf("insert outbox event: %w", err)
	}
	return nil
}

// Claim implements biz.Outbox with one conditional UPDATE ... RETURNING, which is atomic on
// both engines: a row another relay claimed meanwhile no longer matches claimed_until <= now.
// On PostgreSQL the candidate rows are picked FOR UPDATE SKIP LOCKED, so concurrent relays
// take different rows instead of queueing on the same ones; SQLite runs one writer at a time.
func (r *Repo) Claim(ctx context.Context, now, until time.Time, limit int) ([]biz.OutboxEvent, error) {
	lock := ""
	if r.db.Dialect() == sqldb.DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	nowMS := now.UnixMilli()
	rows, err := r.db.QueryContext(ctx, `UPDATE note_outbox SET claimed_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM note_outbox WHERE claimed_until <= ? ORDER BY id LIMIT ?`+lock+`)
		AND claimed_until <= ? RETURNING id, subject, payload, header`, until.UnixMilli(), nowMS, limit, nowMS)
	if err != nil {
		return nil, errs.Internal(fmt.Errorf("claim outbox events: %w", err))
	}
	defer rows.Close()
	var out []biz.OutboxEvent
	for rows.Next() {
		var ev biz.OutboxEvent
		var payload, header string
		if err := rows.Scan(&ev.ID, &ev.Subject, &payload, &header); err != nil {
			return nil, errs.Internal(fmt.Errorf("scan outbox event: %w", err))
		}
		ev.Payload = []byte(payload)
		// A header that does not decode costs the event its metadata, not its delivery.
		_ = json.Unmarshal([]byte(header), &ev.Header)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Internal(fmt.Errorf("claim outbox events: %w", err))
	}
	return out, nil
}

// Done implements biz.Outbox.
func (r *Repo) Done(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	marks, args := sqldb.In(ids)
	if _, err := r.db.ExecContext(ctx, `DELETE FROM note_outbox WHERE id IN (`+marks+`)`, args...); err != nil {
		return errs.Internal(fmt.Errorf("remove published events: %w", err))
	}
	return nil
}

// Retry implements biz.Outbox.
func (r *Repo) Retry(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	marks, args := sqldb.In(ids)
	if _, err := r.db.ExecContext(ctx, `UPDATE note_outbox SET claimed_until = ? WHERE id IN (`+marks+`)`,
		append([]any{at.UnixMilli()}, args...)...); err != nil {
		return errs.Internal(fmt.Errorf("reschedule events: %w", err))
	}
	return nil
}
