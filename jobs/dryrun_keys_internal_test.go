package jobs

import (
	"slices"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// TestDiffKeys: for each structured format, files written by the renderer
// are compared key by key, including values that span lines, hold quotes
// or are nested, and the result names keys only.
func TestDiffKeys(t *testing.T) {
	const marker = "keysVALUEmarker"
	before := map[string]any{"A": "1", "B": "it's\nmulti line " + marker, "D": map[string]any{"x": 1.0}, "GONE": marker}
	after := map[string]any{"A": "2 " + marker, "B": "it's\nmulti line " + marker, "D": map[string]any{"x": 1.0}, "NEW": "n"}
	for _, format := range []string{render.FormatEnv, render.FormatProperties, render.FormatJSON, render.FormatYAML} {
		t.Run(format, func(t *testing.T) {
			old, updated := renderAs(t, format, before), renderAs(t, format, after)
			d := diffKeys(format, old, updated)
			if !slices.Equal(d.Added, []string{"NEW"}) || !slices.Equal(d.Removed, []string{"GONE"}) || !slices.Equal(d.Changed, []string{"A"}) {
				t.Errorf("diff = %+v, want +NEW -GONE ~A\nold:\n%s\nnew:\n%s", d, old, updated)
			}
			if s := d.String(); s != "+NEW -GONE ~A" || strings.Contains(s, marker) {
				t.Errorf("String() = %q", s)
			}
			if d := diffKeys(format, updated, updated); d.String() != "" {
				t.Errorf("same file: %+v", d)
			}
		})
	}
	if d := diffKeys(render.FormatJSON, []byte("A=1\n"), []byte(`{"A": 1}`)); d.String() != "" {
		t.Errorf("an old file in another format: %+v, want no key list", d)
	}
	if d := diffKeys("", []byte("a"), []byte("b")); d.String() != "" {
		t.Errorf("a template: %+v, want no key list", d)
	}
}

func renderAs(t *testing.T, format string, data map[string]any) []byte {
	t.Helper()
	r, err := render.Compile(&config.Secret{Name: "s", Format: format})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
