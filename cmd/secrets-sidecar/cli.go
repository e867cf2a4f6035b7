package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Exit codes (README: "CLI reference").
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitChanges = 3 // once --dry-run: a sync would change a file
)

const usageText = `secrets-sidecar keeps files in sync with secrets in Vault or OpenBao.

Usage:
  secrets-sidecar [--config PATH] [command] [flags]

Commands:
  run        sync every secret on its own interval until SIGTERM/SIGINT (default)
  once       sync every secret once and exit: 0 only if every file was written;
             --dry-run writes nothing, prints what would change (3 if anything)
  exec       sync once, run a command with the secrets, keep syncing; restart or
             signal it on changes; exit with its code (exec [flags] -- CMD ARGS)
  isready    exit 0 if the daemon's status file says ready and is fresh, else 1
  status     print the daemon's status file as a table: each secret, its source,
             version or lease expiry, last change, next action and last error
  validate   check config files and templates offline: 0 good, 2 invalid
  version    print version, commit and Go version

Global flags:
  --config PATH   config file (default: $SIDECAR_CONFIG or /etc/secrets-sidecar/config.yaml)

Run 'secrets-sidecar COMMAND --help' for a command's flags. Process settings
come from SIDECAR_* and VAULT_* environment variables (see README).
`

// command is one subcommand: its flags and what it does with them.
type command struct {
	name    string
	summary string
	usage   string // after the command name
	flags   func(fs *flag.FlagSet) func(args []string, g globals) int
}

// globals are flags accepted before the command name.
type globals struct {
	configPath string
	stdin      io.Reader // validate -
	stdout     io.Writer
	stderr     io.Writer
}

func commands() []command {
	return []command{
		{
			name: "run", summary: "sync every secret on its own interval until SIGTERM/SIGINT",
			flags: func(fs *flag.FlagSet) func([]string, globals) int {
				cfg := configFlag(fs)
				return func(_ []string, g globals) int { return cmdRun(g.withConfig(*cfg)) }
			},
		},
		{
			name: "once", summary: "sync every secret once, retrying until --timeout; exit 0 only if every file was written",
			flags: func(fs *flag.FlagSet) func([]string, globals) int {
				cfg := configFlag(fs)
				timeout := fs.Duration("timeout", 2*time.Minute, "give up on secrets still failing after this long")
				workers := fs.Int("concurrency", 8, "secrets synced at the same time")
				dry := fs.Bool("dry-run", false, "write nothing; print what each secret's sync would do (exit 0 nothing, 3 changes, 1 errors)")
				return func(_ []string, g globals) int {
					if *timeout <= 0 || *workers <= 0 {
						fmt.Fprintln(g.stderr, "once: --timeout and --concurrency must be positive")
						return exitUsage
					}
					return cmdOnce(g.withConfig(*cfg), onceFlags{timeout: *timeout, workers: *workers, dryRun: *dry})
				}
			},
		},
		execCommand(),
		{
			name: "isready", summary: "exit 0 if the daemon's status file says ready and is fresh (Docker HEALTHCHECK)",
			flags: func(fs *flag.FlagSet) func([]string, globals) int {
				file := fs.String("status-file", "", "status file (default: $SIDECAR_STATUS_FILE or /tmp/secrets-sidecar/status.json)")
				maxAge := fs.Duration("max-age", 0, "oldest acceptable status update (default: 2x the longest refresh interval in the file)")
				return func(_ []string, g globals) int { return cmdIsReady(g, *file, *maxAge) }
			},
		},
		{
			name: "status", summary: "print each secret's state from the daemon's status file (no network; 1 when unreadable)",
			flags: func(fs *flag.FlagSet) func([]string, globals) int {
				file := fs.String("status-file", "", "status file (default: $SIDECAR_STATUS_FILE or /tmp/secrets-sidecar/status.json)")
				return func(_ []string, g globals) int { return cmdStatus(g, *file) }
			},
		},
		{
			name: "validate", summary: "check config files and their templates offline (no Vault, no credentials)",
			usage: "[--config PATH] [FILE...] (- reads standard input)",
			flags: func(fs *flag.FlagSet) func([]string, globals) int {
				cfg := configFlag(fs)
				return func(args []string, g globals) int { return cmdValidate(g.withConfig(*cfg), args) }
			},
		},
		{
			name: "version", summary: "print version, commit and Go version",
			flags: func(*flag.FlagSet) func([]string, globals) int {
				return func(_ []string, g globals) int {
					info := buildinfo.Get()
					fmt.Fprintf(g.stdout, "secrets-sidecar %s (commit %s, %s)\n", info.Version, info.Commit, info.GoVersion)
					return exitOK
				}
			},
		},
	}
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "config file (default: $SIDECAR_CONFIG or "+config.DefaultConfigPath+")")
}

func (g globals) withConfig(path string) globals {
	if path != "" {
		g.configPath = path
	}
	return g
}

// run parses the command line and runs one command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	g := globals{stdin: os.Stdin, stdout: stdout, stderr: stderr}
	top := flag.NewFlagSet("secrets-sidecar", flag.ContinueOnError)
	top.SetOutput(stderr)
	top.StringVar(&g.configPath, "config", "", "config file")
	top.Usage = func() { fmt.Fprint(stderr, usageText) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		return exitUsage
	}
	rest := top.Args()
	name := "run"
	if len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if name == "help" {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		action := c.flags(fs)
		fs.Usage = func() { commandUsage(stderr, c, fs) }
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				commandUsage(stdout, c, fs)
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() > 0 && c.name != "validate" && c.name != "exec" {
			fmt.Fprintf(stderr, "%s: unexpected argument %q\n", c.name, fs.Arg(0))
			return exitUsage
		}
		return action(fs.Args(), g)
	}
	fmt.Fprintf(stderr, "secrets-sidecar: unknown command %q\n\n%s", name, usageText)
	return exitUsage
}

func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	usage := c.usage
	if usage == "" {
		var parts []string
		fs.VisitAll(func(f *flag.Flag) { parts = append(parts, "[--"+f.Name+" ...]") })
		usage = strings.Join(parts, " ")
	}
	fmt.Fprintf(w, "Usage: secrets-sidecar %s %s\n\n%s.\n\nFlags:\n", c.name, usage, capitalize(c.summary))
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
