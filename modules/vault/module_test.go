package vault_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// observers stand in for the metrics module.
type observers struct {
	mu      sync.Mutex
	expiry  []time.Time
	breaker []int
}

func (o *observers) TokenExpiry(t time.Time) {
	o.mu.Lock()
	o.expiry = append(o.expiry, t)
	o.mu.Unlock()
}
func (o *observers) LoginDone(string, vault.LoginResult) {}
func (o *observers) BreakerState(s breaker.State) {
	o.mu.Lock()
	o.breaker = append(o.breaker, int(s))
	o.mu.Unlock()
}

// breakerModule is the breaker module with its *Breaker bound to
// vault.Breaker, as main binds it.
var breakerModule = fx.Options(breaker.Module,
	fx.Provide(fx.Annotate(func(b *breaker.Breaker) *breaker.Breaker { return b }, fx.As(new(vault.Breaker)))))

// noTracing and discards are what a graph without tracing or metrics
// supplies (the once command's).
var (
	noTracing = fx.Provide(func() trace.TracerProvider { return noop.NewTracerProvider() })
	discards  = fx.Provide(
		func() vault.TokenObserver { return metrics.Discard{} },
		func() breaker.StateObserver { return metrics.Discard{} },
	)
)

func TestModule(t *testing.T) {
	srv := vaulttest.Shared(t)
	srv.PutKV2(t, "secret", "module/app", map[string]any{"password": "from-module"})
	roleID, secretID := srv.AppRole(t, "approle-module", "app", map[string]any{"token_policies": "root-reader", "token_ttl": "1h"})
	srv.Policy(t, "root-reader", `path "secret/data/module/*" { capabilities = ["read"] }`)
	t.Setenv("VAULT_ROLE_ID", roleID)
	t.Setenv("VAULT_SECRET_ID", secretID)

	env, err := config.ParseEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{
		Method: config.AuthAppRole, AppRole: config.AppRole{Mount: "approle-module"},
	}}}
	buf := &lockedBuf{}
	log, err := logging.NewLogger(logging.Options{Level: "debug"}, buf)
	if err != nil {
		t.Fatal(err)
	}
	obs := &observers{}
	var client *vault.Client
	app := fxtest.New(t,
		breakerModule,
		vault.Module,
		fx.Supply(cfg, env, log),
		noTracing,
		fx.Provide(
			func() vault.TokenObserver { return obs },
			func() breaker.StateObserver { return obs },
		),
		fx.Populate(&client),
	)
	app.RequireStart()
	sec, err := client.Read(context.Background(), vault.ReadRequest{Mount: "secret", Path: "module/app", KVVersion: config.KVAuto})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["password"] != "from-module" {
		t.Fatalf("read %v", sec)
	}
	app.RequireStop()

	out := buf.String()
	for _, want := range []string{`"vault reachable"`, `"logged in to vault"`, `"reason":"start"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.expiry) == 0 || obs.expiry[0].Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("TokenObserver got %v, want the 1h token's expiry", obs.expiry)
	}
	if len(obs.breaker) != 1 || obs.breaker[0] != 0 {
		t.Errorf("StateObserver got %v, want the initial closed state", obs.breaker)
	}
}

// TestModuleWithDiscards: with the observers and tracer of a graph that
// serves no metrics, and a Vault that is down, the app starts.
func TestModuleWithDiscards(t *testing.T) {
	env, err := config.ParseEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Vault: config.Vault{Address: "http://127.0.0.1:1", Auth: config.Auth{
		Method: config.AuthToken, TokenFile: t.TempDir() + "/token",
	}}}
	fxtest.New(t, breakerModule, vault.Module, noTracing, discards, fx.Supply(cfg, env, zap.NewNop()), fx.Invoke(func(*vault.Client) {})).
		RequireStart().RequireStop()
}

// TestModuleTracing: spans only when SIDECAR_ENABLE_TRACING is on.
func TestModuleTracing(t *testing.T) {
	srv := vaulttest.Shared(t)
	srv.PutKV2(t, "secret", "module/traced", map[string]any{"password": "x"})
	for _, enabled := range []bool{true, false} {
		env, err := config.ParseEnv([]string{"SIDECAR_ENABLE_TRACING=" + strconv.FormatBool(enabled)})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("VAULT_TOKEN", srv.Token)
		cfg := &config.Config{Vault: config.Vault{Address: srv.Addr}}
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		var client *vault.Client
		app := fxtest.New(t, breakerModule, vault.Module,
			fx.Supply(cfg, env, zap.NewNop()), discards,
			fx.Provide(func() trace.TracerProvider { return tp }),
			fx.Populate(&client))
		app.RequireStart()
		if _, err := client.Read(context.Background(), vault.ReadRequest{Mount: "secret", Path: "module/traced", KVVersion: config.KV2}); err != nil {
			t.Fatal(err)
		}
		app.RequireStop()
		if got := len(rec.Ended()) > 0; got != enabled {
			t.Errorf("tracing enabled=%v: %d spans", enabled, len(rec.Ended()))
		}
		_ = tp.Shutdown(context.Background())
	}
}
