package breaker

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Breaker, configured from the SIDECAR_BREAKER_*
// settings. A StateObserver in the graph (the metrics module) is told every
// state change. The health probe (set by the vault module) runs from start
// to stop.
var Module = fx.Module("breaker",
	fx.Provide(New),
)

// Params are New's inputs.
type Params struct {
	fx.In

	Env       config.Env
	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
	Observer  StateObserver `optional:"true"`
}

// New builds the breaker from the environment settings.
func New(p Params) *Breaker {
	b := NewBreaker(SettingsFromEnv(p.Env), p.Logger, p.Observer)
	p.Lifecycle.Append(fx.StartStopHook(b.Start, b.Stop))
	return b
}
