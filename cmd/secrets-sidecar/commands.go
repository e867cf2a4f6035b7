package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/fx"

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
	return runApp(fx.New(runOptions(g, env)...), g.stderr)
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

// runApp starts an fx app, waits for a signal or a Shutdowner exit code,
// stops it, and returns the exit code.
func runApp(app *fx.App, stderr io.Writer) int {
	if err := app.Err(); err != nil {
		return startupFailed(stderr, err)
	}
	// Catch SIGTERM/SIGINT before starting: a signal that lands while the
	// start hooks run (Vault slow to answer the connection check) must
	// shut down cleanly, not kill the process.
	done := app.Wait()
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return startupFailed(stderr, err)
	}
	sig := <-done
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		// fx has already logged which hook failed.
		if sig.ExitCode == exitOK {
			return exitFailure
		}
	}
	return sig.ExitCode
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
