package tracing_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/tracing"
)

// No exporter, batch processor or HTTP connection outlives its app.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func env(t *testing.T, enabled bool) config.Env {
	t.Helper()
	v := "false"
	if enabled {
		v = "true"
	}
	e, err := config.ParseEnv([]string{"SIDECAR_ENABLE_TRACING=" + v})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newApp(t *testing.T, e config.Env, log *zap.Logger, extra ...fx.Option) (*fxtest.App, trace.TracerProvider) {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	var tp trace.TracerProvider
	app := fxtest.New(t, append([]fx.Option{
		fx.NopLogger,
		fx.Supply(e, log, buildinfo.Info{Version: "v1.2.3", Commit: "abc", GoVersion: "go1.26"}),
		tracing.Module,
		fx.Populate(&tp),
	}, extra...)...)
	return app, tp
}

// syncRun makes the span tree a sync job makes.
func syncRun(tp trace.TracerProvider) {
	ctx, run := tp.Tracer("secrets-sidecar/jobs").Start(context.Background(), "sync",
		trace.WithAttributes(attribute.String("secret.name", "db"), attribute.String("vault.path", "secret/myapp/db")))
	for _, stage := range []string{"auth", "fetch", "render", "write"} {
		_, s := tp.Tracer("secrets-sidecar/jobs").Start(ctx, stage)
		s.End()
	}
	run.SetAttributes(attribute.String("result", "success"))
	run.End()
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestInMemoryExporter(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	app, tp := newApp(t, env(t, true), nil, fx.Supply(tracing.Exporter{E: exp}))
	app.RequireStart()
	syncRun(tp)
	spans := exp.GetSpans()
	if len(spans) != 5 {
		t.Fatalf("want 5 spans exported as they end, got %d", len(spans))
	}
	root := spans[len(spans)-1]
	if root.Name != "sync" || root.Parent.IsValid() {
		t.Fatalf("root span: %+v", root)
	}
	if a := attrs(root.Attributes); a["secret.name"] != "db" || a["vault.path"] != "secret/myapp/db" || a["result"] != "success" {
		t.Fatalf("root attributes: %v", a)
	}
	for i, stage := range []string{"auth", "fetch", "render", "write"} {
		s := spans[i]
		if s.Name != stage || s.Parent.SpanID() != root.SpanContext.SpanID() || s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("child %d: %s parent %v", i, s.Name, s.Parent.SpanID())
		}
	}
	res := attrs(root.Resource.Attributes())
	if res["service.name"] != "secrets-sidecar" || res["service.version"] != "v1.2.3" || res["telemetry.sdk.language"] != "go" {
		t.Fatalf("resource: %v", res)
	}
	app.RequireStop()
	// A shut-down provider records nothing more.
	exp.Reset()
	syncRun(tp)
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans after shutdown", n)
	}
}

// receiver is a local OTLP/HTTP collector that decodes what it gets.
type receiver struct {
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
	errs []string
	hits int
	gzip int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.errs = append(r.errs, req.Method+" "+req.URL.Path+" "+req.Header.Get("Content-Type"))
		http.Error(w, "unexpected", http.StatusBadRequest)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		r.gzip++
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			r.errs = append(r.errs, err.Error())
			return
		}
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		r.errs = append(r.errs, err.Error())
		return
	}
	var msg collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		r.errs = append(r.errs, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.reqs = append(r.reqs, &msg)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestOTLPHTTP: the standard OTEL_* variables route spans to a local
// OTLP/HTTP receiver, which decodes them; the batch is flushed on stop.
func TestOTLPHTTP(t *testing.T) {
	recv := &receiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
	t.Setenv("OTEL_SERVICE_NAME", "payments-sidecar")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=ignored")

	app, tp := newApp(t, env(t, true), nil)
	app.RequireStart()
	syncRun(tp)
	app.RequireStop()

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.errs) > 0 || recv.gzip != len(recv.reqs) || len(recv.reqs) == 0 {
		t.Fatalf("receiver: %d requests, %d gzipped, errors %v", len(recv.reqs), recv.gzip, recv.errs)
	}
	var names []string
	var res map[string]string
	var root map[string]string
	for _, req := range recv.reqs {
		for _, rs := range req.GetResourceSpans() {
			res = map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.GetScopeSpans() {
				if ss.GetScope().GetName() != "secrets-sidecar/jobs" {
					t.Errorf("scope %q", ss.GetScope().GetName())
				}
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
					if s.GetName() == "sync" {
						root = map[string]string{}
						for _, kv := range s.GetAttributes() {
							root[kv.GetKey()] = kv.GetValue().GetStringValue()
						}
					}
				}
			}
		}
	}
	if strings.Join(names, ",") != "auth,fetch,render,write,sync" {
		t.Fatalf("spans received: %v", names)
	}
	if root["secret.name"] != "db" || root["vault.path"] != "secret/myapp/db" || root["result"] != "success" {
		t.Fatalf("sync span attributes: %v", root)
	}
	if res["service.name"] != "payments-sidecar" || res["service.version"] != "v1.2.3" || res["deployment.environment"] != "test" {
		t.Fatalf("resource: %v", res)
	}
}

// TestDisabled: tracing off means a no-op provider, no export even with an
// exporter supplied and an endpoint set, and no goroutine (goleak).
func TestDisabled(t *testing.T) {
	recv := &receiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	exp := tracetest.NewInMemoryExporter()
	app, tp := newApp(t, env(t, false), nil, fx.Supply(tracing.Exporter{E: exp}))
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Fatalf("disabled provider is %T", tp)
	}
	app.RequireStart()
	_, span := tp.Tracer("x").Start(context.Background(), "sync")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("a disabled provider records spans")
	}
	span.End()
	syncRun(tp)
	app.RequireStop()
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(exp.GetSpans()) != 0 || recv.hits != 0 {
		t.Fatalf("disabled tracing exported: %d spans, %d requests", len(exp.GetSpans()), recv.hits)
	}
}

// TestUnsupportedProtocol: grpc is not built in; the app fails to build,
// naming the variable, instead of sending protobuf over HTTP to a gRPC
// port. The signal-specific variable wins over the generic one.
func TestUnsupportedProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	err := fx.New(fx.NopLogger, fx.Supply(env(t, true), zap.NewNop(), buildinfo.Info{}), tracing.Module,
		fx.Invoke(func(trace.TracerProvider) {})).Err()
	if err == nil || !strings.Contains(err.Error(), `OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported`) {
		t.Fatalf("error: %v", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	app, _ := newApp(t, env(t, true), nil)
	app.RequireStart().RequireStop()
}

func TestBadResourceAttributes(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment")
	_, err := tracing.NewProvider(tracing.Options{Enabled: true})
	if err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Fatalf("error: %v", err)
	}
	// Disabled, the variables are not even read.
	if _, err := tracing.NewProvider(tracing.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestStopWithCollectorDown: queued spans that cannot be delivered are
// logged as lost; Stop ends within its bound and reports no error, so a
// clean shutdown stays clean.
func TestStopWithCollectorDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	core, logs := observer.New(zapcore.WarnLevel)
	app, tp := newApp(t, env(t, true), zap.New(core))
	app.RequireStart()
	syncRun(tp)
	ctx, cancel := context.WithTimeout(context.Background(), tracing.ShutdownTimeout+5*time.Second)
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if logs.FilterMessageSnippet("tracing: spans not flushed").Len()+logs.FilterMessageSnippet("OpenTelemetry export failed").Len() == 0 {
		t.Fatalf("lost spans not logged: %v", logs.All())
	}
}
