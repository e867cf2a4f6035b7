// Package tracing provides the OpenTelemetry trace.TracerProvider. Tracing
// is off unless SIDECAR_ENABLE_TRACING=true: the provider is then a no-op
// and nothing is exported or started.
//
// When on, spans go through a batch processor to an OTLP/HTTP (protobuf)
// exporter configured by the standard variables, each in its generic and
// its TRACES_ form (the latter wins): OTEL_EXPORTER_OTLP_ENDPOINT (base URL,
// /v1/traces appended; default http://localhost:4318) or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), ..._HEADERS, ..._TIMEOUT
// (ms, default 10000), ..._COMPRESSION (gzip or none), ..._CERTIFICATE,
// ..._CLIENT_CERTIFICATE, ..._CLIENT_KEY and ..._PROTOCOL (http/protobuf
// only: grpc and http/json are refused when the app is built rather than
// half-working; ..._INSECURE is moot, the endpoint's scheme decides);
// the SDK reads OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*. The resource has
// service.name "secrets-sidecar" and service.version from the build;
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override and extend it.
//
// The provider is not installed as the otel global: pass it where spans
// are made (otelhttp.WithTracerProvider for the Vault client's transport).
// Exporter errors are logged through zap (otel's error handler is the one
// process-wide hook the SDK offers).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// ServiceName is the default service.name resource attribute.
const ServiceName = "secrets-sidecar"

// ShutdownTimeout bounds the final flush and shutdown in Stop (less when
// the stop context ends sooner).
const ShutdownTimeout = 5 * time.Second

// Module provides trace.TracerProvider: the SDK's, started and flushed with
// the app, when config.Env.EnableTracing; a no-op one otherwise. Supply an
// Exporter to send spans somewhere else than OTLP (tests).
var Module = fx.Module("tracing", fx.Provide(New))

// Exporter replaces the OTLP exporter, for tests: spans are exported
// synchronously as each one ends (no batching), so an in-memory exporter
// sees them at once.
type Exporter struct{ E sdktrace.SpanExporter }

// Params are New's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Env       config.Env
	Build     buildinfo.Info
	Log       *zap.Logger
	Exporter  Exporter `optional:"true"`
}

// New returns the tracer provider for the environment and ties its start
// and shutdown to the lifecycle when tracing is enabled.
func New(p Params) (trace.TracerProvider, error) {
	prov, err := NewProvider(Options{
		Enabled:  p.Env.EnableTracing,
		Version:  p.Build.Version,
		Exporter: p.Exporter.E,
		Log:      p.Log,
	})
	if err != nil {
		return nil, err
	}
	if p.Env.EnableTracing {
		p.Lifecycle.Append(fx.StartStopHook(prov.Start, prov.Stop))
	}
	return prov.TracerProvider(), nil
}

// Options configure NewProvider.
type Options struct {
	Enabled bool
	// Version is service.version.
	Version string
	// Exporter, when set, replaces OTLP and exports each span as it ends.
	Exporter sdktrace.SpanExporter
	// Log receives exporter errors; nil means no logging.
	Log *zap.Logger
}

// Provider owns an SDK tracer provider (or a no-op one when disabled).
type Provider struct {
	opts   Options
	sdk    *sdktrace.TracerProvider // nil when disabled
	client *otlpClient              // nil when disabled or an Exporter is given

	mu      sync.Mutex
	started bool
}

// NewProvider builds the provider, its resource and the OTLP client from
// the environment; it starts and connects nothing (see Start). An invalid
// OTEL_* value is an error naming the variable.
func NewProvider(o Options) (*Provider, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	p := &Provider{opts: o}
	if !o.Enabled {
		return p, nil
	}
	res, err := newResource(o.Version)
	if err != nil {
		return nil, err
	}
	if o.Exporter == nil {
		if p.client, err = newOTLPClient(o.Version, config.Getenv); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based,
	// always on); span processors are registered in Start.
	p.sdk = sdktrace.NewTracerProvider(sdktrace.WithResource(res))
	return p, nil
}

func newResource(version string) (*resource.Resource, error) {
	if version == "" {
		version = "dev"
	}
	// Later sources win: the defaults, then the environment.
	res, err := resource.New(context.Background(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", ServiceName),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME: %w", err)
	}
	return res, nil
}

// TracerProvider is what instrumented code uses.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p.sdk == nil {
		return noop.NewTracerProvider()
	}
	return p.sdk
}

// Start creates the exporter and starts exporting; it does not connect
// anywhere (the first export does). A no-op when disabled.
func (p *Provider) Start(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("tracing: already started")
	}
	if p.opts.Exporter != nil {
		p.sdk.RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(p.opts.Exporter))
		p.started = true
		return nil
	}
	exp, err := otlptrace.New(ctx, p.client)
	if err != nil {
		return fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	log := p.opts.Log.Named("otel")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("OpenTelemetry export failed", zap.Error(err))
	}))
	p.sdk.RegisterSpanProcessor(sdktrace.NewBatchSpanProcessor(exp))
	p.started = true
	return nil
}

// Stop flushes the spans still queued and shuts the provider down, within
// ShutdownTimeout or ctx, whichever ends first. Spans that cannot be
// delivered (collector down, timeout) are logged as lost, not returned as
// an error: tracing must not turn a clean shutdown into a failed one.
func (p *Provider) Stop(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
	defer cancel()
	if err := p.sdk.Shutdown(ctx); err != nil {
		p.opts.Log.Warn("tracing: spans not flushed at shutdown", zap.Error(err))
	}
	return nil
}
