package alert

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodWebhook = `{
  "version": "4",
  "groupKey": "{}:{alertname=\"HighErrorRate\"}",
  "truncatedAlerts": 0,
  "status": "firing",
  "receiver": "redline",
  "groupLabels": {"alertname": "HighErrorRate"},
  "commonLabels": {"alertname": "HighErrorRate", "service": "order", "severity": "page"},
  "commonAnnotations": {"summary": "order is burning its budget"},
  "externalURL": "http://alertmanager:9093",
  "futureField": {"ignored": true},
  "alerts": [
    {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "order", "severity": "page", "slo": "availability"},
     "annotations": {"summary": "order is burning its budget"},
     "startsAt": "2026-01-01T10:00:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prometheus/graph", "fingerprint": "abc"},
    {"status": "resolved", "labels": {"alertname": "HighErrorRate", "service": "order", "severity": "ticket"},
     "startsAt": "2026-01-01T09:00:00Z", "endsAt": "2026-01-01T09:30:00Z"}
  ]
}`

func TestDecodeWebhook(t *testing.T) {
	w, err := DecodeWebhook(strings.NewReader(goodWebhook))
	if err != nil {
		t.Fatalf("DecodeWebhook: %v", err)
	}
	if w.Receiver != "redline" || w.Status != Firing || len(w.Alerts) != 2 {
		t.Fatalf("DecodeWebhook = %+v", w)
	}
	a := w.Alerts[0]
	if want := time.Date(2026, 1, 1, 10, 0, 0, 123e6, time.UTC); !a.StartsAt.Equal(want) {
		t.Errorf("StartsAt = %v; want %v", a.StartsAt, want)
	}
	if !a.EndsAt.IsZero() {
		t.Errorf("EndsAt = %v; want zero", a.EndsAt)
	}
	if a.Fingerprint != Fingerprint(a.Labels) || a.Fingerprint == "abc" {
		t.Errorf("Fingerprint = %q; want recomputed %q", a.Fingerprint, Fingerprint(a.Labels))
	}
	if a.Summary() != "order is burning its budget" {
		t.Errorf("Summary = %q", a.Summary())
	}
	if w.Alerts[1].Status != Resolved || !w.Alerts[1].ResolvedAt(time.Time{}) {
		t.Errorf("second alert should be resolved: %+v", w.Alerts[1])
	}
}

func TestDecodeWebhookErrors(t *testing.T) {
	alert := `{"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-01-01T00:00:00Z"}`
	body := func(fields string) string {
		return `{"version":"4","groupKey":"g","status":"firing","receiver":"r",` + fields + `}`
	}
	tests := []struct {
		name, body, want string
	}{
		{"empty", ``, "empty body"},
		{"not json", `{"version":`, "truncated JSON"},
		{"syntax", `{"version" "4"}`, "malformed JSON at byte"},
		{"array", `[]`, "body: got JSON array, want an object"},
		{"trailing", body(`"alerts":[`+alert+`]`) + `{}`, "trailing data"},
		{"no version", `{"groupKey":"g","status":"firing","receiver":"r","alerts":[` + alert + `]}`, "version: missing"},
		{"old version", strings.Replace(body(`"alerts":[`+alert+`]`), `"4"`, `"3"`, 1), `version: "3", want "4"`},
		{"bad status", strings.Replace(body(`"alerts":[`+alert+`]`), `"status":"firing","receiver"`, `"status":"burning","receiver"`, 1), `status: "burning"`},
		{"no receiver", strings.Replace(body(`"alerts":[`+alert+`]`), `"receiver":"r"`, `"receiver":""`, 1), "receiver: missing"},
		{"no group key", strings.Replace(body(`"alerts":[`+alert+`]`), `"groupKey":"g"`, `"groupKey":""`, 1), "groupKey: missing"},
		{"no alerts", body(`"alerts":[]`), "alerts: missing or empty"},
		{"alerts not array", body(`"alerts":{}`), "alerts: got JSON object"},
		{"negative truncated", body(`"truncatedAlerts":-1,"alerts":[` + alert + `]`), "truncatedAlerts: -1 is negative"},
		{"bad label name", body(`"commonLabels":{"a-b":"x"},"alerts":[` + alert + `]`), `commonLabels: name "a-b"`},
		{"label not string", body(`"alerts":[{"status":"firing","labels":{"a":1},"startsAt":"2026-01-01T00:00:00Z"}]`), "alerts.labels: got JSON number"},
		{"alert status", body(`"alerts":[{"status":"","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]`), `alerts[0].status: ""`},
		{"no labels", body(`"alerts":[{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}]`), "alerts[0].labels: missing"},
		{"no start", body(`"alerts":[` + alert + `,{"status":"firing","labels":{"a":"b"}}]`), "alerts[1].startsAt: missing"},
		{"bad start", body(`"alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"yesterday"}]`), `alerts[0].startsAt: "yesterday"`},
		{"bad end", body(`"alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"soon"}]`), `alerts[0].endsAt: "soon"`},
		{"end before start", body(`"alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2025-01-01T00:00:00Z"}]`), "is before startsAt"},
		{"resolved without end", body(`"alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]`), "missing on a resolved alert"},
		{"annotation name", body(`"alerts":[{"status":"firing","labels":{"a":"b"},"annotations":{"1x":"y"},"startsAt":"2026-01-01T00:00:00Z"}]`), `alerts[0].annotations: name "1x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := DecodeWebhook(strings.NewReader(tt.body))
			if err == nil {
				t.Fatalf("DecodeWebhook(%q) = %+v; want error", tt.body, w)
			}
			if !errors.Is(err, ErrBadWebhook) {
				t.Errorf("error %v does not match ErrBadWebhook", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeWebhookTooLarge(t *testing.T) {
	big := strings.Repeat(" ", MaxWebhookBytes) + goodWebhook
	if _, err := DecodeWebhook(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("DecodeWebhook(huge) = %v; want too large", err)
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint(map[string]string{"a": "1", "b": "2"})
	if b := Fingerprint(map[string]string{"b": "2", "a": "1", "c": ""}); a != b {
		t.Errorf("Fingerprint differs by order or empty label: %s vs %s", a, b)
	}
	// The separator keeps {"ab":"c"} and {"a":"bc"} apart.
	if Fingerprint(map[string]string{"ab": "c"}) == Fingerprint(map[string]string{"a": "bc"}) {
		t.Error("Fingerprint collides on shifted boundaries")
	}
	if len(a) != 16 {
		t.Errorf("len(Fingerprint) = %d; want 16", len(a))
	}
}

func FuzzDecodeWebhook(f *testing.F) {
	f.Add([]byte(goodWebhook))
	f.Add([]byte(`{"version":"4","groupKey":"g","status":"resolved","receiver":"r","alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:00:01Z"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWebhook(body)
		if err != nil {
			if !errors.Is(err, ErrBadWebhook) {
				t.Fatalf("ParseWebhook error %v does not match ErrBadWebhook", err)
			}
			return
		}
		if w.Version != WebhookVersion || len(w.Alerts) == 0 || w.Receiver == "" {
			t.Fatalf("ParseWebhook accepted an invalid webhook: %+v", w)
		}
		for i, a := range w.Alerts {
			if len(a.Labels) == 0 || a.StartsAt.IsZero() || a.Fingerprint != Fingerprint(a.Labels) {
				t.Fatalf("alert %d invalid after decoding: %+v", i, a)
			}
			if !a.EndsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
				t.Fatalf("alert %d ends before it starts: %+v", i, a)
			}
		}
	})
}
