package reload_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/reload"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// recorder is an Applier that records the destination of the first secret
// of every config it is given, and fails while fail is set.
type recorder struct {
	name string
	log  *[]string
	fail bool
}

func (r *recorder) Apply(_ context.Context, cfg *config.Config) error {
	*r.log = append(*r.log, r.name+":"+cfg.Secrets[0].Destination)
	if r.fail {
		return errors.New(r.name + " refused")
	}
	return nil
}

type counts map[metrics.Result]int

func (c counts) ConfigReload(r metrics.Result) { c[r]++ }

func writeConfig(t *testing.T, path, dest string) {
	t.Helper()
	text := "secrets: [{name: s, path: p, destination: " + dest + ", key: v}]\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadPhases: settings appliers take a new config before the
// secrets; a settings applier that fails rejects the reload, no secret
// changes, and the settings already applied get the running config back.
func TestReloadPhases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, "/s/one")
	loader := &config.Loader{LookupEnv: func(string) (string, bool) { return "", false }}
	cfg, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	first := &recorder{name: "first", log: &log}
	second := &recorder{name: "second", log: &log}
	secrets := &recorder{name: "secrets", log: &log}
	rec := counts{}
	r := reload.New(cfg, loader, reload.Appliers{Settings: []reload.Applier{first, second}, Secrets: []reload.Applier{secrets}},
		rec, zap.NewNop(), reload.Settings{})

	writeConfig(t, path, "/s/two")
	if !r.Reload(t.Context(), false) {
		t.Fatal("a valid config was not applied")
	}
	if want := []string{"first:/s/two", "second:/s/two", "secrets:/s/two"}; !slices.Equal(log, want) {
		t.Fatalf("applied %v, want %v", log, want)
	}

	log = nil
	second.fail = true
	writeConfig(t, path, "/s/three")
	if r.Reload(t.Context(), false) {
		t.Fatal("a config whose settings failed was applied")
	}
	if want := []string{"first:/s/three", "second:/s/three", "first:/s/two"}; !slices.Equal(log, want) {
		t.Fatalf("applied %v, want %v (the secrets untouched, first put back)", log, want)
	}
	if rec[metrics.ResultSuccess] != 1 || rec[metrics.ResultError] != 1 {
		t.Fatalf("reloads counted %v", rec)
	}

	// Unchanged inputs are not applied again; a forced reload (SIGHUP) is.
	log = nil
	second.fail = false
	writeConfig(t, path, "/s/two")
	if r.Reload(t.Context(), false) || len(log) != 0 {
		t.Fatalf("an unchanged config was applied again: %v", log)
	}
	if !r.Reload(t.Context(), true) || len(log) != 3 {
		t.Fatalf("a forced reload applied %v", log)
	}
}
