package bff_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/registry/registrytest"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
	"github.com/redline-dev/redline/stress/lane"
)

// TestCanaryLaneFallsBack: a process runs every service in the baseline, another runs
// only user in lane canary (`redline serve user --lane canary`). A request in lane canary
// visits user@canary and, as canary has no note, note@baseline, and keeps its lane there:
// the note lands in the baseline process's shadow data, its author comes from the canary's.
func TestCanaryLaneFallsBack(t *testing.T) {
	prefix := registrytest.EtcdPrefix(t, registrytest.EtcdClient(t))
	baseDir, canaryDir := t.TempDir(), t.TempDir()
	shared := func(c *stack.Config) {
		c.Registry, c.RegistryPrefix, c.RegistryTTL = "etcd://"+registrytest.EtcdAddr, prefix, 5*time.Second
		c.Auth.TokenKey, c.Stress.Key = "auth-key-shared-by-both-0123456789", laneKey
	}
	s := stacktest.Start(t, func(c *stack.Config) { shared(c); c.DataDir = baseDir })
	stacktest.StartOnly(t, func(c *stack.Config) { shared(c); c.DataDir, c.Lane = canaryDir, "canary" }, "user")

	signer, _ := lane.NewSigner(laneKey, nil)
	tok, _ := signer.Sign("canary", time.Hour)
	inLane := []string{"X-Redline-Lane", tok}
	// The canary node registers asynchronously: until the BFF's balancer sees it, user calls
	// in the lane fall back to the baseline process. Wait until a lane read picks it.
	same := func() string {
		return grepLines(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body, `redline_ha_balancer_lane_routes_total{result="same"}`)
	}
	before := same()
	stacktest.Eventually(t, "the BFF picking the canary user instance", func() (bool, string) {
		stacktest.Do(t, "GET", s.BFF+"/v1/users/1", nil, inLane...)
		return same() != before, before
	})
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/users", map[string]string{"username": "carol", "password": "correct horse battery"}, inLane...); r.Status != 201 {
		t.Fatalf("register in lane canary = %d %s", r.Status, r.Body)
	}
	r := stacktest.Do(t, "POST", s.BFF+"/v1/sessions", map[string]string{"username": "carol", "password": "correct horse battery"}, inLane...)
	var sess struct{ Token string }
	r.JSON(t, &sess)
	bearer := "Bearer " + sess.Token
	r = stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "from the canary lane"}, append(inLane, "Authorization", bearer)...)
	if r.Status != 201 {
		t.Fatalf("note in lane canary = %d %s", r.Status, r.Body)
	}
	var n struct{ ID string }
	r.JSON(t, &n)
	card := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil, inLane...)
	if card.Status != 200 || !strings.Contains(string(card.Body), `"username":"carol"`) {
		t.Fatalf("note card in the lane = %d %s; want its author carol, from user@canary", card.Status, card.Body)
	}
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil); r.Status != 404 {
		t.Fatalf("the lane's note read in the baseline = %d %s; want 404", r.Status, r.Body)
	}
	for _, c := range []struct {
		file, text string
		want       int
	}{
		{filepath.Join(canaryDir, "user.shadow.db"), "carol", 1},
		{filepath.Join(baseDir, "user.shadow.db"), "carol", 0},
		{filepath.Join(baseDir, "user.db"), "carol", 0},
		{filepath.Join(baseDir, "note.shadow.db"), "from the canary lane", 1},
		{filepath.Join(baseDir, "note.db"), "from the canary lane", 0},
	} {
		if got := rowsIn(t, c.file, c.text); got != c.want {
			t.Errorf("%s holds %q in %d rows; want %d", c.file, c.text, got, c.want)
		}
	}
	m := string(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body)
	for _, want := range []string{`redline_ha_balancer_lane_routes_total{result="same"}`, `redline_ha_balancer_lane_routes_total{result="fallback"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// rowsIn counts the rows of the users or notes table of a SQLite file that hold text.
func rowsIn(t *testing.T, file, text string) int {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite:"+file, sqldb.WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `SELECT count(*) FROM users WHERE username = ?`
	if strings.Contains(filepath.Base(file), "note") {
		q = `SELECT count(*) FROM notes WHERE title = ?`
	}
	var n int
	if err := db.QueryRowContext(context.Background(), q, text).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
