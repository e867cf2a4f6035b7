package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

type onceFlags struct {
	timeout time.Duration
	workers int
	dryRun  bool
}

func cmdRun(g globals) int {
	env, code := loadEnv(g)
	if code != exitOK {
		return code
	}
	return runApp(fx.New(runOptions(g, env)...), untilSignal{}, false, g.stderr)
}

func cmdValidate(g globals, files []string) int {
	if len(files) == 0 {
		path := g.configPath
		if path == "" {
			// Offline: only the SIDECAR_* settings, no VAULT_* checks.
			env, err := config.LoadEnv()
			if err != nil {
				reportError(g.stderr, err)
				return exitUsage
			}
			path = config.Flags{}.Path(env)
		}
		files = []string{path}
	}
	loader := config.Loader{Templates: render.NewSet()}
	code := exitOK
	for _, f := range files {
		var cfg *config.Config
		var err error
		if f == "-" {
			f = config.Stdin
			cfg, err = loader.LoadReader(f, g.stdin)
		} else {
			cfg, err = loader.Load(f)
		}
		if err != nil {
			reportError(g.stderr, err)
			code = exitUsage
			continue
		}
		fmt.Fprintf(g.stdout, "%s: ok (%d secrets)\n", f, len(cfg.Secrets))
	}
	return code
}

// loadEnv reads the settings of the commands that talk to Vault: the
// SIDECAR_* variables and the VAULT_* ones the Vault library reads, so a
// bad value is one plain line and exit 2, before anything starts.
func loadEnv(g globals) (config.Env, int) {
	env, err := config.LoadRunEnv()
	if err != nil {
		reportError(g.stderr, err)
		return config.Env{}, exitUsage
	}
	return env, exitOK
}

// runMode is a command's work once its app has started (*modes.Once,
// *modes.Exec, untilSignal): Run blocks until the work ends, and
// modes.ExitCode turns its error into the exit code.
type runMode interface {
	Run(ctx context.Context) error
}

// untilSignal is the daemon's run mode: the work runs in the app's
// lifecycle hooks (the scheduler, the HTTP server, the reloader) until
// SIGTERM or SIGINT.
type untilSignal struct{}

func (untilSignal) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// runApp is every command's runner: it starts app, runs mode, stops app
// and returns the exit code. SIGTERM and SIGINT cancel mode's context; a
// mode that owns them (exec forwards them to its command) gets them from
// the end of the start hooks on, and one that came during the start hooks
// (Vault slow to answer the connection check) cancels its context before
// it runs.
func runApp(app *fx.App, mode runMode, ownsSignals bool, stderr io.Writer) int {
	if err := app.Err(); err != nil {
		return startupFailed(stderr, err)
	}
	// Catch SIGTERM/SIGINT before starting: a signal that lands while the
	// start hooks run must shut down cleanly, not kill the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	err := app.Start(startCtx)
	if ownsSignals {
		signal.Stop(sigs)
	}
	if err != nil {
		return startupFailed(stderr, err)
	}
	ctx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	select {
	case <-sigs:
		cancelRun()
	default:
	}
	result := make(chan error, 1)
	go func() { result <- mode.Run(ctx) }()
	if !ownsSignals {
		go func() {
			select {
			case <-sigs:
				cancelRun()
			case <-ctx.Done():
			}
		}()
	}
	code := modes.ExitCode(<-result)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil && code == exitOK {
		// fx has already logged which hook failed.
		return exitFailure
	}
	return code
}

// startupFailed reports a start-up error. fx has logged it; config and
// environment problems are also printed plainly, one per line, because
// that is what an operator fixing a file needs.
func startupFailed(stderr io.Writer, err error) int {
	if usageError(err) {
		reportError(stderr, err)
		return exitUsage
	}
	return exitFailure
}

func usageError(err error) bool {
	var probs config.Problems
	var envErr config.EnvError
	return errors.As(err, &probs) || errors.As(err, &envErr)
}

// reportError prints config problems and environment errors one per line,
// anything else as one line.
func reportError(w io.Writer, err error) {
	var probs config.Problems
	var envErr config.EnvError
	switch {
	case errors.As(err, &probs):
		fmt.Fprintln(w, probs.Error())
	case errors.As(err, &envErr):
		fmt.Fprintln(w, envErr.Error())
	default:
		fmt.Fprintln(w, "secrets-sidecar:", err)
	}
}
