package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// FuzzParse feeds arbitrary text to the loader: it must return a config or
// Problems, never panic, and every problem must name the file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("secrets: [{name: a, path: p, destination: /a, key: k, mode: *x}]"))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("defaults: {on_change: &a [{signal: {name: HUP, process: x}}]}\nsecrets: [{name: a, path: p, destination: /a, key: k, on_change: *a, on_start: true}]"))
	f.Add([]byte("notify: {debounce: 1s, attempts: 2}\nsecrets:\n  - {name: a, path: p, destination: /a, key: k, on_change: [{http: {url: 'http://h', headers: {X-A: b}}}]}\n  - <<: {key: k}\n    name: b\n    path: p\n    destination: /b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Loader{LookupEnv: noEnv}.Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil || len(cfg.Secrets) == 0 {
				t.Fatalf("nil error but no usable config: %+v", cfg)
			}
			checkResolved(t, cfg)
			return
		}
		var probs config.Problems
		if !errors.As(err, &probs) || len(probs) == 0 {
			t.Fatalf("error is %T %v, want non-empty Problems", err, err)
		}
		for _, p := range probs {
			if p.File != "fuzz.yaml" || p.Msg == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
	})
}

// checkResolved: a loaded config has every default filled in and every
// action rule met, which the runtime relies on without checking again.
func checkResolved(t *testing.T, cfg *config.Config) {
	n := cfg.Notify
	if n.Debounce.Duration < config.MinDebounce || n.Splay.Duration < 0 || n.Attempts < 1 || n.Attempts > config.MaxAttempts {
		t.Fatalf("notify not resolved: %+v", n)
	}
	for _, s := range cfg.Secrets {
		if s.OnStart == nil {
			t.Fatalf("%s: on_start nil", s.Name)
		}
		for _, a := range s.OnChange {
			switch a.Kind() {
			case "signal":
				if a.Signal.Signal() == 0 || (a.Signal.PIDFile == "") == (a.Signal.Process == "") {
					t.Fatalf("%s: bad signal action %+v", s.Name, a.Signal)
				}
			case "exec":
				if len(a.Exec.Command) == 0 || a.Exec.Command[0] == "" || a.Exec.Timeout.Duration <= 0 {
					t.Fatalf("%s: bad exec action %+v", s.Name, a.Exec)
				}
			case "http":
				if a.HTTP.Method == "" || a.HTTP.Timeout.Duration <= 0 || a.HTTP.URL == "" {
					t.Fatalf("%s: bad http action %+v", s.Name, a.HTTP)
				}
			default:
				t.Fatalf("%s: action with no kind", s.Name)
			}
			if (a.Signal != nil) && (a.Exec != nil || a.HTTP != nil) || (a.Exec != nil && a.HTTP != nil) {
				t.Fatalf("%s: action with two kinds %+v", s.Name, a)
			}
		}
	}
}

// FuzzParseEnv: any environment yields settings or an error, never a panic.
func FuzzParseEnv(f *testing.F) {
	f.Add("SIDECAR_SHUTDOWN_TIMEOUT", "15s")
	f.Add("SIDECAR_BREAKER_MAX_FAILURES", "-1")
	f.Add("SIDECAR_HTTP_ADDR", "[::1]:80")
	f.Fuzz(func(t *testing.T, key, value string) {
		e, err := config.ParseEnv([]string{key + "=" + value})
		if err == nil && (e.ShutdownTimeout <= 0 || e.BreakerMaxFailures == 0 || e.StatusFile == "") {
			t.Fatalf("accepted invalid settings %+v", e)
		}
	})
}
