package sqldb

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/data/internal/testenv"
	"github.com/redline-dev/redline/kit/meta"
)

// shadowPair opens a baseline and its shadow twin of one kind, each with table t.
func shadowPairs() []struct {
	name string
	open func(t *testing.T) (base, shadow *DB)
} {
	mk := func(t *testing.T, dsn string, opts ...Option) (*DB, *DB) {
		base := mustOpen(t, dsn, opts...)
		shadow := mustOpen(t, dsn, append(opts, Shadow())...)
		for _, db := range []*DB{base, shadow} {
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
		}
		return base, shadow
	}
	return []struct {
		name string
		open func(t *testing.T) (base, shadow *DB)
	}{
		{"sqlite-file", func(t *testing.T) (*DB, *DB) {
			path := filepath.Join(t.TempDir(), "svc.db")
			base, shadow := mk(t, "sqlite:"+path)
			return base, shadow
		}},
		{"sqlite-memory", func(t *testing.T) (*DB, *DB) { return mk(t, "sqlite::memory:") }},
		{"postgres", func(t *testing.T) (*DB, *DB) {
			schema := createTestSchema(t)
			dropShadow(t, schema)
			return mk(t, testenv.URL(t, postgresEnv, postgresDef), WithSchema(schema))
		}},
	}
}

// dropShadow drops schema's shadow twin when the test ends.
func dropShadow(t *testing.T, schema string) {
	admin := mustOpen(t, testenv.URL(t, postgresEnv, postgresDef))
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS `+schema+`_shadow CASCADE`)
	})
}

// TestBaselineRefusesLanes: every way into a baseline DB refuses a context in a lane, and
// writes nothing; the shadow takes the same calls, and its rows are its own.
func TestBaselineRefusesLanes(t *testing.T) {
	for _, b := range shadowPairs() {
		t.Run(b.name, func(t *testing.T) {
			base, shadow := b.open(t)
			if base.Shadow() || !shadow.Shadow() {
				t.Fatalf("Shadow() = %v, %v; want false, true", base.Shadow(), shadow.Shadow())
			}
			ctx := meta.WithLane(t.Context(), "stress-1")
			refused := testutil.ToFloat64(lanes.Counter("sql"))
			calls := map[string]func(db *DB) error{
				"ExecContext": func(db *DB) error {
					_, err := db.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`, 1, "lane")
					return err
				},
				"QueryContext": func(db *DB) error {
					rows, err := db.QueryContext(ctx, `SELECT id FROM t`)
					if err == nil {
						rows.Close()
					}
					return err
				},
				"QueryRowContext": func(db *DB) error {
					var n int
					return db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n)
				},
				"InTx": func(db *DB) error {
					return db.InTx(ctx, func(tx *Tx) error {
						_, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`, 2, "lane")
						return err
					})
				},
				"Tx.ExecContext": func(db *DB) error { // a transaction begun for baseline, used in a lane
					return db.InTx(t.Context(), func(tx *Tx) error {
						_, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (?, ?)`, 3, "lane")
						return err
					})
				},
				"Tx.QueryRowContext": func(db *DB) error {
					return db.InTx(t.Context(), func(tx *Tx) error {
						var n int
						return tx.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n)
					})
				},
				"Tx.QueryContext": func(db *DB) error {
					return db.InTx(t.Context(), func(tx *Tx) error {
						rows, err := tx.QueryContext(ctx, `SELECT id FROM t`)
						if err == nil {
							rows.Close()
						}
						return err
					})
				},
			}
			for name, call := range calls {
				if err := call(base); !errors.Is(err, ErrLane) {
					t.Errorf("baseline %s in a lane = %v; want ErrLane", name, err)
				}
				if err := call(shadow); err != nil {
					t.Errorf("shadow %s in a lane = %v", name, err)
				}
			}
			if got := testutil.ToFloat64(lanes.Counter("sql")) - refused; got != float64(len(calls)) {
				t.Errorf("refusals counted %v; want %d", got, len(calls))
			}
			var n int
			if err := base.QueryRowContext(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
				t.Errorf("baseline has %d rows (%v); want 0: a lane wrote to it", n, err)
			}
			if err := shadow.QueryRowContext(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
				t.Errorf("shadow has %d rows (%v); want 3", n, err)
			}
		})
	}
}

func TestSQLiteShadowIsASiblingFile(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, "sqlite:"+filepath.Join(dir, "note.db"), Shadow())
	if m, _ := filepath.Glob(filepath.Join(dir, "*.db")); len(m) != 1 || filepath.Base(m[0]) != "note.shadow.db" {
		t.Fatalf("files = %v; want only note.shadow.db", m)
	}
}

func TestCompareSchemas(t *testing.T) {
	for _, b := range shadowPairs() {
		t.Run(b.name, func(t *testing.T) {
			base, shadow := b.open(t)
			if err := CompareSchemas(t.Context(), base, shadow); err != nil {
				t.Fatalf("same schema: %v", err)
			}
			if _, err := shadow.ExecContext(t.Context(), `ALTER TABLE t ADD COLUMN extra TEXT`); err != nil {
				t.Fatal(err)
			}
			if _, err := base.ExecContext(t.Context(), `CREATE TABLE only_base (id BIGINT)`); err != nil {
				t.Fatal(err)
			}
			err := CompareSchemas(t.Context(), base, shadow)
			if err == nil || !strings.Contains(err.Error(), "t.extra is not in the baseline") ||
				!strings.Contains(err.Error(), "only_base.id is missing") {
				t.Fatalf("CompareSchemas = %v; want both differences named", err)
			}
		})
	}
}
