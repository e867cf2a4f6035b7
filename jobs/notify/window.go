package notify

import (
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// window collects the changes of one debounce window, one entry per
// destination, in the order they first changed.
type window struct {
	opened  time.Time
	order   []string // destinations
	entries map[string]*entry
}

type entry struct {
	secret, file string
	created      bool
	actions      []resolved
	links        []trace.SpanContext
	redact       map[logging.Redacted]struct{}
}

func newWindow(opened time.Time) *window {
	return &window{opened: opened, entries: map[string]*entry{}}
}

// add merges c: a destination that changes twice in a window is one
// change (the last action list wins; every link and value is kept).
func (w *window) add(c Change) {
	e := w.entries[c.Destination]
	if e == nil {
		e = &entry{file: c.Destination, created: c.Created, redact: map[logging.Redacted]struct{}{}}
		w.entries[c.Destination] = e
		w.order = append(w.order, c.Destination)
	} else {
		e.created = e.created && c.Created
	}
	e.secret = c.Secret
	e.actions = e.actions[:0]
	for _, a := range c.Actions {
		e.actions = append(e.actions, resolve(a))
	}
	if c.Link.IsValid() {
		e.links = append(e.links, c.Link)
	}
	for _, v := range c.Redact {
		e.redact[v] = struct{}{}
	}
}

func (w *window) secretNames() []string {
	var s []string
	for _, e := range w.entries {
		s = append(s, e.secret)
	}
	return sortedSet(s)
}

// step is one distinct action of a batch with the changes that asked for it.
type step struct {
	act     runner
	secrets []string
	files   []string
	links   []trace.SpanContext
}

// plan turns the window into its distinct actions, in order of first
// appearance, followed by one step per hook with the whole batch.
func (w *window) plan(hooks []Hook) (steps []step, b Batch, values []string) {
	byKey := map[string]int{}
	var all step
	created := true
	seen := map[logging.Redacted]struct{}{}
	for _, file := range w.order {
		e := w.entries[file]
		for _, r := range e.actions {
			i, ok := byKey[r.key]
			if !ok {
				i = len(steps)
				byKey[r.key] = i
				steps = append(steps, step{act: r.act})
			}
			steps[i].secrets = append(steps[i].secrets, e.secret)
			steps[i].files = append(steps[i].files, e.file)
			steps[i].links = append(steps[i].links, e.links...)
		}
		all.secrets = append(all.secrets, e.secret)
		all.files = append(all.files, e.file)
		all.links = append(all.links, e.links...)
		created = created && e.created
		for v := range e.redact {
			if _, dup := seen[v]; !dup {
				seen[v] = struct{}{}
				values = append(values, v.Reveal())
			}
		}
	}
	for i := range steps {
		steps[i].secrets, steps[i].files = sortedSet(steps[i].secrets), sortedSet(steps[i].files)
	}
	b = Batch{Secrets: sortedSet(all.secrets), Files: sortedSet(all.files), Created: created && len(w.order) > 0}
	for _, h := range hooks {
		steps = append(steps, step{act: hookRunner{h: h, batch: b}, secrets: b.Secrets, files: b.Files, links: all.links})
	}
	return steps, b, values
}

func sortedSet(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return slices.Compact(out)
}
