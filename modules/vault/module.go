package vault

import (
	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Client, started and stopped with the app. It needs
// a logger, a Breaker (the breaker module's, bound with fx.As), a
// TokenObserver (the metrics, or metrics.Discard) and a TracerProvider;
// it provides the breaker's health Probe.
var Module = fx.Module("vault",
	fx.Provide(New, probe),
)

// probe is the breaker's health probe (breaker.Module runs it).
func probe(c *Client) breaker.Probe { return c.Probe }

// Params are New's inputs.
type Params struct {
	fx.In

	Config *config.Config
	Env    config.Env // SIDECAR_ENABLE_TRACING
	Options
	Lifecycle fx.Lifecycle
}

// New builds the client from the config's vault: block. Logins, reads and
// their HTTP calls are traced when SIDECAR_ENABLE_TRACING is on and a
// TracerProvider is supplied; with tracing off the HTTP transport is not
// wrapped at all (the tracing module then supplies a no-op provider).
func New(p Params) (*Client, error) {
	opts := p.Options
	if !p.Env.EnableTracing {
		opts.TracerProvider = nil
	}
	c, err := NewClient(Settings{Vault: p.Config.Vault}, opts)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartStopHook(c.Start, c.Stop))
	return c, nil
}
