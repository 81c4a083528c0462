package sqldb

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// goodMigrations holds a statement that fails when run twice (CREATE TABLE without IF NOT
// EXISTS) and one that leaves a trace per run (the INSERT), so a double apply shows.
func goodMigrations() fstest.MapFS {
	return fstest.MapFS{
		"0001_create_notes.sql": {Data: []byte(`-- notes are the content
CREATE TABLE notes (
	id TEXT PRIMARY KEY,
	body TEXT NOT NULL DEFAULT 'a; b', -- a ';' inside a line does not split
	created_at BIGINT NOT NULL
);
CREATE TABLE runs (n INTEGER NOT NULL);
INSERT INTO runs (n) VALUES (1);
`)},
		"0002_index.sql": {Data: []byte("CREATE INDEX notes_created ON notes (created_at);  \r\n\n-- trailing comment\n")},
		"README.md":      {Data: []byte("not a migration")},
		"sub/0009_x.sql": {Data: []byte("not read")},
	}
}

func TestMigrate(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			ctx := t.Context()
			for i := range 2 { // the second run is a no-op
				if err := Migrate(ctx, db, goodMigrations()); err != nil {
					t.Fatalf("Migrate() run %d = %v", i+1, err)
				}
			}
			assertApplied(t, db, []int64{1, 2}, 1)

			// A new file applies only itself.
			fsys := goodMigrations()
			fsys["0003_more.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE notes ADD COLUMN likes BIGINT NOT NULL DEFAULT 0;\n")}
			if err := Migrate(ctx, db, fsys); err != nil {
				t.Fatalf("Migrate() with 0003 = %v", err)
			}
			assertApplied(t, db, []int64{1, 2, 3}, 1)
			mustExec(t, db, `INSERT INTO notes (id, created_at, likes) VALUES (?, ?, ?)`, "n1", 1, 2)
		})
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			fsys := goodMigrations()
			fsys["0003_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE half (id TEXT);\nTHIS IS NOT SQL;\n")}
			err := Migrate(t.Context(), db, fsys)
			if err == nil || !strings.Contains(err.Error(), "0003_broken.sql") || !strings.Contains(err.Error(), "statement 2") {
				t.Fatalf("Migrate() = %v; want an error naming 0003_broken.sql statement 2", err)
			}
			assertApplied(t, db, []int64{1, 2}, 1)
			// The first statement of the failed file was rolled back with it.
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE half (id TEXT)`); err != nil {
				t.Fatalf("table of the failed migration exists: %v", err)
			}
		})
	}
}

func TestMigrateBadFiles(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;\n")}
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		wantFile string
	}{
		{"bad name", fstest.MapFS{"0001_a.sql": sql, "2_b.sql": sql}, "2_b.sql"},
		{"no name", fstest.MapFS{"0001.sql": sql}, "0001.sql"},
		{"duplicate", fstest.MapFS{"0001_a.sql": sql, "0002_b.sql": sql, "0002_c.sql": sql}, "0002_c.sql"},
		{"gap", fstest.MapFS{"0001_a.sql": sql, "0003_c.sql": sql}, "0003_c.sql"},
		{"not from 1", fstest.MapFS{"0002_b.sql": sql}, "0002_b.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpen(t, "sqlite::memory:")
			err := Migrate(t.Context(), db, tt.fsys)
			if !errors.Is(err, ErrBadMigration) || !strings.Contains(err.Error(), tt.wantFile) {
				t.Fatalf("Migrate() = %v; want ErrBadMigration naming %s", err, tt.wantFile)
			}
			// Nothing ran: the files are checked before any is applied.
			var n int
			if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_migrations'`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("schema_migrations exists (%d, %v); want it absent", n, err)
			}
		})
	}
}

// TestMigrateConcurrent runs Migrate from several pools at once, as separate processes
// would, and checks every file ran once.
func TestMigrateConcurrent(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T) func(t *testing.T) *DB // returns an opener of pools on one database
	}{
		{"sqlite-file", func(t *testing.T) func(t *testing.T) *DB {
			path := filepath.Join(t.TempDir(), "shared.db")
			return func(t *testing.T) *DB { return openSQLiteFile(t, path) }
		}},
		{"postgres", func(t *testing.T) func(t *testing.T) *DB {
			schema := createTestSchema(t)
			return func(t *testing.T) *DB { return openPostgresIn(t, schema) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := tt.open(t)
			const procs = 4
			dbs := make([]*DB, procs)
			for i := range dbs {
				dbs[i] = open(t)
			}
			errs := make([]error, procs)
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() { errs[i] = Migrate(t.Context(), db, goodMigrations()) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Migrate() in pool %d = %v", i, err)
				}
			}
			assertApplied(t, dbs[0], []int64{1, 2}, 1)
		})
	}
}

// assertApplied checks schema_migrations lists versions and that 0001 ran runs times.
func assertApplied(t *testing.T, db *DB, versions []int64, runs int) {
	t.Helper()
	ctx := t.Context()
	rows, err := db.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var (
			v, at int64
			name  string
		)
		if err := rows.Scan(&v, &name, &at); err != nil {
			t.Fatal(err)
		}
		if name == "" || at <= 0 {
			t.Errorf("schema_migrations row %d has name %q, applied_at %d", v, name, at)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, versions) {
		t.Fatalf("applied versions = %v; want %v", got, versions)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs`).Scan(&n); err != nil || n != runs {
		t.Fatalf("0001 ran %d times (%v); want %d", n, err, runs)
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", nil},
		{"comments only", "-- a\n\n  -- b;\n", nil},
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"two", "SELECT 1;\nSELECT 2;\n", []string{"SELECT 1", "SELECT 2"}},
		{"multi-line", "CREATE TABLE t (\n  a TEXT\n);\n", []string{"CREATE TABLE t (\n  a TEXT\n)"}},
		{"semicolon mid-line", "SELECT ';' ; SELECT 2;\n", []string{"SELECT ';' ; SELECT 2"}},
		{"trailing blanks and CRLF", "SELECT 1;  \r\nSELECT 2;\r\n", []string{"SELECT 1", "SELECT 2"}},
		{"leading comment kept", "-- why\nSELECT 1;\n", []string{"-- why\nSELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.src); !slices.Equal(got, tt.want) {
				t.Fatalf("splitStatements(%q) = %q; want %q", tt.src, got, tt.want)
			}
		})
	}
}
