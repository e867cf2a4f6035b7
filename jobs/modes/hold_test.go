package modes_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// staticFetcher answers every read with data of its path.
type staticFetcher struct{}

func (staticFetcher) Read(_ context.Context, req vault.ReadRequest) (*vault.Secret, error) {
	return &vault.Secret{Data: map[string]any{"v": "value-of-" + req.Path}, Version: 1, KVVersion: 2}, nil
}

// holder records Hold calls (a ChangeNotifier that keeps values).
type holder struct {
	mu   sync.Mutex
	held map[string][]string
}

func (h *holder) Changed(notify.Change) {}

func (h *holder) Hold(secret string, values []logging.Redacted) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var vs []string
	for _, v := range values {
		vs = append(vs, v.Reveal())
	}
	h.held[secret] = vs
}

func (h *holder) Forget(secret string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.held, secret)
}

// Every successful read hands the secret's values to the notifier, also
// through the Syncer that tells no change (exec mode's initial sync), so
// that an exec action's logged output is scrubbed of secrets that did not
// trigger it.
func TestSyncerHoldsEveryReadsValues(t *testing.T) {
	dir := t.TempDir()
	cfg := loadConfig(t, dir, fmt.Sprintf(`secrets:
  - {name: a, path: app/a, destination: %[1]s/a, key: v}
  - {name: b, path: app/b, destination: %[1]s/b, key: v}
`, dir))
	h := &holder{held: map[string][]string{}}
	log, _ := newLogger(t)
	s := jobs.NewSyncer(kv.New(staticFetcher{}), log, jobs.SyncerOptions{Notifier: h})
	for i, sec := range cfg.Secrets {
		j, err := s.NewJob(sec)
		if err != nil {
			t.Fatal(err)
		}
		syncer := s
		if i == 1 {
			syncer = s.WithoutNotifier()
		}
		if err := syncer.Sync(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"a": "value-of-app/a", "b": "value-of-app/b"} {
		if got := h.held[name]; !slices.Equal(got, []string{want}) {
			t.Errorf("held for %s: %q, want [%q]", name, got, want)
		}
	}
}
