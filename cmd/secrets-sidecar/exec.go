package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/supervisor"
)

const execUsage = "[flags] -- CMD [ARGS...]"

// execCommand is the process-supervisor mode's command line.
func execCommand() command {
	return command{
		name:    "exec",
		summary: "sync every secret once, run CMD with them, keep syncing, and restart or signal CMD when they change; exit with CMD's code",
		usage:   execUsage,
		flags: func(fs *flag.FlagSet) func([]string, globals) int {
			cfg := configFlag(fs)
			timeout := fs.Duration("timeout", 2*time.Minute, "give up on the initial sync after this long (as once)")
			workers := fs.Int("concurrency", 8, "secrets synced at the same time in the initial sync")
			var envSecrets []string
			fs.Func("env", "a secret whose fields become CMD's environment variables (repeatable); a change restarts CMD", func(v string) error {
				envSecrets = append(envSecrets, v)
				return nil
			})
			onChange := fs.String("on-change", modes.OnChangeSignal, "what a changed secret file does to CMD: signal, restart or none")
			sig := fs.String("signal", "SIGHUP", "the signal --on-change signal sends")
			stopSig := fs.String("stop-signal", "SIGTERM", "the signal that stops CMD for a restart")
			stopTimeout := fs.Duration("stop-timeout", supervisor.DefaultStopTimeout, "how long a restart waits after --stop-signal before SIGKILL")
			return func(argv []string, g globals) int {
				s := modes.ExecSettings{
					Timeout: *timeout, Workers: *workers, Argv: argv, EnvSecrets: envSecrets,
					OnChange: *onChange, StopTimeout: *stopTimeout,
				}
				var problems []string
				if len(argv) == 0 {
					problems = append(problems, "no command: secrets-sidecar exec "+execUsage)
				}
				if *timeout <= 0 || *workers <= 0 || *stopTimeout <= 0 {
					problems = append(problems, "--timeout, --concurrency and --stop-timeout must be positive")
				}
				switch *onChange {
				case modes.OnChangeSignal, modes.OnChangeRestart, modes.OnChangeNone:
				default:
					problems = append(problems, fmt.Sprintf("--on-change %q: want signal, restart or none", *onChange))
				}
				var err error
				if s.Signal, err = parseSignal("--signal", *sig); err != nil {
					problems = append(problems, err.Error())
				}
				if s.StopSignal, err = parseSignal("--stop-signal", *stopSig); err != nil {
					problems = append(problems, err.Error())
				}
				if len(problems) > 0 {
					fmt.Fprintln(g.stderr, "exec: "+strings.Join(problems, "\nexec: "))
					return exitUsage
				}
				return cmdExec(g.withConfig(*cfg), s)
			}
		},
	}
}

// parseSignal reads SIGHUP or HUP.
func parseSignal(flagName, name string) (syscall.Signal, error) {
	if s := config.SignalNum(strings.ToUpper(strings.TrimSpace(name))); s != 0 {
		return s, nil
	}
	return 0, fmt.Errorf("%s %q: not a signal name (e.g. SIGHUP, HUP, SIGUSR1, SIGTERM)", flagName, name)
}

// cmdExec runs the process-supervisor mode and returns the command's exit
// code (1 when the initial sync failed, 2 for a bad config, 126/127 when
// the command cannot be run).
func cmdExec(g globals, s modes.ExecSettings) int {
	env, code := loadEnv(g)
	if code != exitOK {
		return code
	}
	// The application usually owns the container's ports: the HTTP server
	// runs only when SIDECAR_HTTP_ADDR asks for it.
	if _, set := os.LookupEnv("SIDECAR_HTTP_ADDR"); !set {
		env.HTTPAddr = ""
	}
	var x *modes.Exec
	app := fx.New(append(execOptions(g, env, s), fx.Populate(&x))...)
	return runApp(app, x, true, g.stderr)
}
