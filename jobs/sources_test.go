package jobs_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// prefixSource serves the secrets whose path starts with its prefix.
type prefixSource struct{ prefix string }

func (p prefixSource) Serves(sec *config.Secret) bool { return strings.HasPrefix(sec.Path, p.prefix) }

func (p prefixSource) Fetch(_ context.Context, sec *config.Secret, _ source.Mode) (*source.Data, error) {
	return &source.Data{Values: map[string]any{"from": p.prefix}}, nil
}

// Each secret goes to the one source that serves it; a secret no source
// serves, or two claim, is an error when its job is made, never a guess.
func TestRouteHandsEachSecretToItsSource(t *testing.T) {
	src := jobs.Route(prefixSource{"db/"}, prefixSource{"api/"}, prefixSource{"api/v2/"})
	s := jobs.NewSyncer(src, zap.NewNop(), jobs.SyncerOptions{})
	mk := func(path string) config.Secret {
		return config.Secret{Name: "s-" + path, Mount: "secret", Path: path, Key: "from", Destination: "/nonexistent/x"}
	}
	if _, err := s.NewJob(mk("db/app")); err != nil {
		t.Fatalf("a secret one source serves: %v", err)
	}
	d, err := src.Fetch(t.Context(), &config.Secret{Path: "db/app"}, source.Live)
	if err != nil || d.Values["from"] != "db/" {
		t.Errorf("fetched %v, %v; want it from the db/ source", d, err)
	}
	if _, err := s.NewJob(mk("other/x")); err == nil || !strings.Contains(err.Error(), "no source serves") {
		t.Errorf("a secret no source serves: %v", err)
	}
	if _, err := s.NewJob(mk("api/v2/x")); err == nil || !strings.Contains(err.Error(), "no source serves") {
		t.Errorf("a secret two sources claim: %v", err)
	}
	if _, err := src.Fetch(t.Context(), &config.Secret{Name: "x", Path: "api/v2/x"}, source.Live); err == nil || !strings.Contains(err.Error(), "2 sources claim secret x") {
		t.Errorf("fetching a secret two sources claim: %v", err)
	}
}
