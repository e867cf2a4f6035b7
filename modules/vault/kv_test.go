package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestKV2(t *testing.T) {
	srv := vaulttest.Shared(t)
	path := uniq(t)
	before := time.Now().Add(-time.Minute)
	srv.PutKV2(t, "secret", path, map[string]any{"user": "app", "password": "v1-pass"})
	srv.PutKV2(t, "secret", path, map[string]any{"user": "app", "password": "v2-pass", "port": 5432, "nested": map[string]any{"a": "b"}})
	c := tokenClient(t, srv, srv.Token)

	for _, kv := range []string{config.KV2, config.KVAuto} {
		sec, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: kv})
		if err != nil {
			t.Fatalf("kv_version %s: %v", kv, err)
		}
		if sec.KVVersion != 2 || sec.Version != 2 || sec.Data["password"] != "v2-pass" {
			t.Fatalf("kv_version %s: got KV%d version %d password %v", kv, sec.KVVersion, sec.Version, sec.Data["password"])
		}
		if sec.CreatedTime.Before(before) || sec.CreatedTime.After(time.Now().Add(time.Minute)) {
			t.Fatalf("created time %v is not the write's", sec.CreatedTime)
		}
		if n, ok := sec.Data["port"].(json.Number); !ok || n.String() != "5432" {
			t.Fatalf("port = %#v, want json.Number 5432", sec.Data["port"])
		}
		if nested, ok := sec.Data["nested"].(map[string]any); !ok || nested["a"] != "b" {
			t.Fatalf("nested = %#v", sec.Data["nested"])
		}
	}

	t.Run("version pin", func(t *testing.T) {
		sec, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KVAuto, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if sec.Version != 1 || sec.Data["password"] != "v1-pass" {
			t.Fatalf("pinned read: version %d password %v", sec.Version, sec.Data["password"])
		}
	})
}

func TestKV1(t *testing.T) {
	srv := vaulttest.Shared(t)
	path := uniq(t)
	srv.PutKV1(t, "kv", path, map[string]any{"password": "kv1-pass"})
	c := tokenClient(t, srv, srv.Token)
	for _, kv := range []string{config.KV1, config.KVAuto} {
		sec, err := c.Read(t.Context(), ReadRequest{Mount: "kv", Path: path, KVVersion: kv})
		if err != nil {
			t.Fatalf("kv_version %s: %v", kv, err)
		}
		if sec.KVVersion != 1 || sec.Version != 0 || !sec.CreatedTime.IsZero() || sec.Data["password"] != "kv1-pass" {
			t.Fatalf("kv_version %s: got %+v password %v", kv, sec, sec.Data["password"])
		}
	}
	_, err := c.Read(t.Context(), ReadRequest{Mount: "kv", Path: path, KVVersion: config.KVAuto, Version: 2})
	if err == nil || !strings.Contains(err.Error(), "KV v1") {
		t.Fatalf("a version pin on KV v1: err = %v", err)
	}
}

func TestAutoDetectOtherMounts(t *testing.T) {
	srv := vaulttest.Shared(t)
	v1, v2 := uniq(t), uniq(t)
	srv.Mount(t, v1, "1")
	srv.Mount(t, v2, "2")
	srv.PutKV1(t, v1, "app", map[string]any{"k": "one"})
	srv.PutKV2(t, v2, "app", map[string]any{"k": "two"})
	c := tokenClient(t, srv, srv.Token)
	for mount, want := range map[string]int{v1: 1, v2: 2} {
		sec, err := c.Read(t.Context(), ReadRequest{Mount: mount, Path: "app", KVVersion: config.KVAuto})
		if err != nil {
			t.Fatal(err)
		}
		if sec.KVVersion != want {
			t.Fatalf("mount %s read as KV v%d, want v%d", mount, sec.KVVersion, want)
		}
		if got := c.cur.Load().kvVersions[mount]; got != want {
			t.Fatalf("mount %s cached as %d, want %d", mount, got, want)
		}
	}
}

