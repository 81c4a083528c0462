package log

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/redline-dev/redline/kit/meta"
)

func TestContextFields(t *testing.T) {
	var buf bytes.Buffer
	logger, level := New(&buf, Config{Format: "json", Level: "info"})
	ctx := meta.NewContext(context.Background(), meta.MD{RequestID: "r-1", Lane: "canary"})
	logger.InfoContext(ctx, "hello")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["request_id"] != "r-1" || rec["lane"] != "canary" {
		t.Fatalf("record = %v; want request_id and lane from ctx", rec)
	}
	buf.Reset()
	logger.DebugContext(ctx, "hidden")
	if buf.Len() != 0 {
		t.Fatal("debug record written at info level")
	}
	level.Set(-4) // what a dynamic reload of log.level does
	logger.DebugContext(ctx, "shown")
	if buf.Len() == 0 {
		t.Fatal("debug record dropped after the level changed")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Format: "xml"}, {Level: "loud"}} {
		if c.Validate() == nil {
			t.Errorf("Validate(%+v) = nil; want an error", c)
		}
	}
}
