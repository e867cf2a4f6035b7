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

	err := cmd.Run()
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

// Variables of the Vault (and OpenBao) client that hold no credential and
// stay in an exec action's environment; every other VAULT_* and BAO_* goes.
var keptVaultVars = map[string]bool{
	"ADDR": true, "NAMESPACE": true, "CACERT": true, "CAPATH": true,
	"TLS_SERVER_NAME": true, "SKIP_VERIFY": true, "CLIENT_TIMEOUT": true,
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
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == EnvChanged || k == EnvChangedFiles {
			continue
		}
		switch {
		case strings.HasPrefix(k, "VAULT_") || strings.HasPrefix(k, "BAO_"):
			_, suffix, _ := strings.Cut(k, "_")
			if !keptVaultVars[suffix] {
				creds = append(creds, v)
				continue
			}
			if suffix == "ADDR" {
				var user []string
				v, user = stripUserinfo(v)
				creds = append(creds, user...)
			}
		case strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(k, "HEADERS"):
			creds = append(creds, v)
			for _, h := range strings.Split(v, ",") {
				if _, hv, ok := strings.Cut(h, "="); ok {
					creds = append(creds, strings.TrimSpace(hv))
				}
			}
			continue
		case strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(k, "ENDPOINT"):
			var user []string
			v, user = stripUserinfo(v)
			creds = append(creds, user...)
		}
		env = append(env, k+"="+v)
	}
	env = append(env, EnvChanged+"="+strings.Join(secrets, ","), EnvChangedFiles+"="+strings.Join(files, ","))
	return env, creds
}

// stripUserinfo removes "user:password@" from a URL and returns it, and
// the password alone, separately.
func stripUserinfo(v string) (stripped string, userinfo []string) {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return v, nil
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	at := strings.LastIndex(rest[:hostEnd], "@")
	if at < 0 {
		return v, nil
	}
	userinfo = append(userinfo, rest[:at])
	if _, password, ok := strings.Cut(rest[:at], ":"); ok {
		userinfo = append(userinfo, password)
	}
	return scheme + "://" + rest[at+1:], userinfo
}
