package oncall

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Page is one notification to one person about one incident.
type Page struct {
	IncidentID string    `json:"incident_id"`
	Title      string    `json:"title"`
	Service    string    `json:"service"`
	Severity   string    `json:"severity"`
	Policy     string    `json:"policy"`
	Level      int       `json:"level"`
	User       string    `json:"user"`
	At         time.Time `json:"at"`
}

// Notifier delivers pages: webhook and log here, more (chat, SMS) behind the same method.
type Notifier interface {
	Notify(ctx context.Context, p Page) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, p Page) error

// Notify implements Notifier.
func (f NotifierFunc) Notify(ctx context.Context, p Page) error { return f(ctx, p) }

// Webhook posts each page as JSON to a URL and wants a 2xx answer.
type Webhook struct {
	url    string
	client *http.Client
}

var (
	_ Notifier = (*Webhook)(nil)
	_ Notifier = (*Log)(nil)
	_ Notifier = NotifierFunc(nil)
)

// NewWebhook returns a Webhook posting to url through client (a client with a 10 s timeout
// when nil).
func NewWebhook(url string, client *http.Client) *Webhook {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Webhook{url: url, client: client}
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, p Page) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("oncall: webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("oncall: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("oncall: webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("oncall: webhook %s answered %s", w.url, resp.Status)
	}
	return nil
}

// Log writes each page to a logger at warning level; it never fails.
type Log struct{ logger *slog.Logger }

// NewLog returns a Log writing to l (slog.Default() when nil).
func NewLog(l *slog.Logger) *Log {
	if l == nil {
		l = slog.Default()
	}
	return &Log{logger: l}
}

// Notify implements Notifier.
func (l *Log) Notify(ctx context.Context, p Page) error {
	l.logger.WarnContext(ctx, "page", "incident", p.IncidentID, "title", p.Title, "service", p.Service,
		"severity", p.Severity, "policy", p.Policy, "level", p.Level, "user", p.User, "at", p.At)
	return nil
}