func TestNotFound(t *testing.T) {
	srv := vaulttest.Shared(t)
	c := tokenClient(t, srv, srv.Token)
	deleted, destroyed := uniq(t), uniq(t)
	srv.PutKV2(t, "secret", deleted, map[string]any{"password": "x"})
	srv.PutKV2(t, "secret", destroyed, map[string]any{"password": "x"})
	root := srv.Client(t)
	if err := root.KVv2("secret").Delete(t.Context(), deleted); err != nil {
		t.Fatal(err)
	}
	if err := root.KVv2("secret").Destroy(t.Context(), destroyed, []int{1}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		req  ReadRequest
		want []string
	}{
		{"kv2", ReadRequest{Mount: "secret", Path: "no/such/app", KVVersion: config.KV2}, []string{"secret/no/such/app"}},
		{"kv1", ReadRequest{Mount: "kv", Path: "no/such/app", KVVersion: config.KV1}, []string{"kv/no/such/app"}},
		{"auto kv2", ReadRequest{Mount: "secret", Path: "no/such/app", KVVersion: config.KVAuto}, []string{"secret/no/such/app"}},
		{"auto kv1", ReadRequest{Mount: "kv", Path: "no/such/app", KVVersion: config.KVAuto}, []string{"kv/no/such/app"}},
		{"version", ReadRequest{Mount: "secret", Path: deleted, KVVersion: config.KV2, Version: 99}, []string{"version 99 of secret/" + deleted}},
		{"deleted", ReadRequest{Mount: "secret", Path: deleted, KVVersion: config.KV2}, []string{"secret/" + deleted, "deleted"}},
		{"destroyed", ReadRequest{Mount: "secret", Path: destroyed, KVVersion: config.KVAuto, Version: 1}, []string{"secret/" + destroyed, "destroyed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Read(t.Context(), tc.req)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err.Error(), w)
				}
			}
			if IsAuthError(err) {
				t.Error("a missing secret is not an auth error")
			}
		})
	}
}

// denyPreflight is a proxy in front of the real server that answers the
// KV version preflight with 403, as some Vault setups do
// (consul-template#1325). Vault 1.14 serves sys/internal/ui/mounts without
// an ACL check, so a policy cannot deny it; the proxy is the fault.
func denyPreflight(t *testing.T, srv *vaulttest.Server) (addr string, preflights *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	preflights = &atomic.Int64{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/") {
			preflights.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":["preflight capability check returned 403, please ensure client's policies grant access to path"]}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, preflights
}

func TestPreflightDeniedFallsBack(t *testing.T) {
	srv := vaulttest.Shared(t)
	v2path, v1path := uniq(t), uniq(t)
	srv.PutKV2(t, "secret", v2path, map[string]any{"password": "fallback-v2"})
	srv.PutKV1(t, "kv", v1path, map[string]any{"password": "fallback-v1"})
	addr, preflights := denyPreflight(t, srv)
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: addr, Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env("VAULT_TOKEN", srv.Token),
	}, Options{})
	for range 2 {
		sec, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: v2path, KVVersion: config.KVAuto})
		if err != nil || sec.KVVersion != 2 || sec.Data["password"] != "fallback-v2" {
			t.Fatalf("v2 via fallback: %+v, %v", sec, err)
		}
		sec, err = c.Read(t.Context(), ReadRequest{Mount: "kv", Path: v1path, KVVersion: config.KVAuto})
		if err != nil || sec.KVVersion != 1 || sec.Data["password"] != "fallback-v1" {
			t.Fatalf("v1 via fallback: %+v, %v", sec, err)
		}
	}
	if n := preflights.Load(); n != 2 {
		t.Fatalf("%d preflights, want one per mount (2): a denial is remembered", n)
	}
	_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: "fallback/missing", KVVersion: config.KVAuto})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "secret/fallback/missing") {
		t.Fatalf("missing via fallback: %v", err)
	}
}

