package notify

import (
	"go.uber.org/fx"

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
	Options
}

// New builds the Notifier from the loaded config and ties it to the app's
// lifecycle.
func New(p Params) *Notifier {
	o := p.Options
	o.Log = o.Log.Named("notify")
	n := NewNotifier(Settings{Notify: p.Config.Notify}, o)
	p.Lifecycle.Append(fx.StartStopHook(n.Start, n.Stop))
	return n
}
