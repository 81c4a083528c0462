package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxStateName bounds the name of a saved state.
const maxStateName = 200

// SaveState stores data under name, replacing what was there, stamped with the store's
// clock. It is for the SRE service's own state, such as the SLO evaluator's snapshot (a few
// MB is fine on both engines).
//
// data is kept in a TEXT column, so it must be UTF-8 text without NUL bytes — JSON, say;
// anything else, or an empty name, is ErrBadInput. Encode binary data (base64) first.
func (s *Store) SaveState(ctx context.Context, name string, data []byte) error {
	switch {
	case strings.TrimSpace(name) == "":
		return badInput("state name: missing")
	case len(name) > maxStateName || !isText(name):
		return badInput("state name %.40q: want UTF-8 text of at most %d bytes", name, maxStateName)
	case !isText(string(data)):
		return badInput("state %s: data is not UTF-8 text (encode it, as JSON or base64)", name)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sre_state (name, saved_at, data) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET saved_at = excluded.saved_at, data = excluded.data`,
		name, ms(s.now()), string(data))
	if err != nil {
		return fmt.Errorf("incident: save state %s: %w", name, err)
	}
	return nil
}

// LoadState returns the data last saved under name and when it was saved; nil, the zero
// time and no error when nothing is saved under name. Saved empty data comes back as an
// empty, non-nil slice.
func (s *Store) LoadState(ctx context.Context, name string) ([]byte, time.Time, error) {
	var data string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT data, saved_at FROM sre_state WHERE name = ?`, name).Scan(&data, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, time.Time{}, nil
	case err != nil:
		return nil, time.Time{}, fmt.Errorf("incident: load state %s: %w", name, err)
	}
	out := make([]byte, len(data))
	copy(out, data)
	return out, fromMS(at), nil
}
