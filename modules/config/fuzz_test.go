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
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Loader{LookupEnv: noEnv}.Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil || len(cfg.Secrets) == 0 {
				t.Fatalf("nil error but no usable config: %+v", cfg)
			}
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
