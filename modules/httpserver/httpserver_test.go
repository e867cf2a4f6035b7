package httpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/httpserver"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// Every server, connection and goroutine the tests start is gone at the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func env(t *testing.T, httpAddr string) config.Env {
	t.Helper()
	e, err := config.ParseEnv([]string{
		"SIDECAR_HTTP_ADDR=" + httpAddr,
		"SIDECAR_STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// app is the daemon's observability slice: metrics, status tracker and the
// HTTP server, wired as the run command wires them.
func app(t *testing.T, e config.Env) (*fxtest.App, *httpserver.Server, *status.Tracker) {
	t.Helper()
	var (
		srv *httpserver.Server
		tr  *status.Tracker
	)
	a := fxtest.New(t,
		fx.NopLogger,
		fx.Supply(e, zap.NewNop(), buildinfo.Info{Version: "v1", Commit: "c", GoVersion: "go"}),
		metrics.Module,
		status.Module,
		httpserver.Module,
		fx.Provide(
			func(m *metrics.Metrics) status.ReadyObserver { return m },
			func(t *status.Tracker) httpserver.Readiness { return t },
		),
		fx.Populate(&srv, &tr),
	)
	return a, srv, tr
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestEndpoints(t *testing.T) {
	a, srv, tr := app(t, env(t, "127.0.0.1:0"))
	a.RequireStart()
	defer a.RequireStop()
	base := "http://" + srv.Addr()
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") || strings.HasSuffix(srv.Addr(), ":0") {
		t.Fatalf("bound address %q", srv.Addr())
	}

	if code, body, _ := get(t, base+"/health"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/health: %d %q", code, body)
	}

	tr.Configure([]status.SecretInfo{
		{Name: "db", VaultPath: "secret/myapp/db", RefreshInterval: time.Minute},
		{Name: "tls", VaultPath: "secret/myapp/tls", RefreshInterval: time.Minute},
	})
	tr.Succeeded("db", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), 2)
	tr.Failed("tls", time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC), "vault: permission denied")
	code, body, hdr := get(t, base+"/ready")
	if code != http.StatusServiceUnavailable || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/ready while tls is missing: %d %s %q", code, hdr.Get("Content-Type"), body)
	}
	var got struct {
		Ready   bool `json:"ready"`
		Secrets []struct {
			Name        string `json:"name"`
			Ready       bool   `json:"ready"`
			LastSuccess string `json:"last_success"`
			LastError   string `json:"last_error"`
		} `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/ready body: %v\n%s", err, body)
	}
	if got.Ready || len(got.Secrets) != 2 ||
		got.Secrets[0].Name != "db" || !got.Secrets[0].Ready || got.Secrets[0].LastSuccess != "2025-01-02T03:04:05Z" ||
		got.Secrets[1].Name != "tls" || got.Secrets[1].Ready || got.Secrets[1].LastError != "vault: permission denied" {
		t.Fatalf("/ready body: %s", body)
	}
	if code, body, _ := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "\nsecrets_sidecar_ready 0\n") {
		t.Fatalf("/metrics before ready: %d\n%s", code, body)
	}

	tr.Succeeded("tls", time.Now(), 1)
	if code, body, _ := get(t, base+"/ready"); code != http.StatusOK || !strings.Contains(body, `"ready": true`) {
		t.Fatalf("/ready when ready: %d %s", code, body)
	}
	code, body, _ = get(t, base+"/metrics")
	for _, want := range []string{
		"\nsecrets_sidecar_ready 1\n",
		`secrets_sidecar_build_info{commit="c",goversion="go",version="v1"} 1`,
		"secrets_sidecar_config_reloads_total{result=\"success\"} 0",
		"\ngo_goroutines ",
		"\nprocess_start_time_seconds ",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if code, _, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d", code)
	}
	resp, err := http.Post(base+"/health", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /health: %d", resp.StatusCode)
	}
}

// TestStopClosesTheListener: after stop nothing accepts on the address.
func TestStopClosesTheListener(t *testing.T) {
	a, srv, _ := app(t, env(t, "127.0.0.1:0"))
	a.RequireStart()
	addr := srv.Addr()
	if code, _, _ := get(t, "http://"+addr+"/health"); code != http.StatusOK {
		t.Fatal("not serving")
	}
	a.RequireStop()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("still accepting after stop")
	}
}

// TestPortTaken: start-up fails with an error naming the address.
func TestPortTaken(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	a, _, _ := app(t, env(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Start(ctx)
	if err == nil {
		a.RequireStop()
		t.Fatal("start succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), "HTTP server (SIDECAR_HTTP_ADDR) cannot listen on "+addr) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error: %v", err)
	}
}

// TestDisabled: an empty address starts no server.
func TestDisabled(t *testing.T) {
	a, srv, _ := app(t, env(t, ""))
	a.RequireStart()
	if srv.Addr() != "" {
		t.Errorf("disabled server has address %q", srv.Addr())
	}
	a.RequireStop()
}
