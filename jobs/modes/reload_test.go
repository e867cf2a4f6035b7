package modes_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/reload"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func (w *world) reloader(t testing.TB, cfg *config.Config, d *modes.Daemon, watch bool) *reload.Reloader {
	t.Helper()
	// The world's client has the test server's address, which the config
	// files leave out: apply only what a reload changes in vault:.
	initial := cfg.Vault
	vaultSettings := reload.ApplierFunc(func(ctx context.Context, next *config.Config) error {
		if reflect.DeepEqual(next.Vault, initial) {
			return nil
		}
		return w.client.Update(ctx, next.Vault)
	})
	r := reload.New(cfg, &config.Loader{Templates: render.NewSet()},
		reload.Appliers{Settings: []reload.Applier{vaultSettings}, Secrets: []reload.Applier{d}}, w.metrics, w.log.Named("reload"),
		reload.Settings{Watch: watch, Debounce: 100 * time.Millisecond})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

func reloads(t testing.TB, w *world, result string) float64 {
	return counter(t, w.reg, "secrets_sidecar_config_reloads_total", map[string]string{"result": result})
}

// TestHotReload: a watched config file is edited in place to add, remove
// and change secrets; then broken (ignored, old jobs keep running).
func TestHotReload(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	for _, n := range []string{"a", "b", "c", "keep"} {
		srv.PutKV2(t, "secret", p+"/"+n, map[string]any{"v": n + "-value"})
	}
	out := filepath.Join(w.dir, "out")
	text := func(secrets string) string {
		return fmt.Sprintf("defaults: {refresh_interval: 1s}\nsecrets:\n%s", secrets)
	}
	line := func(name, tmpl string) string {
		return fmt.Sprintf("  - {name: %s, path: %s/%s, destination: %s/%s, template: %q}\n", name, p, name, out, name, tmpl)
	}
	cfg := loadConfig(t, w.dir, text(line("keep", "{{ .v }}")+line("a", "{{ .v }}")+line("b", "{{ .v }}")))
	d := w.daemon(t, cfg)
	w.reloader(t, cfg, d, true)
	eventually(t, 10*time.Second, "initial files", func() bool {
		return fileIs(filepath.Join(out, "a"), "a-value")() && fileIs(filepath.Join(out, "b"), "b-value")() && fileIs(filepath.Join(out, "keep"), "keep-value")()
	})
	keep := d.Jobs()["keep"]

	// add c, remove b, change a's template; keep is untouched.
	if err := os.WriteFile(cfg.File, []byte(text(line("keep", "{{ .v }}")+line("a", "A={{ .v }}")+line("c", "{{ .v }}"))), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "c added", fileIs(filepath.Join(out, "c"), "c-value"))

	eventually(t, 10*time.Second, "a changed", fileIs(filepath.Join(out, "a"), "A=a-value"))
	jobsNow := d.Jobs()
	if _, ok := jobsNow["b"]; ok {
		t.Error("removed secret b is still scheduled")
	}
	if jobsNow["keep"] != keep {
		t.Error("unchanged secret keep was replaced instead of kept")
	}
	if !fileIs(filepath.Join(out, "b"), "b-value")() {
		t.Error("a removed secret's file must stay (nothing is ever deleted)")
	}
	if got := reloads(t, w, "success"); got != 1 {
		t.Errorf("reloads{success} = %v, want 1", got)
	}
	eventually(t, 5*time.Second, "ready with the new set", w.status.Ready)
	if snap := w.status.Snapshot(); len(snap.Secrets) != 3 {
		t.Errorf("status tracks %d secrets, want 3", len(snap.Secrets))
	}

	// An invalid config is logged and ignored; the old jobs keep running.
	if err := os.WriteFile(cfg.File, []byte(text(line("keep", "{{ .v }}")+"  - {name: broken, mode: \"0999\"}\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "invalid reload counted", func() bool { return reloads(t, w, "error") >= 1 })
	if n := len(d.Jobs()); n != 3 {
		t.Errorf("after an invalid config %d jobs run, want the old 3", n)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "config reload rejected") || !strings.Contains(logs, `secrets[1].mode: \"0999\" is not an octal file mode`) {
		t.Errorf("rejection not logged with its problem:\n%s", logs)
	}
	srv.PutKV2(t, "secret", p+"/c", map[string]any{"v": "c-still-synced"})
	eventually(t, 10*time.Second, "old jobs still sync", fileIs(filepath.Join(out, "c"), "c-still-synced"))
}

// TestReloadResetsChangedSecretReadiness: a secret whose definition
// changes is not ready again until its new job writes it; here the new
// destination cannot be written, so the daemon must report not ready.
func TestReloadResetsChangedSecretReadiness(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "x"})
	out := filepath.Join(w.dir, "out")
	cfg := loadConfig(t, w.dir, fmt.Sprintf("secrets: [{name: s, path: %s/s, destination: %s/s, key: v}]\n", p, out))
	d := w.daemon(t, cfg)
	r := w.reloader(t, cfg, d, false)
	eventually(t, 10*time.Second, "ready", w.status.Ready)
	link := filepath.Join(w.dir, "link")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.File, []byte(fmt.Sprintf("secrets: [{name: s, path: %s/s, destination: %s/s2, key: v}]\n", p, link)), 0o600); err != nil {
		t.Fatal(err)
	}
	if !r.Reload(t.Context(), false) {
		t.Fatal("changed config not applied")
	}
	if w.status.Ready() {
		t.Fatal("still ready right after its only secret changed")
	}
	eventually(t, 10*time.Second, "the new job fails", func() bool { return d.Jobs()["s"].State().Failures > 0 })
	if w.status.Ready() {
		t.Fatal("ready although the changed secret's new destination was never written")
	}
}

