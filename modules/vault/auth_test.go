package vault

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// seedSecret writes a KV v2 secret under a unique path and returns the
// path and a policy name that may read it.
func seedSecret(t *testing.T, srv *vaulttest.Server, data map[string]any) (path, policy string) {
	t.Helper()
	path = uniq(t) + "/db"
	srv.PutKV2(t, "secret", path, data)
	policy = uniq(t)
	srv.Policy(t, policy, readPolicy("secret/data/"+path))
	return path, policy
}

func mustRead(t *testing.T, c *Client, path, want string) {
	t.Helper()
	sec, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KVAuto})
	if err != nil {
		t.Fatalf("read secret/%s: %v", path, err)
	}
	if got := sec.Data["password"]; got != want {
		t.Fatalf("read secret/%s: password = %v, want %q", path, got, want)
	}
}

func TestTokenFromEnv(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "env-token-value"})
	token := srv.CreateToken(t, map[string]any{"policies": []string{policy}, "ttl": "1h"})
	log, logs := newLogger(t)
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env("VAULT_TOKEN", token),
	}, Options{Logger: log})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "env-token-value")
	out := logs.String()
	for _, want := range []string{`"vault reachable"`, `"vault token looked up"`, `"renewable":true`, policy} {
		if !strings.Contains(out, want) {
			t.Errorf("start logs lack %s:\n%s", want, out)
		}
	}
}

func TestTokenMethodNeedsAToken(t *testing.T) {
	_, err := NewClient(Settings{
		Vault:     config.Vault{Address: "http://127.0.0.1:1", Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env(),
	}, Options{})
	if err == nil || !strings.Contains(err.Error(), "VAULT_TOKEN") {
		t.Fatalf("err = %v, want one naming token_file and VAULT_TOKEN", err)
	}
}

func TestTokenFileRotation(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "rotated-file-value"})
	first := srv.CreateToken(t, map[string]any{"policies": []string{policy}, "ttl": "1h"})
	second := srv.CreateToken(t, map[string]any{"policies": []string{policy}, "ttl": "1h"})
	dir := t.TempDir()
	file := writeFile(t, dir, "token", first)
	log, logs := newLogger(t)
	c := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken, TokenFile: file}},
		// VAULT_TOKEN is set too: token_file wins.
		LookupEnv: env("VAULT_TOKEN", "not-a-valid-token"),
	}, Options{Logger: log})
	mustRead(t, c, path, "rotated-file-value")
	if got := c.currentToken(); got != first {
		t.Fatal("client does not use the token file's token")
	}

	// The orchestrator writes a new token and revokes the old one.
	writeFile(t, dir, "token", second)
	if err := srv.Client(t).Auth().Token().RevokeTreeWithContext(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "rotated-file-value")
	if got := c.currentToken(); got != second {
		t.Fatal("client did not switch to the rotated token")
	}
	if !strings.Contains(logs.String(), "vault token changed on disk") {
		t.Errorf("rotation not logged:\n%s", logs.String())
	}
}

func TestAppRole(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "approle-value"})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "bound", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	openRoleID, _ := srv.AppRole(t, mount, "open", map[string]any{
		"token_policies": policy, "token_ttl": "1h", "bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32",
	})
	dir := t.TempDir()

	cases := []struct {
		name string
		auth config.AppRole
		env  []string
	}{
		{"files", config.AppRole{
			RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID),
		}, nil},
		{"env", config.AppRole{}, []string{"VAULT_ROLE_ID", roleID, "VAULT_SECRET_ID", secretID}},
		{"file and env", config.AppRole{RoleIDFile: writeFile(t, dir, "role-id-2", roleID)}, []string{"VAULT_SECRET_ID", secretID}},
		{"without secret_id", config.AppRole{RoleIDFile: writeFile(t, dir, "open-role-id", openRoleID)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.auth.Mount = mount
			log, logs := newLogger(t)
			c := newClient(t, Settings{
				Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: tc.auth}},
				LookupEnv: env(tc.env...),
			}, Options{Logger: log})
			mustRead(t, c, path, "approle-value") // logs in first
			if !strings.Contains(logs.String(), `"logged in to vault"`) {
				t.Errorf("login not logged:\n%s", logs.String())
			}
		})
	}

	t.Run("wrong secret_id is an auth error", func(t *testing.T) {
		c := newClient(t, Settings{
			Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
				Mount: mount, RoleIDFile: writeFile(t, dir, "role-id-3", roleID), SecretIDFile: writeFile(t, dir, "bad", "wrong-secret-id-1234"),
			}}},
		}, Options{})
		_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if err == nil || !IsAuthError(err) {
			t.Fatalf("err = %v, want an auth error", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-id-1234") || strings.Contains(err.Error(), roleID) {
			t.Fatalf("error leaks a credential: %v", err)
		}
	})
	t.Run("missing role_id file is an auth error", func(t *testing.T) {
		c := newClient(t, Settings{
			Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
				Mount: mount, RoleIDFile: dir + "/absent",
			}}},
		}, Options{})
		_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if err == nil || !IsAuthError(err) || !strings.Contains(err.Error(), "absent") {
			t.Fatalf("err = %v, want an auth error naming the file", err)
		}
	})
}

