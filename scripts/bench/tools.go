package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fields are the secret's fields in the order both templates write them.
var fields = []struct{ env, key string }{
	{"USER", "user"}, {"PASS", "pass"}, {"HOST", "host"}, {"PORT", "port"}, {"DB", "db"},
}

// run is one tool invocation: once (sync and exit) or a daemon.
type run struct {
	out     string        // output directory (created empty)
	conf    string        // directory for the tool's config
	state   string        // directory for the sidecar's status file
	vault   string        // Vault address (the counting proxy)
	token   string        // Vault token
	prefix  string        // secret path prefix in secret/
	n       int           // secrets
	refresh time.Duration // daemon refresh interval
	daemon  bool
}

// tool builds the command line of one of the compared programs.
type tool struct {
	name    string
	label   string // name and setting, for tables: "sidecar 8", "floor 16"
	version string
	// stopCode is the daemon's exit code after SIGTERM.
	stopCode int
	command  func(r run) (*exec.Cmd, error)
}

func outFile(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("s%04d.env", i)) }

// baseEnv is a clean environment: no VAULT_* or SIDECAR_* from the caller.
func baseEnv(r run) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"VAULT_ADDR=" + r.vault, "VAULT_TOKEN=" + r.token}
}

func newCmd(bin string, args ...string) *exec.Cmd {
	// The process is stopped by the benchmark (SIGTERM, or its own exit).
	cmd := exec.CommandContext(context.Background(), bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// sidecarTool runs `secrets-sidecar once` or `run` with defaults (info
// logs to stderr, kv_version auto, once --concurrency 8), HTTP server on
// for the daemon as in production. concurrency other than 0 is passed to
// once as --concurrency.
func sidecarTool(bin string, concurrency int) tool {
	version := "unknown"
	if out, err := exec.CommandContext(context.Background(), bin, "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	label := "sidecar 8"
	if concurrency != 0 {
		label = fmt.Sprintf("sidecar %d", concurrency)
	}
	return tool{name: "secrets-sidecar", label: label, version: version, command: func(r run) (*exec.Cmd, error) {
		var b strings.Builder
		refresh := 5 * time.Minute
		if r.daemon {
			refresh = r.refresh
		}
		fmt.Fprintf(&b, "defaults: {refresh_interval: %s, mode: \"0400\"}\nsecrets:\n", refresh)
		var tmpl strings.Builder
		for _, f := range fields {
			fmt.Fprintf(&tmpl, `%s={{ .%s }}\n`, f.env, f.key)
		}
		for i := 0; i < r.n; i++ {
			fmt.Fprintf(&b, "  - {name: s%04d, path: %s, destination: %s, template: \"%s\"}\n",
				i, secretPath(r.prefix, i), outFile(r.out, i), tmpl.String())
		}
		cfg := filepath.Join(r.conf, "sidecar.yaml")
		if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
			return nil, err
		}
		args := []string{"once", "--config", cfg}
		if concurrency != 0 {
			args = append(args, "--concurrency", strconv.Itoa(concurrency))
		}
		cmd := newCmd(bin, args...)
		env := append(baseEnv(r), "SIDECAR_STATUS_FILE="+filepath.Join(r.state, "status.json"))
		if r.daemon {
			cmd = newCmd(bin, "run", "--config", cfg)
			env = append(env, "SIDECAR_HTTP_ADDR=127.0.0.1:0")
		}
		cmd.Env = env
		return cmd, nil
	}}
}

// floorTool runs the floor program (scripts/bench/floor): the same reads
// and atomic writes as the tools, workers at a time over one kept-alive
// client, with nothing else.
func floorTool(bin string, workers int) tool {
	return tool{name: "floor", label: fmt.Sprintf("floor %d", workers), version: "scripts/bench/floor", command: func(r run) (*exec.Cmd, error) {
		cmd := newCmd(bin, "-n", strconv.Itoa(r.n), "-prefix", r.prefix, "-out", r.out, "-workers", strconv.Itoa(workers))
		cmd.Env = baseEnv(r)
		return cmd, nil
	}}
}

// consulTemplateTool runs consul-template with one template block per
// secret, Vault only (no Consul), token renewal off (the root token does
// not expire). Daemon: a KV v2 secret has no lease, so consul-template
// re-reads it after vault.default_lease_duration x lease_renewal_threshold
// (+-5% jitter); 11s x 0.9 = 9.9s is the closest to the sidecar's 10s
// (+-10% jitter) that its whole-second lease allows. consul-template stops
// on SIGINT by default and ignores SIGTERM without a child process, so the
// daemon is told kill_signal = "SIGTERM"; it then exits 12 (interrupted).
func consulTemplateTool(bin string) tool {
	version := "unknown"
	if out, err := exec.CommandContext(context.Background(), bin, "-v").CombinedOutput(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	return tool{name: "consul-template", label: "consul-template", version: version, stopCode: 12, command: func(r run) (*exec.Cmd, error) {
		var b strings.Builder
		b.WriteString("log_level = \"warn\"\n")
		if r.daemon {
			b.WriteString("kill_signal = \"SIGTERM\"\n")
		}
		fmt.Fprintf(&b, "vault {\n  address = %q\n  renew_token = false\n", r.vault)
		if r.daemon {
			lease := r.refresh + r.refresh/10
			fmt.Fprintf(&b, "  default_lease_duration = %q\n  lease_renewal_threshold = 0.9\n", lease.Round(time.Second).String())
		}
		b.WriteString("}\n")
		for i := 0; i < r.n; i++ {
			var tmpl strings.Builder
			fmt.Fprintf(&tmpl, `{{ with secret "secret/data/%s" }}`, secretPath(r.prefix, i))
			for _, f := range fields {
				fmt.Fprintf(&tmpl, `%s={{ .Data.data.%s }}\n`, f.env, f.key)
			}
			tmpl.WriteString("{{ end }}")
			fmt.Fprintf(&b, "template {\n  contents = \"%s\"\n  destination = %s\n  perms = \"0400\"\n  error_on_missing_key = true\n}\n",
				strings.ReplaceAll(tmpl.String(), `"`, `\"`), strconv.Quote(outFile(r.out, i)))
		}
		cfg := filepath.Join(r.conf, "consul-template.hcl")
		if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
			return nil, err
		}
		args := []string{"-config", cfg}
		if !r.daemon {
			args = append(args, "-once")
		}
		cmd := newCmd(bin, args...)
		cmd.Env = baseEnv(r)
		return cmd, nil
	}}
}
