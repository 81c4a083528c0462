package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
)

// CallJSON is one plain call to a JSON API, for tools (the CLI, drills) rather than
// services, which use Client with its HA chain: it sends body, when not nil, as JSON with
// method to url, adds "Authorization: Bearer token" when token is not empty, and returns
// the response (its body already read and closed) with at most limit bytes of that body.
// The error is the transport's; the status is the caller's to judge.
func CallJSON(ctx context.Context, hc *http.Client, method, url, token string, body any, limit int64) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp, raw, err
}