// signJWT signs claims with key (ES256) as go-jose does for any issuer.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, claims ...any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b := josejwt.Signed(signer)
	for _, c := range claims {
		b = b.Claims(c)
	}
	s, err := b.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestJWT(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "jwt-value"})
	key, pubPEM := newKey(t)
	mount := uniq(t)
	srv.EnableAuth(t, mount, "jwt")
	srv.Write(t, "auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pubPEM}, "bound_issuer": "https://issuer.test"})
	srv.Write(t, "auth/"+mount+"/role/myapp", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"secrets-sidecar"},
		"token_policies": []string{policy}, "token_ttl": "1h",
	})
	now := time.Now()
	token := signJWT(t, key, josejwt.Claims{
		Issuer: "https://issuer.test", Subject: "myapp", Audience: josejwt.Audience{"secrets-sidecar"},
		IssuedAt: josejwt.NewNumericDate(now), NotBefore: josejwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry: josejwt.NewNumericDate(now.Add(time.Hour)),
	})
	file := writeFile(t, t.TempDir(), "jwt", token)
	c := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{
			Method: config.AuthJWT, JWT: config.JWT{Mount: mount, Role: "myapp", TokenFile: file},
		}},
	}, Options{})
	mustRead(t, c, path, "jwt-value")

	t.Run("a JWT signed by another key is refused", func(t *testing.T) {
		other, _ := newKey(t)
		bad := writeFile(t, t.TempDir(), "jwt", signJWT(t, other, josejwt.Claims{
			Issuer: "https://issuer.test", Subject: "myapp", Audience: josejwt.Audience{"secrets-sidecar"},
			Expiry: josejwt.NewNumericDate(now.Add(time.Hour)),
		}))
		c := newClient(t, Settings{
			Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{
				Method: config.AuthJWT, JWT: config.JWT{Mount: mount, Role: "myapp", TokenFile: bad},
			}},
		}, Options{})
		_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if !IsAuthError(err) {
			t.Fatalf("err = %v, want an auth error", err)
		}
	})
}

// kubeAPI plays the Kubernetes API's TokenReview endpoint for Vault's
// kubernetes auth method: it accepts exactly one service account JWT.
type kubeAPI struct {
	jwt      string
	mu       sync.Mutex
	reviewed int
}

func (k *kubeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var review struct {
		Spec struct {
			Token string `json:"token"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(body, &review)
	k.mu.Lock()
	k.reviewed++
	k.mu.Unlock()
	status := map[string]any{"authenticated": false}
	if review.Spec.Token == k.jwt {
		status = map[string]any{"authenticated": true, "user": map[string]any{
			"username": "system:serviceaccount:default:myapp", "uid": "uid-1234",
		}}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "status": status,
	})
}

// selfSignedPEM is a CA certificate for the kubernetes method's config
// (required, though the test API is plain HTTP on 127.0.0.1).
func selfSignedPEM(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-kube-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestKubernetes(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "kubernetes-value"})
	key, _ := newKey(t)
	saClaims := map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:default:myapp",
		"kubernetes.io/serviceaccount/namespace": "default",
		"kubernetes.io/serviceaccount/service-account.name": "myapp",
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-1234",
	}
	kube := &kubeAPI{jwt: signJWT(t, key, saClaims)}
	api := httptest.NewServer(kube) // 127.0.0.1, free port
	t.Cleanup(api.Close)

	mount := uniq(t)
	srv.EnableAuth(t, mount, "kubernetes")
	srv.Write(t, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host": api.URL, "disable_local_ca_jwt": true, "kubernetes_ca_cert": selfSignedPEM(t, key),
	})
	srv.Write(t, "auth/"+mount+"/role/myapp", map[string]any{
		"bound_service_account_names": []string{"myapp"}, "bound_service_account_namespaces": []string{"default"},
		"token_policies": []string{policy}, "token_ttl": "1h",
	})
	file := writeFile(t, t.TempDir(), "token", kube.jwt)
	c := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{
			Method: config.AuthKubernetes, Kubernetes: config.Kubernetes{Mount: mount, Role: "myapp", TokenFile: file},
		}},
	}, Options{})
	mustRead(t, c, path, "kubernetes-value")
	kube.mu.Lock()
	reviewed := kube.reviewed
	kube.mu.Unlock()
	if reviewed == 0 {
		t.Fatal("Vault never asked the Kubernetes API to review the token")
	}

	t.Run("a token the API does not accept is refused", func(t *testing.T) {
		other := writeFile(t, t.TempDir(), "token", signJWT(t, key, saClaims, map[string]any{"jti": "another"}))
		c := newClient(t, Settings{
			Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{
				Method: config.AuthKubernetes, Kubernetes: config.Kubernetes{Mount: mount, Role: "myapp", TokenFile: other},
			}},
		}, Options{})
		_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if err == nil || !IsAuthError(err) {
			t.Fatalf("err = %v, want an auth error", err)
		}
		if errors.Is(err, ErrNotFound) {
			t.Fatalf("a refused login is not a missing secret: %v", err)
		}
	})
}
