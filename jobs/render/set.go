package render

import (
	"strings"
	"sync"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Set keeps the renderers compiled while a config was loaded, so that each
// template is parsed once: the config loader checks every secret's output
// through it (config.TemplateChecker: a template that cannot be parsed or
// an unknown format is a config error) and the sync pipeline takes the
// compiled Renderer from it. Secrets with the same output (the same
// template text and delimiters, key, format or archive) share one
// compiled output: 10,000 secrets rendered by one template parse it once.
// It is safe for concurrent use.
type Set struct {
	mu     sync.Mutex
	kept   map[outputSource]*Renderer
	shared map[outputSource]*compiled // by source without the secret's name
}

var _ config.TemplateChecker = (*Set)(nil)

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{kept: map[outputSource]*Renderer{}, shared: map[outputSource]*compiled{}}
}

// Check compiles s's output, or finds it compiled for another secret, and
// keeps it for Renderer. A template error is text/template's own
// ("template: <name>:<line>: <msg>"), which the config loader maps to a
// config-file line; a format error names the format.
func (t *Set) Check(s *config.Secret) error {
	src := sourceOf(s)
	anon := src
	anon.name = ""
	t.mu.Lock()
	c, ok := t.shared[anon]
	t.mu.Unlock()
	if ok && shareable(c, s.Name) {
		t.mu.Lock()
		t.kept[src] = &Renderer{secret: s.Name, compiled: c}
		t.mu.Unlock()
		return nil
	}
	r, err := compile(s)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.kept[src] = r
	if _, ok := t.shared[anon]; !ok && shareable(r.compiled, "") {
		t.shared[anon] = r.compiled
	}
	t.mu.Unlock()
	return nil
}

// shareable reports whether another secret (named other, "" for any) may
// use c: its text names neither secret, so no {{template}} call can mean
// a template named after one of them.
func shareable(c *compiled, other string) bool {
	if c.source.text == "" {
		return true
	}
	return !strings.Contains(c.source.text, c.name) && (other == "" || !strings.Contains(c.source.text, other))
}

// Renderer hands over the Renderer Check compiled for s (once: a second
// call, or a secret the set never saw, compiles it again).
func (t *Set) Renderer(s *config.Secret) (*Renderer, error) {
	src := sourceOf(s)
	t.mu.Lock()
	r, ok := t.kept[src]
	delete(t.kept, src)
	t.mu.Unlock()
	if ok {
		return r, nil
	}
	return Compile(s)
}
