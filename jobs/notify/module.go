package notify

import (
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the *Notifier, started and stopped with the app. Supply
// a Recorder and a StatusSink to have runs counted and reported, and Hooks
// in the "notify_hooks" value group. Whatever calls Changed depends on the
// Notifier, so it is built first and stopped last: changes written while
// the app stops are still announced.
var Module = fx.Module("notify", fx.Provide(New))

// Params are New's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    *config.Config
	Log       *zap.Logger
	Recorder  Recorder             `optional:"true"`
	Status    StatusSink           `optional:"true"`
	Tracer    trace.TracerProvider `optional:"true"`
	Hooks     []Hook               `group:"notify_hooks"`
}

// New builds the Notifier from the loaded config and ties it to the app's
// lifecycle.
func New(p Params) *Notifier {
	n := NewNotifier(Options{
		Settings: p.Config.Notify, Log: p.Log.Named("notify"), Recorder: p.Recorder,
		Status: p.Status, Tracer: p.Tracer, Hooks: p.Hooks,
	})
	p.Lifecycle.Append(fx.StartStopHook(n.Start, n.Stop))
	return n
}
