package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/fault"
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

// The Op of each kind of call in its fault Point.
const (
	opQuery = "query"
	opExec  = "exec"
	opBegin = "begin"
)

// check runs before every call in ctx: a lane on a baseline DB fails with ErrLane, then the
// fault-injection hook may fail the call (or slow it) as op.
func (db *DB) check(ctx context.Context, op string) error {
	if !db.shadow && meta.Lane(ctx) != "" {
		lanes.Refused("sql")
		return ErrLane
	}
	return fault.Inject(ctx, fault.Point{Kind: fault.SQL, Side: fault.Client, Service: db.service, Op: op})
}

// failedRow returns a row whose Scan returns err, for QueryRowContext, which cannot return
// an error itself: it queries a pool whose connector fails with the error carried by the
// ctx. The ctx loses its cancellation so that database/sql reports err, not ctx.Err().
func failedRow(ctx context.Context, err error) *sql.Row {
	return failing().QueryRowContext(context.WithValue(context.WithoutCancel(ctx), failKey{}, err), "")
}

type failKey struct{}

// errFailed is what the failing pool returns without an error in its ctx (its connection
// opener, which never runs since the pool never waits for a connection).
var errFailed = errors.New("sqldb: call failed before reaching the database")

// failing returns the pool behind failedRow. It is made on first use: it runs a goroutine,
// and only a refused or faulted call ever needs it.
var failing = sync.OnceValue(func() *sql.DB { return sql.OpenDB(failConnector{}) })

type failConnector struct{}

func (failConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err, ok := ctx.Value(failKey{}).(error); ok {
		return nil, err
	}
	return nil, errFailed
}

func (failConnector) Driver() driver.Driver { return failDriver{} }

type failDriver struct{}

func (failDriver) Open(string) (driver.Conn, error) { return nil, errFailed }

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
