package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls a provider's POST /charge.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the provider at baseURL ("http://127.0.0.1:9100"); a nil
// hc means http.DefaultClient, and the ctx of each call bounds it.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), hc: hc}
}

// Charge asks the provider to charge req; nil means it accepted the charge (202) and will
// call back.
func (c *Client) Charge(ctx context.Context, req ChargeRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/charge", bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(r)
	if err != nil {
		return fmt.Errorf("provider: charge %d: %w", req.PaymentID, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("provider: charge %d: %s: %s", req.PaymentID, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
