package vault

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestTracing(t *testing.T) {
	srv := vaulttest.Shared(t)
	value := "traced-" + uniq(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": value})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{Mount: mount}}},
		LookupEnv: env("VAULT_ROLE_ID", roleID, "VAULT_SECRET_ID", secretID),
	}, Options{TracerProvider: tp})

	ctx, parent := tp.Tracer("test").Start(t.Context(), "sync secret")
	for range 2 {
		if _, err := c.Read(ctx, ReadRequest{Mount: "secret", Path: path, KVVersion: config.KVAuto}); err != nil {
			t.Fatal(err)
		}
	}
	parent.End()

	spans := rec.Ended()
	byName := map[string]int{}
	preflights := 0
	for _, s := range spans {
		byName[s.Name()]++
		for _, a := range s.Attributes() {
			v := a.Value.String()
			for _, secret := range []string{value, roleID, secretID, c.currentToken()} {
				if strings.Contains(v, secret) {
					t.Fatalf("span %q attribute %s holds a secret", s.Name(), a.Key)
				}
			}
			if a.Key == "url.full" && strings.Contains(v, "sys/internal/ui/mounts/secret/") {
				preflights++
			}
		}
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s is not in the caller's trace", s.Name())
		}
		if s.Name() == "vault.read" && s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("vault.read is not a child of the caller's span")
		}
		if s.Name() == "vault.login" {
			readIDs := map[string]bool{}
			for _, r := range spans {
				if r.Name() == "vault.read" {
					readIDs[r.SpanContext().SpanID().String()] = true
				}
			}
			if !readIDs[s.Parent().SpanID().String()] {
				t.Errorf("vault.login (made by the first read) is not a child of a vault.read span")
			}
		}
		if s.Name() == "vault.read" {
			attrs := map[attribute.Key]string{}
			for _, a := range s.Attributes() {
				attrs[a.Key] = a.Value.String()
			}
			if attrs["vault.mount"] != "secret" || attrs["vault.path"] != path || attrs["vault.kv_version"] != "auto" || attrs["vault.kv_version_read"] != "2" {
				t.Errorf("vault.read attributes: %v", attrs)
			}
		}
	}
	if byName["vault.read"] != 2 || byName["vault.login"] != 1 {
		t.Fatalf("spans: %v", byName)
	}
	if byName["HTTP GET"]+byName["GET"] < 3 || byName["HTTP PUT"]+byName["PUT"] < 1 {
		t.Fatalf("no HTTP client spans from otelhttp: %v", byName)
	}
	if preflights != 1 {
		t.Fatalf("%d KV version preflights for two reads of one mount, want 1", preflights)
	}
}
