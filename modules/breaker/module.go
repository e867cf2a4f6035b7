package breaker

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Breaker, configured from the SIDECAR_BREAKER_*
// settings. A StateObserver in the graph (the metrics module) is told every
// state change.
var Module = fx.Module("breaker",
	fx.Provide(New),
)

// Params are New's inputs.
type Params struct {
	fx.In

	Env      config.Env
	Logger   *zap.Logger
	Observer StateObserver `optional:"true"`
}

// New builds the breaker from the environment settings.
func New(p Params) *Breaker {
	return NewBreaker(SettingsFromEnv(p.Env), p.Logger, p.Observer)
}
