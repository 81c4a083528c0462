package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/redline-dev/redline/stress/lane"
)

func TestStressToken(t *testing.T) {
	const key = "stress-key-0123456789"
	t.Setenv("REDLINE_STRESS__KEY", key)
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"stress", "token", "--lane", "stress-1", "--ttl", "10m"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	signer, _ := lane.NewSigner(key, nil)
	if got, err := signer.Verify(strings.TrimSpace(out.String())); err != nil || got != "stress-1" {
		t.Fatalf("token %q verifies as %q, %v; want stress-1", out.String(), got, err)
	}
	for _, args := range [][]string{{"--lane", "Bad Lane"}, {"--lane", "ok", "--ttl", "48h"}} {
		root := newRoot()
		root.SetArgs(append([]string{"stress", "token"}, args...))
		var u usageError
		if err := root.Execute(); err == nil || !asUsage(err, &u) {
			t.Errorf("stress token %v = %v; want a usage error", args, err)
		}
	}
}

func asUsage(err error, u *usageError) bool {
	v, ok := err.(usageError)
	*u = v
	return ok
}
