// Command secrets-sidecar keeps files on a shared volume in sync with
// secrets in HashiCorp Vault or OpenBao. See README.md.
//
// This file composes the fx modules for each command and nothing else; the
// command line is parsed in cli.go, and the commands run in commands.go
// (run, validate), once.go, exec.go and isready.go (version: cli.go).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/fx"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/reload"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/lease"
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
	// A fallback: a binary the caller cannot read (installed root-owned,
	// mode 0511) is not dumpable from execve on, before any of this runs.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// The credentials go from the environment into memory, and their
	// values are wiped from what /proc/<pid>/environ shows.
	if _, err := config.TakeCredentials(); err != nil {
		fmt.Fprintf(os.Stderr, "secrets-sidecar: warning: the credentials could not be wiped from the process environment: %v\n", err)
	}
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
		// The loader compiles every template into the set; jobs take them.
		fx.Provide(render.NewSet, func(s *render.Set) config.TemplateChecker { return s }),
		buildinfo.Module,
		config.Module,
		logging.Module,
		memlimit.Module,
		tracing.Module,
		breaker.Module,
		vault.Module,
		as[*vault.Client](new(kv.Reader)),
		// The pipeline and its sources: KV and leases.
		jobs.Module,
		sourceOf(kv.New),
		lease.Module,
		sourceOf(same[*lease.Source]),
		as[*vault.Client](new(lease.Client)),
		fx.Provide(source.NewWake),
		// The breaker guards the Vault client and probes Vault while open;
		// retries waiting out a backoff start again when it closes.
		as[*breaker.Breaker](new(vault.Breaker), new(schedule.RecoverySignal)),
	}
}

// runOptions composes the daemon: scheduled sync jobs with hot reload,
// readiness (status file, /ready), metrics, change actions and the HTTP
// server.
func runOptions(g globals, env config.Env) []fx.Option {
	return append(syncingOptions(g, env),
		fx.Supply(reload.Settings{Watch: env.WatchConfig}),
		modes.DaemonModule,
		reload.Run,
	)
}

// execOptions composes the process-supervisor mode: the daemon's parts,
// run by exec mode around the command it supervises.
func execOptions(g globals, env config.Env, settings modes.ExecSettings) []fx.Option {
	return append(syncingOptions(g, env),
		fx.Supply(settings),
		// SIGHUP is the command's: reloads follow the file watcher only.
		fx.Supply(reload.Settings{Watch: env.WatchConfig, NoSIGHUP: true}),
		modes.ExecModule,
	)
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
		reload.Module,
		as[*metrics.Metrics](new(breaker.StateObserver), new(vault.TokenObserver), new(status.ReadyObserver),
			new(notify.Recorder), new(jobs.Recorder), new(reload.Recorder), new(lease.Recorder)),
		as[*status.Tracker](new(notify.StatusSink), new(jobs.StatusSink), new(httpserver.Readiness)),
		as[*notify.Notifier](new(jobs.ChangeNotifier)),
		as[*vault.Client](new(notify.CredentialSource)),
		// A reload applies the vault: and notify: blocks before the secrets.
		reloadSettings(func(c *vault.Client) reload.ApplierFunc {
			return func(ctx context.Context, cfg *config.Config) error {
				if err := c.Update(ctx, cfg.Vault); err != nil {
					return fmt.Errorf("vault settings: %w", err)
				}
				return nil
			}
		}),
		reloadSettings(func(n *notify.Notifier) reload.ApplierFunc {
			return func(_ context.Context, cfg *config.Config) error { n.Update(cfg.Notify); return nil }
		}),
		// A reload may not change the leases: block.
		reloadSettings(func(s *lease.Source) reload.ApplierFunc { return s.Apply }),
		fx.Supply(lease.RunSettings{}),
	)
}

// reloadSettings puts what newApplier makes in the reload's settings phase.
func reloadSettings[T any](newApplier func(T) reload.ApplierFunc) fx.Option {
	return fx.Provide(fx.Annotate(func(c T) reload.Applier { return newApplier(c) },
		fx.ResultTags(`group:"reload_settings"`)))
}

// onceOptions composes the init-container run: every secret once, then exit.
func onceOptions(g globals, env config.Env, settings modes.OnceSettings) []fx.Option {
	return append(baseOptions(g, env),
		fx.Supply(settings, lease.RunSettings{NoRevoke: true, DryRun: settings.DryRun}),
		modes.OnceModule,
		// No metrics endpoint, status file or change actions: once reports
		// by its exit code and writes files before the application starts.
		fx.Supply(metrics.Discard{}, status.Discard{}, notify.Discard{}),
		as[metrics.Discard](new(breaker.StateObserver), new(vault.TokenObserver), new(jobs.Recorder), new(lease.Recorder)),
		as[status.Discard](new(jobs.StatusSink)),
		as[notify.Discard](new(jobs.ChangeNotifier)),
	)
}

// as binds a component to the interfaces its consumers declare (fx.As):
// the graph's T is also provided as each of ifaces, e.g.
// as[*vault.Client](new(kv.Reader)). fx checks at build time that T
// implements them; TestGraphs builds every command's graph.
func as[T any](ifaces ...any) fx.Option {
	anns := make([]fx.Annotation, len(ifaces))
	for i, iface := range ifaces {
		anns[i] = fx.As(iface)
	}
	return fx.Provide(fx.Annotate(same[T], anns...))
}

// sourceOf provides what the constructor newSource returns to the
// pipeline's "sources" group as a jobs.Source (fx checks it implements
// one when the graph is built).
func sourceOf(newSource any) fx.Option {
	return fx.Provide(fx.Annotate(newSource, fx.As(new(jobs.Source)), fx.ResultTags(`group:"sources"`)))
}

// same is the identity constructor that as annotates.
func same[T any](v T) T { return v }
