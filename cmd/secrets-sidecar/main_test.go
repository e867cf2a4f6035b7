package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpForEveryCommand(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != exitOK || !strings.Contains(out, "Commands:") {
		t.Fatalf("--help: %d %q", code, out)
	}
	for _, c := range commands() {
		code, out, _ := runCLI(t, c.name, "--help")
		if code != exitOK || !strings.Contains(out, "Usage: secrets-sidecar "+c.name) {
			t.Errorf("%s --help: code %d, out %q", c.name, code, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"run", "--nope"}, {"version", "extra"}, {"once", "--timeout", "0s"}, {"--bogus"}} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "secrets-sidecar ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestValidateExamples: every config under examples/ is valid.
func TestValidateExamples(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../../examples", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(data, []byte("secrets:")) || bytes.Contains(data, []byte("\nsecrets:")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, f := range files {
		if code, out, errOut := runCLI(t, "validate", f); code != exitOK || !strings.Contains(out, f+": ok") {
			t.Errorf("validate %s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
}

// TestValidateBroken: exit 2 and exactly the golden problem lines.
func TestValidateBroken(t *testing.T) {
	// The goldens expect no VAULT_ROLE_ID; t.Setenv restores the caller's
	// value afterwards, and the variable is unset (empty still counts as set).
	t.Setenv("VAULT_ROLE_ID", "")
	os.Unsetenv("VAULT_ROLE_ID")
	files, _ := filepath.Glob("../../modules/config/testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no broken configs")
	}
	for _, f := range files {
		code, out, errOut := runCLI(t, "validate", "--config", f)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d", f, code, exitUsage)
		}
		want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".golden")
		if err != nil {
			t.Fatal(err)
		}
		// The goldens name files relative to the config package.
		got := strings.ReplaceAll(errOut, "../../modules/config/", "")
		if got != string(want) || out != "" {
			t.Errorf("%s:\n--- got\n%s--- want\n%s", f, got, want)
		}
	}
}

func TestValidateReportsOneLinePerProblem(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	os.WriteFile(f, []byte("secrets:\n  - {name: a, path: p, destination: /s/a, key: k}\n  - {name: b, path: p, destination: /s/b, key: k}\n  - name: c\n    path: p\n    destination: /s/c\n    key: k\n    mode: \"0999\"\n"), 0o600)
	code, _, errOut := runCLI(t, "validate", "--config", f)
	want := f + `:8: secrets[2].mode: "0999" is not an octal file mode (use 0400 to 0777)` + "\n"
	if code != exitUsage || errOut != want {
		t.Fatalf("exit %d, stderr %q\nwant %q", code, errOut, want)
	}
}

func TestValidateUsesSidecarConfig(t *testing.T) {
	t.Setenv("SIDECAR_CONFIG", "../../examples/basic/config.yaml")
	if code, out, errOut := runCLI(t, "validate"); code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	t.Setenv("SIDECAR_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
	if code, _, errOut := runCLI(t, "validate"); code != exitUsage || !strings.Contains(errOut, "missing.yaml: cannot read config") {
		t.Fatalf("missing file: exit %d %q", code, errOut)
	}
}

// TestRunGraph verifies the daemon's fx graph: every dependency of every
// module is provided.
func TestRunGraph(t *testing.T) {
	env, err := config.ParseEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := globals{configPath: "../../examples/basic/config.yaml"}
	if err := fx.ValidateApp(runOptions(g, env)...); err != nil {
		t.Fatalf("run graph: %v", err)
	}
}

// TestOnceGraph verifies the init-container composition the same way.
func TestOnceGraph(t *testing.T) {
	env, err := config.ParseEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := globals{configPath: "../../examples/basic/config.yaml"}
	if err := fx.ValidateApp(onceOptions(g, env, modes.OnceSettings{Timeout: time.Second, Workers: 1})...); err != nil {
		t.Fatalf("once graph: %v", err)
	}
}

func TestRunBadConfigExitsTwo(t *testing.T) {
	t.Setenv("SIDECAR_LOG_LEVEL", "error")
	code, _, errOut := runCLI(t, "--config", "../../modules/config/testdata/bad/bad-mode.yaml", "run")
	if code != exitUsage || !strings.Contains(errOut, `secrets[2].mode: "0999" is not an octal file mode`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	t.Setenv("SIDECAR_SHUTDOWN_TIMEOUT", "soon")
	if code, _, errOut := runCLI(t, "run"); code != exitUsage || !strings.Contains(errOut, "SIDECAR_SHUTDOWN_TIMEOUT") {
		t.Fatalf("bad env: exit %d, stderr %q", code, errOut)
	}
}

// TestExecGraph verifies the process-supervisor composition the same way.
func TestExecGraph(t *testing.T) {
	env, err := config.ParseEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := globals{configPath: "../../examples/basic/config.yaml"}
	s := modes.ExecSettings{Timeout: time.Second, Workers: 1, Argv: []string{"true"}, OnChange: modes.OnChangeSignal}
	if err := fx.ValidateApp(execOptions(g, env, s)...); err != nil {
		t.Fatalf("exec graph: %v", err)
	}
}