// TestReloadOnSIGHUP: with watching off, only SIGHUP reloads.
func TestReloadOnSIGHUP(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "x"})
	out := filepath.Join(w.dir, "out")
	cfg := loadConfig(t, w.dir, fmt.Sprintf("secrets: [{name: s, path: %s/s, destination: %s/one, key: v}]\n", p, out))
	d := w.daemon(t, cfg)
	w.reloader(t, cfg, d, false)
	eventually(t, 10*time.Second, "first file", fileIs(filepath.Join(out, "one"), "x"))
	if err := os.WriteFile(cfg.File, []byte(fmt.Sprintf("secrets: [{name: s, path: %s/s, destination: %s/two, key: v}]\n", p, out)), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(out, "two")); err == nil {
		t.Fatal("reloaded without SIGHUP while watching is off")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "SIGHUP applied the new destination", fileIs(filepath.Join(out, "two"), "x"))
}

// TestReloadConfigMapSwap: Kubernetes mounts a ConfigMap as symlinks
// through ..data, and updates it by swapping that link; the directory
// watch sees it. A template_file change reloads too.
func TestReloadConfigMapSwap(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "val"})
	out := filepath.Join(w.dir, "out")
	mount := filepath.Join(w.dir, "configmap")
	version := func(n int, tmpl string) {
		dir := filepath.Join(mount, fmt.Sprintf("..v%d", n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfgText := fmt.Sprintf("secrets: [{name: s, path: %s/s, destination: %s/s, template_file: s.tmpl}]\n", p, out)
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfgText), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "s.tmpl"), []byte(tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(mount, "..data_tmp")
		if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil { // the atomic swap
			t.Fatal(err)
		}
	}
	version(1, "one={{ .v }}")
	for _, f := range []string{"config.yaml", "s.tmpl"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(mount, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := (&config.Loader{Templates: render.NewSet()}).Load(filepath.Join(mount, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := w.daemon(t, cfg)
	w.reloader(t, cfg, d, true)
	eventually(t, 10*time.Second, "first render", fileIs(filepath.Join(out, "s"), "one=val"))
	version(2, "two={{ .v }}")
	eventually(t, 10*time.Second, "ConfigMap swap reloaded", fileIs(filepath.Join(out, "s"), "two=val"))
}

// TestReloadIgnoresUnrelatedWrites: with an invalid config in place, files
// written beside it (a status file, anything) cause no reload attempt, and
// the same invalid content is reported once; a different invalid content is
// reported again, and a fix is applied.
func TestReloadIgnoresUnrelatedWrites(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "x"})
	out := filepath.Join(w.dir, "out")
	good := fmt.Sprintf("secrets: [{name: s, path: %s/s, destination: %s/s, key: v}]\n", p, out)
	cfg := loadConfig(t, w.dir, good)
	d := w.daemon(t, cfg)
	w.reloader(t, cfg, d, true)
	eventually(t, 10*time.Second, "first file", fileIs(filepath.Join(out, "s"), "x"))

	broken := good + "  - {name: broken, mode: \"0999\"}\n"
	broken = strings.Replace(broken, "}]\n", "}\n", 1)
	broken = "secrets:\n  - " + strings.TrimPrefix(broken, "secrets: [")
	if err := os.WriteFile(cfg.File, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the invalid config reported", func() bool { return reloads(t, w, "error") == 1 })

	// A status file and other files beside the config, rewritten more
	// slowly than the debounce, as a status file is.
	start := time.Now()
	writes := 0
	for time.Since(start) < 2500*time.Millisecond {
		for _, f := range []string{"status.json", "other.txt", ".hidden"} {
			if err := os.WriteFile(filepath.Join(w.dir, f), []byte(time.Now().String()), 0o600); err != nil {
				t.Fatal(err)
			}
			writes++
		}
		if err := os.Rename(filepath.Join(w.dir, "other.txt"), filepath.Join(w.dir, "other.old")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // past the debounce
	errs := reloads(t, w, "error")
	logs := w.logs.String()
	rejected, still := strings.Count(logs, "config reload rejected"), strings.Count(logs, "config still invalid")
	t.Logf("%d unrelated writes in %v: reloads{error} = %v, rejection logs = %d, reload attempts after it = %d", writes, time.Since(start).Round(time.Millisecond), errs, rejected, still)
	if errs != 1 || rejected != 1 || still != 0 {
		t.Fatalf("unrelated writes caused reloads: reloads{error} = %v, rejections logged %d, repeated attempts %d; want 1, 1, 0", errs, rejected, still)
	}

	// The config rewritten with the same content: looked at, not reported.
	if err := os.WriteFile(cfg.File, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the rewrite looked at", func() bool { return strings.Contains(w.logs.String(), "config still invalid") })
	if errs := reloads(t, w, "error"); errs != 1 {
		t.Errorf("the same invalid config was reported again: reloads{error} = %v", errs)
	}

	// Changed but still invalid: reported again.
	if err := os.WriteFile(cfg.File, []byte(strings.Replace(broken, "0999", "0888", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new invalid config reported", func() bool { return reloads(t, w, "error") == 2 })
	if n := strings.Count(w.logs.String(), "config reload rejected"); n != 2 {
		t.Errorf("rejections logged %d times, want 2", n)
	}

	// Fixed: applied.
	if err := os.WriteFile(cfg.File, []byte(strings.Replace(good, "/s, key", "/s2, key", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the fixed config applied", fileIs(filepath.Join(out, "s2"), "x"))
}

// TestReloadTemplateOutsideConfigDir: a template_file in another directory
// is watched; a reload that names a template in a third directory watches
// that one too.
func TestReloadTemplateOutsideConfigDir(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "val"})
	out := filepath.Join(w.dir, "out")
	confDir, tmplA, tmplB := filepath.Join(w.dir, "conf"), filepath.Join(w.dir, "tmpl-a"), filepath.Join(w.dir, "tmpl-b")
	for _, d := range []string{confDir, tmplA, tmplB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(name, tmpl string) string {
		return fmt.Sprintf("  - {name: %s, path: %s/s, destination: %s/%s, template_file: %s}\n", name, p, out, name, tmpl)
	}
	write(filepath.Join(tmplA, "a.tmpl"), "a1={{ .v }}")
	write(filepath.Join(tmplB, "b.tmpl"), "b1={{ .v }}")
	cfg := loadConfig(t, confDir, "secrets:\n"+secret("a", filepath.Join(tmplA, "a.tmpl")))
	d := w.daemon(t, cfg)
	w.reloader(t, cfg, d, true)
	eventually(t, 10*time.Second, "first render", fileIs(filepath.Join(out, "a"), "a1=val"))

	write(filepath.Join(tmplA, "a.tmpl"), "a2={{ .v }}")
	eventually(t, 10*time.Second, "the outside template's edit reloaded", fileIs(filepath.Join(out, "a"), "a2=val"))

	// The reload adds a secret whose template is in yet another directory
	// (relative to the config's): that directory is watched from then on.
	write(cfg.File, "secrets:\n"+secret("a", filepath.Join(tmplA, "a.tmpl"))+secret("b", "../tmpl-b/b.tmpl"))
	eventually(t, 10*time.Second, "b added", fileIs(filepath.Join(out, "b"), "b1=val"))
	write(filepath.Join(tmplB, "b.tmpl"), "b2={{ .v }}")
	eventually(t, 10*time.Second, "the new template's edit reloaded", fileIs(filepath.Join(out, "b"), "b2=val"))
	if got := reloads(t, w, "success"); got != 3 {
		t.Errorf("reloads{success} = %v, want 3", got)
	}
}
