package stack

import (
	"strings"
	"testing"
)

// TestChaosOffLoopbackNeedsAToken: fault injection on an admin endpoint others can reach
// needs the admin token; on loopback, with a token, or with chaos off, it is fine.
func TestChaosOffLoopbackNeedsAToken(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		chaos, ok   bool
	}{
		{"127.0.0.1:9090", "", true, true},
		{"localhost:9090", "", true, true},
		{"[::1]:9090", "", true, true},
		{"0.0.0.0:9090", "", true, false},
		{"10.1.2.3:9090", "", true, false},
		{"0.0.0.0:9090", "a-long-admin-token", true, true},
		{"0.0.0.0:9090", "", false, true},
	} {
		c := Default()
		c.Admin.Addr, c.Admin.Token, c.Chaos.Enabled = tc.addr, tc.token, tc.chaos
		err := c.Validate()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "admin.token")) {
			t.Errorf("%s token %q chaos %v: %v; want ok=%v", tc.addr, tc.token, tc.chaos, err, tc.ok)
		}
	}
}
