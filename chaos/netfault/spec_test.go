package netfault

import (
	"strings"
	"testing"
)

func TestParseToxicAccepts(t *testing.T) {
	for _, body := range []string{
		`{"proxy": "redis", "type": "latency", "attributes": {"latency": "200ms", "jitter": "50ms"}, "ttl": "10m", "reason": "drill 7"}`,
		`{"proxy": "note", "type": "bandwidth", "stream": "downstream", "attributes": {"rate": 16}}`,
		`{"proxy": "postgres", "type": "reset_peer", "toxicity": 0.2, "attributes": {"timeout": "100ms"}}`,
		`{"proxy": "nats", "type": "timeout", "stream": "upstream", "attributes": {"timeout": "0s"}, "ttl": "2m"}`,
		`{"proxy": "search", "type": "limit_data", "attributes": {"bytes": 1024}}`,
		`{"proxy": "note-shadow", "type": "slicer", "attributes": {"average_size": 64, "size_variation": 16, "delay": "10us"}, "id": "slice-1"}`,
		`{"proxy": "x", "type": "timeout", "toxicity": 1}`,
	} {
		if _, err := ParseToxic([]byte(body)); err != nil {
			t.Errorf("ParseToxic(%s) = %v; want nil", body, err)
		}
	}
}

func TestParseToxicRefuses(t *testing.T) {
	for _, tc := range []struct{ body, field, msg string }{
		{`{"type": "latency", "attributes": {"latency": "1s"}}`, "proxy", "missing"},
		{`{"proxy": "Redis", "type": "timeout"}`, "proxy", "not a proxy name"},
		{`{"proxy": "redis"}`, "type", "missing"},
		{`{"proxy": "redis", "type": "delay"}`, "type", `"delay" is not latency`},
		{`{"proxy": "redis", "type": "timeout", "stream": "both"}`, "stream", "not upstream or downstream"},
		{`{"proxy": "redis", "type": "timeout", "toxicity": 0}`, "toxicity", "not in (0, 1]"},
		{`{"proxy": "redis", "type": "timeout", "toxicity": 1.5}`, "toxicity", "not in (0, 1]"},
		{`{"proxy": "redis", "type": "latency"}`, "attributes.latency", "needs a latency"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": "fast"}}`, "attributes.latency", "not a duration"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": "1.5ms"}}`, "attributes.latency", "whole number of 1ms"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": "2h"}}`, "attributes.latency", "over the limit"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": "50m", "jitter": "20m"}}`, "attributes.latency", "add up to more than"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": "1s", "jitter": "-1s"}}`, "attributes.jitter", "negative"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": "1s", "rate": 5}}`, "attributes.rate", "a latency toxic takes no rate"},
		{`{"proxy": "redis", "type": "bandwidth"}`, "attributes.rate", "above zero"},
		{`{"proxy": "redis", "type": "bandwidth", "attributes": {"rate": -1}}`, "attributes.rate", "above zero"},
		{`{"proxy": "redis", "type": "timeout", "attributes": {"bytes": 3}}`, "attributes.bytes", "a timeout toxic takes no bytes"},
		{`{"proxy": "redis", "type": "reset_peer", "attributes": {"timeout": "1us"}}`, "attributes.timeout", "whole number of 1ms"},
		{`{"proxy": "redis", "type": "slicer"}`, "attributes.average_size", "above zero"},
		{`{"proxy": "redis", "type": "slicer", "attributes": {"average_size": 4, "size_variation": 4}}`, "attributes.size_variation", "not in [0, average_size)"},
		{`{"proxy": "redis", "type": "slicer", "attributes": {"average_size": 4, "delay": "1ns"}}`, "attributes.delay", "whole number of 1µs"},
		{`{"proxy": "redis", "type": "limit_data"}`, "attributes.bytes", "above zero"},
		{`{"proxy": "redis", "type": "timeout", "ttl": "0s"}`, "ttl", "not above zero"},
		{`{"proxy": "redis", "type": "timeout", "ttl": "soon"}`, "ttl", "not a duration"},
		{`{"proxy": "redis", "type": "timeout", "id": "Bad ID"}`, "id", "not [a-z0-9-]{1,40}"},
		{`{"proxy": "redis", "type": "timeout", "reason": "two\nlines"}`, "reason", "control character"},
		{`{"proxy": "redis", "type": "timeout", "reason": "` + strings.Repeat("r", 513) + `"}`, "reason", "longer than 512"},
	} {
		_, err := ParseToxic([]byte(tc.body))
		if err == nil {
			t.Errorf("ParseToxic(%s) = nil; want an error naming %s", tc.body, tc.field)
			continue
		}
		wantBad(t, err, tc.field, tc.msg)
	}
}

// TestParseToxicStrictJSON: unknown fields and wrong types are refused by name, as
// kit/transport/http.DecodeJSON does for every body.
func TestParseToxicStrictJSON(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"proxy": "redis", "type": "timeout", "latency": "1s"}`, "latency"},
		{`{"proxy": "redis", "type": "latency", "attributes": {"latency": 100}}`, "attributes.latency"},
		{`{"proxy": "redis", "type": "timeout", "toxicity": "half"}`, "toxicity"},
	} {
		_, err := ParseToxic([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("ParseToxic(%s) = %v; want an error naming %s", tc.body, err, tc.field)
		}
	}
}

func TestOutageSpecValidate(t *testing.T) {
	if err := (OutageSpec{TTL: "30s", Reason: "redis down"}).Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	wantBad(t, OutageSpec{TTL: "-1s"}.Validate(), "ttl", "negative")
	wantBad(t, OutageSpec{Reason: "\x00"}.Validate(), "reason", "control character")
}
