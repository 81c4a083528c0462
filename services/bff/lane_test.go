package bff_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
	"github.com/redline-dev/redline/stress/lane"
)

const laneKey = "stress-key-for-tests-0123456789"

// TestLanesFailClosed: without shadow instances, a request admitted into a lane is refused
// before it reaches any service; baseline requests are served.
func TestLanesFailClosed(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Stress.Key, c.Stress.Shadow = laneKey, false })
	signer, _ := lane.NewSigner(laneKey, nil)
	tok, _ := signer.Sign("lanetest-closed", time.Hour)
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/explore", nil, "X-Redline-Lane", tok); r.Status != 412 || r.Reason() != "LANE_NOT_ISOLATED" {
		t.Fatalf("explore in a lane with no shadow data = %d %s; want 412 LANE_NOT_ISOLATED", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/explore", nil); r.Status != 200 {
		t.Fatalf("baseline explore = %d %s", r.Status, r.Body)
	}
	if m := string(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body); strings.Contains(m, `route="/feed.v1.Feed/Explore",service="feed"`) &&
		strings.Contains(grepLines([]byte(m), "Feed/Explore"), "lanetest-closed") {
		t.Fatalf("a refused lane request reached the feed service")
	}
}

// TestSignedLaneCrossesTheBFF: a lane enters only with a token signed by the stress key,
// and then shows in the metrics of the BFF and of the services it called; a forged token
// is stripped and counted.
func TestSignedLaneCrossesTheBFF(t *testing.T) {
	const key = laneKey
	s := stacktest.Start(t, func(c *stack.Config) { c.Stress.Key = key })
	signer, _ := lane.NewSigner(key, nil)
	tok, err := signer.Sign("lanetest-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	signatureRejections := func() string {
		return grepLines(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body, `redline_lane_rejected_total{reason="signature",service="bff"}`)
	}
	before := signatureRejections()
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/explore?kind=recent", nil, "X-Redline-Lane", tok); r.Status != 200 {
		t.Fatalf("explore in a lane = %d %s", r.Status, r.Body)
	}
	forged := strings.Replace(tok, "lanetest-1", "lanetest-2", 1)
	if r := stacktest.Do(t, "GET", s.BFF+"/v1/explore?kind=recent", nil, "X-Redline-Lane", forged); r.Status != 200 {
		t.Fatalf("explore with a forged lane = %d %s", r.Status, r.Body)
	}
	m := string(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body)
	for _, want := range []string{
		`redline_http_server_requests_total{code="200",lane="lanetest-1",method="GET",route="GET /v1/explore",service="bff"} 1`,
		`route="/feed.v1.Feed/Explore",service="feed"`,
		`redline_lane_admitted_total{lane="lanetest-1",service="bff"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if after := signatureRejections(); after == before {
		t.Errorf("the forged token was not counted: %q before and after", before)
	}
	if strings.Contains(m, `lane="lanetest-2"`) {
		t.Errorf("the forged lane reached the metrics")
	}
	feedInLane := false
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "redline_grpc_server_requests_total") && strings.Contains(l, `lane="lanetest-1"`) &&
			strings.Contains(l, "/feed.v1.Feed/Explore") {
			feedInLane = true
		}
	}
	if !feedInLane {
		t.Errorf("the feed service did not see the lane:\n%s", grepLines([]byte(m), "Feed/Explore"))
	}
}

// TestLaneKillSwitches: stress.kill_services refuses lane traffic on the services named,
// stress.kill on all of them, both at once through a config reload, and baseline traffic
// is served throughout.
func TestLaneKillSwitches(t *testing.T) {
	base := func(c *stack.Config) { c.Stress.Key = laneKey }
	s := stacktest.Start(t, base)
	signer, _ := lane.NewSigner(laneKey, nil)
	tok, _ := signer.Sign("lanetest-kill", time.Hour)
	explore := func(inLane bool) stacktest.Response {
		if inLane {
			return stacktest.Do(t, "GET", s.BFF+"/v1/explore?kind=recent", nil, "X-Redline-Lane", tok)
		}
		return stacktest.Do(t, "GET", s.BFF+"/v1/explore?kind=recent", nil)
	}
	if r := explore(true); r.Status != 200 {
		t.Fatalf("lane explore = %d %s", r.Status, r.Body)
	}
	reload := func(edit func(*stack.Config)) {
		cfg := stack.Default()
		base(cfg)
		edit(cfg)
		s.Apply(cfg)
	}
	reload(func(c *stack.Config) { c.Stress.KillServices = []string{"feed"} })
	if r := explore(true); r.Status != 412 || r.Reason() != "LANE_KILLED" {
		t.Fatalf("lane explore with feed killed = %d %s; want 412 LANE_KILLED from the feed", r.Status, r.Body)
	}
	if r := explore(false); r.Status != 200 {
		t.Fatalf("baseline explore with feed's lanes killed = %d %s", r.Status, r.Body)
	}
	reload(func(c *stack.Config) { c.Stress.Kill = true })
	if r := explore(true); r.Status != 412 || r.Reason() != "LANE_KILLED" {
		t.Fatalf("lane explore with every lane killed = %d %s; want 412 LANE_KILLED", r.Status, r.Body)
	}
	m := string(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body)
	if !strings.Contains(m, `redline_lane_killed_total{service="feed"} 1`) || !strings.Contains(m, `redline_lane_killed_total{service="bff"} 1`) {
		t.Fatalf("kill counts:\n%s", grepLines([]byte(m), "redline_lane_killed_total"))
	}
	reload(func(*stack.Config) {})
	if r := explore(true); r.Status != 200 {
		t.Fatalf("lane explore after the switches are off = %d %s", r.Status, r.Body)
	}
}

// TestLaneConformance sends one lane through every boundary the demo has today: BFF (HTTP)
// → note (gRPC) → outbox → queue (NATS headers) → the feed's fan-out job → user (gRPC), and
// BFF → comment (gRPC) → queue → the comment writer → interaction (gRPC). It fails if any
// hop loses the lane. A new service or boundary joins this test.
func TestLaneConformance(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Stress.Key = laneKey })
	bearer, _ := stacktest.Session(t, s.BFF, "lane_author")
	signer, _ := lane.NewSigner(laneKey, nil)
	tok, _ := signer.Sign("conformance", time.Hour)
	inLane := []string{"Authorization", bearer, "X-Redline-Lane", tok}
	r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "in a lane"}, inLane...)
	if r.Status != 201 {
		t.Fatalf("create note in a lane = %d %s", r.Status, r.Body)
	}
	var n struct{ ID string }
	r.JSON(t, &n)
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/notes/"+n.ID+"/comments", map[string]any{"body": "lane comment"}, inLane...); r.Status != 202 {
		t.Fatalf("comment in a lane = %d %s", r.Status, r.Body)
	}
	hops := []struct{ name, service, route string }{
		{"BFF → note over gRPC", "note", "/note.v1.Note/CreateNote"},
		{"outbox → NATS → feed fan-out → user over gRPC", "user", "/user.v1.User/ListFollowers"},
		{"BFF → comment over gRPC", "comment", "/comment.v1.Comment/CreateComment"},
		{"NATS → comment writer → interaction over gRPC", "interaction", "/interaction.v1.Interaction/RecordComment"},
	}
	stacktest.Eventually(t, "the lane on every hop", func() (bool, string) {
		m := string(stacktest.Do(t, "GET", s.Admin+"/metrics", nil).Body)
		for _, h := range hops {
			found := false
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "redline_grpc_server_requests_total{") && strings.Contains(l, `lane="conformance"`) &&
					strings.Contains(l, `route="`+h.route+`"`) && strings.Contains(l, `service="`+h.service+`"`) {
					found = true
				}
			}
			if !found {
				return false, "the lane is lost on " + h.name + ":\n" + grepLines([]byte(m), h.route)
			}
		}
		return true, ""
	})
}
