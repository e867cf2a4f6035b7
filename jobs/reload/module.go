package reload

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Reloader. Components that react to a new config
// join the value groups "reload_settings" (process-wide settings, applied
// first) and "reload_secrets" (the secrets). Supply Settings; Run starts
// and stops the reloader with the app (exec mode starts it itself, once
// its command runs).
var Module = fx.Module("reload", fx.Provide(newFx))

// Run starts and stops the Reloader with the app. Its hook comes after the
// appliers' (it depends on them), so it stops first: no reload during
// shutdown.
var Run = fx.Invoke(func(lc fx.Lifecycle, r *Reloader) { lc.Append(fx.StartStopHook(r.Start, r.Stop)) })

// Params are the Reloader's dependencies in fx.
type Params struct {
	fx.In

	Config   *config.Config
	Loader   *config.Loader
	Settings Settings
	Recorder Recorder
	Log      *zap.Logger
	Apply    []Applier `group:"reload_settings"`
	Secrets  []Applier `group:"reload_secrets"`
}

func newFx(p Params) *Reloader {
	return New(p.Config, p.Loader, Appliers{Settings: p.Apply, Secrets: p.Secrets}, p.Recorder, p.Log.Named("reload"), p.Settings)
}
