package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestReloadInvalidConfigBesideStatusFile: the real binary, its status file
// in the config's directory (rewritten every second), an invalid config:
// the rejection is logged and counted once, not on every status write; a
// fix is then applied.
func TestReloadInvalidConfigBesideStatusFile(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"pass": "p1"})
	good := fmt.Sprintf("defaults: {refresh_interval: 1s}\nsecrets:\n  - {name: db, path: %s/db, destination: %s/db, key: pass}\n", p, dir)
	cfg := writeConfig(t, dir, good)
	addr := freeAddr(t)
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+addr, "SIDECAR_WATCH_CONFIG=true")
	d.waitReady(t, 30*time.Second)
	if filepath.Dir(d.status) != filepath.Dir(cfg) {
		t.Fatalf("the status file %s is not beside the config %s", d.status, cfg)
	}
	errorsNow := func() float64 {
		return metricSum(d.metrics(t), "secrets_sidecar_config_reloads_total", `result="error"`)
	}

	writeConfig(t, dir, good+"  - {name: broken, mode: \"0999\"}\n")
	waitFor(t, 10*time.Second, "the invalid config to be rejected", func() bool { return errorsNow() == 1 })
	before, err := os.Stat(d.status)
	if err != nil {
		t.Fatal(err)
	}
	const window = 4 * time.Second
	time.Sleep(window)
	after, err := os.Stat(d.status)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().After(before.ModTime()) {
		t.Fatalf("the status file was not rewritten in %v: the test proves nothing", window)
	}
	errs, logged := errorsNow(), strings.Count(d.logs.String(), "config reload rejected")
	t.Logf("in %v of status-file writes beside an invalid config: reloads{error} = %v, rejections logged = %d", window, errs, logged)
	if errs != 1 || logged != 1 {
		t.Fatalf("reloads{error} = %v, rejections logged %d: want 1 and 1", errs, logged)
	}

	writeConfig(t, dir, strings.Replace(good, "/db, key", "/db2, key", 1))
	waitFor(t, 10*time.Second, "the fixed config to be applied", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "db2"))
		return err == nil && string(b) == "p1"
	})
	if got := metricSum(d.metrics(t), "secrets_sidecar_config_reloads_total", `result="success"`); got != 1 {
		t.Errorf("reloads{success} = %v, want 1", got)
	}
}
