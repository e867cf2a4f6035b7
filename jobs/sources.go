package jobs

import (
	"context"
	"fmt"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Source is the pipeline's fetch stage for the secrets it serves
// (*kv.Source; more kinds join the "sources" value group).
type Source interface {
	// Serves reports whether the source fetches sec. Exactly one source
	// serves each secret.
	Serves(sec *config.Secret) bool
	// Fetch returns sec's data. With source.Peek (a dry run) it causes no
	// side effect, or fails wrapping source.ErrWouldChange.
	Fetch(ctx context.Context, sec *config.Secret, mode source.Mode) (*source.Data, error)
}

// Route is the source that hands each secret to the one of srcs that
// serves it.
func Route(srcs ...Source) Source {
	if len(srcs) == 1 {
		return srcs[0]
	}
	return router(srcs)
}

type router []Source

func (r router) Serves(sec *config.Secret) bool {
	_, err := r.pick(sec)
	return err == nil
}

func (r router) Fetch(ctx context.Context, sec *config.Secret, mode source.Mode) (*source.Data, error) {
	src, err := r.pick(sec)
	if err != nil {
		return nil, err
	}
	return src.Fetch(ctx, sec, mode)
}

func (r router) pick(sec *config.Secret) (Source, error) {
	var found Source
	n := 0
	for _, s := range r {
		if s.Serves(sec) {
			found = s
			n++
		}
	}
	switch n {
	case 0:
		return nil, fmt.Errorf("no source serves secret %s", sec.Name)
	case 1:
		return found, nil
	}
	return nil, fmt.Errorf("%d sources claim secret %s", n, sec.Name)
}

// Reuser is a source that can keep what a secret's files already hold
// instead of fetching it anew (*lease.Source: a certificate written
// before a restart). Reuse returns the data to serve, or nil to fetch.
type Reuser interface {
	Reuse(ctx context.Context, sec *config.Secret, mode source.Mode, read func() ([]source.File, bool), accept func(*source.Data) bool) *source.Data
}

func (r router) Reuse(ctx context.Context, sec *config.Secret, mode source.Mode, read func() ([]source.File, bool), accept func(*source.Data) bool) *source.Data {
	src, err := r.pick(sec)
	if err != nil {
		return nil
	}
	if ru, ok := src.(Reuser); ok {
		return ru.Reuse(ctx, sec, mode, read, accept)
	}
	return nil
}
