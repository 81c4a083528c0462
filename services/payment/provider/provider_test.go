package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef-secret")

func TestSignVerify(t *testing.T) {
	body := []byte(`{"payment_id":"1"}`)
	sig := Sign(secret, body)
	if !Verify(secret, body, sig) {
		t.Fatal("Verify(Sign(body)) = false")
	}
	for name, c := range map[string]struct {
		secret, body []byte
		sig          string
	}{
		"other body":   {secret, []byte(`{"payment_id":"2"}`), sig},
		"other secret": {[]byte("another-secret-of-16"), body, sig},
		"upper case":   {secret, body, strings.ToUpper(sig)[:10] + sig[10:]},
		"truncated":    {secret, body, sig[:62]},
		"not hex":      {secret, body, "zz" + sig[2:]},
		"empty":        {secret, body, ""},
	} {
		if Verify(c.secret, c.body, c.sig) && name != "upper case" {
			t.Errorf("Verify with %s = true", name)
		}
	}
}

// receiver is the callback URL of a test: it records callbacks, answering with status.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	status atomic.Int32
	got    chan struct{}
}

func newReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{got: make(chan struct{}, 100)}
	r.status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		status := int(r.status.Load())
		if status == http.StatusOK {
			r.mu.Lock()
			r.bodies = append(r.bodies, b)
			r.sigs = append(r.sigs, req.Header.Get(SignatureHeader))
			r.mu.Unlock()
		}
		w.WriteHeader(status)
		r.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/cb"
}

// wait waits for n more callback attempts.
func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatal("no callback within 10s")
		}
	}
}

// waitStats waits until cond holds of the mock's counters.
func waitStats(t *testing.T, s *Server, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(s.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v after 10s", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func startMock(t *testing.T, opts ...Option) (*Server, *Client) {
	s := NewServer(secret, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.Close()
		_ = s.Close()
	})
	return s, NewClient(srv.URL, srv.Client())
}

func TestMockCallsBack(t *testing.T) {
	r, url := newReceiver(t)
	s, c := startMock(t)
	if err := c.Charge(t.Context(), ChargeRequest{PaymentID: 42, Amount: 1999, Currency: "USD", CallbackURL: url}); err != nil {
		t.Fatalf("Charge = %v", err)
	}
	r.wait(t, 1)
	waitStats(t, s, func(st Stats) bool { return st.Delivered == 1 })
	r.mu.Lock()
	body, sig := r.bodies[0], r.sigs[0]
	r.mu.Unlock()
	if !Verify(secret, body, sig) {
		t.Fatalf("callback signature %q does not verify", sig)
	}
	cb, err := DecodeCallback(body)
	if err != nil || cb.PaymentID != 42 || cb.Status != StatusSucceeded || !strings.HasPrefix(cb.ProviderRef, "ch_") {
		t.Fatalf("callback = %+v, %v", cb, err)
	}
	if !bytes.Contains(body, []byte(`"payment_id":"42"`)) {
		t.Fatalf("callback body %s; want payment_id as a JSON string", body)
	}
	// A repeat after the callback replays it: same ref and status.
	if err := c.Charge(t.Context(), ChargeRequest{PaymentID: 42, Amount: 1999, Currency: "USD", CallbackURL: url}); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1)
	r.mu.Lock()
	again, _ := DecodeCallback(r.bodies[1])
	r.mu.Unlock()
	if again.ProviderRef != cb.ProviderRef || again.Status != cb.Status {
		t.Fatalf("replayed callback = %+v; want ref %s status %s", again, cb.ProviderRef, cb.Status)
	}
	waitStats(t, s, func(st Stats) bool { return st.Charges == 1 && st.Repeats == 1 && st.Delivered == 2 })
}

func TestMockDeclinesAndRetries(t *testing.T) {
	r, url := newReceiver(t)
	s, c := startMock(t, FailureRatio(1), Seed(1))
	r.status.Store(http.StatusServiceUnavailable)
	if err := c.Charge(t.Context(), ChargeRequest{PaymentID: 7, Amount: 1, Currency: "EUR", CallbackURL: url}); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1) // refused with 503: the mock tries again
	r.status.Store(http.StatusOK)
	r.wait(t, 1)
	r.mu.Lock()
	cb, err := DecodeCallback(r.bodies[0])
	r.mu.Unlock()
	if err != nil || cb.Status != StatusFailed {
		t.Fatalf("callback = %+v, %v; want failed", cb, err)
	}
	waitStats(t, s, func(st Stats) bool { return st.Delivered == 1 })
}

