// Command secrets-sidecar keeps files on a shared volume in sync with
// secrets in HashiCorp Vault or OpenBao. See SPEC.md and README.md.
//
// This file composes the fx modules for each command and nothing else; the
// command line is parsed in cli.go and the commands run in commands.go.
package main

import (
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stopMargin is what fx gets on top of SIDECAR_SHUTDOWN_TIMEOUT: the sync
// jobs bound themselves by the timeout, the rest (final status write, HTTP
// server, tracer flush) needs a moment more.
const stopMargin = 5 * time.Second

// baseOptions are the modules every long-running command shares.
func baseOptions(g globals, env config.Env) []fx.Option {
	return []fx.Option{
		fx.WithLogger(logging.FxEventLogger),
		fx.StopTimeout(env.ShutdownTimeout + stopMargin),
		fx.Supply(env, config.Flags{ConfigPath: g.configPath}),
		buildinfo.Module,
		config.Module,
		logging.Module,
	}
}

// runOptions composes the daemon.
func runOptions(g globals, env config.Env) []fx.Option {
	return append(baseOptions(g, env),
		fx.Invoke(func(cfg *config.Config, log *zap.Logger) {
			log.Info("config loaded", zap.String("file", cfg.File), zap.Int("secrets", len(cfg.Secrets)))
		}),
	)
}
