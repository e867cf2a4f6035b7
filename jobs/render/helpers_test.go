package render

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// fixture reads a file of testdata/ (made by testdata/gen.sh).
func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return string(b)
}

// fixtureB64 is a binary fixture, base64-encoded as it would be stored in Vault.
func fixtureB64(t testing.TB, name string) string {
	return base64.StdEncoding.EncodeToString([]byte(fixture(t, name)))
}

// templateSecret is a validated-looking secret rendered through tpl.
func templateSecret(name, tpl string) *config.Secret {
	return &config.Secret{Name: name, Path: "app/" + name, Destination: "/secrets/" + name, Template: tpl, TemplateText: tpl}
}

// renderTemplate compiles tpl for a secret named "test" and renders data.
func renderTemplate(t testing.TB, tpl string, data map[string]any) (string, error) {
	t.Helper()
	r, err := Compile(templateSecret("test", tpl))
	if err != nil {
		return "", err
	}
	out, err := r.Render(data)
	return string(out), err
}

// errContains is ESO's test helper: no error wanted when want is "".
func errContains(err error, want string) bool {
	if err == nil {
		return want == ""
	}
	return want != "" && strings.Contains(err.Error(), want)
}
