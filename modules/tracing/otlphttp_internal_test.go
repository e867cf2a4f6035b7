package tracing

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestOTLPConfig(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		url  string
		hdrs map[string]string
		gzip bool
		to   time.Duration
	}{
		{nil, "http://localhost:4318/v1/traces", map[string]string{}, false, 10 * time.Second},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318/"}, "https://otel.example:4318/v1/traces", map[string]string{}, false, 10 * time.Second},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c/prefix"}, "http://c/prefix/v1/traces", map[string]string{}, false, 10 * time.Second},
		{map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://generic:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
			"OTEL_EXPORTER_OTLP_HEADERS":         "a=1, b = two%20words",
			"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "c=3",
			"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
			"OTEL_EXPORTER_OTLP_TIMEOUT":         "2500",
			"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
		}, "http://traces:9999/custom", map[string]string{"c": "3"}, true, 2500 * time.Millisecond},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1, b = two%20words", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
			"http://localhost:4318/v1/traces", map[string]string{"a": "1", "b": "two words"}, false, 10 * time.Second},
	} {
		cl, err := newOTLPClient("v1", envMap(c.env))
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if cl.url.String() != c.url || cl.gzip != c.gzip || cl.timeout != c.to || len(cl.headers) != len(c.hdrs) {
			t.Errorf("%v: url %s gzip %v timeout %v headers %v", c.env, cl.url, cl.gzip, cl.timeout, cl.headers)
		}
		for k, v := range c.hdrs {
			if cl.headers[k] != v {
				t.Errorf("%v: header %s = %q, want %q", c.env, k, cl.headers[k], v)
			}
		}
	}
}

// TestOTLPConfigErrors: each bad value names its variable, and a header's
// value (often an API key) never appears in the error.
func TestOTLPConfigErrors(t *testing.T) {
	const apiKey = "sk-live-5ecr3t"
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, `OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/json" is not supported`},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" is not an http:// or https:// URL`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x/y"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, `OTEL_EXPORTER_OTLP_TIMEOUT="10s" is not a positive number of milliseconds`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="zstd" is not a compression`},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-ok=1,authorization" + apiKey}, "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value"},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=" + apiKey + "%zz"}, `OTEL_EXPORTER_OTLP_HEADERS: the value of "api-key" is not URL-encoded text`},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE: open /nonexistent/ca.pem"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together"},
	} {
		_, err := newOTLPClient("v1", envMap(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.env, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), apiKey) {
			t.Errorf("header value leaked: %v", err)
		}
	}
	// Credentials in an endpoint URL are not echoed either.
	_, err := newOTLPClient("v1", envMap(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://user:" + apiKey + "@host"}))
	if err == nil || strings.Contains(err.Error(), apiKey) {
		t.Errorf("endpoint credentials: %v", err)
	}
}

// flaky answers with the given statuses in turn, then 200.
type flaky struct {
	mu       sync.Mutex
	statuses []int
	got      []*collectortrace.ExportTraceServiceRequest
	headers  []http.Header
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers = append(f.headers, r.Header.Clone())
	if len(f.statuses) > 0 {
		code := f.statuses[0]
		f.statuses = f.statuses[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
		return
	}
	var msg collectortrace.ExportTraceServiceRequest
	buf, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := proto.Unmarshal(buf, &msg); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.got = append(f.got, &msg)
}

func spans(names ...string) []*tracepb.ResourceSpans {
	var ss []*tracepb.Span
	for _, n := range names {
		ss = append(ss, &tracepb.Span{Name: n})
	}
	return []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: ss}}}, {ScopeSpans: []*tracepb.ScopeSpans{{Spans: ss[:1]}}}}
}

func TestOTLPRetries(t *testing.T) {
	f := &flaky{statuses: []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cl, err := newOTLPClient("v9", envMap(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=a"}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop(context.Background())
	if err := cl.UploadTraces(context.Background(), spans("a", "b")); err != nil {
		t.Fatalf("upload after transient failures: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) != 4 || len(f.got) != 1 {
		t.Fatalf("%d requests, %d decoded", len(f.headers), len(f.got))
	}
	// Both ResourceSpans survive the hand-made envelope.
	if rs := f.got[0].GetResourceSpans(); len(rs) != 2 || rs[0].GetScopeSpans()[0].GetSpans()[1].GetName() != "b" {
		t.Fatalf("decoded %v", f.got[0])
	}
	h := f.headers[3]
	if h.Get("X-Tenant") != "a" || h.Get("User-Agent") != "secrets-sidecar/v9" || h.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("headers %v", h)
	}
}

func TestOTLPNoRetryOnClientError(t *testing.T) {
	f := &flaky{statuses: []int{http.StatusBadRequest}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cl, _ := newOTLPClient("v1", envMap(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/in"}))
	defer cl.Stop(context.Background())
	err := cl.UploadTraces(context.Background(), spans("a"))
	if err == nil || !strings.Contains(err.Error(), "the receiver answered 400 Bad Request") || !strings.Contains(err.Error(), srv.URL+"/in") {
		t.Fatalf("error: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) != 1 {
		t.Fatalf("%d attempts for a 400", len(f.headers))
	}
}

// TestOTLPTimeout: a receiver that keeps failing is given up on at the
// configured timeout.
func TestOTLPTimeout(t *testing.T) {
	f := &flaky{statuses: []int{503, 503, 503, 503, 503, 503, 503, 503}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cl, _ := newOTLPClient("v1", envMap(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "300"}))
	defer cl.Stop(context.Background())
	err := cl.UploadTraces(context.Background(), spans("a"))
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("error: %v", err)
	}
}

// TestOTLPTLS: OTEL_EXPORTER_OTLP_CERTIFICATE trusts a private CA.
func TestOTLPTLS(t *testing.T) {
	f := &flaky{}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshake
	srv.StartTLS()
	defer srv.Close()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}
	cl, _ := newOTLPClient("v1", envMap(env))
	err := cl.UploadTraces(context.Background(), spans("a"))
	if err == nil || !strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "deadline") {
		t.Fatalf("an unknown CA must fail at once, without retries: %v", err)
	}
	cl.Stop(context.Background())
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pemCert(srv.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	env["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] = ca
	cl, err = newOTLPClient("v1", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop(context.Background())
	if err := cl.UploadTraces(context.Background(), spans("a")); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
