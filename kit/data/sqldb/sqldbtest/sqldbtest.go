// Package sqldbtest gives integration tests a real PostgreSQL database of their own: a
// fresh schema per test, dropped when the test ends.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redline-dev/redline/kit/data/sqldb"
)

// DefaultPostgresURL is the PostgreSQL that scripts/services.sh provides.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL is the test PostgreSQL: REDLINE_TEST_POSTGRES, or DefaultPostgresURL.
func PostgresURL() string {
	if u := os.Getenv("REDLINE_TEST_POSTGRES"); u != "" && u != "skip" {
		return u
	}
	return DefaultPostgresURL
}

// Postgres opens the test PostgreSQL in a new schema named prefix_<random hex>, which it
// drops (with everything in it) when t ends. It skips t when REDLINE_SKIP_INTEGRATION=1,
// and fails it, saying how to start the database, when PostgreSQL does not answer.
func Postgres(t testing.TB, prefix string) (db *sqldb.DB, schema string) {
	t.Helper()
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" || os.Getenv("REDLINE_TEST_POSTGRES") == "skip" {
		t.Skip("integration tests skipped (REDLINE_SKIP_INTEGRATION=1)")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema = prefix + "_" + hex.EncodeToString(rnd[:])
	url := PostgresURL()
	db, err := sqldb.Open(context.Background(), url, sqldb.WithSchema(schema))
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (run scripts/services.sh, or set REDLINE_SKIP_INTEGRATION=1)", url, err)
	}
	t.Cleanup(func() {
		db.Close()
		admin, err := sqldb.Open(context.Background(), url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer admin.Close()
		// The shadow twin (sqldb.Shadow) lives beside it.
		for _, s := range []string{schema, schema + "_shadow"} {
			if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+s+`" CASCADE`); err != nil {
				t.Errorf("drop schema %s: %v", s, err)
			}
		}
	})
	return db, schema
}
