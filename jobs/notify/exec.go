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
	argv    []string
	timeout time.Duration
}

func (a *execAction) kind() string   { return KindExec }
func (a *execAction) target() string { return a.argv[0] }

func (a *execAction) run(ctx context.Context, n *Notifier, in input) ([]zap.Field, error) {
	env, creds := childEnv(n.environ(), in.secrets, in.files)
	scrub := in.scrub.with(creds)
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, a.argv[0], a.argv[1:]...) // #nosec G204 -- the operator's configured command
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Stdin nil is /dev/null. On timeout the whole group goes, so a
	// shell's children do not outlive it.
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = execWaitDelay
	stdout, stderr := newCapture(outputLimit+scrub.longest()), newCapture(outputLimit+scrub.longest())
	cmd.Stdout, cmd.Stderr = stdout, stderr

	err := supervisor.RunCommand(cmd) // owned: a PID 1 reaper leaves its status to us
	var fields []zap.Field
	if s := stdout.text(scrub, outputLimit); s != "" {
		fields = append(fields, zap.String("stdout", s))
	}
	if s := stderr.text(scrub, outputLimit); s != "" {
		fields = append(fields, zap.String("stderr", s))
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
