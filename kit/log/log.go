// Package log builds the slog loggers of Redline services: JSON or text output, with the
// request id, trace id and lane of the context added to every record logged with a context.
package log

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/trace"
)

// Config selects the output.
type Config struct {
	// Format is "json" (default) or "text".
	Format string `koanf:"format"`
	// Level is debug, info (default), warn or error.
	Level string `koanf:"level" dynamic:"true"`
}

// Validate checks the format and level names.
func (c Config) Validate() error {
	if _, err := ParseLevel(c.Level); err != nil {
		return err
	}
	switch c.Format {
	case "", "json", "text":
		return nil
	}
	return fmt.Errorf("log.format %q: want json or text", c.Format)
}

// ParseLevel parses a level name; "" is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level %q: want debug, info, warn or error", s)
}

// New returns a logger writing to w. level may be changed later through the returned
// *slog.LevelVar, which is how a dynamic config reload applies a new level.
func New(w io.Writer, cfg Config) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	if l, err := ParseLevel(cfg.Level); err == nil {
		lv.Set(l)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if cfg.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(ContextHandler{h}), lv
}

// ContextHandler adds request_id, trace_id and lane from the record's context.
type ContextHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		md := meta.FromContext(ctx)
		if md.RequestID != "" {
			r.AddAttrs(slog.String("request_id", md.RequestID))
		}
		if tid, _ := trace.IDs(ctx); tid != "" {
			r.AddAttrs(slog.String("trace_id", tid))
		}
		if md.Lane != "" {
			r.AddAttrs(slog.String("lane", md.Lane))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ContextHandler{h.Handler.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{h.Handler.WithGroup(name)}
}

// Discard is a logger that drops everything, for tests and benchmarks.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