func TestPermissionDenied(t *testing.T) {
	srv := vaulttest.Shared(t)
	allowed, _ := seedSecret(t, srv, map[string]any{"password": "allowed"})
	denied, _ := seedSecret(t, srv, map[string]any{"password": "denied"})
	mount := uniq(t)
	policy := uniq(t)
	srv.Policy(t, policy, readPolicy("secret/data/"+allowed))
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	log, logs := newLogger(t)
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{Mount: mount}}},
		LookupEnv: env("VAULT_ROLE_ID", roleID, "VAULT_SECRET_ID", secretID),
	}, Options{Logger: log})
	mustRead(t, c, allowed, "allowed")
	first := c.currentToken()

	// A policy denial: the token is fine, so no new login.
	_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: denied, KVVersion: config.KV2})
	if err == nil || !IsAuthError(err) || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "secret/"+denied) {
		t.Fatalf("err = %v, want permission denied naming the path", err)
	}
	if c.currentToken() != first || strings.Contains(logs.String(), "logging in again") {
		t.Fatal("a policy denial made the client log in again")
	}

	// A token revoked behind the client's back: one re-login, one retry.
	if err := srv.Client(t).Auth().Token().RevokeTreeWithContext(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, allowed, "allowed")
	if c.currentToken() == first {
		t.Fatal("the revoked token is still in use")
	}
	if !strings.Contains(logs.String(), "vault no longer accepts the token") {
		t.Errorf("re-login not logged:\n%s", logs.String())
	}
}

func TestBadRequests(t *testing.T) {
	srv := vaulttest.Shared(t)
	c := tokenClient(t, srv, srv.Token)
	for _, req := range []ReadRequest{
		{Mount: "", Path: "x", KVVersion: config.KV2},
		{Mount: "secret", Path: "", KVVersion: config.KV2},
		{Mount: "secret", Path: "x", KVVersion: "3"},
		{Mount: "secret", Path: "x", KVVersion: config.KV1, Version: 2},
		{Mount: "secret", Path: "x", KVVersion: config.KV2, Version: -1},
	} {
		if _, err := c.Read(t.Context(), req); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("%+v: err = %v, want a request error", req, err)
		}
	}
	// KV v2 asked of a KV v1 mount holding data/<path>: not mistaken for v2.
	srv.PutKV1(t, "kv", "data/shape", map[string]any{"password": "v1"})
	if _, err := c.Read(t.Context(), ReadRequest{Mount: "kv", Path: "shape", KVVersion: config.KV2}); err == nil || !errors.Is(err, errNotKV2) {
		t.Errorf("err = %v, want a not-KV-v2 error", err)
	}
}

// BenchmarkRead is one KV v2 read (auto-detected, cached) against the dev
// server over the kept-alive pool, through the breaker.
func BenchmarkRead(b *testing.B) {
	srv := vaulttest.Shared(b)
	srv.PutKV2(b, "secret", "bench/app", map[string]any{"password": "bench"})
	c, err := NewClient(Settings{
		Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env("VAULT_TOKEN", srv.Token),
	}, Options{
		Breaker: breaker.NewBreaker(breaker.Settings{MaxFailures: 5, OpenTimeout: time.Second}, nil, nil),
	})
	if err != nil {
		b.Fatal(err)
	}
	req := ReadRequest{Mount: "secret", Path: "bench/app", KVVersion: config.KVAuto}
	for b.Loop() {
		if _, err := c.Read(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParallelReadsShareOnePreflight: secrets syncing at the same moment
// (once's workers) send one KV version preflight per mount, not one each.
func TestParallelReadsShareOnePreflight(t *testing.T) {
	srv := vaulttest.Shared(t)
	p := uniq(t)
	for i := range 16 {
		srv.PutKV2(t, "secret", fmt.Sprintf("%s/s%d", p, i), map[string]any{"v": "x"})
	}
	target, err := url.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var preflights atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/") {
			preflights.Add(1)
			time.Sleep(100 * time.Millisecond) // every worker arrives while it is in flight
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: ts.URL, Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env("VAULT_TOKEN", srv.Token),
	}, Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: fmt.Sprintf("%s/s%d", p, i), KVVersion: config.KVAuto}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := preflights.Load(); n != 1 {
		t.Fatalf("%d preflights for 16 parallel reads of one mount, want 1", n)
	}
}
