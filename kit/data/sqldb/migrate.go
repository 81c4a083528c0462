package sqldb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrBadMigration is returned by Migrate when the migration files themselves are wrong: a
// badly named file, a duplicate version or a gap. The message names the file.
var ErrBadMigration = errors.New("sqldb: bad migration")

var migrationName = regexp.MustCompile(`^([0-9]{4,})_([A-Za-z0-9_-]+)\.sql$`)

type migration struct {
	version int64
	file    string
	name    string
}

// Migrate applies the migrations in the root of fsys that db has not applied yet, in version
// order. Files are named NNNN_name.sql (four or more digits); versions start at 1 and have no
// gaps or duplicates. Files not ending in .sql and directories are ignored.
//
// A file holds one or more statements, each ended by a ';' at the end of a line (trailing
// blanks allowed); a ';' elsewhere in a line does not split, so semicolons inside string
// literals and function bodies are safe as long as they do not end a line. Lines that are only
// -- comments are allowed.
//
// Each file runs in its own transaction together with its row in schema_migrations(version,
// name, applied_at), so a file is applied entirely or not at all, and Migrate is idempotent.
// Concurrent Migrate calls on one database, from any number of processes, apply each file once:
// on PostgreSQL every transaction takes a transaction-level advisory lock keyed by the current
// schema, on SQLite every transaction begins IMMEDIATE and so holds the write lock.
func Migrate(ctx context.Context, db *DB, fsys fs.FS) error {
	migrations, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		if err := lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at BIGINT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqldb: create schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := apply(ctx, db, fsys, m); err != nil {
			return err
		}
	}
	return nil
}

func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sqldb: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		sub := migrationName.FindStringSubmatch(e.Name())
		if sub == nil {
			return nil, fmt.Errorf("%w: file %s: name is not NNNN_name.sql", ErrBadMigration, e.Name())
		}
		v, err := strconv.ParseInt(sub[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: file %s: version: %w", ErrBadMigration, e.Name(), err)
		}
		ms = append(ms, migration{version: v, file: e.Name(), name: sub[2]})
	}
	slices.SortFunc(ms, func(a, b migration) int {
		if c := cmpInt(a.version, b.version); c != 0 {
			return c
		}
		return strings.Compare(a.file, b.file)
	})
	for i, m := range ms {
		switch want := int64(i + 1); {
		case i > 0 && m.version == ms[i-1].version:
			return nil, fmt.Errorf("%w: file %s: version %d already used by %s", ErrBadMigration, m.file, m.version, ms[i-1].file)
		case m.version != want:
			return nil, fmt.Errorf("%w: file %s: version %d, want %d (versions start at 1 without gaps)", ErrBadMigration, m.file, m.version, want)
		}
	}
	return ms, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func apply(ctx context.Context, db *DB, fsys fs.FS, m migration) error {
	src, err := fs.ReadFile(fsys, m.file)
	if err != nil {
		return fmt.Errorf("sqldb: migration %s: %w", m.file, err)
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		if err := lockMigrations(ctx, tx); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
			return fmt.Errorf("check applied: %w", err)
		}
		if n > 0 {
			return nil
		}
		for i, stmt := range splitStatements(string(src)) {
			// Statements go to the driver unbound: migrations take no arguments, and a ? in
			// DDL is literal text.
			if _, err := tx.tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("statement %d: %w", i+1, err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("sqldb: migration %s: %w", m.file, err)
	}
	return nil
}

// lockMigrations serializes migrating transactions on PostgreSQL until tx ends. SQLite needs
// nothing: its transactions begin IMMEDIATE and hold the database's write lock.
func lockMigrations(ctx context.Context, tx *Tx) error {
	if tx.Dialect() != DialectPostgres {
		return nil
	}
	// The two-key form: a fixed class id ("rdln") and the schema, so schemas migrate in parallel.
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(1919184046, hashtext(COALESCE(current_schema(), '')))`)
	if err != nil {
		return fmt.Errorf("advisory lock: %w", err)
	}
	return nil
}

// splitStatements splits src at every ';' that ends a line and drops chunks that hold only
// blanks and -- comments.
func splitStatements(src string) []string {
	var stmts []string
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
		if !onlyComments(s) {
			stmts = append(stmts, s)
		}
	}
	for line := range strings.Lines(src) {
		cur.WriteString(line)
		if strings.HasSuffix(strings.TrimRight(line, " \t\r\n"), ";") {
			flush()
		}
	}
	flush()
	return stmts
}

func onlyComments(s string) bool {
	for line := range strings.Lines(s) {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
			return false
		}
	}
	return true
}
