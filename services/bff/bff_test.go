package bff_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/ha/quota"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/middleware"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/bff"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type note struct {
	ID       string   `json:"id"`
	AuthorID string   `json:"author_id"`
	Title    string   `json:"title"`
	Tags     []string `json:"tags"`
	Author   *struct {
		Username string `json:"username"`
	} `json:"author"`
}

type page struct {
	Notes      []note `json:"notes"`
	NextCursor string `json:"next_cursor"`
}

func TestWalkThrough(t *testing.T) {
	s := stacktest.Start(t, nil)
	bearer, uid := stacktest.Session(t, s.BFF, "alice")

	r := stacktest.Do(t, "GET", s.BFF+"/v1/me", nil, "Authorization", bearer)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"username":"alice"`) {
		t.Fatalf("GET /v1/me = %d %s", r.Status, r.Body)
	}
	var ids []string
	for i := range 5 {
		r = stacktest.Do(t, "POST", s.BFF+"/v1/notes",
			map[string]any{"title": fmt.Sprintf("note %d", i), "body": "hello", "tags": []string{"#Go", "go", "redline"}},
			"Authorization", bearer)
		if r.Status != http.StatusCreated {
			t.Fatalf("POST /v1/notes = %d %s", r.Status, r.Body)
		}
		var n note
		r.JSON(t, &n)
		if n.AuthorID != uid || len(n.Tags) != 2 {
			t.Fatalf("created %+v; want author %s and tags deduplicated to [go redline]", n, uid)
		}
		ids = append(ids, n.ID)
	}
	r = stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+ids[0], nil)
	var got note
	r.JSON(t, &got)
	if r.Status != 200 || got.Title != "note 0" || got.Author == nil || got.Author.Username != "alice" {
		t.Fatalf("GET note = %d %s; want note 0 with its author", r.Status, r.Body)
	}
	// Newest first, two per page, across three pages.
	var seen []string
	cursor := ""
	for range 4 {
		r = stacktest.Do(t, "GET", s.BFF+"/v1/users/"+uid+"/notes?limit=2&cursor="+cursor, nil)
		var p page
		r.JSON(t, &p)
		for _, n := range p.Notes {
			seen = append(seen, n.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("paged ids = %v; want %v", seen, want)
	}
	// The request is in the BFF's RED metrics.
	m := stacktest.Do(t, "GET", s.Admin+"/metrics", nil)
	if !strings.Contains(string(m.Body), `redline_http_server_requests_total{code="201",lane="",method="POST",route="POST /v1/notes",service="bff"} 5`) {
		t.Fatalf("metrics lack the 5 note creations:\n%s", grepLines(m.Body, "requests_total"))
	}
	if !strings.Contains(string(m.Body), `redline_grpc_server_requests_total{code="OK",lane="",method="unary",route="/note.v1.Note/CreateNote",service="note"} 5`) {
		t.Fatalf("metrics lack the note service's side of the hop")
	}
	// HA is on by default: its decisions are counted and its state is on the admin page.
	for _, family := range []string{"redline_ha_codel_decisions_total", "redline_ha_shed_decisions_total",
		"redline_ha_breaker_decisions_total", "redline_ha_ratelimit_decisions_total", "redline_ha_balancer_decisions_total"} {
		if !strings.Contains(string(m.Body), family+"{") {
			t.Errorf("metrics lack %s:\n%s", family, grepLines(m.Body, "redline_ha_"))
		}
	}
	st := stacktest.Do(t, "GET", s.Admin+"/state", nil)
	var state struct {
		HA struct {
			Servers map[string]map[string]any `json:"servers"`
			Clients map[string]map[string]any `json:"clients"`
		} `json:"ha"`
	}
	st.JSON(t, &state)
	for _, part := range []string{"shed", "queue", "bulkhead", "ratelimit", "criticality", "last_good"} {
		if state.HA.Servers["bff"][part] == nil {
			t.Errorf("/state ha.servers.bff lacks %s", part)
		}
	}
	for _, part := range []string{"retry", "breakers", "bulkhead"} {
		if state.HA.Clients["note"][part] == nil {
			t.Errorf("/state ha.clients.note lacks %s", part)
		}
	}
}

func TestIdempotentCreate(t *testing.T) {
	s := stacktest.Start(t, nil)
	bearer, uid := stacktest.Session(t, s.BFF, "bob")
	var first, second note
	stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "once"}, "Authorization", bearer, "Idempotency-Key", "k-1").JSON(t, &first)
	stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "once"}, "Authorization", bearer, "Idempotency-Key", "k-1").JSON(t, &second)
	if first.ID == "" || first.ID != second.ID {
		t.Fatalf("replayed create made %s then %s; want the same note", first.ID, second.ID)
	}
	var p page
	stacktest.Do(t, "GET", s.BFF+"/v1/users/"+uid+"/notes", nil).JSON(t, &p)
	if len(p.Notes) != 1 {
		t.Fatalf("author has %d notes after a replayed create; want 1", len(p.Notes))
	}
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.BFF.MaxBody = 1024 })
	bearer, uid := stacktest.Session(t, s.BFF, "carol")
	cases := []struct {
		name    string
		method  string
		path    string
		body    any
		headers []string
		status  int
		reason  string
	}{
		{"malformed JSON", "POST", "/v1/notes", `{"title": "x"`, []string{"Authorization", bearer}, 400, "MALFORMED_JSON"},
		{"oversized body", "POST", "/v1/notes", `{"title":"x","body":"` + strings.Repeat("a", 2000) + `"}`, []string{"Authorization", bearer}, 400, "BODY_TOO_LARGE"},
		{"unknown field", "POST", "/v1/notes", `{"title":"x","author_id":"1"}`, []string{"Authorization", bearer}, 400, "UNKNOWN_FIELD"},
		{"missing token", "POST", "/v1/notes", `{"title":"x"}`, nil, 401, "TOKEN_MISSING"},
		{"forged token", "POST", "/v1/notes", `{"title":"x"}`, []string{"Authorization", bearer + "x"}, 401, "TOKEN_INVALID"},
		{"bad cursor", "GET", "/v1/users/" + uid + "/notes?cursor=bm90LWEtY3Vyc29y", nil, nil, 400, "BAD_CURSOR"},
		{"bad cursor chars", "GET", "/v1/users/" + uid + "/notes?cursor=%20x", nil, nil, 400, "BAD_CURSOR"},
		{"bad limit", "GET", "/v1/users/" + uid + "/notes?limit=500", nil, nil, 400, "BAD_LIMIT"},
		{"bad id", "GET", "/v1/notes/abc", nil, nil, 400, "INVALID_ID"},
		{"empty title", "POST", "/v1/notes", `{"title":"  "}`, []string{"Authorization", bearer}, 400, "INVALID_TITLE"},
		{"register unknown field", "POST", "/v1/users", `{"username":"dave","password":"long enough pw","admin":true}`, nil, 400, "UNKNOWN_FIELD"},
		{"short password", "POST", "/v1/users", `{"username":"dave","password":"short"}`, nil, 400, "INVALID_PASSWORD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := stacktest.Do(t, c.method, s.BFF+c.path, c.body, c.headers...)
			if r.Status != c.status || r.Reason() != c.reason {
				t.Fatalf("%s %s = %d %s; want %d %s", c.method, c.path, r.Status, r.Body, c.status, c.reason)
			}
			if !strings.Contains(string(r.Body), `"message":"`) || r.Header.Get("X-Request-Id") == "" {
				t.Fatalf("error lacks a message or request id: %s", r.Body)
			}
		})
	}
	var p page
	stacktest.Do(t, "GET", s.BFF+"/v1/users/"+uid+"/notes", nil).JSON(t, &p)
	if len(p.Notes) != 0 {
		t.Fatalf("bad requests wrote %d notes; want 0", len(p.Notes))
	}
	if r := stacktest.Do(t, "POST", s.BFF+"/v1/sessions", map[string]string{"username": "dave", "password": "long enough pw"}); r.Status != 401 {
		t.Fatalf("login as the refused registration = %d; want 401 (no user was written)", r.Status)
	}
}

