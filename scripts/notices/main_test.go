package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSBOM(t *testing.T, components string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "sbom.json")
	body := `{"metadata":{"component":{"name":"github.com/secrets-sidecar/secrets-sidecar"}},"components":[` +
		`{"name":"std","version":"go1.26.8"},` + components + `]}`
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestModulesRefusesUnknownLicences: a module with no detected licence, or
// with one not on the allowed list, fails and is named; the allowed ones and
// the main module and std (handled apart) pass.
func TestModulesRefusesUnknownLicences(t *testing.T) {
	ok := `{"name":"example.com/mit","version":"v1.0.0","licenses":[{"license":{"id":"MIT"}}]},` +
		`{"name":"github.com/secrets-sidecar/secrets-sidecar","version":"v0.0.0"}`
	mods, goVersion, err := modules([]string{writeSBOM(t, ok)})
	if err != nil || len(mods) != 1 || mods[0].Name != "example.com/mit" || goVersion != "go1.26.8" {
		t.Fatalf("modules = %v, %q, %v; want example.com/mit and go1.26.8", mods, goVersion, err)
	}
	for _, tc := range []struct{ component, want string }{
		{`{"name":"example.com/none","version":"v1.2.3"}`, "example.com/none@v1.2.3: no licence detected"},
		{`{"name":"example.com/gpl","version":"v0.1.0","licenses":[{"license":{"id":"GPL-3.0-only"}}]}`,
			`example.com/gpl@v0.1.0: licence "GPL-3.0-only" is not on the allowed list`},
		{`{"name":"example.com/busl","version":"v2.0.0","licenses":[{"expression":"BUSL-1.1"}]}`,
			`example.com/busl@v2.0.0: licence "BUSL-1.1" is not on the allowed list`},
	} {
		_, _, err := modules([]string{writeSBOM(t, ok+","+tc.component)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("modules with %s: err %v, want one naming %q", tc.component, err, tc.want)
		}
	}
}

// TestModulesMergesPlatforms: modules only one platform links are kept; two
// toolchains are refused.
func TestModulesMergesPlatforms(t *testing.T) {
	a := writeSBOM(t, `{"name":"example.com/a","version":"v1.0.0","licenses":[{"license":{"id":"MIT"}}]}`)
	b := writeSBOM(t, `{"name":"example.com/b","version":"v1.0.0","licenses":[{"license":{"id":"ISC"}}]}`)
	mods, _, err := modules([]string{a, b})
	if err != nil || len(mods) != 2 {
		t.Fatalf("modules = %v, %v; want a and b", mods, err)
	}
	other := filepath.Join(t.TempDir(), "sbom.json")
	if err := os.WriteFile(other, []byte(`{"components":[{"name":"std","version":"go1.25.0"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := modules([]string{a, other}); err == nil || !strings.Contains(err.Error(), "one toolchain") {
		t.Errorf("two toolchains: err %v", err)
	}
}
