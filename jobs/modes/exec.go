package modes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/reload"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/supervisor"
)

// Exit codes of exec mode besides the child's own: the initial sync did
// not write every file (as `once`), or the command could not be run
// (126, 127: as a shell says it).
const (
	ExecSyncFailed  = 1
	ExecCannotRun   = 126
	ExecNotFound    = 127
	ExecRestartLost = 1
)

// ExecSettings are the exec command's flags.
type ExecSettings struct {
	Timeout     time.Duration // the initial sync's, as once --timeout
	Workers     int
	Argv        []string
	EnvSecrets  []string // --env: secrets whose fields are the child's environment
	OnChange    string   // OnChangeSignal, OnChangeRestart or OnChangeNone
	Signal      syscall.Signal
	StopSignal  syscall.Signal
	StopTimeout time.Duration
}

// Exec is the process-supervisor mode: it syncs every secret once (once's
// semantics), starts the command with the --env secrets in its
// environment, keeps syncing like the daemon, restarts or signals the
// command when secrets change, forwards the sidecar's signals to it, and
// ends with the command's exit code.
type Exec struct {
	settings ExecSettings
	cfg      *config.Config
	once     *Once
	daemon   *Daemon
	reloader *reload.Reloader
	status   jobs.StatusSink
	env      *childEnv
	hook     *childHook
	log      *zap.Logger
	exit     *execExit
	notifier jobs.ChangeNotifier

	quit    chan struct{} // closed by Stop
	done    chan struct{} // closed when main returned
	mu      sync.Mutex
	running bool // Run was called
	sup     *supervisor.Supervisor
	started bool // the daemon and the reloader run
}

// Run is exec mode from the initial sync to the command's exit, whose
// code it returns (as an *ExitError; nil for 0). Exec mode's exit codes
// of its own: ExecSyncFailed when the initial sync did not write every
// file, ExecCannotRun and ExecNotFound when the command cannot be run,
// ExecRestartLost when a restart lost it. SIGTERM and SIGINT are exec
// mode's: until the command runs they end the initial sync (as in once),
// then they go to the command. A cancelled ctx ends the initial sync the
// same way, or ends Run while the command runs (Stop then stops it).
func (x *Exec) Run(ctx context.Context) error {
	early := make(chan os.Signal, 1)
	signal.Notify(early, syscall.SIGTERM, syscall.SIGINT)
	x.mu.Lock()
	x.running = true
	x.mu.Unlock()
	go x.main(ctx, early)
	code := ExecSyncFailed
	var err error
	select {
	case code = <-x.exit.ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if code == 0 && err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// Stop ends exec mode: the initial sync is cancelled, a child still
// running is stopped (stop signal, then SIGKILL), then the jobs stop.
func (x *Exec) Stop(ctx context.Context) error {
	close(x.quit)
	x.mu.Lock()
	running := x.running
	x.mu.Unlock()
	if !running {
		return nil
	}
	select {
	case <-x.done:
	case <-ctx.Done():
		return fmt.Errorf("exec: stop: %w", ctx.Err())
	}
	x.mu.Lock()
	sup, started := x.sup, x.started
	x.mu.Unlock()
	var errs []error
	if sup != nil {
		errs = append(errs, sup.Stop(ctx))
	}
	if started {
		errs = append(errs, x.reloader.Stop(ctx), x.daemon.Stop(ctx))
	}
	return errors.Join(errs...)
}

// main is exec mode from the first sync to the child's exit.
func (x *Exec) main(parent context.Context, early chan os.Signal) {
	defer close(x.done)
	defer signal.Stop(early)
	// The sidecar adopts what CMD leaves behind (setsid, double forks), so
	// that each restart and the end kill it: nothing piles up.
	reaper, err := supervisor.StartSubreaper(x.log)
	if err != nil {
		x.log.Warn("cannot become the subreaper of CMD's processes: what CMD leaves behind in sessions of its own outlives it", zap.Error(err))
	}
	defer reaper.Stop()

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if !x.initialSync(ctx, cancel, early) {
		x.exit.exit(ExecSyncFailed)
		return
	}
	sup, env, stopForwarding, code := x.startCommand(early)
	if sup == nil {
		x.exit.exit(code)
		return
	}
	defer stopForwarding()
	x.hook.attach(sup, env)
	x.env.arm(x.notifier)
	x.log.Info("command started", zap.String("command", x.settings.Argv[0]), zap.Int("pid", sup.PID()),
		zap.Strings("env_secrets", x.settings.EnvSecrets), zap.String("on_change", x.settings.OnChange))
	if err := x.daemon.Start(ctx); err != nil {
		x.log.Error("sync could not start; stopping the command", zap.Error(err))
		x.exit.exit(ExecSyncFailed)
		return
	}
	x.mu.Lock()
	x.started = true
	x.mu.Unlock()
	if err := x.reloader.Start(ctx); err != nil {
		x.log.Warn("config reload not armed", zap.Error(err))
	}
	select {
	case <-sup.Exited():
		code := sup.ExitCode()
		x.log.Info("command exited; stopping", zap.Int("exit_code", code))
		x.exit.exit(code)
	case <-x.quit:
	}
}

// initialSync runs the initial sync (once's semantics) and reports
// whether it wrote every file; a signal in early or Stop cancels it.
func (x *Exec) initialSync(ctx context.Context, cancel context.CancelFunc, early <-chan os.Signal) bool {
	watching, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-early:
			cancel()
		case <-x.quit:
			cancel()
		case <-watching:
		}
	}()
	x.status.Configure(secretInfos(x.cfg))
	err := x.once.Run(ctx)
	close(watching)
	<-watched
	return err == nil && ctx.Err() == nil
}

