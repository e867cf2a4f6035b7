package jobs

import (
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the pipeline's Syncer: it needs the sources (value
// group "sources"), a Recorder, a StatusSink, a ChangeNotifier, a
// TracerProvider and the compiled templates; exec mode's DataObservers
// join "data_observers".
var Module = fx.Module("pipeline",
	fx.Provide(newSyncer),
)

// SyncerParams are the Syncer's dependencies in fx.
type SyncerParams struct {
	fx.In

	SyncerOptions

	Sources []Source `group:"sources"`
	Log     *zap.Logger
}

func newSyncer(p SyncerParams) *Syncer {
	return NewSyncer(Route(p.Sources...), p.Log.Named("sync"), p.SyncerOptions)
}
