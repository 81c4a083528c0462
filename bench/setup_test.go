package bench

import (
	"io"
	"log/slog"
	"testing"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/middleware/logging"
	kmetadata "github.com/go-kratos/kratos/v2/middleware/metadata"
	"github.com/go-kratos/kratos/v2/middleware/metrics"
	"github.com/go-kratos/kratos/v2/middleware/recovery"
	"github.com/go-kratos/kratos/v2/middleware/tracing"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	klog "github.com/redline-dev/redline/kit/log"
)

// Both frameworks log one access record per request to io.Discard, fully formatted: the kit
// through its production JSON handler, kratos through its std logger with a timestamp and the
// trace and span id valuers of the kratos-layout template. The "-nolog" variants raise the
// level to warn, so successful requests are not logged.

// kitLogger returns the kit's production logger (JSON, request and trace ids from the ctx)
// writing to io.Discard.
func kitLogger(logOn bool) *slog.Logger {
	cfg := klog.Config{Format: "json"}
	if !logOn {
		cfg.Level = "warn"
	}
	l, _ := klog.New(io.Discard, cfg)
	return l
}

// kratosLogger returns a kratos std logger writing to io.Discard.
func kratosLogger(logOn bool) log.Logger {
	var l log.Logger = log.With(log.NewStdLogger(io.Discard),
		"ts", log.DefaultTimestamp, "trace.id", tracing.TraceID(), "span.id", tracing.SpanID())
	if !logOn {
		l = log.NewFilter(l, log.FilterLevel(log.LevelWarn))
	}
	return l
}

// kratosChain is kratos' equivalent of the kit's default server chain, in the kit's order:
// recovery, metadata, tracing, logging, metrics. The deadline is kratos' transport Timeout
// option (1 s by default), which the kratos servers under test keep. Metrics record into a
// real OpenTelemetry SDK meter provider with a manual reader (aggregated, never exported),
// the SDK path that kratos' Prometheus exporter setup also takes on every request.
func kratosChain(tb testing.TB, logOn bool) []middleware.Middleware {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	meter := mp.Meter("bench")
	requests, err := metrics.DefaultRequestsCounter(meter, metrics.DefaultServerRequestsCounterName)
	if err != nil {
		tb.Fatal(err)
	}
	seconds, err := metrics.DefaultSecondsHistogram(meter, metrics.DefaultServerSecondsHistogramName)
	if err != nil {
		tb.Fatal(err)
	}
	logger := kratosLogger(logOn)
	return []middleware.Middleware{
		recovery.Recovery(),
		kmetadata.Server(),
		tracing.Server(),
		logging.Server(logger),
		metrics.Server(metrics.WithRequests(requests), metrics.WithSeconds(seconds)),
	}
}