// startCommand starts the command with the --env secrets in its
// environment and the sidecar's signals forwarded to it (stop ends the
// forwarding). A signal that came before the forwarding took over goes
// to the command at once. On failure sup is nil and code is exec mode's
// exit code.
func (x *Exec) startCommand(early chan os.Signal) (sup *supervisor.Supervisor, env []string, stop func(), code int) {
	env, err := x.env.environ()
	if err != nil {
		x.log.Error("the command's environment cannot be built", zap.Error(err))
		return nil, nil, nil, ExecSyncFailed
	}
	sup, err = supervisor.New(supervisor.Options{
		Argv: x.settings.Argv, Env: env, StopSignal: x.settings.StopSignal, StopTimeout: x.settings.StopTimeout,
		Log: x.log.Named("child"),
	})
	if err != nil {
		x.log.Error("the command cannot be run", zap.Error(err))
		if errors.Is(err, supervisor.ErrNotFound) {
			return nil, nil, nil, ExecNotFound
		}
		return nil, nil, nil, ExecCannotRun
	}
	stop = supervisor.ForwardSignals(sup)
	if err := sup.Start(); err != nil {
		stop()
		x.log.Error("the command cannot be run", zap.Error(err))
		return nil, nil, nil, ExecCannotRun
	}
	x.mu.Lock()
	x.sup = sup
	x.mu.Unlock()
	// A signal that came between the forwarding and the start went
	// nowhere: give it to the child now.
	signal.Stop(early)
	select {
	case sig := <-early:
		if s, ok := sig.(syscall.Signal); ok {
			_ = sup.Signal(s)
		}
	default:
	}
	return sup, env, stop, 0
}

// ExecModule provides Exec, the process-supervisor mode, which the command
// runs (Exec.Run) after the app started: it needs what DaemonModule needs
// plus ExecSettings, a reload.Reloader (without SIGHUP: that is the
// command's) and a ChangeNotifier with its hooks group ("notify_hooks"),
// to which it adds the supervisor's hook. Exec starts the daemon and the
// config reloader itself once the command runs.
var ExecModule = fx.Module("exec",
	fx.Provide(
		newExecDaemon, daemonApplier, newExec, newExecExit,
		newChildEnvFx,
		fx.Annotate(func(e *childEnv) jobs.DataObserver { return e }, fx.ResultTags(`group:"data_observers"`)),
		newChildHook,
		// A value group takes no fx.As beside the type itself: one adapter.
		fx.Annotate(func(h *childHook) notify.Hook { return h }, fx.ResultTags(`group:"notify_hooks"`)),
	),
)

// execExit delivers exec mode's exit code to Run once, whoever decides it
// first (the child's exit, a failed start, a restart that lost the child).
type execExit struct {
	once sync.Once
	ch   chan int
}

func newExecExit() *execExit { return &execExit{ch: make(chan int, 1)} }

func (e *execExit) exit(code int) { e.once.Do(func() { e.ch <- code }) }

func newChildEnvFx(s ExecSettings) *childEnv {
	return newChildEnv(supervisor.ScrubCredentials(os.Environ()), s.EnvSecrets)
}

func newChildHook(s ExecSettings, env *childEnv, exit *execExit, log *zap.Logger) *childHook {
	log = log.Named("exec")
	return &childHook{env: env, mode: s.OnChange, signal: s.Signal, log: log, fatal: func(err error) {
		log.Error("the command could not be restarted; stopping", zap.Error(err))
		exit.exit(ExecRestartLost)
	}}
}

// newExecDaemon is the daemon of exec mode: its jobs first run one refresh
// interval after the initial sync, which has just read everything.
func newExecDaemon(p DaemonParams) (*Daemon, error) {
	return NewDaemon(p.Config, p.Syncer, p.Log.Named("jobs"),
		DaemonSettings{ShutdownTimeout: p.Env.ShutdownTimeout, DelayFirstRun: true}, p.DaemonOptions)
}

// ExecParams are Exec's dependencies in fx.
type ExecParams struct {
	fx.In

	Config   *config.Config
	Settings ExecSettings
	Syncer   *jobs.Syncer
	Daemon   *Daemon
	Reloader *reload.Reloader
	Env      *childEnv
	Hook     *childHook
	Exit     *execExit
	Log      *zap.Logger
	Notifier jobs.ChangeNotifier
	Status   jobs.StatusSink
	Recovery schedule.RecoverySignal

	Lifecycle fx.Lifecycle
}

func newExec(p ExecParams) (*Exec, error) {
	for _, name := range p.Settings.EnvSecrets {
		if _, ok := p.Config.Secret(name); !ok {
			return nil, config.Problems{{File: p.Config.File, Msg: fmt.Sprintf("exec --env %s: no secret of that name in the config", name)}}
		}
	}
	log := p.Log.Named("exec")
	once := NewOnce(p.Config, p.Syncer.WithoutNotifier(), log, OnceSettings{Timeout: p.Settings.Timeout, Workers: p.Settings.Workers}, p.Recovery)
	x := &Exec{
		settings: p.Settings, cfg: p.Config, daemon: p.Daemon, reloader: p.Reloader, status: p.Status,
		env: p.Env, hook: p.Hook, exit: p.Exit, log: log, notifier: p.Notifier,
		once: once,
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	p.Lifecycle.Append(fx.StopHook(x.Stop))
	return x, nil
}
