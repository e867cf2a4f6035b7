package jobs

import (
	"context"
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

// OnceModule syncs every secret once and shuts the app down with exit code
// 0 when every file was written, else 1. Supply OnceSettings.
var OnceModule = fx.Module("once",
	fx.Provide(newSyncer, newOnce),
	fx.Invoke(func(*Once) {}),
)

// OnceSettings are the once command's flags, and where its outcome goes.
type OnceSettings struct {
	Timeout time.Duration
	Workers int
	// DryRun reads and renders every secret and writes nothing: the
	// result's Plans say what a sync would do.
	DryRun bool
	// Result, when set, receives the outcome, so the command can exit 1
	// when a signal cut the run short (fx then reports exit code 0).
	Result *OnceResult
}

// OnceResult is what a once run achieved.
type OnceResult struct {
	Finished bool
	Failed   []Failure
	Plans    []Plan // DryRun only
}

// SyncerParams are the Syncer's dependencies in fx.
type SyncerParams struct {
	fx.In

	SyncerOptions

	Fetcher Fetcher
	Log     *zap.Logger
}

func newSyncer(p SyncerParams) *Syncer {
	return NewSyncer(p.Fetcher, p.Log.Named("sync"), p.SyncerOptions)
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

	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
}

func newOnce(p OnceParams) *Once {
	res := p.Settings.Result
	if res == nil {
		res = &OnceResult{}
	}
	o := NewOnce(p.Config, p.Syncer, p.Log.Named("once"), p.Settings, p.Recovery)
	runOnce(p.Lifecycle, p.Shutdowner, o, res)
	return o
}

// runOnce runs Once in the background after start and turns its outcome
// into the app's exit code; a signal cancels it.
func runOnce(lc fx.Lifecycle, sd fx.Shutdowner, o *Once, res *OnceResult) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				failed := o.Run(ctx)
				res.Failed, res.Finished, res.Plans = failed, ctx.Err() == nil, o.Plans()
				code := 0
				if len(failed) > 0 || !res.Finished {
					code = 1
				}
				_ = sd.Shutdown(fx.ExitCode(code)) // only fails when already shutting down
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
			case <-stop.Done():
			}
			return nil
		},
	})
}
