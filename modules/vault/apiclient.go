package vault

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// MaxIdleConns is how many kept-alive connections to Vault the client keeps
// idle: enough for the daemon's concurrent syncs and once's default
// --concurrency, so a burst of reads reuses connections.
const MaxIdleConns = 16

// IdleConnTimeout closes a kept-alive connection unused this long.
const IdleConnTimeout = 30 * time.Second

// apiClients are the two views of one Vault API client: data calls carry
// the current token, login calls carry none. They share one HTTP client
// and so one kept-alive connection pool.
type apiClients struct {
	data  *api.Client
	login *api.Client
	// transport is the pool's transport, closed when the client is replaced.
	transport *http.Transport
}

// newAPIClients builds the client the way the Vault CLI does (library
// defaults, then VAULT_* from the environment) and then applies the
// vault: block, whose set fields win.
func newAPIClients(vc config.Vault, tp trace.TracerProvider) (*apiClients, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client from the environment: %w", cfg.Error)
	}
	if vc.Address != "" {
		cfg.Address = vc.Address
		cfg.AgentAddress = "" // VAULT_AGENT_ADDR would win over the file's address otherwise
	}
	if vc.Timeout.Duration > 0 {
		cfg.Timeout = vc.Timeout.Duration
	}
	// Retries belong to the caller's backoff, once; not to the library too.
	cfg.MaxRetries = 0
	t := vc.TLS
	if t != (config.TLS{}) {
		// ConfigureTLS overlays the environment's TLS settings: each field
		// set in the file replaces its VAULT_* counterpart.
		err := cfg.ConfigureTLS(&api.TLSConfig{
			CACert: t.CACert, CAPath: t.CAPath, ClientCert: t.ClientCert, ClientKey: t.ClientKey,
			TLSServerName: t.ServerName, Insecure: t.InsecureSkipVerify,
		})
		if err != nil {
			return nil, fmt.Errorf("vault.tls: %w", err)
		}
	}
	transport, ok := cfg.HttpClient.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("vault client: unexpected HTTP transport %T", cfg.HttpClient.Transport)
	}
	// The library keeps GOMAXPROCS+1 idle connections: with more requests
	// in flight (once's --concurrency, the daemon's start-up) every
	// request beyond that opened and closed a connection of its own.
	transport.MaxIdleConnsPerHost = max(transport.MaxIdleConnsPerHost, MaxIdleConns)
	// A burst's extra connections (two goroutines and 8 KiB of buffers
	// each) close after 30 s instead of 90: the steady state reuses one or
	// two, and refreshes minutes apart never reuse an idle one anyway.
	transport.IdleConnTimeout = IdleConnTimeout
	if tp != nil {
		cfg.HttpClient.Transport = otelhttp.NewTransport(transport, otelhttp.WithTracerProvider(tp))
	}
	data, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", redactErr(err))
	}
	// The token comes from the auth method alone (VAULT_TOKEN is read there
	// for the token method); never from what the library found on its own.
	data.ClearToken()
	if vc.Namespace != "" {
		data.SetNamespace(vc.Namespace)
	}
	login, err := data.CloneWithHeaders() // same HTTP client, same namespace header
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	login.ClearToken()
	return &apiClients{data: data, login: login, transport: transport}, nil
}

// close drops the pool's idle connections; calls in flight finish.
func (a *apiClients) close() { a.transport.CloseIdleConnections() }
