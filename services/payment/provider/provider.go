// Package provider is the payment provider's contract and its mock. The provider is a third
// party: the payment service asks it to charge (POST /charge) and it answers later by
// calling the callback URL with a JSON body signed with HMAC-SHA256 over the exact bytes,
// with a secret both sides share. Server is the mock the demo and the tests run, with a
// configurable delay and failure ratio for chaos drills; Client is what the payment service
// calls it with.
package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// SignatureHeader carries the hex HMAC-SHA256 of a callback's body.
const SignatureHeader = "X-Redline-Signature"

// MaxBody bounds a charge request's and a callback's body.
const MaxBody = 64 << 10

// Callback statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// MaxAmount bounds a charge: 50 items of 1000 units at 10^12 minor units each.
const MaxAmount = 50 * 1000 * 1_000_000_000_000

// ChargeRequest is the body of POST /charge. PaymentID is a JSON string, so 64-bit ids
// survive JSON parsers that read numbers as doubles.
type ChargeRequest struct {
	PaymentID   int64  `json:"payment_id,string"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	CallbackURL string `json:"callback_url"`
}

// ChargeReply is the body of a 202 answer to POST /charge.
type ChargeReply struct {
	ProviderRef string `json:"provider_ref"`
}

// Callback is the body the provider posts to the callback URL.
type Callback struct {
	PaymentID   int64     `json:"payment_id,string"`
	ProviderRef string    `json:"provider_ref"`
	Status      string    `json:"status"`
	At          time.Time `json:"at"`
}

// ErrInvalid is wrapped by the decoders' errors.
var ErrInvalid = errors.New("provider: invalid message")

var currency = regexp.MustCompile(`^[A-Z]{3}$`)

// Sign returns the signature of body: hex HMAC-SHA256 with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature with secret, in constant time.
func Verify(secret, body []byte, sig string) bool {
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// DecodeCharge parses and checks a charge request.
func DecodeCharge(body []byte) (ChargeRequest, error) {
	var c ChargeRequest
	if len(body) > MaxBody {
		return c, invalid("body over %d bytes", MaxBody)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return ChargeRequest{}, invalid("%v", err)
	}
	switch {
	case c.PaymentID <= 0:
		return c, invalid("payment_id must be positive")
	case c.Amount < 0 || c.Amount > MaxAmount:
		return c, invalid("amount must be 0 to %d", int64(MaxAmount))
	case !currency.MatchString(c.Currency):
		return c, invalid("currency must be three upper-case letters")
	}
	u, err := url.Parse(c.CallbackURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, invalid("callback_url must be an absolute http(s) URL")
	}
	return c, nil
}

// DecodeCallback parses and checks a callback body. It does not check the signature: call
// Verify first.
func DecodeCallback(body []byte) (Callback, error) {
	var c Callback
	if len(body) > MaxBody {
		return c, invalid("body over %d bytes", MaxBody)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return Callback{}, invalid("%v", err)
	}
	switch {
	case c.PaymentID <= 0:
		return c, invalid("payment_id must be positive")
	case c.ProviderRef == "" || len(c.ProviderRef) > 128:
		return c, invalid("provider_ref must be 1 to 128 bytes")
	case c.Status != StatusSucceeded && c.Status != StatusFailed:
		return c, invalid("status must be %q or %q", StatusSucceeded, StatusFailed)
	case c.At.IsZero():
		return c, invalid("at is required")
	}
	return c, nil
}
