package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Option configures NewServer.
type Option func(*Server)

// Delay is how long the mock waits after accepting a charge before calling back. Default 0.
func Delay(d time.Duration) Option { return func(s *Server) { s.delay.Store(int64(max(d, 0))) } }

// FailureRatio is the share of charges, 0..1, that the mock declines. Default 0.
func FailureRatio(r float64) Option {
	return func(s *Server) { s.failure.Store(math.Float64bits(clamp01(r))) }
}

// MaxInFlight bounds the callbacks waiting or being delivered; past it POST /charge answers
// 503. Default 256.
func MaxInFlight(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.slots = make(chan struct{}, n)
		}
	}
}

// CallbackAttempts is how many times a callback is posted before the mock gives up on it:
// it retries after a transport error or a 5xx answer, with a doubling backoff from 100ms.
// Default 5.
func CallbackAttempts(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.attempts = n
		}
	}
}

// HTTPClient sets the client that posts callbacks. Default one with a 5s timeout.
func HTTPClient(c *http.Client) Option { return func(s *Server) { s.hc = c } }

// Seed makes the mock's accept/decline draws repeatable.
func Seed(seed uint64) Option {
	return func(s *Server) { s.rnd = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithLogger sets where undeliverable callbacks are reported. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

func clamp01(r float64) float64 {
	if math.IsNaN(r) || r < 0 {
		return 0
	}
	return min(r, 1)
}

// Stats counts what the mock did.
type Stats struct {
	Charges     uint64 // distinct payments accepted
	Repeats     uint64 // repeated charges of a known payment
	Delivered   uint64 // callbacks the callback URL answered 2xx
	Undelivered uint64 // callbacks given up on, or stopped by Close
	Rejected    uint64 // charges refused: invalid, or too many in flight
}

// charge is what the mock knows of one payment.
type charge struct {
	req      ChargeRequest
	ref      string
	status   string
	inFlight bool
}

// Server is the mock provider: an http.Handler serving POST /charge. Each accepted charge is
// decided once (declined with the failure ratio) and called back on its own goroutine after
// the delay; at most MaxInFlight callbacks are pending at once. A repeated charge of a
// payment whose callback is pending changes nothing; of one already called back, it posts
// the same callback again (a replay). Close stops every pending callback.
type Server struct {
	secret   []byte
	delay    atomic.Int64
	failure  atomic.Uint64
	attempts int
	hc       *http.Client
	logger   *slog.Logger
	slots    chan struct{}
	mux      *http.ServeMux

	mu      sync.Mutex
	rnd     *mrand.Rand
	charges map[int64]*charge

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	charged, repeats, delivered, undelivered, rejected atomic.Uint64
}

// NewServer returns a mock provider that signs callbacks with secret.
func NewServer(secret []byte, opts ...Option) *Server {
	s := &Server{secret: bytes.Clone(secret), attempts: 5, hc: &http.Client{Timeout: 5 * time.Second},
		logger: slog.Default(), slots: make(chan struct{}, 256), charges: map[int64]*charge{},
		rnd: mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /charge", s.handleCharge)
	return s
}

// SetChaos changes the delay and failure ratio of charges accepted from now on.
func (s *Server) SetChaos(delay time.Duration, failureRatio float64) {
	s.delay.Store(int64(max(delay, 0)))
	s.failure.Store(math.Float64bits(clamp01(failureRatio)))
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Charges: s.charged.Load(), Repeats: s.repeats.Load(), Delivered: s.delivered.Load(),
		Undelivered: s.undelivered.Load(), Rejected: s.rejected.Load()}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops pending callbacks and waits for their goroutines. Charges after Close are
// refused.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleCharge(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		s.rejected.Add(1)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unreadable body"})
		return
	}
	req, err := DecodeCharge(body)
	if err != nil {
		s.rejected.Add(1)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ref, status := s.accept(req)
	writeJSON(w, status, ChargeReply{ProviderRef: ref})
}

// accept records a charge and starts its callback, answering the provider ref and the HTTP
// status.
func (s *Server) accept(req ChargeRequest) (string, int) {
	if s.ctx.Err() != nil {
		s.rejected.Add(1)
		return "", http.StatusServiceUnavailable
	}
	s.mu.Lock()
	c, known := s.charges[req.PaymentID]
	if known && c.inFlight {
		s.mu.Unlock()
		s.repeats.Add(1)
		return c.ref, http.StatusAccepted
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.mu.Unlock()
		s.rejected.Add(1)
		return "", http.StatusServiceUnavailable
	}
	if known {
		s.repeats.Add(1)
	} else {
		status := StatusSucceeded
		if s.rnd.Float64() < math.Float64frombits(s.failure.Load()) {
			status = StatusFailed
		}
		c = &charge{req: req, ref: newRef(), status: status}
		s.charges[req.PaymentID] = c
		s.charged.Add(1)
	}
	c.inFlight = true
	// The first charge's amount and callback URL stand: a replay repeats its callback.
	cb := Callback{PaymentID: req.PaymentID, ProviderRef: c.ref, Status: c.status}
	url, delay := c.req.CallbackURL, time.Duration(s.delay.Load())
	s.wg.Add(1)
	s.mu.Unlock()
	go s.callBack(c, url, cb, delay)
	return c.ref, http.StatusAccepted
}

func newRef() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ch_" + hex.EncodeToString(b[:])
}

// callBack waits delay, then posts cb to url until it is taken or the attempts run out.
func (s *Server) callBack(c *charge, url string, cb Callback, delay time.Duration) {
	defer s.wg.Done()
	delivered := false
	// The charge leaves flight before it is counted, so a reader of Stats that sees it
	// delivered knows a repeat of the charge will replay it.
	defer func() {
		s.mu.Lock()
		c.inFlight = false
		s.mu.Unlock()
		<-s.slots
		if delivered {
			s.delivered.Add(1)
		} else {
			s.undelivered.Add(1)
		}
	}()
	if !sleep(s.ctx, delay) {
		return
	}
	cb.At = time.Now().UTC()
	body, err := json.Marshal(cb)
	if err != nil {
		s.logger.Error("provider mock: encode callback", "err", err)
		return
	}
	sig := Sign(s.secret, body)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, err := s.post(url, body, sig)
		if err == nil {
			delivered = true
			return
		}
		if !retry || attempt >= s.attempts || !sleep(s.ctx, backoff) {
			s.logger.Warn("provider mock: callback not delivered", "payment_id", cb.PaymentID, "attempts", attempt, "err", err)
			return
		}
		backoff *= 2
	}
}

var errStatus = errors.New("callback answered")

// post sends one callback; retry says whether a failure may pass on another attempt.
func (s *Server) post(url string, body []byte, sig string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	resp, err := s.hc.Do(req)
	if err != nil {
		return s.ctx.Err() == nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, errors.Join(errStatus, errors.New(resp.Status))
	}
	return false, errors.Join(errStatus, errors.New(resp.Status))
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
