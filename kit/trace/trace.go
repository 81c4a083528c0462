// Package trace sets up OpenTelemetry tracing for Redline services: W3C trace context
// propagation on every hop, spans from the transport middleware, and an optional OTLP
// exporter that is off by default.
//
// After Setup, even without an exporter, spans get real ids (sampled by parent, never
// exported), so trace ids appear in logs and cross every hop. Before Setup (a library used
// on its own) no spans are made, but a caller's trace context is still passed on.
package trace

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// propagator carries only W3C trace context; the lane member of baggage is kit/meta's.
var propagator = propagation.TraceContext{}

// enabled is set by Setup. Without it no span is made, though trace context still passes
// through every hop.
var enabled atomic.Bool

// Enabled reports whether Setup installed a tracer provider, so middleware can skip
// making spans that nobody records.
func Enabled() bool { return enabled.Load() }

// Config selects the exporter. The zero value exports nothing.
type Config struct {
	// OTLPEndpoint is a host:port of an OTLP/gRPC collector; "" disables export.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// SampleRatio is the share of new root traces that are sampled; 0 means 1.
	SampleRatio float64 `koanf:"sample_ratio"`
}

// Setup installs the global tracer provider for service and returns its shutdown function,
// which flushes the exporter.
func Setup(ctx context.Context, service string, cfg Config) (shutdown func(context.Context) error, err error) {
	ratio := cfg.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	}
	if cfg.OTLPEndpoint != "" {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint), otlptracegrpc.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("trace: otlp exporter %s: %w", cfg.OTLPEndpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		return tp.Shutdown(ctx)
	}, nil
}

// Tracer returns the named tracer of the global provider.
func Tracer(name string) oteltrace.Tracer { return otel.Tracer(name) }

// Carrier is the string map trace context travels in; it matches meta.Carrier.
type Carrier interface {
	Get(key string) string
	Set(key, value string)
}

type carrier struct{ Carrier }

func (carrier) Keys() []string { return nil }

func asTextMap(c Carrier) propagation.TextMapCarrier {
	if tm, ok := c.(propagation.TextMapCarrier); ok {
		return tm
	}
	return carrier{c}
}

// Inject writes the span context of ctx to c as a W3C traceparent.
func Inject(ctx context.Context, c Carrier) {
	if oteltrace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, asTextMap(c))
	}
}

// Extract returns ctx with the remote span context found in c, if any.
func Extract(ctx context.Context, c Carrier) context.Context {
	if c.Get("traceparent") == "" {
		return ctx
	}
	return propagator.Extract(ctx, asTextMap(c))
}

// IDs returns the trace and span ids of the span in ctx, or empty strings.
func IDs(ctx context.Context) (traceID, spanID string) {
	sc := oteltrace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}
