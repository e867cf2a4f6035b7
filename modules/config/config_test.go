package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current output")

// noEnv keeps the developer's environment (VAULT_ROLE_ID...) out of tests.
func noEnv(string) (string, bool) { return "", false }

func TestBrokenConfigsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken configs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := config.Loader{LookupEnv: noEnv, Templates: render.NewSet()}.Load(file)
			var probs config.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Load(%s) = %v, want Problems", file, err)
			}
			got := probs.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems for %s:\n--- got\n%s--- want\n%s", file, got, want)
			}
			for _, p := range probs {
				if p.File != file {
					t.Errorf("problem %q does not name the file", p)
				}
			}
		})
	}
}

func TestFullConfigDefaultsMerged(t *testing.T) {
	cfg, err := config.Loader{LookupEnv: noEnv}.Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secrets) != 5 {
		t.Fatalf("%d secrets, want 5", len(cfg.Secrets))
	}
	db, _ := cfg.Secret("db")
	if db.Mount != "secret" || db.KVVersion != "auto" || db.RefreshInterval.Duration != time.Minute ||
		db.Mode.FileMode != 0o440 || db.DirMode.FileMode != 0o755 {
		t.Errorf("db merged wrong: %+v", db)
	}
	if db.TemplateText != "DB_USER={{ .username }}\nDB_PASS={{ .password }}\n" || db.TemplateFirstLine != 24 {
		t.Errorf("db template %q starting line %d", db.TemplateText, db.TemplateFirstLine)
	}
	tls, _ := cfg.Secret("tls")
	if tls.RefreshInterval.Duration != 5*time.Minute || tls.Mode.FileMode != 0o400 || tls.Owner != nil {
		t.Errorf("tls should inherit defaults: %+v", tls)
	}
	legacy, _ := cfg.Secret("legacy")
	if legacy.Mount != "kv" || legacy.KVVersion != "1" || legacy.Path != "legacy/app" ||
		legacy.Owner == nil || *legacy.Owner != 1000 || *legacy.Group != 2000 {
		t.Errorf("legacy: %+v", legacy)
	}
	if legacy.VaultPath() != "kv/legacy/app" {
		t.Errorf("VaultPath %q", legacy.VaultPath())
	}
	pinned, _ := cfg.Secret("pinned")
	if pinned.Version != 3 || pinned.TemplateText != "user=[[ .username ]]\n" || pinned.LeftDelimiter != "[[" {
		t.Errorf("pinned: %+v", pinned)
	}
	if cfg.Vault.Timeout.Duration != 10*time.Second || cfg.Vault.Auth.Method != "approle" {
		t.Errorf("vault: %+v", cfg.Vault)
	}
}

func TestAuthDefaults(t *testing.T) {
	cfg, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(`
vault: {auth: {method: kubernetes, kubernetes: {role: app}}}
secrets: [{name: a, path: p, destination: /s/a, key: k}]
`))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Vault.Auth.Kubernetes
	if k.Mount != "kubernetes" || k.TokenFile != config.DefaultKubernetesTokenFile {
		t.Errorf("kubernetes defaults: %+v", k)
	}
	cfg, err = config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(`secrets: [{name: a, path: p, destination: /s/a, key: k}]`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.Auth.Method != config.AuthToken {
		t.Errorf("default method %q", cfg.Vault.Auth.Method)
	}
}

func TestAppRoleRoleIDFromEnv(t *testing.T) {
	src := []byte("vault: {auth: {method: approle}}\nsecrets: [{name: a, path: p, destination: /s/a, key: k}]\n")
	if _, err := (config.Loader{LookupEnv: noEnv}).Parse("c.yaml", src); err == nil {
		t.Fatal("approle without role_id_file or VAULT_ROLE_ID accepted")
	}
	withEnv := func(k string) (string, bool) { return "some-role", k == "VAULT_ROLE_ID" }
	if _, err := (config.Loader{LookupEnv: withEnv}).Parse("c.yaml", src); err != nil {
		t.Fatalf("VAULT_ROLE_ID should satisfy approle: %v", err)
	}
}

func TestModeSpellings(t *testing.T) {
	for _, tc := range []struct {
		text string
		want os.FileMode
	}{{`"0440"`, 0o440}, {`0440`, 0o440}, {`"440"`, 0o440}, {`0o640`, 0o640}, {`"0600"`, 0o600}} {
		cfg, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(
			"secrets: [{name: a, path: p, destination: /s/a, key: k, mode: "+tc.text+"}]"))
		if err != nil {
			t.Errorf("mode %s: %v", tc.text, err)
			continue
		}
		if got := cfg.Secrets[0].Mode.FileMode; got != tc.want {
			t.Errorf("mode %s = %o, want %o", tc.text, got, tc.want)
		}
	}
}

type rejectAll struct{}

