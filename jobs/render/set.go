package render

import (
	"sync"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Set keeps the renderers compiled while a config was loaded, so that each
// template is parsed once: the config loader checks every secret's output
// through it (config.TemplateChecker: a template that cannot be parsed or
// an unknown format is a config error) and the sync pipeline takes the
// compiled Renderer from it. It is safe for concurrent use.
type Set struct {
	mu   sync.Mutex
	kept map[outputSource]*Renderer
}

var _ config.TemplateChecker = (*Set)(nil)

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{kept: map[outputSource]*Renderer{}} }

// Check compiles s's output and keeps it for Renderer. A template error is
// text/template's own ("template: <name>:<line>: <msg>"), which the config
// loader maps to a config-file line; a format error names the format.
func (t *Set) Check(s *config.Secret) error {
	r, err := compile(s)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.kept[r.source] = r
	t.mu.Unlock()
	return nil
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
