// Package trace sets up OpenTelemetry tracing for Redline services: W3C trace context
// propagation on every hop, spans from the transport middleware, and an optional OTLP
// exporter that is off by default.
//
// Without an exporter the tracer provider still creates spans with real ids (sampled by
// parent, never exported), so trace ids appear in logs and cross every hop.
package trace

import (
	"context"
	"fmt"

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
	return tp.Shutdown, nil
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

// Inject writes the span context of ctx to c as a W3C traceparent.
func Inject(ctx context.Context, c Carrier) { propagator.Inject(ctx, carrier{c}) }

// Extract returns ctx with the remote span context found in c, if any.
func Extract(ctx context.Context, c Carrier) context.Context {
	return propagator.Extract(ctx, carrier{c})
}

// IDs returns the trace and span ids of the span in ctx, or empty strings.
func IDs(ctx context.Context) (traceID, spanID string) {
	sc := oteltrace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}
