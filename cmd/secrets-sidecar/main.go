// Command secrets-sidecar keeps files on a shared volume in sync with
// secrets in HashiCorp Vault or OpenBao. See README.md.
//
// This file composes the fx modules for each command and nothing else; the
// command line is parsed in cli.go and the commands run in commands.go.
package main

import (
	"os"
	"time"

	"go.uber.org/fx"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/httpserver"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/memlimit"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/tracing"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

func main() {
	// Not dumpable: a process of the same user (the application in a
	// shared PID namespace, exec mode's child) can then neither read this
	// one's environment (VAULT_TOKEN) nor its memory, nor reach its mount
	// namespace's credential files through /proc/<pid>/root. Children get
	// their own dumpable flag back when they execute a program.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stopMargin is what fx gets on top of SIDECAR_SHUTDOWN_TIMEOUT: the sync
// jobs bound themselves by the timeout, the rest (final status write, HTTP
// server, tracer flush) needs a moment more.
const stopMargin = 5 * time.Second

// baseOptions are the modules every Vault-facing command shares: config
// (templates parsed by the renderer), logging, tracing, the breaker and
// the Vault client.
func baseOptions(g globals, env config.Env) []fx.Option {
	return []fx.Option{
		fx.WithLogger(logging.FxEventLogger),
		fx.StopTimeout(env.ShutdownTimeout + stopMargin),
		fx.Supply(env, config.Flags{ConfigPath: g.configPath}, logging.Output{W: g.stderr}),
		fx.Provide(func() config.TemplateChecker { return render.Checker{} }),
		buildinfo.Module,
		config.Module,
		logging.Module,
		memlimit.Module,
		tracing.Module,
		breaker.Module,
		vault.Module,
		fx.Provide(func(c *vault.Client) jobs.Fetcher { return c }),
		// Retries waiting out a backoff start again when the breaker closes.
		fx.Provide(func(b *breaker.Breaker) jobs.RecoverySignal { return b }),
	}
}

// runOptions composes the daemon: scheduled sync jobs with hot reload,
// readiness (status file, /ready), metrics, change actions and the HTTP
// server.
func runOptions(g globals, env config.Env) []fx.Option {
	return append(syncingOptions(g, env), jobs.DaemonModule)
}

// execOptions composes the process-supervisor mode: the daemon's parts,
// run by exec mode around the command it supervises.
func execOptions(g globals, env config.Env, settings jobs.ExecSettings) []fx.Option {
	return append(syncingOptions(g, env), fx.Supply(settings), jobs.ExecModule)
}

// syncingOptions are what keeps files in sync after start-up: metrics,
// readiness, the HTTP server and change actions, bound to the jobs.
func syncingOptions(g globals, env config.Env) []fx.Option {
	return append(baseOptions(g, env),
		memlimit.DaemonModule,
		metrics.Module,
		status.Module,
		httpserver.Module,
		notify.Module,
		fx.Provide(
			func(m *metrics.Metrics) notify.Recorder { return m },
			func(t *status.Tracker) notify.StatusSink { return t },
			func(n *notify.Notifier) jobs.ChangeNotifier { return n },
			func(n *notify.Notifier) jobs.NotifySettings { return n },
			func(m *metrics.Metrics) breaker.StateObserver { return m },
			func(m *metrics.Metrics) vault.TokenObserver { return m },
			func(m *metrics.Metrics) status.ReadyObserver { return m },
			func(m *metrics.Metrics) jobs.Recorder { return m },
			func(m *metrics.Metrics) jobs.ReloadRecorder { return m },
			func(t *status.Tracker) jobs.StatusSink { return t },
			func(t *status.Tracker) httpserver.Readiness { return t },
			func(c *vault.Client) jobs.VaultUpdater { return c },
		),
	)
}

// onceOptions composes the init-container run: every secret once, then exit.
func onceOptions(g globals, env config.Env, settings jobs.OnceSettings) []fx.Option {
	return append(baseOptions(g, env),
		fx.Supply(settings),
		jobs.OnceModule,
	)
}
