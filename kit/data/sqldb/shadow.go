package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/meta"
)

// Shadow opens the shadow twin of the DSN instead of the DSN itself: the database that
// requests in a lane (stress traffic, kit/meta.Lane) read and write.
//
//	sqlite:data/note.db   → sqlite:data/note.shadow.db
//	sqlite::memory:       → another private in-memory database
//	postgres://…          → the same server, schema <baseline schema>_shadow (the baseline
//	                        schema is WithSchema's, else the DSN's search_path, else public),
//	                        created when missing
//
// A DB opened without Shadow is a baseline DB, and it refuses every call whose context is
// in a lane with ErrLane (LANE_NOT_ISOLATED): lane traffic can reach baseline data only
// through a bug that this check turns into an error. A shadow DB serves every context.
// Migrate both, then CompareSchemas.
func Shadow() Option { return func(o *options) { o.shadow = true } }

// ErrLane is the error of a baseline DB called in a lane; errors.Is matches it through
// the wrapping.
var ErrLane = lanes.ErrBaseline

// Shadow reports whether db is a shadow database (opened with Shadow).
func (db *DB) Shadow() bool { return db.shadow }

// shadowSQLitePath is path's shadow twin: ".shadow" before the extension.
func shadowSQLitePath(path string) string {
	if path == ":memory:" {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".shadow" + ext
}

// shadowSchema is the shadow schema of a PostgreSQL connection config.
func shadowSchema(cfg *pgx.ConnConfig, o options) (string, error) {
	base := o.schema
	if base == "" {
		base, _, _ = strings.Cut(cfg.RuntimeParams["search_path"], ",")
		base = strings.Trim(strings.TrimSpace(base), `"`)
	}
	if base == "" {
		base = "public"
	}
	name := base + "_shadow"
	if !schemaName.MatchString(name) {
		return "", fmt.Errorf("%w: shadow schema %q of %q is not [a-z_][a-z0-9_]{0,62}", ErrUnsupportedDSN, name, base)
	}
	return name, nil
}

// guard returns the pool a call in ctx may use: db's own, or, for a lane on a baseline DB,
// one that fails every call with ErrLane.
func (db *DB) guard(ctx context.Context) *sql.DB {
	if !db.shadow && meta.Lane(ctx) != "" {
		lanes.Refused("sql")
		return refused()
	}
	return db.db
}

// refused returns a pool whose every call fails with ErrLane, so even QueryRowContext,
// which cannot return an error itself, reports it from Scan. It is made on first use: it
// runs a goroutine, and only a bug ever needs it.
var refused = sync.OnceValue(func() *sql.DB { return sql.OpenDB(refuseConnector{}) })

type refuseConnector struct{}

func (refuseConnector) Connect(context.Context) (driver.Conn, error) { return nil, ErrLane }
func (refuseConnector) Driver() driver.Driver                        { return refuseDriver{} }

type refuseDriver struct{}

func (refuseDriver) Open(string) (driver.Conn, error) { return nil, ErrLane }

// Column is one column of a table, as CompareSchemas sees it.
type Column struct {
	Table, Name, Type string
	NotNull           bool
}

// Columns lists the columns of every table of db's schema (migration bookkeeping included),
// sorted by table and column name.
func (db *DB) Columns(ctx context.Context) ([]Column, error) {
	var q string
	switch db.dialect {
	case DialectPostgres:
		q = `SELECT table_name, column_name, data_type, is_nullable = 'NO' FROM information_schema.columns
			WHERE table_schema = current_schema()`
	default:
		q = `SELECT m.name, p.name, upper(p.type), p."notnull" != 0 FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
	}
	rows, err := db.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqldb: list columns: %w", err)
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Table, &c.Name, &c.Type, &c.NotNull); err != nil {
			return nil, fmt.Errorf("sqldb: list columns: %w", err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldb: list columns: %w", err)
	}
	slices.SortFunc(cols, func(a, b Column) int {
		if c := strings.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return cols, nil
}

// CompareSchemas reports, as one error naming every difference, whether the shadow database
// has exactly the baseline's tables and columns (name, type, nullability). Run it after both
// are migrated: a shadow that drifted would make a stress test measure another system, or
// fail on writes the baseline accepts.
func CompareSchemas(ctx context.Context, baseline, shadow *DB) error {
	want, err := baseline.Columns(ctx)
	if err != nil {
		return err
	}
	got, err := shadow.Columns(ctx)
	if err != nil {
		return err
	}
	key := func(c Column) string { return c.Table + "." + c.Name }
	have := map[string]Column{}
	for _, c := range got {
		have[key(c)] = c
	}
	var diffs []string
	for _, c := range want {
		s, ok := have[key(c)]
		switch {
		case !ok:
			diffs = append(diffs, key(c)+" is missing")
		case s != c:
			diffs = append(diffs, fmt.Sprintf("%s is %s (not null %v), baseline %s (not null %v)", key(c), s.Type, s.NotNull, c.Type, c.NotNull))
		}
		delete(have, key(c))
	}
	for k := range have {
		diffs = append(diffs, k+" is not in the baseline")
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		return fmt.Errorf("sqldb: the shadow schema differs from the baseline: %s; migrate both with the same migrations",
			strings.Join(diffs, "; "))
	}
	return nil
}