func TestNotFoundCrossesTheHop(t *testing.T) {
	s := stacktest.Start(t, nil)
	r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/12345", nil)
	if r.Status != 404 || r.Reason() != "NOTE_NOT_FOUND" {
		t.Fatalf("GET missing note = %d %s; want 404 NOTE_NOT_FOUND", r.Status, r.Body)
	}
}

// slowNotes is a note service whose GetNote takes a second unless its ctx ends first.
type slowNotes struct {
	notev1.UnimplementedNoteServer
	ended chan error
}

func (s *slowNotes) GetNote(ctx context.Context, _ *notev1.GetNoteRequest) (*notev1.NoteInfo, error) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
		s.ended <- nil
		return &notev1.NoteInfo{Id: 1}, nil
	case <-ctx.Done():
		s.ended <- ctx.Err()
		return nil, ctx.Err()
	}
}

func TestEdgeBudgetCutsASlowBackend(t *testing.T) {
	ctx := context.Background()
	slow := &slowNotes{ended: make(chan error, 1)}
	noteSrv := kitgrpc.NewServer("note", kitgrpc.Logger(log.Discard()))
	notev1.RegisterNoteServer(noteSrv, slow)
	if err := noteSrv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer noteSrv.Stop(ctx)
	conn, err := kitgrpc.NewClient(noteSrv.Endpoint(), kitgrpc.ClientLogger(log.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	signer, _ := auth.NewSigner(strings.Repeat("k", 32), nil)
	edge := kithttp.NewServer("bff", kithttp.Logger(log.Discard()), kithttp.Edge(),
		kithttp.Deadline(middleware.DeadlineConfig{Default: 50 * time.Millisecond, Margin: time.Millisecond}))
	bff.Register(edge, bff.Clients{Users: userv1.NewUserClient(conn), Notes: notev1.NewNoteClient(conn)}, signer)
	if err := edge.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer edge.Stop(ctx)

	start := time.Now()
	r := stacktest.Do(t, "GET", "http://"+edge.Endpoint()+"/v1/notes/1", nil)
	elapsed := time.Since(start)
	if r.Status != http.StatusGatewayTimeout || r.Reason() != "DEADLINE_EXCEEDED" {
		t.Fatalf("GET = %d %s; want 504 DEADLINE_EXCEEDED", r.Status, r.Body)
	}
	if elapsed >= time.Second {
		t.Fatalf("answered after %v: the 50 ms edge budget did not cut the 1 s handler", elapsed)
	}
	t.Logf("50 ms edge budget, 1 s note handler: 504 after %v", elapsed)
	if err := <-slow.ended; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Fatalf("note handler ctx err = %v; want cancelled", err)
	}
	// A client-sent budget smaller than the default wins too.
	r = stacktest.Do(t, "GET", "http://"+edge.Endpoint()+"/v1/notes/1", nil, "X-Redline-Timeout", "20ms")
	if r.Status != http.StatusGatewayTimeout {
		t.Fatalf("GET with 20ms header = %d; want 504", r.Status)
	}
	<-slow.ended
}

// FuzzBFFRoutes sends arbitrary bodies to every route that decodes JSON, through the real
// stack. Whatever arrives, the answer is a 2xx or a 4xx with a reason, never a 5xx.
func FuzzBFFRoutes(f *testing.F) {
	s := stacktest.Start(f, nil)
	bearer, _ := stacktest.Session(f, s.BFF, "fuzzer")
	// Every route that takes a body. Ids in paths are of things that may not exist: the
	// answer must still be a 4xx with a reason, never a 5xx.
	routes := []string{"POST /v1/users", "POST /v1/sessions", "POST /v1/notes", "PATCH /v1/me", "PATCH /v1/notes/1",
		"POST /v1/notes/1/comments", "PUT /v1/cart/items/1", "POST /v1/orders", "POST /v1/orders/1/cancel",
		"POST /v1/orders/1/pay", "POST /v1/payments/callback"}
	f.Add(0, []byte(`{"username":"abc","password":"12345678"}`))
	f.Add(5, []byte(`{"body":"hi","root_id":"12","parent_id":"x"}`))
	f.Add(6, []byte(`{"quantity":99999999999}`))
	f.Add(7, []byte(`{"items":[{"sku_id":"1","quantity":1}],"from_cart":true}`))
	f.Add(10, []byte(`{"payment_id":"1","provider_ref":"r","status":"succeeded","at":1}`))
	f.Add(1, []byte(`{"username":"fuzzer","password":"correct horse battery"}`))
	f.Add(2, []byte(`{"title":"t","body":"b","tags":["a"],"media":["m"]}`))
	f.Add(2, []byte(`{"title":"t","tags":[1]}`))
	f.Add(2, []byte(`{"title":"\u0000","body":null}`))
	f.Fuzz(func(t *testing.T, route int, body []byte) {
		if route < 0 {
			route = -route
		}
		method, path, _ := strings.Cut(routes[route%len(routes)], " ")
		r := stacktest.Do(t, method, s.BFF+path, body, "Authorization", bearer, "Idempotency-Key", "fuzz",
			"X-Redline-Signature", "00")
		if r.Status >= 500 {
			t.Fatalf("%s %s %q = %d %s", method, path, body, r.Status, r.Body)
		}
		if r.Status >= 400 && r.Reason() == "" {
			t.Fatalf("%s %s %q = %d without a reason: %s", method, path, body, r.Status, r.Body)
		}
	})
}

func grepLines(body []byte, sub string) string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestForcedDegradation(t *testing.T) {
	var st *stacktest.Running
	st = stacktest.Start(t, nil)
	bearer, _ := stacktest.Session(t, st.BFF, "frank")
	var n note
	stacktest.Do(t, "POST", st.BFF+"/v1/notes", map[string]any{"title": "degrade me"}, "Authorization", bearer).JSON(t, &n)

	// What a config reload of ha.degrade.forced does: calls to the user service go straight
	// to their fallback, so the note is served without its author.
	cfg := stack.Default()
	cfg.HA.Degrade.Forced = []string{"user"}
	st.Apply(cfg)
	r := stacktest.Do(t, "GET", st.BFF+"/v1/notes/"+n.ID, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"degraded":["author"]`) {
		t.Fatalf("GET note with user forced off = %d %s; want 200 with degraded author", r.Status, r.Body)
	}
	st.Apply(stack.Default())
	r = stacktest.Do(t, "GET", st.BFF+"/v1/notes/"+n.ID, nil)
	if strings.Contains(string(r.Body), "degraded") {
		t.Fatalf("still degraded after the switch was cleared: %s", r.Body)
	}
}

func TestCostlyRouteIsLimitedThroughQuota(t *testing.T) {
	st := stacktest.Start(t, func(c *stack.Config) {
		c.Quota.Resources["notes_create"] = quota.Resource{Limit: 1, LeaseTTL: 10 * time.Second}
		c.HA.RateLimit.Off = true // only the quota limits here
	})
	bearer, _ := stacktest.Session(t, st.BFF, "quinn")
	created, limited := 0, 0
	for i := range 40 {
		r := stacktest.Do(t, "POST", st.BFF+"/v1/notes", map[string]any{"title": fmt.Sprint("n", i)}, "Authorization", bearer)
		switch {
		case r.Status == http.StatusCreated:
			created++
		case r.Status == http.StatusTooManyRequests && r.Reason() == "QUOTA_EXCEEDED":
			limited++
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("QUOTA_EXCEEDED without Retry-After: %s", r.Body)
			}
		default:
			t.Fatalf("POST /v1/notes = %d %s", r.Status, r.Body)
		}
	}
	if limited == 0 || created == 0 {
		t.Fatalf("created %d, limited %d of 40 at a 1/s global quota; want both", created, limited)
	}
	t.Logf("40 creates at a 1/s quota: %d created, %d QUOTA_EXCEEDED", created, limited)
	var state struct {
		HA struct {
			QuotaService struct {
				Resources []struct {
					Resource string `json:"resource"`
				} `json:"resources"`
			} `json:"quota_service"`
		} `json:"ha"`
	}
	stacktest.Do(t, "GET", st.Admin+"/state", nil).JSON(t, &state)
	if len(state.HA.QuotaService.Resources) == 0 || state.HA.QuotaService.Resources[0].Resource != "notes_create" {
		t.Fatalf("/state lacks the quota service's resources: %+v", state.HA.QuotaService)
	}
}

func TestFollow(t *testing.T) {
	st := stacktest.Start(t, nil)
	alice, aliceID := stacktest.Session(t, st.BFF, "alice")
	bob, bobID := stacktest.Session(t, st.BFF, "bob")
	_, carolID := stacktest.Session(t, st.BFF, "carol")

	follow := func(bearer, id string) (int, string) {
		r := stacktest.Do(t, "PUT", st.BFF+"/v1/me/following/"+id, nil, "Authorization", bearer)
		return r.Status, string(r.Body)
	}
	if code, body := follow(alice, bobID); code != 200 || !strings.Contains(body, `"changed":true`) {
		t.Fatalf("alice follows bob = %d %s", code, body)
	}
	if code, body := follow(alice, bobID); code != 200 || !strings.Contains(body, `"changed":false`) {
		t.Fatalf("following again = %d %s; want 200 and nothing changed", code, body)
	}
	follow(alice, carolID)
	follow(bob, carolID)
	if code, body := follow(alice, aliceID); code != 400 || !strings.Contains(body, "CANNOT_FOLLOW_SELF") {
		t.Fatalf("self follow = %d %s", code, body)
	}
	if code, body := follow(alice, "999999"); code != 404 || !strings.Contains(body, "USER_NOT_FOUND") {
		t.Fatalf("follow a missing user = %d %s", code, body)
	}
	if r := stacktest.Do(t, "PUT", st.BFF+"/v1/me/following/"+bobID, nil); r.Status != 401 {
		t.Fatalf("follow without a token = %d; want 401", r.Status)
	}

	type users struct {
		Users []struct {
			Username string `json:"username"`
		} `json:"users"`
		NextCursor string `json:"next_cursor"`
	}
	var followers users
	stacktest.Do(t, "GET", st.BFF+"/v1/users/"+carolID+"/followers?limit=1", nil).JSON(t, &followers)
	if len(followers.Users) != 1 || followers.Users[0].Username != "bob" || followers.NextCursor == "" {
		t.Fatalf("carol's first follower page = %+v; want bob (newest) and a cursor", followers)
	}
	var rest users
	stacktest.Do(t, "GET", st.BFF+"/v1/users/"+carolID+"/followers?limit=1&cursor="+followers.NextCursor, nil).JSON(t, &rest)
	if len(rest.Users) != 1 || rest.Users[0].Username != "alice" || rest.NextCursor != "" {
		t.Fatalf("carol's second follower page = %+v; want alice and no cursor", rest)
	}
	var following users
	stacktest.Do(t, "GET", st.BFF+"/v1/users/"+aliceID+"/following", nil).JSON(t, &following)
	if len(following.Users) != 2 {
		t.Fatalf("alice follows %+v; want bob and carol", following)
	}
	r := stacktest.Do(t, "DELETE", st.BFF+"/v1/me/following/"+bobID, nil, "Authorization", alice)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"changed":true`) {
		t.Fatalf("unfollow = %d %s", r.Status, r.Body)
	}
	r = stacktest.Do(t, "DELETE", st.BFF+"/v1/me/following/"+bobID, nil, "Authorization", alice)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"changed":false`) {
		t.Fatalf("unfollow again = %d %s; want 200 and nothing changed", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "GET", st.BFF+"/v1/users/"+bobID+"/followers?cursor=Zm9vOjE", nil); r.Status != 400 || r.Reason() != "BAD_CURSOR" {
		t.Fatalf("a notes cursor on followers = %d %s; want 400 BAD_CURSOR", r.Status, r.Body)
	}
}

func TestUpdateDeleteAndTags(t *testing.T) {
	st := stacktest.Start(t, nil)
	alice, _ := stacktest.Session(t, st.BFF, "alice")
	mallory, _ := stacktest.Session(t, st.BFF, "mallory")
	var a, b note
	stacktest.Do(t, "POST", st.BFF+"/v1/notes", map[string]any{"title": "a", "tags": []string{"go"}}, "Authorization", alice).JSON(t, &a)
	stacktest.Do(t, "POST", st.BFF+"/v1/notes", map[string]any{"title": "b", "tags": []string{"go", "db"}}, "Authorization", alice).JSON(t, &b)

	tagged := func(tag string) []string {
		var p page
		r := stacktest.Do(t, "GET", st.BFF+"/v1/tags/"+tag+"/notes", nil)
		if r.Status != 200 {
			t.Fatalf("GET /v1/tags/%s/notes = %d %s", tag, r.Status, r.Body)
		}
		r.JSON(t, &p)
		var ids []string
		for _, n := range p.Notes {
			ids = append(ids, n.ID)
		}
		return ids
	}
	if got := fmt.Sprint(tagged("go")); got != fmt.Sprint([]string{b.ID, a.ID}) {
		t.Fatalf("#go = %s; want b then a", got)
	}

	// Only the author may change a note, and a failed change writes nothing.
	if r := stacktest.Do(t, "PATCH", st.BFF+"/v1/notes/"+a.ID, `{"title":"pwned"}`, "Authorization", mallory); r.Status != 403 || r.Reason() != "NOT_OWNER" {
		t.Fatalf("PATCH by another user = %d %s; want 403 NOT_OWNER", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "PATCH", st.BFF+"/v1/notes/"+a.ID, `{"title":""}`, "Authorization", alice); r.Status != 400 || r.Reason() != "INVALID_TITLE" {
		t.Fatalf("PATCH to an empty title = %d %s; want 400 INVALID_TITLE", r.Status, r.Body)
	}
	r := stacktest.Do(t, "PATCH", st.BFF+"/v1/notes/"+a.ID, `{"tags":["db"]}`, "Authorization", alice)
	var updated note
	r.JSON(t, &updated)
	if r.Status != 200 || updated.Title != "a" || fmt.Sprint(updated.Tags) != "[db]" {
		t.Fatalf("PATCH tags = %d %s; want title kept and tags [db]", r.Status, r.Body)
	}
	if got := fmt.Sprint(tagged("go")); got != fmt.Sprint([]string{b.ID}) {
		t.Fatalf("#go after retagging a = %s; want only b", got)
	}

	if r := stacktest.Do(t, "DELETE", st.BFF+"/v1/notes/"+b.ID, nil, "Authorization", mallory); r.Status != 403 {
		t.Fatalf("DELETE by another user = %d; want 403", r.Status)
	}
	for i, want := range []string{`"changed":true`, `"changed":false`} {
		r := stacktest.Do(t, "DELETE", st.BFF+"/v1/notes/"+b.ID, nil, "Authorization", alice)
		if r.Status != 200 || !strings.Contains(string(r.Body), want) {
			t.Fatalf("DELETE #%d = %d %s; want 200 %s", i+1, r.Status, r.Body, want)
		}
	}
	if r := stacktest.Do(t, "GET", st.BFF+"/v1/notes/"+b.ID, nil); r.Status != 404 {
		t.Fatalf("GET a deleted note = %d; want 404", r.Status)
	}
	if got := fmt.Sprint(tagged("db")); got != fmt.Sprint([]string{a.ID}) {
		t.Fatalf("#db after deleting b = %s; want only a", got)
	}
}

func TestUpdateMe(t *testing.T) {
	st := stacktest.Start(t, nil)
	bearer, uid := stacktest.Session(t, st.BFF, "erin")
	r := stacktest.Do(t, "PATCH", st.BFF+"/v1/me", `{"display_name":"Erin","bio":"hi"}`, "Authorization", bearer)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"display_name":"Erin"`) {
		t.Fatalf("PATCH /v1/me = %d %s", r.Status, r.Body)
	}
	r = stacktest.Do(t, "GET", st.BFF+"/v1/users/"+uid, nil)
	if !strings.Contains(string(r.Body), `"bio":"hi"`) {
		t.Fatalf("profile after update = %s; want the new bio", r.Body)
	}
	if r := stacktest.Do(t, "PATCH", st.BFF+"/v1/me", `{"bio":"x","admin":true}`, "Authorization", bearer); r.Status != 400 || r.Reason() != "UNKNOWN_FIELD" {
		t.Fatalf("PATCH with an unknown field = %d %s", r.Status, r.Body)
	}
}
