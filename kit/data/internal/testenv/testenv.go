// Package testenv finds the real services that kit/data's integration tests run against and
// names the data each test owns.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// Skip is the value of a service's environment variable that skips the tests needing it.
const Skip = "skip"

// URL returns the address of a test service: the value of the environment variable env, or
// def when it is unset. When the value is Skip, or REDLINE_SKIP_INTEGRATION=1 as in the rest
// of the repo, the test is skipped, so a machine without the service opts out explicitly
// rather than by accident.
func URL(t testing.TB, env, def string) string {
	t.Helper()
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return def
	}
	if v == Skip {
		t.Skipf("%s=%s", env, Skip)
	}
	return v
}

// Unreachable fails t for a service that did not answer, saying how to start it or opt out.
func Unreachable(t testing.TB, env string, err error) {
	t.Helper()
	t.Fatalf("%v\n(start the test services with scripts/services.sh, point %s at one, or set %s=%s)", err, env, env, Skip)
}

// Name returns prefix followed by '_' and 12 random hex digits: a name for a schema, key
// prefix or stream that no other test, in this process or another, uses.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + "_" + hex.EncodeToString(b[:])
}
