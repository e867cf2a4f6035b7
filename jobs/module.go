package jobs

import (
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/reload"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// DaemonModule runs the sidecar daemon: the scheduled jobs, which take the
// secrets of a reloaded config (value group "reload_secrets"). It needs a
// Fetcher, a Recorder, a StatusSink, a ChangeNotifier, a RecoverySignal
// and a TracerProvider; exec mode's DataObservers join "data_observers".
var DaemonModule = fx.Module("jobs",
	fx.Provide(newSyncer, newDaemon, daemonApplier),
)

// daemonApplier puts the daemon in the reload's secrets phase.
func daemonApplier(d *Daemon) ReloadResult {
	return ReloadResult{Applier: d}
}

// ReloadResult joins the reload's secrets phase (reload.Module).
type ReloadResult struct {
	fx.Out

	Applier reload.Applier `group:"reload_secrets"`
}

// OnceModule provides Once, the init-container run: the command runs it
// (Once.Run) after the app started and exits with its ExitCode. Supply
// OnceSettings.
var OnceModule = fx.Module("once",
	fx.Provide(newSyncer, newOnce),
)

// OnceSettings are the once command's flags.
type OnceSettings struct {
	Timeout time.Duration
	Workers int
	// DryRun reads and renders every secret and writes nothing: Plans
	// then say what a sync would do.
	DryRun bool
}

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

// DaemonParams are the Daemon's dependencies in fx.
type DaemonParams struct {
	fx.In

	Config *config.Config
	Env    config.Env
	Syncer *Syncer
	Log    *zap.Logger
	DaemonOptions
}

// DaemonRunParams are what the run command's Daemon needs on top of
// DaemonParams: it runs with the app (exec mode starts its own).
type DaemonRunParams struct {
	fx.In
	DaemonParams

	Lifecycle fx.Lifecycle
}

func newDaemon(p DaemonRunParams) (*Daemon, error) {
	d, err := NewDaemon(p.Config, p.Syncer, p.Log.Named("jobs"),
		DaemonSettings{ShutdownTimeout: p.Env.ShutdownTimeout}, p.DaemonOptions)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartStopHook(d.Start, d.Stop))
	return d, nil
}

// OnceParams are Once's dependencies in fx.
type OnceParams struct {
	fx.In

	Config   *config.Config
	Syncer   *Syncer
	Log      *zap.Logger
	Settings OnceSettings
	Recovery schedule.RecoverySignal
}

func newOnce(p OnceParams) *Once {
	return NewOnce(p.Config, p.Syncer, p.Log.Named("once"), p.Settings, p.Recovery)
}
