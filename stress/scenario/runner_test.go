package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redline-dev/redline/stress/load"
)

// inMemory sends requests straight to a handler, so runner tests need no network and run
// in a synctest bubble.
type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// shop is a tiny API in the BFF's shapes.
type shop struct {
	mu        sync.Mutex
	lane      int // requests carrying the lane header
	requests  int
	orders    atomic.Int64
	keys      map[string]bool
	runIDs    int // order keys carrying the run id
	emptyFeed bool
	badLogin  bool
	shedFirst map[string]bool // logins shed once per user, as a busy server does
}

func (s *shop) handler() http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	authed := func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-u") {
			write(w, 401, map[string]any{"error": map[string]string{"reason": "UNAUTHENTICATED"}})
			return false
		}
		return true
	}
	mux.HandleFunc("POST /v1/users", func(w http.ResponseWriter, r *http.Request) {
		write(w, 409, map[string]any{"error": map[string]string{"reason": "USERNAME_TAKEN"}})
	})
	mux.HandleFunc("POST /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		s.mu.Lock()
		shed := s.shedFirst != nil && !s.shedFirst[in.Username]
		if shed {
			s.shedFirst[in.Username] = true
		}
		s.mu.Unlock()
		if shed {
			write(w, 429, map[string]any{"error": map[string]string{"reason": "OVERLOADED"}})
			return
		}
		if s.badLogin || in.Password != "pw-123456" {
			write(w, 401, map[string]any{"error": map[string]string{"reason": "BAD_CREDENTIALS", "message": "wrong password"}})
			return
		}
		write(w, 201, map[string]any{"token": "tok-" + in.Username, "user": map[string]any{"id": strings.TrimPrefix(in.Username, "u")}})
	})
	mux.HandleFunc("GET /v1/feed", func(w http.ResponseWriter, r *http.Request) {
		if !authed(w, r) {
			return
		}
		notes := []map[string]string{{"id": "11"}, {"id": "12"}}
		if s.emptyFeed {
			notes = []map[string]string{}
		}
		write(w, 200, map[string]any{"notes": notes})
	})
	mux.HandleFunc("GET /v1/notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != "11" && id != "12" {
			write(w, 404, map[string]any{"error": map[string]string{"reason": "NOTE_NOT_FOUND"}})
			return
		}
		write(w, 200, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		if !authed(w, r) {
			return
		}
		key := r.Header.Get("Idempotency-Key")
		s.mu.Lock()
		dup := s.keys[key]
		s.keys[key] = true
		if strings.HasPrefix(key, "rl-test-") {
			s.runIDs++
		}
		s.mu.Unlock()
		if key == "" || dup {
			write(w, 400, map[string]any{"error": map[string]string{"reason": "IDEMPOTENCY_KEY_REQUIRED"}})
			return
		}
		if s.orders.Add(1)%4 == 0 {
			write(w, 412, map[string]any{"error": map[string]string{"reason": "OUT_OF_STOCK"}})
			return
		}
		write(w, 201, map[string]string{"id": "99"})
	})
	mux.HandleFunc("POST /v1/orders/{id}/pay", func(w http.ResponseWriter, r *http.Request) {
		if authed(w, r) {
			write(w, 200, map[string]string{"state": "pending"})
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		if r.Header.Get("X-Redline-Lane") == "v1.lane" {
			s.lane++
		}
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

const shopScenario = `
name: shop
data: {pw: pw-123456}
users:
  count: 3
  vars: {username: 'u{{.i}}'}
  steps:
    - {name: register, method: POST, path: /v1/users, body: '{"username": {{json .username}}}', expect: [201, 409]}
    - {name: login, method: POST, path: /v1/sessions, body: '{"username": {{json .username}}, "password": {{json .pw}}}',
       expect: [201], extract: {token: token, user_id: user.id}}
headers: {Authorization: 'Bearer {{.token}}'}
journeys:
  - name: read
    weight: 3
    steps:
      - {name: feed, path: '/v1/feed', extract: {note_id: 'notes.*.id'}}
      - {name: note, path: '/v1/notes/{{.note_id}}', expect: [200]}
  - name: buy
    weight: 1
    steps:
      - name: order
        method: POST
        path: /v1/orders
        headers: {Idempotency-Key: '{{.run_id}}-{{seq}}'}
        body: '{"items": []}'
        expect: [201]
        stop_on: [412]
        extract: {order_id: id}
      - {name: pay, method: POST, path: '/v1/orders/{{.order_id}}/pay', expect: [200]}
`

func newShopRunner(t *testing.T, s *shop) *Runner {
	t.Helper()
	sc, err := Parse("shop.yaml", []byte(shopScenario), Routes(RedNoteRoutes))
	if err != nil {
		t.Fatal(err)
	}
	r, err := sc.NewRunner(Env{BaseURL: "http://shop.test", Client: &http.Client{Transport: inMemory{s.handler()}},
		Header: http.Header{"X-Redline-Lane": {"v1.lane"}}, RunID: "rl-test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunnerRunsWeightedJourneysWithTheirData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &shop{keys: map[string]bool{}, shedFirst: map[string]bool{}}
		r := newShopRunner(t, s)
		if err := r.Setup(context.Background(), 2); err != nil {
			t.Fatalf("Setup with every first login shed: %v", err)
		}
		if r.Users() != 3 || len(r.sessions) != 3 || r.sessions[2]["token"] != "tok-u2" || r.sessions[2]["user_id"] != "2" {
			t.Fatalf("sessions %v; want three, u2 with its token and id", r.sessions)
		}
		sched, _ := load.Constant(100, 10*time.Second)
		res, err := load.Run(context.Background(), sched, r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 {
			t.Fatalf("%d errors: %+v", res.Errors, res.ErrorKinds)
		}
		steps := map[string]load.StepResult{}
		for _, st := range res.Steps {
			steps[st.Name] = st
		}
		feed, note, order, pay := steps["read/feed"], steps["read/note"], steps["buy/order"], steps["buy/pay"]
		if feed.Requests+order.Requests != 1000 || feed.Requests < 650 || feed.Requests > 850 {
			t.Errorf("%d reads, %d orders; want 1000 journeys, about 3:1", feed.Requests, order.Requests)
		}
		if note.Requests != feed.Requests || note.Statuses[200] != note.Requests {
			t.Errorf("%d notes opened for %d feeds: the extracted id must lead to a note", note.Requests, feed.Requests)
		}
		// Every 4th order is sold out: the journey ends there, as a success, without paying.
		if order.Statuses[412] != order.Requests/4 || pay.Requests != order.Statuses[201] {
			t.Errorf("orders %v, pays %d; want a quarter 412 and a payment for every 201", order.Statuses, pay.Requests)
		}
		if s.lane != s.requests || s.runIDs != int(order.Requests) {
			t.Errorf("%d of %d requests had the lane header, %d of %d order keys the run id", s.lane, s.requests, s.runIDs, order.Requests)
		}
	})
}

func TestRunnerSetupFailsClearly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &shop{keys: map[string]bool{}, badLogin: true}
		err := newShopRunner(t, s).Setup(context.Background(), 2)
		if err == nil || !strings.Contains(err.Error(), `step "login": status 401 BAD_CREDENTIALS: POST /v1/sessions: 401: wrong password`) {
			t.Fatalf("Setup = %v; want the failing user's login and the server's reason", err)
		}
	})
}

func TestRunnerCountsAMissingValueAsAnExtractError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &shop{keys: map[string]bool{}, emptyFeed: true}
		r := newShopRunner(t, s)
		if err := r.Setup(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		sched, _ := load.Constant(50, 2*time.Second)
		res, err := load.Run(context.Background(), sched, r)
		if err != nil {
			t.Fatal(err)
		}
		var row load.ErrorCount
		for _, e := range res.ErrorKinds {
			if e.Step == "read/feed" {
				row = e
			}
		}
		want := "GET /v1/feed: extract note_id: notes.*: the list is empty"
		if row.Kind != load.KindExtract || row.Status != 200 || row.Example != want || row.Count == 0 {
			t.Fatalf("errors %+v; want read/feed extract errors: %q", res.ErrorKinds, want)
		}
		for _, st := range res.Steps {
			if st.Name == "read/note" {
				t.Errorf("read/note ran %d times after its feed failed", st.Requests)
			}
		}
	})
}

func TestNewRunnerNeedsABaseURL(t *testing.T) {
	sc, err := Parse("nobase.yaml", []byte(strings.Replace(minimal, "base_url: http://127.0.0.1:8080\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.NewRunner(Env{}); err == nil || !strings.Contains(err.Error(), "no http(s) base URL") {
		t.Fatalf("NewRunner = %v; want a missing base URL", err)
	}
	if r, err := sc.NewRunner(Env{BaseURL: fmt.Sprintf("http://127.0.0.1:%d/", 8080)}); err != nil || r.base != "http://127.0.0.1:8080" {
		t.Fatalf("NewRunner = %v; want the target", err)
	}
}
