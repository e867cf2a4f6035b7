// Package kv is the KV secrets engine source (v1 and v2): a secret's
// mount, path and optional version pin, read through the Vault client.
// A read has no side effect, so a dry run (source.Peek) reads as a sync
// does.
package kv

import (
	"context"
	"errors"
	"strconv"

	"golang.org/x/sync/singleflight"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// Reader reads one KV secret (*vault.Client).
type Reader interface {
	Read(ctx context.Context, req vault.ReadRequest) (*vault.Secret, error)
}

// Source reads KV secrets. Secrets that ask for the same mount, path and
// version at the same moment share one Vault read.
type Source struct {
	r     Reader
	reads singleflight.Group
}

// New returns a KV source reading through r.
func New(r Reader) *Source { return &Source{r: r} }

// Serves reports whether sec is a KV secret: every secret without a
// lease: block.
func (*Source) Serves(sec *config.Secret) bool { return !sec.IsLeased() }

// Fetch reads sec's mount and path (its pinned version, if any). Both
// modes read: a KV read changes nothing.
func (s *Source) Fetch(ctx context.Context, sec *config.Secret, _ source.Mode) (*source.Data, error) {
	req := vault.ReadRequest{Mount: sec.Mount, Path: sec.Path, KVVersion: sec.KVVersion, Version: sec.Version}
	key := req.Mount + "\x00" + req.Path + "\x00" + req.KVVersion + "\x00" + strconv.Itoa(req.Version)
	v, err, _ := s.reads.Do(key, func() (any, error) { return s.r.Read(ctx, req) })
	if err != nil {
		return nil, err
	}
	got, ok := v.(*vault.Secret)
	if !ok || got == nil {
		return nil, errors.New("vault returned no secret")
	}
	return &source.Data{Values: got.Data, Version: got.Version, Created: got.CreatedTime}, nil
}