func (rejectAll) Check(s *config.Secret) error {
	if strings.Contains(s.TemplateText, "{{ bad") {
		return errors.New(`template: ` + s.Name + `:2: function "bad" not defined`)
	}
	return nil
}

func TestTemplateErrorsPointAtConfigLine(t *testing.T) {
	src := `secrets:
  - name: a
    path: p
    destination: /s/a
    template: |
      line one
      {{ bad }}
`
	_, err := config.Loader{LookupEnv: noEnv, Templates: rejectAll{}}.Parse("c.yaml", []byte(src))
	want := `c.yaml:7: secrets[0].template: template line 2: function "bad" not defined`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestEnvDefaults(t *testing.T) {
	e, err := config.ParseEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Env{
		ConfigPath: "/etc/secrets-sidecar/config.yaml", LogLevel: "info", LogFormat: "json", HTTPAddr: ":8080",
		StatusFile: "/tmp/secrets-sidecar/status.json", WatchConfig: true, EnableTracing: false,
		BreakerMaxFailures: 5, BreakerOpenTimeout: 30 * time.Second, BreakerInterval: time.Minute,
		ShutdownTimeout: 15 * time.Second,
	}
	if e != want {
		t.Errorf("defaults\n got %+v\nwant %+v", e, want)
	}
}

func TestEnvValues(t *testing.T) {
	e, err := config.ParseEnv([]string{
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=debug", "SIDECAR_LOG_FORMAT=console",
		"SIDECAR_WATCH_CONFIG=false", "SIDECAR_ENABLE_TRACING=true", "SIDECAR_BREAKER_MAX_FAILURES=2",
		"SIDECAR_BREAKER_OPEN_TIMEOUT=1s", "SIDECAR_SHUTDOWN_TIMEOUT=3s", "SIDECAR_CONFIG=/c.yaml",
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.HTTPAddr != "" {
		t.Errorf("SIDECAR_HTTP_ADDR set empty must disable the server, got %q", e.HTTPAddr)
	}
	if e.LogLevel != "debug" || e.LogFormat != "console" || e.WatchConfig || !e.EnableTracing ||
		e.BreakerMaxFailures != 2 || e.BreakerOpenTimeout != time.Second || e.ShutdownTimeout != 3*time.Second ||
		e.ConfigPath != "/c.yaml" {
		t.Errorf("got %+v", e)
	}
}

func TestEnvErrorsNameVariable(t *testing.T) {
	_, err := config.ParseEnv([]string{
		"SIDECAR_LOG_LEVEL=loud", "SIDECAR_WATCH_CONFIG=yes please", "SIDECAR_BREAKER_MAX_FAILURES=0",
		"SIDECAR_HTTP_ADDR=8080",
	})
	if err == nil {
		t.Fatal("bad environment accepted")
	}
	// The library stops at the first parse error; validation errors come
	// once every variable parses.
	if !strings.Contains(err.Error(), `SIDECAR_WATCH_CONFIG: "yes please" is not a boolean`) {
		t.Errorf("got %q", err)
	}
	_, err = config.ParseEnv([]string{
		"SIDECAR_LOG_LEVEL=loud", "SIDECAR_BREAKER_MAX_FAILURES=0", "SIDECAR_HTTP_ADDR=8080", "SIDECAR_SHUTDOWN_TIMEOUT=-1s",
	})
	for _, want := range []string{
		`SIDECAR_LOG_LEVEL: "loud" is not a level`,
		`SIDECAR_BREAKER_MAX_FAILURES: must be at least 1`,
		`SIDECAR_HTTP_ADDR: "8080" is not host:port`,
		`SIDECAR_SHUTDOWN_TIMEOUT: -1s must be positive`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// TestPKCS12Output: a content: pkcs12 entry takes the secret's mode like
// any other, and its Output, alone, names its password file for the
// renderer; the other entries' outputs are templates or keys as before.
func TestPKCS12Output(t *testing.T) {
	cfg, err := config.Loader{LookupEnv: noEnv, Templates: render.NewSet()}.Load("testdata/good/pkcs12.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cfg.Secret("keystore")
	if m := s.Files[1].Mode.FileMode; m != 0o440 {
		t.Errorf("keystore.p12 mode %o, want the secret's 0440", m)
	}
	for i, want := range []string{"", "/run/keystore/..data/password", ""} {
		o := s.Output(i)
		pw, ok := o.PKCS12Output()
		if pw != want || ok != (want != "") {
			t.Errorf("files[%d]: PKCS12Output() = %q, %v; want %q", i, pw, ok, want)
		}
		if o.Destination != s.Files[i].Destination {
			t.Errorf("files[%d]: output destination %q", i, o.Destination)
		}
	}
	if _, ok := s.PKCS12Output(); ok {
		t.Error("the set itself reads as a pkcs12 output")
	}
}
