package vault

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// headerRecorder plays Vault (approle login and KV v2 reads) and records
// each request's namespace header. The dev server is Vault OSS, which has
// no namespaces, so this checks what the client sends.
type headerRecorder struct {
	mu   sync.Mutex
	seen map[string][]string // request path -> namespaces sent
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen[r.URL.Path] = append(h.seen[r.URL.Path], r.Header.Get("X-Vault-Namespace"))
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if strings.HasSuffix(r.URL.Path, "/login") {
		_ = json.NewEncoder(w).Encode(map[string]any{"auth": map[string]any{
			"client_token": "ns-token", "lease_duration": 3600, "renewable": true, "policies": []string{"default"},
		}})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
		"data": map[string]any{"k": "v"}, "metadata": map[string]any{"version": 1, "created_time": "2024-01-02T03:04:05Z"},
	}})
}

func (h *headerRecorder) namespaces() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for k, v := range h.seen {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func namespaceServer(t *testing.T) (*headerRecorder, string) {
	t.Helper()
	h := &headerRecorder{seen: map[string][]string{}}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return h, ts.URL
}

func readTwo(t *testing.T, c *Client) {
	t.Helper()
	for _, p := range []string{"team/one", "team/two"} {
		if _, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: p, KVVersion: config.KV2}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNamespace(t *testing.T) {
	t.Setenv("VAULT_NAMESPACE", "from-env") // the library reads it from the process, as the CLI does

	h, addr := namespaceServer(t)
	auth := config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{Mount: "approle"}}
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: addr, Namespace: "team-a", Auth: auth},
		LookupEnv: env("VAULT_ROLE_ID", "role"),
	}, Options{})
	readTwo(t, c)
	for path, got := range h.namespaces() {
		for _, ns := range got {
			if ns != "team-a" {
				t.Errorf("%s sent namespace %q, want the config's team-a", path, ns)
			}
		}
	}
	if len(h.namespaces()["/v1/auth/approle/login"]) != 1 || len(h.namespaces()["/v1/secret/data/team/two"]) != 1 {
		t.Fatalf("requests: %v", h.namespaces())
	}

	// Without a namespace in the file, VAULT_NAMESPACE applies; the first
	// client's namespace does not leak into a second one.
	h2, addr2 := namespaceServer(t)
	c2 := newClient(t, Settings{
		Vault:     config.Vault{Address: addr2, Auth: auth},
		LookupEnv: env("VAULT_ROLE_ID", "role"),
	}, Options{})
	readTwo(t, c2)
	for path, got := range h2.namespaces() {
		for _, ns := range got {
			if ns != "from-env" {
				t.Errorf("%s sent namespace %q, want VAULT_NAMESPACE's from-env", path, ns)
			}
		}
	}
}
