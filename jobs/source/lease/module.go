package lease

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Module provides the lease source, stopped (and, as revoke_on_shutdown
// says, its leases revoked) with the app. Supply RunSettings.
var Module = fx.Module("lease", fx.Provide(newFx))

// RunSettings are what the command decides: once never revokes (the
// daemon that follows it takes its leases over).
type RunSettings struct {
	NoRevoke bool
	// DryRun: once --dry-run reads the state directory without locking or
	// making it (a daemon may hold it), and never writes it.
	DryRun bool
}

// Params are the source's dependencies in fx.
type Params struct {
	fx.In

	Config    *config.Config
	Client    Client
	Wake      *source.Wake
	Recorder  Recorder
	Log       *zap.Logger
	Run       RunSettings
	Lifecycle fx.Lifecycle
}

func newFx(p Params) (*Source, error) {
	n := p.Config.Notify
	s, err := New(p.Client, Settings{Leases: p.Config.Leases, Handover: n.Debounce.Duration + n.Splay.Duration,
		NoRevoke: p.Run.NoRevoke, ReadOnly: p.Run.DryRun},
		Options{Log: p.Log.Named("lease"), Wake: p.Wake, Recorder: p.Recorder})
	if err != nil {
		return nil, config.Problems{{File: p.Config.File, Field: "leases.state_dir", Msg: err.Error()}}
	}
	p.Lifecycle.Append(fx.StopHook(s.Stop))
	return s, nil
}
