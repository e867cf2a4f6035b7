package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Why not otlptracehttp: it imports the generated OTLP collector package,
// whose gRPC service and grpc-gateway files link google.golang.org/grpc,
// grpc-gateway, protojson and x/net/http2 into the binary: 5.1 MB (17.3 MB
// instead of 12.2 MB, measured), for a transport that is one protobuf POST.
// The span to OTLP conversion stays the library's (otlptrace); only the
// POST is here.

// OTLP/HTTP defaults (OpenTelemetry OTLP exporter specification).
const (
	defaultEndpoint = "http://localhost:4318"
	tracesPath      = "/v1/traces"
	defaultTimeout  = 10 * time.Second
	maxBackoff      = 5 * time.Second
)

// otlpClient is an otlptrace.Client that POSTs ExportTraceServiceRequest
// protobufs to an OTLP/HTTP receiver.
type otlpClient struct {
	url       *url.URL
	headers   map[string]string
	gzip      bool
	timeout   time.Duration
	http      *http.Client
	userAgent string
}

// otlpEnv reads one OTLP exporter setting: the traces-specific variable
// wins over the generic one. It returns the variable's name and value.
func otlpEnv(getenv func(string) string, setting string) (key, value string) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_" + setting, "OTEL_EXPORTER_OTLP_" + setting} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return k, v
		}
	}
	return "", ""
}

// newOTLPClient configures the client from the standard OTEL_EXPORTER_OTLP_*
// variables. Errors name the variable; header values never appear in them
// (they often carry API keys).
func newOTLPClient(version string, getenv func(string) string) (*otlpClient, error) {
	c := &otlpClient{headers: map[string]string{}, timeout: defaultTimeout, userAgent: "secrets-sidecar/" + version}

	if key, proto := otlpEnv(getenv, "PROTOCOL"); proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("%s=%q is not supported: this build exports OTLP over http/protobuf only", key, proto)
	}

	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); v != "" {
		u, err := httpURL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v)
		if err != nil {
			return nil, err
		}
		c.url = u // used as is
	} else {
		key, v := "OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
		if v == "" {
			v = defaultEndpoint
		}
		u, err := httpURL(key, v)
		if err != nil {
			return nil, err
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + tracesPath
		c.url = u
	}

	if key, v := otlpEnv(getenv, "HEADERS"); v != "" {
		for i, pair := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("%s: entry %d is not key=value", key, i+1)
			}
			dec, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil {
				return nil, fmt.Errorf("%s: the value of %q is not URL-encoded text", key, k)
			}
			c.headers[k] = dec
		}
	}

	if key, v := otlpEnv(getenv, "TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s=%q is not a positive number of milliseconds", key, v)
		}
		c.timeout = time.Duration(ms) * time.Millisecond
	}

	switch key, v := otlpEnv(getenv, "COMPRESSION"); v {
	case "", "none":
	case "gzip":
		c.gzip = true
	default:
		return nil, fmt.Errorf("%s=%q is not a compression (gzip or none)", key, v)
	}

	tlsCfg, err := tlsConfig(getenv)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	c.http = &http.Client{Transport: transport}
	return c, nil
}

func httpURL(key, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := v
		if err == nil {
			shown = u.Redacted()
		}
		return nil, fmt.Errorf("%s=%q is not an http:// or https:// URL", key, shown)
	}
	return u, nil
}

// tlsConfig reads the CA and client certificate variables.
func tlsConfig(getenv func(string) string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if key, file := otlpEnv(getenv, "CERTIFICATE"); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", key, file)
		}
		cfg.RootCAs = pool
	}
	certKey, certFile := otlpEnv(getenv, "CLIENT_CERTIFICATE")
	keyKey, keyFile := otlpEnv(getenv, "CLIENT_KEY")
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "" || keyFile == "":
		return nil, errors.New("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together (or their TRACES_ forms)")
	default:
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s / %s: %w", certKey, keyKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Start implements otlptrace.Client; connections are made on demand.
func (*otlpClient) Start(context.Context) error { return nil }

// Stop implements otlptrace.Client.
func (c *otlpClient) Stop(context.Context) error {
	c.http.CloseIdleConnections()
	return nil
}

// UploadTraces implements otlptrace.Client: one POST, retried with backoff
// on 429, 502, 503, 504 and connection errors, all within the timeout.
func (c *otlpClient) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	body, err := encodeRequest(spans)
	if err != nil {
		return err
	}
	if c.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		body = buf.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	backoff := 500 * time.Millisecond
	for {
		retry, wait, err := c.post(ctx, body)
		if err == nil || !retry {
			return err
		}
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// post sends one request; it says whether a failure is worth retrying and
// how long the server asked to wait.
func (c *otlpClient) post(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url.String(), bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", c.userAgent)
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0, fmt.Errorf("OTLP export to %s: %w", c.url.Redacted(), ctx.Err())
		}
		return retryableNetError(err), 0, fmt.Errorf("OTLP export to %s: %w", c.url.Redacted(), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	err = fmt.Errorf("OTLP export to %s: the receiver answered %s", c.url.Redacted(), resp.Status)
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return true, wait, err
	}
	return false, 0, err
}

// retryableNetError: a socket-level failure (refused, reset, timed out) may
// pass; a certificate the client rejects or a TLS alert from the receiver
// will not.
func retryableNetError(err error) bool {
	var (
		opErr  *net.OpError
		verify *tls.CertificateVerificationError
		alert  tls.AlertError
	)
	return errors.As(err, &opErr) && !errors.As(err, &verify) && !errors.As(err, &alert)
}

// encodeRequest builds an ExportTraceServiceRequest on the wire: field 1,
// repeated ResourceSpans. Encoding it by hand keeps the generated collector
// package (and gRPC with it) out of the binary.
func encodeRequest(spans []*tracepb.ResourceSpans) ([]byte, error) {
	var buf []byte
	for _, rs := range spans {
		b, err := proto.Marshal(rs)
		if err != nil {
			return nil, fmt.Errorf("OTLP: encode spans: %w", err)
		}
		buf = protowire.AppendTag(buf, 1, protowire.BytesType)
		buf = protowire.AppendBytes(buf, b)
	}
	return buf, nil
}
