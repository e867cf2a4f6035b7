package modes

import (
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/reload"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// DaemonModule runs the sidecar daemon: the scheduled jobs, which take the
// secrets of a reloaded config (value group "reload_secrets"). It needs
// jobs.Module's Syncer, a Recorder, a StatusSink and a RecoverySignal.
var DaemonModule = fx.Module("daemon",
	fx.Provide(newDaemon, daemonApplier),
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
	fx.Provide(newOnce),
)

// OnceSettings are the once command's flags.
type OnceSettings struct {
	Timeout time.Duration
	Workers int
	// DryRun reads and renders every secret and writes nothing: Plans
	// then say what a sync would do.
	DryRun bool
}

// DaemonParams are the Daemon's dependencies in fx.
type DaemonParams struct {
	fx.In

	Config *config.Config
	Env    config.Env
	Syncer *jobs.Syncer
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
	Syncer   *jobs.Syncer
	Log      *zap.Logger
	Settings OnceSettings
	Recovery schedule.RecoverySignal
}

func newOnce(p OnceParams) *Once {
	return NewOnce(p.Config, p.Syncer, p.Log.Named("once"), p.Settings, p.Recovery)
}
