package render

import (
	"fmt"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Secrets with the same template share one compiled output, parsed
// once; each still renders its own data, and an error names its own
// secret, not the one the template was compiled for.
func TestSetSharesIdenticalTemplates(t *testing.T) {
	set := NewSet()
	const text = "USER={{ .user }}\n"
	secrets := make([]config.Secret, 100)
	for i := range secrets {
		secrets[i] = config.Secret{Name: fmt.Sprintf("s%03d", i), Template: text}
		if err := set.Check(&secrets[i]); err != nil {
			t.Fatal(err)
		}
	}
	first, err := set.Renderer(&secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(secrets); i++ {
		r, err := set.Renderer(&secrets[i])
		if err != nil {
			t.Fatal(err)
		}
		if r.compiled != first.compiled {
			t.Fatalf("%s compiled again", secrets[i].Name)
		}
		out, err := r.Render(map[string]any{"user": secrets[i].Name})
		if err != nil || string(out) != "USER="+secrets[i].Name+"\n" {
			t.Fatalf("%s: %q, %v", secrets[i].Name, out, err)
		}
	}
	last, _ := set.Renderer(&secrets[99]) // compiled anew: Renderer hands each over once
	_ = last
	r := &Renderer{secret: "s042", compiled: first.compiled}
	_, err = r.Render(map[string]any{"other": "x"})
	if err == nil || !strings.Contains(err.Error(), "s042") || strings.Contains(err.Error(), "s000") {
		t.Fatalf("error of a shared template: %v, want it to name s042 only", err)
	}
}

// A template that names a secret is compiled for each secret: a
// {{template "NAME"}} call must resolve within its own secret.
func TestSetDoesNotShareSelfNamingTemplates(t *testing.T) {
	set := NewSet()
	text := `{{ define "x" }}{{ .user }}{{ end }}{{ template "x" . }} a`
	a := config.Secret{Name: "a", Template: text} // "a" appears in the text
	b := config.Secret{Name: "b", Template: text}
	for _, s := range []*config.Secret{&a, &b} {
		if err := set.Check(s); err != nil {
			t.Fatal(err)
		}
	}
	ra, _ := set.Renderer(&a)
	rb, _ := set.Renderer(&b)
	if ra.compiled == rb.compiled {
		t.Fatal("a template naming its secret was shared")
	}
}
