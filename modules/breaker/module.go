package breaker

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Breaker, configured from the SIDECAR_BREAKER_*
// settings. A StateObserver in the graph (the metrics module) is told every
// state change. A Prober runs the graph's Probe (the vault module's) from
// start to stop.
var Module = fx.Module("breaker",
	fx.Provide(New),
	fx.Invoke(runProber),
)

func runProber(lc fx.Lifecycle, b *Breaker, probe Probe) {
	p := NewProber(b, probe)
	lc.Append(fx.StartStopHook(p.Start, p.Stop))
}

// Params are New's inputs.
type Params struct {
	fx.In

	Env      config.Env
	Logger   *zap.Logger
	Observer StateObserver
}

// New builds the breaker from the environment settings.
func New(p Params) *Breaker {
	return NewBreaker(SettingsFromEnv(p.Env), p.Logger, p.Observer)
}