func TestMockBounds(t *testing.T) {
	_, url := newReceiver(t)
	s, c := startMock(t, Delay(time.Hour), MaxInFlight(2))
	ctx := t.Context()
	for _, p := range []int64{1, 2} {
		if err := c.Charge(ctx, ChargeRequest{PaymentID: p, Amount: 1, Currency: "USD", CallbackURL: url}); err != nil {
			t.Fatal(err)
		}
	}
	// A repeat of a pending charge is accepted without a new callback; a third is refused.
	if err := c.Charge(ctx, ChargeRequest{PaymentID: 1, Amount: 1, Currency: "USD", CallbackURL: url}); err != nil {
		t.Fatalf("repeat of a pending charge = %v", err)
	}
	if err := c.Charge(ctx, ChargeRequest{PaymentID: 3, Amount: 1, Currency: "USD", CallbackURL: url}); err == nil ||
		!strings.Contains(err.Error(), "503") {
		t.Fatalf("third charge with 2 in flight = %v; want 503", err)
	}
	for _, bad := range []string{`{`, `{"payment_id":"0","amount":1,"currency":"USD","callback_url":"http://x"}`,
		`{"payment_id":"1","amount":-1,"currency":"USD","callback_url":"http://x"}`,
		`{"payment_id":"1","amount":1,"currency":"usd","callback_url":"http://x"}`,
		`{"payment_id":"1","amount":1,"currency":"USD","callback_url":"ftp://x"}`} {
		resp, err := http.Post(strings.TrimSuffix(c.base, "/")+"/charge", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("POST /charge %s = %d; want 400", bad, resp.StatusCode)
		}
	}
	// Close stops the pending callbacks at once (goleak checks their goroutines are gone).
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the pending callbacks")
	}
	if st := s.Stats(); st.Charges != 2 || st.Delivered != 0 {
		t.Fatalf("Stats = %+v; want 2 charges, none delivered", st)
	}
}

func TestChaosKnobs(t *testing.T) {
	s := NewServer(secret, FailureRatio(2), Delay(-time.Second))
	defer s.Close()
	if r := s.failure.Load(); r != 0x3ff0000000000000 { // 1.0
		t.Fatalf("FailureRatio(2) stored %x; want 1.0", r)
	}
	s.SetChaos(time.Second, -1)
	if s.delay.Load() != int64(time.Second) || s.failure.Load() != 0 {
		t.Fatal("SetChaos did not take")
	}
}

func TestClientErrors(t *testing.T) {
	c := NewClient("http://127.0.0.1:1", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Charge(ctx, ChargeRequest{PaymentID: 1}); err == nil {
		t.Fatal("Charge to a closed port = nil")
	}
}

var decodeErr = func(err error) bool { return err == nil || errors.Is(err, ErrInvalid) }

// FuzzDecodeCallback checks that any body either decodes to a callback within the bounds
// or fails with ErrInvalid, and that a decoded callback encodes and decodes to itself.
func FuzzDecodeCallback(f *testing.F) {
	f.Add([]byte(`{"payment_id":"42","provider_ref":"ch_1","status":"succeeded","at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"payment_id":42}`))
	f.Add([]byte(`{"payment_id":"-1","provider_ref":"x","status":"failed","at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := DecodeCallback(body)
		if !decodeErr(err) {
			t.Fatalf("DecodeCallback = %v; want nil or ErrInvalid", err)
		}
		if err != nil {
			return
		}
		if cb.PaymentID <= 0 || cb.ProviderRef == "" || len(cb.ProviderRef) > 128 ||
			(cb.Status != StatusSucceeded && cb.Status != StatusFailed) || cb.At.IsZero() {
			t.Fatalf("DecodeCallback accepted %+v", cb)
		}
		b, err := json.Marshal(cb)
		if err != nil {
			return // a time json cannot encode (year > 9999) decoded: nothing to round-trip
		}
		again, err := DecodeCallback(b)
		if err != nil || again.PaymentID != cb.PaymentID || again.Status != cb.Status || !again.At.Equal(cb.At) {
			t.Fatalf("round trip of %+v = %+v, %v", cb, again, err)
		}
	})
}

// FuzzDecodeCharge checks that any body either decodes to a charge within the bounds or
// fails with ErrInvalid.
func FuzzDecodeCharge(f *testing.F) {
	f.Add([]byte(`{"payment_id":"1","amount":1999,"currency":"USD","callback_url":"http://127.0.0.1/cb"}`))
	f.Add([]byte(`{"payment_id":"1","amount":1,"currency":"USD","callback_url":"/relative"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCharge(body)
		if !decodeErr(err) {
			t.Fatalf("DecodeCharge = %v; want nil or ErrInvalid", err)
		}
		if err == nil && (c.PaymentID <= 0 || c.Amount < 0 || c.Amount > MaxAmount || len(c.Currency) != 3 ||
			!(strings.HasPrefix(c.CallbackURL, "http://") || strings.HasPrefix(c.CallbackURL, "https://"))) {
			t.Fatalf("DecodeCharge accepted %+v", c)
		}
	})
}

// FuzzVerify checks that only the exact signature of the exact body verifies.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("body"), "")
	f.Add([]byte(""), Sign(secret, []byte("")))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		want := Sign(secret, body)
		if got := Verify(secret, body, sig); got != strings.EqualFold(sig, want) {
			t.Fatalf("Verify(%q, %q) = %v; the signature is %q", body, sig, got, want)
		}
		if !Verify(secret, body, want) {
			t.Fatalf("Verify(%q, Sign) = false", body)
		}
	})
}
