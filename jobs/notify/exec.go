package notify

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/modules/supervisor"
)

const (
	// outputLimit is how much of each output stream is logged.
	outputLimit = 4 << 10
	// execWaitDelay bounds the wait for output after the command exited
	// or was killed (a process that left the group may keep it open).
	execWaitDelay = time.Second
)

// execAction runs a command, argv with no shell, in its own process group.
type execAction struct {
	argv      []string
	timeout   time.Duration
	logOutput bool
}

func (a *execAction) kind() string   { return KindExec }
func (a *execAction) target() string { return a.argv[0] }

func (a *execAction) run(ctx context.Context, n *Notifier, in input) ([]zap.Field, error) {
	env, creds := childEnv(n.environ(), in.secrets, in.files)
	// The output is logged only when the operator asked for it, and then
	// scrubbed of every value the sidecar holds: a command may print any
	// file it can read, not only the ones that changed. Scrubbing cannot
	// catch a value the command transformed (hex, reversed, split), so by
	// default only the sizes are logged.
	scrub, limit := in.scrub.with(creds), 0 // the error text is scrubbed all the same
	if a.logOutput {
		scrub, limit = n.heldScrubber(in.scrub, creds), outputLimit
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, a.argv[0], a.argv[1:]...) // #nosec G204 -- the operator's configured command
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Stdin nil is /dev/null. On timeout the whole group goes, so a
	// shell's children do not outlive it.
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = execWaitDelay
	capLimit := 0
	if limit > 0 {
		capLimit = limit + scrub.longest()
	}
	stdout, stderr := newCapture(capLimit), newCapture(capLimit)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	err := supervisor.RunCommand(cmd) // owned: a PID 1 reaper leaves its status to us
	var fields []zap.Field
	for _, c := range []struct {
		name string
		out  *capture
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if !a.logOutput {
			if total := c.out.size(); total > 0 {
				fields = append(fields, zap.Int64(c.name+"_bytes", total))
			}
			continue
		}
		if s := c.out.text(scrub, limit); s != "" {
			fields = append(fields, zap.String(c.name, s))
		}
	}
	var exit *exec.ExitError
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fields, fmt.Errorf("%s: timed out after %s; its process group was killed", a.argv[0], a.timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited 0; something it started still held the output open.
		return fields, nil
	case errors.As(err, &exit):
		return fields, fmt.Errorf("%s: %s", a.argv[0], exit.String())
	case err != nil:
		return fields, fmt.Errorf("%s: %w", a.argv[0], err)
	}
	return fields, nil
}

// Names of the variables an exec action receives.
const (
	EnvChanged      = "SIDECAR_CHANGED"
	EnvChangedFiles = "SIDECAR_CHANGED_FILES"
)

// childEnv is environ without credentials, plus SIDECAR_CHANGED and
// SIDECAR_CHANGED_FILES. creds are the values it dropped (to scrub them
// from the output).
func childEnv(environ, secrets, files []string) (env, creds []string) {
	env, creds = supervisor.SplitCredentials(environ)
	out := env[:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != EnvChanged && k != EnvChangedFiles {
			out = append(out, kv)
		}
	}
	return append(out, EnvChanged+"="+strings.Join(secrets, ","), EnvChangedFiles+"="+strings.Join(files, ",")), creds
}
