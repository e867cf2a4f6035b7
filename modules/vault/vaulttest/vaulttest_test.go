package vaulttest_test

import (
	"os"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// TestKV2RoundTrip writes a KV v2 secret through the real dev server and
// reads it back with the product's Vault client library.
func TestKV2RoundTrip(t *testing.T) {
	srv := vaulttest.Shared(t)
	v := srv.PutKV2(t, "secret", "roundtrip/db", map[string]any{"username": "app", "password": "s3cr3t"})
	if v != 1 {
		t.Fatalf("first write: version %d, want 1", v)
	}
	got, err := srv.Client(t).KVv2("secret").Get(t.Context(), "roundtrip/db")
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if got.Data["username"] != "app" || got.Data["password"] != "s3cr3t" {
		t.Fatalf("read back %v fields, want username and password as written", len(got.Data))
	}
	if got.VersionMetadata.Version != 1 {
		t.Fatalf("version %d, want 1", got.VersionMetadata.Version)
	}
}

func TestKV1AndMounts(t *testing.T) {
	srv := vaulttest.Shared(t)
	srv.PutKV1(t, "kv", "app/config", map[string]any{"a": "b"})
	got, err := srv.Client(t).KVv1("kv").Get(t.Context(), "app/config")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "b" {
		t.Fatalf("got %v", got.Data)
	}
	mounts, err := srv.Client(t).Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if m := mounts["secret/"]; m == nil || m.Options["version"] != "2" {
		t.Fatalf("secret/ should be KV v2, got %+v", m)
	}
	if m := mounts["kv/"]; m == nil || m.Options["version"] != "1" {
		t.Fatalf("kv/ should be KV v1, got %+v", m)
	}
}

func TestAuthMethodsAvailable(t *testing.T) {
	srv := vaulttest.Shared(t)
	for _, method := range []string{"approle", "jwt", "kubernetes"} {
		srv.EnableAuth(t, "t-"+method, method)
	}
}

// TestRestartKeepsData stops a persistent server and starts it again on
// the same address: data and root token survive, as the outage tests need.
func TestRestartKeepsData(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.Persistent(), vaulttest.RootToken("root-restart"))
	if srv.Token != "root-restart" {
		t.Fatalf("token %q, want the fixed root token", srv.Token)
	}
	srv.PutKV2(t, "secret", "persist", map[string]any{"k": "v1"})
	addr := srv.Addr
	srv.Stop(t)
	if _, err := srv.Client(t).KVv2("secret").Get(t.Context(), "persist"); err == nil {
		t.Fatal("read succeeded while the server was stopped")
	}
	srv.Restart(t)
	if srv.Addr != addr {
		t.Fatalf("restarted on %s, want %s", srv.Addr, addr)
	}
	got, err := srv.Client(t).KVv2("secret").Get(t.Context(), "persist")
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got.Data["k"] != "v1" {
		t.Fatalf("after restart: %v", got.Data)
	}
}
