package kv_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

func client(t *testing.T, srv *vaulttest.Server) *vault.Client {
	t.Helper()
	c, err := vault.NewClient(vault.Settings{
		Vault: config.Vault{Address: srv.Addr, Timeout: config.NewDuration(5 * time.Second)},
		LookupEnv: func(k string) (string, bool) {
			if k == "VAULT_TOKEN" {
				return srv.Token, true
			}
			return "", false
		},
	}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Both modes read the secret as Vault holds it, with its version and
// creation time (KV v2) or none (KV v1); a pinned version is read as
// pinned.
func TestFetchKV(t *testing.T) {
	srv := vaulttest.Shared(t)
	src := kv.New(client(t, srv))
	p := strings.ReplaceAll(t.Name(), "/", "-")
	srv.PutKV2(t, "secret", p, map[string]any{"password": "one"})
	v2 := srv.PutKV2(t, "secret", p, map[string]any{"password": "two", "port": 5432})
	srv.PutKV1(t, "kv", p, map[string]any{"token": "v1"})

	for _, mode := range []source.Mode{source.Live, source.Peek} {
		sec := &config.Secret{Name: "db", Mount: "secret", Path: p}
		d, err := src.Fetch(t.Context(), sec, mode)
		if err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		if d.Values["password"] != "two" || d.Values["port"] != json.Number("5432") || d.Version != v2 || d.Created.IsZero() {
			t.Errorf("mode %d: KV v2 latest: version %d, created %v, fields %d", mode, d.Version, d.Created, len(d.Values))
		}
		sec.Version = v2 - 1
		if d, err = src.Fetch(t.Context(), sec, mode); err != nil || d.Values["password"] != "one" || d.Version != v2-1 {
			t.Errorf("mode %d: pinned version %d: %v, version %d", mode, v2-1, err, d.Version)
		}
		d, err = src.Fetch(t.Context(), &config.Secret{Name: "t", Mount: "kv", Path: p, KVVersion: "1"}, mode)
		if err != nil || d.Values["token"] != "v1" || d.Version != 0 || !d.Created.IsZero() {
			t.Errorf("mode %d: KV v1: %v, version %d, created %v", mode, err, d.Version, d.Created)
		}
	}
	_, err := src.Fetch(t.Context(), &config.Secret{Name: "gone", Mount: "secret", Path: p + "-missing"}, source.Live)
	if !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("a missing secret: %v, want vault.ErrNotFound", err)
	}
}

// What a Data prints: metadata, never a value.
func TestDataPrintsNoValue(t *testing.T) {
	d := source.Data{Values: map[string]any{"password": "hunter2-value"}, Version: 3, Created: time.Unix(1, 0)}
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %s %q", d, d, d, d, d), fmt.Sprint(&d)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("printed a value: %s", s)
		}
		if !strings.Contains(s, "Version:3") {
			t.Errorf("no metadata: %s", s)
		}
	}
}
