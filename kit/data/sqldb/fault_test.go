package sqldb

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/data/internal/testenv"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
)

var errInjected = errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected database fault")

// TestFaults: every way into a DB asks the fault hook with its verb, and an injected error
// is the call's error (Scan's for QueryRowContext) before anything reaches the database.
func TestFaults(t *testing.T) {
	backends := []backend{
		{"sqlite-file", func(t *testing.T) *DB {
			return mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "notes.db"), WithService("notes"))
		}},
		{"postgres", func(t *testing.T) *DB {
			return mustOpen(t, testenv.URL(t, postgresEnv, postgresDef), WithSchema(createTestSchema(t)), WithService("notes"))
		}},
	}
	insert := `INSERT INTO t (id, v) VALUES (?, ?)`
	calls := []struct {
		name string
		op   string   // the verb that fails
		ops  []string // every Point asked, in order
		call func(ctx context.Context, db *DB) error
	}{
		{"ExecContext", "exec", []string{"exec"}, func(ctx context.Context, db *DB) error {
			_, err := db.ExecContext(ctx, insert, 1, "x")
			return err
		}},
		{"QueryContext", "query", []string{"query"}, func(ctx context.Context, db *DB) error {
			rows, err := db.QueryContext(ctx, `SELECT id FROM t`)
			if err == nil {
				rows.Close()
			}
			return err
		}},
		{"QueryRowContext", "query", []string{"query"}, func(ctx context.Context, db *DB) error {
			var n int
			return db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n)
		}},
		{"InTx", "begin", []string{"begin"}, func(ctx context.Context, db *DB) error {
			return db.InTx(ctx, func(tx *Tx) error {
				_, err := tx.ExecContext(ctx, insert, 2, "x")
				return err
			})
		}},
		{"Tx.ExecContext", "exec", []string{"begin", "exec"}, func(ctx context.Context, db *DB) error {
			return db.InTx(ctx, func(tx *Tx) error {
				_, err := tx.ExecContext(ctx, insert, 3, "x")
				return err
			})
		}},
		{"Tx.QueryContext", "query", []string{"begin", "exec", "query"}, func(ctx context.Context, db *DB) error {
			return db.InTx(ctx, func(tx *Tx) error {
				if _, err := tx.ExecContext(ctx, insert, 4, "x"); err != nil {
					return err
				}
				rows, err := tx.QueryContext(ctx, `SELECT id FROM t`)
				if err == nil {
					rows.Close()
				}
				return err
			})
		}},
		{"Tx.QueryRowContext", "query", []string{"begin", "exec", "query"}, func(ctx context.Context, db *DB) error {
			return db.InTx(ctx, func(tx *Tx) error {
				if _, err := tx.ExecContext(ctx, insert, 5, "x"); err != nil {
					return err
				}
				var n int
				return tx.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n)
			})
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for _, c := range calls {
				t.Run(c.name, func(t *testing.T) {
					inj := &faulttest.Recorder{Op: c.op, Err: errInjected}
					faulttest.Install(t, inj)
					if err := c.call(t.Context(), db); !errors.Is(err, errInjected) {
						t.Fatalf("%s = %v; want the injected error", c.name, err)
					}
					got := inj.Seen()
					if len(got) != len(c.ops) {
						t.Fatalf("points = %+v; want ops %v", got, c.ops)
					}
					for i, p := range got {
						want := fault.Point{Kind: fault.SQL, Side: fault.Client, Service: "notes", Op: c.ops[i]}
						if p != want {
							t.Fatalf("point %d = %+v; want %+v", i, p, want)
						}
					}
				})
			}
			var n int
			if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("table has %d rows (%v); want 0: every write failed or was rolled back", n, err)
			}
		})
	}
}

// TestFaultedRowOfACancelledCall: Scan reports the injected error even when the call's ctx
// has ended meanwhile (database/sql would otherwise report the ctx's error).
func TestFaultedRowOfACancelledCall(t *testing.T) {
	db := mustOpen(t, "sqlite::memory:")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	faulttest.Install(t, &faulttest.Recorder{Op: "query", Err: errInjected})
	var n int
	if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&n); !errors.Is(err, errInjected) {
		t.Fatalf("Scan = %v; want the injected error", err)
	}
}

func TestNoFaultWithoutInjector(t *testing.T) {
	faulttest.Install(t, nil)
	db := mustOpen(t, "sqlite::memory:", WithService("notes"))
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT 1`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1 = %d, %v; want 1, nil", n, err)
	}
}
