package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/httpserver"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/tracing"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestNoSecretLeaks runs the whole daemon against the real dev server with
// debug logs and tracing on, distinctive secret values and credentials,
// and secrets that fail in ways that tempt an error message to quote a
// value. Then it searches every log line, the /metrics and /ready bodies,
// the status file and every span for those values: zero hits.
func TestNoSecretLeaks(t *testing.T) {
	for _, method := range []string{"token", "approle"} {
		t.Run(method, func(t *testing.T) { leakCheck(t, method) })
	}
}

func leakCheck(t *testing.T, method string) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	values := map[string]string{
		"password": "LEAKCHECK-pw-7f1e9c2a",
		"username": "LEAKCHECK-user-0b3d5e",
		"apikey":   "LEAKCHECK-apikey-c4a8d1",
		"pem":      "LEAKCHECK-not-a-pem-94be",
	}
	data := map[string]any{}
	for k, v := range values {
		data[k] = v
	}
	srv.PutKV2(t, "secret", p+"/app", data)
	srv.PutKV2(t, "secret", p+"/denied", map[string]any{"x": "LEAKCHECK-denied-33aa"})
	srv.Policy(t, p, fmt.Sprintf(`path "secret/data/%s/app" { capabilities = ["read"] }`, p))

	secrets := []string{values["password"], values["username"], values["apikey"], values["pem"], "LEAKCHECK-denied-33aa"}
	authYAML := ""
	switch method {
	case "token":
		token := "LEAKCHECK-token-" + p
		srv.CreateToken(t, map[string]any{"id": token, "policies": []string{p}, "ttl": "1h"})
		tokenFile := filepath.Join(dir, "token")
		if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		authYAML = fmt.Sprintf("{method: token, token_file: %s}", tokenFile)
		secrets = append(secrets, token)
	case "approle":
		roleID, _ := srv.AppRole(t, "approle-"+p, "leak", map[string]any{"token_policies": []string{p}, "token_ttl": "1h"})
		secretID := "LEAKCHECK-secretid-" + p
		srv.Write(t, "auth/approle-"+p+"/role/leak/custom-secret-id", map[string]any{"secret_id": secretID})
		files := map[string]string{"role-id": roleID, "secret-id": secretID}
		for name, v := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		authYAML = fmt.Sprintf("{method: approle, approle: {mount: approle-%s, role_id_file: %s/role-id, secret_id_file: %s/secret-id}}", p, dir, dir)
		secrets = append(secrets, secretID)
	}
	out := filepath.Join(dir, "out")
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
vault: {address: %[1]s, auth: %[2]s}
defaults: {refresh_interval: 1s}
secrets:
  - {name: good, path: %[3]s/app, destination: %[4]s/good.env, template: "U={{ .username }}\nP={{ .password }}\n"}
  - {name: failing, path: %[3]s/app, destination: %[4]s/failing, template: "{{ fail .password }}"}
  - {name: badpem, path: %[3]s/app, destination: %[4]s/badpem, template: "{{ .pem | filterPEM \"CERTIFICATE\" }}"}
  - {name: missing, path: %[3]s/app, destination: %[4]s/missing, template: "{{ .apikey }}{{ .nope }}"}
  - {name: denied, path: %[3]s/denied, destination: %[4]s/denied, key: x}
  - {name: key, path: %[3]s/app, destination: %[4]s/key, key: apikey}
`, srv.Addr, authYAML, p, out))

	t.Setenv("VAULT_TOKEN", "")
	os.Unsetenv("VAULT_TOKEN")
	env, err := config.ParseEnv([]string{
		"SIDECAR_LOG_LEVEL=debug", "SIDECAR_ENABLE_TRACING=true", "SIDECAR_HTTP_ADDR=127.0.0.1:0",
		"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json"), "SIDECAR_SHUTDOWN_TIMEOUT=3s",
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	spans := tracetest.NewInMemoryExporter()
	var server *httpserver.Server
	app := fx.New(append(runOptions(globals{configPath: cfgPath, stdout: io.Discard, stderr: logs}, env),
		fx.Supply(tracing.Exporter{E: spans}),
		fx.Populate(&server),
	)...)
	if err := app.Start(t.Context()); err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = app.Stop(context.Background())
		}
	}()

	// Let every secret run and fail a few times.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := os.ReadFile(filepath.Join(out, "good.env"))
		snap, _ := status.ReadFile(filepath.Join(dir, "status.json"))
		failing := 0
		for _, s := range snap.Secrets {
			if s.LastError != "" {
				failing++
			}
		}
		if string(got) == "U="+values["username"]+"\nP="+values["password"]+"\n" && failing >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not reach the expected state:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // retries

	get := func(path string) string {
		resp, err := http.Get("http://" + server.Addr() + path) //nolint:noctx // test
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	surfaces := map[string]string{
		"/metrics": get("/metrics"),
		"/ready":   get("/ready"),
	}
	statusRaw, err := os.ReadFile(filepath.Join(dir, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	surfaces["status file"] = string(statusRaw)
	recorded := spans.GetSpans() // Stop shuts the exporter down, which empties it
	if err := app.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped = true
	surfaces["logs"] = logs.String()
	var spanText strings.Builder
	for _, s := range recorded {
		fmt.Fprintf(&spanText, "%s %s %v %v\n", s.Name, s.Status.Description, s.Attributes, s.Resource.Attributes())
		for _, ev := range s.Events {
			fmt.Fprintf(&spanText, "  %s %v\n", ev.Name, ev.Attributes)
		}
	}
	surfaces["spans"] = spanText.String()

	// The surfaces must be about the secrets (else the test proves nothing).
	for name, must := range map[string]string{
		"/metrics": `secrets_sidecar_errors_total{secret_name="failing"`, "/ready": `denied`,
		"logs": "secret sync failed", "spans": "render", "status file": `"last_error"`,
	} {
		if !strings.Contains(surfaces[name], must) {
			t.Errorf("%s does not mention %q: the check would be vacuous", name, must)
		}
	}
	if n := len(recorded); n < 10 {
		t.Errorf("only %d spans recorded", n)
	}
	for name, text := range surfaces {
		for _, v := range secrets {
			if strings.Contains(text, v) {
				t.Errorf("%s leaks a secret value (%d bytes, starts %q)", name, len(v), v[:12])
			}
		}
	}
}
