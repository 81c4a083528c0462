package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/data/internal/testenv"
)

// The pool behind failed QueryRowContext calls (failing) runs its opener goroutine for the
// process's life.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

const (
	postgresEnv = "REDLINE_TEST_POSTGRES"
	postgresDef = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

// backend opens a fresh, empty database of one kind for one test.
type backend struct {
	name string
	open func(t *testing.T) *DB
}

func backends() []backend {
	return []backend{
		{"sqlite-file", func(t *testing.T) *DB { return openSQLiteFile(t, filepath.Join(t.TempDir(), "test.db")) }},
		{"sqlite-memory", func(t *testing.T) *DB { return mustOpen(t, "sqlite::memory:") }},
		{"postgres", openPostgresSchema},
	}
}

func openSQLiteFile(t *testing.T, path string) *DB {
	t.Helper()
	return mustOpen(t, "sqlite:"+path)
}

func mustOpen(t *testing.T, dsn string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%q) = %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgresSchema opens the test PostgreSQL in a schema of the test's own, dropped at
// cleanup.
func openPostgresSchema(t *testing.T) *DB {
	t.Helper()
	return openPostgresIn(t, createTestSchema(t))
}

// createTestSchema names a fresh schema and drops it when the test ends. The schema itself
// is created by Open(WithSchema).
func createTestSchema(t *testing.T) string {
	t.Helper()
	dsn := testenv.URL(t, postgresEnv, postgresDef)
	schema := testenv.Name("t")
	admin, err := Open(t.Context(), dsn)
	if err != nil {
		testenv.Unreachable(t, postgresEnv, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func openPostgresIn(t *testing.T, schema string) *DB {
	t.Helper()
	return mustOpen(t, testenv.URL(t, postgresEnv, postgresDef), WithSchema(schema))
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
		opts []Option
	}{
		{"unknown scheme", "mysql://localhost/db", nil},
		{"no scheme", "/tmp/x.db", nil},
		{"empty sqlite path", "sqlite:", nil},
		{"sqlite path with query", "sqlite:/tmp/x.db?mode=ro", nil},
		{"schema on sqlite", "sqlite::memory:", []Option{WithSchema("s1")}},
		{"bad schema name", "postgres://postgres@127.0.0.1:1/postgres", []Option{WithSchema("Bad;Name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(t.Context(), tt.dsn, tt.opts...)
			if err == nil {
				db.Close()
			}
			if !errors.Is(err, ErrUnsupportedDSN) {
				t.Fatalf("Open(%q) = %v; want ErrUnsupportedDSN", tt.dsn, err)
			}
		})
	}
}

func TestOpenRedactsPassword(t *testing.T) {
	_, err := Open(t.Context(), "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1&sslmode=%zz")
	if err == nil {
		t.Fatal("Open with a bad dsn succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %q shows the password", err)
	}
}

func TestSQLiteFileSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "app.db")
	db := openSQLiteFile(t, path)
	if got := db.Dialect(); got != DialectSQLite {
		t.Fatalf("Dialect() = %q; want %q", got, DialectSQLite)
	}
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"busy_timeout", "5000"},
		{"foreign_keys", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.pragma, func(t *testing.T) {
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("PRAGMA %s = %q; want %q", tt.pragma, got, tt.want)
			}
		})
	}
}

