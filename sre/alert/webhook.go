package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/redline-dev/redline/kit/errs"
)

// ReasonBadWebhook is the errs reason of a malformed webhook body.
const ReasonBadWebhook = "BAD_WEBHOOK"

// ErrBadWebhook matches (errors.Is) every error DecodeWebhook returns for a malformed body.
// Its HTTP status is 400.
var ErrBadWebhook = errs.InvalidArgument(ReasonBadWebhook, "malformed alertmanager webhook")

// MaxWebhookBytes bounds a webhook body. Alertmanager truncates large groups itself
// (truncatedAlerts), so a bigger body is not from Alertmanager.
const MaxWebhookBytes = 4 << 20

// WebhookVersion is the only Alertmanager webhook version understood.
const WebhookVersion = "4"

// Webhook is the body Alertmanager's webhook_config posts: one notification for one group.
type Webhook struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            Status            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// wire mirrors Webhook with times as text, so a bad time names its field.
type wire struct {
	Version           *string           `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            Status            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            *[]wireAlert      `json:"alerts"`
}

type wireAlert struct {
	Status       Status            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func bad(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return errs.InvalidArgument(ReasonBadWebhook, "alertmanager webhook: %s", msg)
}

// DecodeWebhook reads and validates one Alertmanager webhook body (at most
// MaxWebhookBytes). Every error for a malformed body matches ErrBadWebhook and names the
// field and what is wrong with it ("alerts[1].startsAt: ..."). Fields this package does not
// know are ignored, so a newer Alertmanager that adds one still pages; everything it does
// know is checked: version "4", a status, a receiver, a group key, at least one alert, and
// for each alert a status, valid label names, a non-empty label set, an RFC 3339 startsAt,
// and an endsAt not before it (required when resolved). Each alert's Fingerprint is
// recomputed from its labels with Fingerprint; the sender's is not trusted.
func DecodeWebhook(r io.Reader) (*Webhook, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxWebhookBytes+1))
	if err != nil {
		return nil, fmt.Errorf("alert: read webhook: %w", err)
	}
	if len(body) > MaxWebhookBytes {
		return nil, bad("body larger than %d bytes", MaxWebhookBytes)
	}
	return ParseWebhook(body)
}

// ParseWebhook is DecodeWebhook on a body already read.
func ParseWebhook(body []byte) (*Webhook, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("trailing data after the JSON object")
	}
	switch {
	case w.Version == nil:
		return nil, bad("version: missing, want %q", WebhookVersion)
	case *w.Version != WebhookVersion:
		return nil, bad("version: %q, want %q", *w.Version, WebhookVersion)
	case w.Status != Firing && w.Status != Resolved:
		return nil, bad("status: %q, want firing or resolved", w.Status)
	case w.Receiver == "":
		return nil, bad("receiver: missing")
	case w.GroupKey == "":
		return nil, bad("groupKey: missing")
	case w.TruncatedAlerts < 0:
		return nil, bad("truncatedAlerts: %d is negative", w.TruncatedAlerts)
	case w.Alerts == nil || len(*w.Alerts) == 0:
		return nil, bad("alerts: missing or empty")
	}
	for field, m := range map[string]map[string]string{"groupLabels": w.GroupLabels, "commonLabels": w.CommonLabels, "commonAnnotations": w.CommonAnnotations} {
		if err := checkLabels(field, m); err != nil {
			return nil, err
		}
	}
	out := &Webhook{
		Version: *w.Version, GroupKey: w.GroupKey, TruncatedAlerts: w.TruncatedAlerts,
		Status: w.Status, Receiver: w.Receiver, GroupLabels: w.GroupLabels,
		CommonLabels: w.CommonLabels, CommonAnnotations: w.CommonAnnotations,
		ExternalURL: w.ExternalURL, Alerts: make([]Alert, 0, len(*w.Alerts)),
	}
	for i, wa := range *w.Alerts {
		a, err := wa.alert(fmt.Sprintf("alerts[%d]", i))
		if err != nil {
			return nil, err
		}
		out.Alerts = append(out.Alerts, a)
	}
	return out, nil
}

func (wa wireAlert) alert(at string) (Alert, error) {
	if wa.Status != Firing && wa.Status != Resolved {
		return Alert{}, bad("%s.status: %q, want firing or resolved", at, wa.Status)
	}
	if len(wa.Labels) == 0 {
		return Alert{}, bad("%s.labels: missing or empty", at)
	}
	if err := checkLabels(at+".labels", wa.Labels); err != nil {
		return Alert{}, err
	}
	if err := checkLabels(at+".annotations", wa.Annotations); err != nil {
		return Alert{}, err
	}
	if wa.StartsAt == "" {
		return Alert{}, bad("%s.startsAt: missing", at)
	}
	starts, err := time.Parse(time.RFC3339Nano, wa.StartsAt)
	if err != nil || starts.IsZero() {
		return Alert{}, bad("%s.startsAt: %q is not an RFC 3339 time", at, wa.StartsAt)
	}
	var ends time.Time
	if wa.EndsAt != "" {
		if ends, err = time.Parse(time.RFC3339Nano, wa.EndsAt); err != nil {
			return Alert{}, bad("%s.endsAt: %q is not an RFC 3339 time", at, wa.EndsAt)
		}
	}
	// Alertmanager sends the zero time, 0001-01-01T00:00:00Z, for "not ended".
	if !ends.IsZero() && ends.Before(starts) {
		return Alert{}, bad("%s.endsAt: %s is before startsAt %s", at, wa.EndsAt, wa.StartsAt)
	}
	if wa.Status == Resolved && ends.IsZero() {
		return Alert{}, bad("%s.endsAt: missing on a resolved alert", at)
	}
	return Alert{
		Labels: wa.Labels, Annotations: wa.Annotations, Status: wa.Status,
		StartsAt: starts.UTC(), EndsAt: ends.UTC(), GeneratorURL: wa.GeneratorURL,
		Fingerprint: Fingerprint(wa.Labels),
	}, nil
}

func checkLabels(field string, m map[string]string) error {
	for k, v := range m {
		if !labelName.MatchString(k) {
			return bad("%s: name %q is not [a-zA-Z_][a-zA-Z0-9_]*", field, k)
		}
		if !utf8.ValidString(v) {
			return bad("%s.%s: value is not valid UTF-8", field, k)
		}
	}
	return nil
}

func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return bad("malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return bad("body: got JSON %s, want an object", typ.Value)
		}
		return bad("%s: got JSON %s, want %s", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return bad("empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("truncated JSON")
	}
	return bad("%v", err)
}
