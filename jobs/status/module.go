package status

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Tracker, writing config.Env.StatusFile, started and
// stopped with the app. Supply a ReadyObserver (the metrics) to have the
// ready gauge follow it.
var Module = fx.Module("status", fx.Provide(New))

// Params are New's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Env       config.Env
	Log       *zap.Logger
	Observer  ReadyObserver
}

// New builds the tracker and ties its heartbeat and final write to the
// app's lifecycle.
func New(p Params) *Tracker {
	t := NewTracker(p.Env.StatusFile, p.Log, p.Observer, nil)
	p.Lifecycle.Append(fx.StartStopHook(t.Start, t.Stop))
	return t
}