func TestSQLiteMemoryIsOneDatabase(t *testing.T) {
	db := mustOpen(t, "sqlite::memory:")
	// Each connection to :memory: is its own database, so the pool must never open a second.
	if got := db.db.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("MaxOpenConnections = %d; want 1", got)
	}
	mustExec(t, db, `CREATE TABLE t (v INTEGER)`)
	if err := db.InTx(t.Context(), func(tx *Tx) error {
		_, err := tx.ExecContext(t.Context(), `INSERT INTO t (v) VALUES (?)`, 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresSchema(t *testing.T) {
	schema := createTestSchema(t)
	db := openPostgresIn(t, schema)
	ctx := t.Context()
	if got := db.Dialect(); got != DialectPostgres {
		t.Fatalf("Dialect() = %q; want %q", got, DialectPostgres)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE widgets (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var got string
	err := db.QueryRowContext(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()`, "widgets").Scan(&got)
	if err != nil || got != schema {
		t.Fatalf("widgets is in schema %q, %v; want %q", got, err, schema)
	}
	// The pool keeps its connections when idle: a burst of concurrent queries must not open
	// and close a PostgreSQL backend per query.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var one int
			if err := db.QueryRowContext(ctx, `SELECT 1 FROM pg_sleep(0.05)`).Scan(&one); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if st := db.Stats(); st.MaxOpenConnections != DefaultMaxConns || st.Idle < 3 {
		t.Fatalf("pool after a burst of 8: %+v; want max %d open and the burst's connections kept idle", st, DefaultMaxConns)
	}
	// A second DB on the same schema sees the table: the schema already existing is fine.
	db2 := openPostgresIn(t, schema)
	if _, err := db2.ExecContext(ctx, `INSERT INTO widgets (id) VALUES (?)`, "w1"); err != nil {
		t.Fatal(err)
	}
}

func TestQueries(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			ctx := t.Context()
			mustExec(t, db, `CREATE TABLE notes (
				id TEXT PRIMARY KEY,
				title TEXT NOT NULL,
				likes BIGINT NOT NULL DEFAULT 0,
				deleted INTEGER NOT NULL DEFAULT 0,
				created_at BIGINT NOT NULL
			)`)
			mustExec(t, db, `INSERT INTO notes (id, title, created_at) VALUES (?, ?, ?), (?, ?, ?)`,
				"n1", "first?", int64(1700000000000), "n2", "second", int64(1700000000001))

			// Upsert with RETURNING.
			var likes int64
			err := db.QueryRowContext(ctx, `INSERT INTO notes (id, title, likes, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET likes = notes.likes + excluded.likes RETURNING likes`,
				"n1", "ignored", 3, int64(1)).Scan(&likes)
			if err != nil || likes != 3 {
				t.Fatalf("upsert RETURNING likes = %d, %v; want 3, nil", likes, err)
			}
			res, err := db.ExecContext(ctx, `INSERT INTO notes (id, title, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`, "n2", "x", 0)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 0 {
				t.Fatalf("DO NOTHING affected %d rows; want 0", n)
			}

			// A ? inside a string literal is text, not a placeholder.
			var lit, arg string
			if err := db.QueryRowContext(ctx, `SELECT 'it''s ?' AS lit, title FROM notes WHERE id = ? AND deleted = ?`, "n1", 0).Scan(&lit, &arg); err != nil {
				t.Fatal(err)
			}
			if lit != "it's ?" || arg != "first?" {
				t.Fatalf("got (%q, %q); want (%q, %q)", lit, arg, "it's ?", "first?")
			}

			rows, err := db.QueryContext(ctx, `SELECT id FROM notes WHERE created_at >= ? ORDER BY created_at`, int64(1700000000000))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if strings.Join(ids, ",") != "n1,n2" {
				t.Fatalf("ids = %v; want [n1 n2]", ids)
			}

			if err := db.QueryRowContext(ctx, `SELECT id FROM notes WHERE id = ?`, "missing").Scan(new(string)); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("Scan of no row = %v; want sql.ErrNoRows", err)
			}
			if err := db.PingContext(ctx); err != nil {
				t.Fatalf("PingContext() = %v", err)
			}
		})
	}
}

func TestForeignKeys(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			mustExec(t, db, `CREATE TABLE parent (id TEXT PRIMARY KEY)`)
			mustExec(t, db, `CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent (id))`)
			if _, err := db.ExecContext(t.Context(), `INSERT INTO child (id, parent_id) VALUES (?, ?)`, "c", "nope"); err == nil {
				t.Fatal("insert of a dangling reference succeeded; want a foreign key error")
			}
		})
	}
}

var errStop = errors.New("stop")

func TestInTx(t *testing.T) {
	tests := []struct {
		name      string
		fn        func(ctx context.Context, tx *Tx) error
		wantErr   error
		wantPanic bool
		wantRows  int
	}{
		{
			name:     "commit",
			fn:       func(ctx context.Context, tx *Tx) error { return insert(ctx, tx, "a", "b") },
			wantRows: 2,
		},
		{
			name: "rollback on error",
			fn: func(ctx context.Context, tx *Tx) error {
				if err := insert(ctx, tx, "a"); err != nil {
					return err
				}
				return errStop
			},
			wantErr: errStop,
		},
		{
			name: "rollback on panic",
			fn: func(ctx context.Context, tx *Tx) error {
				if err := insert(ctx, tx, "a"); err != nil {
					return err
				}
				panic("boom")
			},
			wantPanic: true,
		},
		{
			name: "reads its own writes",
			fn: func(ctx context.Context, tx *Tx) error {
				if err := insert(ctx, tx, "a"); err != nil {
					return err
				}
				rows, err := tx.QueryContext(ctx, `SELECT id FROM items WHERE id = ?`, "a")
				if err != nil {
					return err
				}
				defer rows.Close()
				if !rows.Next() {
					return errors.New("own write not visible")
				}
				return rows.Close()
			},
			wantRows: 1,
		},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					db := b.open(t)
					ctx := t.Context()
					mustExec(t, db, `CREATE TABLE items (id TEXT PRIMARY KEY)`)
					var err error
					panicked := func() (p bool) {
						defer func() { p = recover() != nil }()
						err = db.InTx(ctx, func(tx *Tx) error { return tt.fn(ctx, tx) })
						return false
					}()
					if panicked != tt.wantPanic {
						t.Fatalf("InTx panicked = %v; want %v", panicked, tt.wantPanic)
					}
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("InTx() = %v; want %v", err, tt.wantErr)
					}
					var n int
					if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != tt.wantRows {
						t.Fatalf("rows after InTx = %d; want %d", n, tt.wantRows)
					}
				})
			}
		})
	}
}

func insert(ctx context.Context, q Querier, ids ...string) error {
	for _, id := range ids {
		if _, err := q.ExecContext(ctx, `INSERT INTO items (id) VALUES (?)`, id); err != nil {
			return err
		}
	}
	return nil
}

func mustExec(t *testing.T, q Querier, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("ExecContext(%q) = %v", query, err)
	}
}
