package bench

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/redline-dev/redline/kit/trace"
)

// TestMain installs the kit's SDK tracer provider (every root trace sampled, no exporter),
// as `redline run` does, when BENCH_TRACE=sdk. Both kit and kratos then record real spans.
// By default the global provider is OpenTelemetry's no-op one, as a library runs out of the
// box.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_TRACE") == "sdk" {
		shutdown, err := trace.Setup(context.Background(), "bench", trace.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		code := m.Run()
		_ = shutdown(context.Background())
		os.Exit(code)
	}
	os.Exit(m.Run())
}
