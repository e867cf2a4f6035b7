package vault

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// loginCounter is a reverse proxy in front of Vault that counts logins.
type loginCounter struct {
	*httptest.Server
	mu     sync.Mutex
	logins int
}

func newLoginCounter(t *testing.T, target string) *loginCounter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	lc := &loginCounter{}
	lc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/login") {
			lc.mu.Lock()
			lc.logins++
			lc.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(lc.Close)
	return lc
}

func (lc *loginCounter) count() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.logins
}

func lockedUsers(t *testing.T, srv *vaulttest.Server) any {
	t.Helper()
	sec, err := srv.Client(t).Logical().ReadWithContext(t.Context(), "sys/locked-users")
	if err != nil {
		t.Fatal(err)
	}
	return sec.Data["total"]
}

// hammer reads n times, from the renewer's side too, and returns the errors.
func hammer(t *testing.T, c *Client, path string, n int) []error {
	t.Helper()
	var errs []error
	for range n {
		_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if err == nil {
			t.Fatal("a read succeeded with rejected credentials")
		}
		errs = append(errs, err)
	}
	return errs
}

func checkRejected(t *testing.T, errs []error, wantCause string, secrets ...string) {
	t.Helper()
	for i, err := range errs {
		var rej *LoginRejectedError
		if !errors.As(err, &rej) || !IsAuthError(err) || !IsLoginRejected(err) || IsUnavailable(err) {
			t.Fatalf("read %d: %v, want a LoginRejectedError that is an auth error", i, err)
		}
		if !strings.Contains(err.Error(), "rejected: "+wantCause) || !strings.Contains(err.Error(), "tried again at") ||
			time.Until(rej.RetryAt) < 4*time.Minute {
			t.Fatalf("read %d: %q, want the cause %q and a retry time 5 minutes out", i, err, wantCause)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("read %d: error holds a credential: %v", i, err)
			}
		}
	}
}

// TestAppRoleRejectedIsNotRepeated: a rejected secret_id is sent once, not
// once per read, renewal and reload; a new secret_id in the file is tried
// at once and Vault never locks the role.
func TestAppRoleRejectedIsNotRepeated(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "approle-gated"})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	proxy := newLoginCounter(t, srv.Addr)
	dir := t.TempDir()
	bad := "bad-secret-id-" + uniq(t)
	sidFile := writeFile(t, dir, "secret-id", bad)
	vc := config.Vault{Address: proxy.URL, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
		Mount: mount, RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: sidFile,
	}}}
	log, logs := newLogger(t)
	obs := &expiryRecorder{}
	c := newClient(t, Settings{Vault: vc}, Options{Logger: log, TokenObserver: obs})
	if err := c.Start(t.Context()); err != nil { // logs in (rejected); the renewer then waits
		t.Fatal(err)
	}
	errs := hammer(t, c, path, 20)
	vc.Timeout = config.NewDuration(10 * time.Second) // a vault: reload keeps the memory
	if err := c.Update(t.Context(), vc); err != nil {
		t.Fatal(err)
	}
	errs = append(errs, hammer(t, c, path, 10)...)
	time.Sleep(300 * time.Millisecond) // the new renewer's first login attempt
	if n := proxy.count(); n != 1 {
		t.Fatalf("%d logins sent with one rejected secret_id, want 1", n)
	}
	checkRejected(t, errs, "invalid secret id (HTTP 500)", bad, roleID)
	var rej *LoginRejectedError
	errors.As(errs[0], &rej)
	if rej.CredentialsChanged() {
		t.Fatal("unchanged files reported as changed")
	}
	if !strings.Contains(errs[5].Error(), "write them to "+sidFile) {
		t.Errorf("the error does not name the secret_id file: %v", errs[5])
	}
	if n := strings.Count(logs.String(), `"vault rejected the login`); n != 1 {
		t.Errorf("the rejection was logged %d times, want once", n)
	}

	writeFile(t, dir, "secret-id", secretID)
	eventually(t, time.Second, "a new secret_id in the file seen as a change", rej.CredentialsChanged)
	mustRead(t, c, path, "approle-gated") // at once, not in 5 minutes
	if n := proxy.count(); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
	// Only the logins sent are counted: the held-back ones are not.
	if got, want := obs.loginCounts(), map[string]int{"approle rejected": 1, "approle success": 1}; !maps.Equal(got, want) {
		t.Errorf("logins told to the observer: %v, want %v", got, want)
	}
	if total := lockedUsers(t, srv); total != nil && total.(interface{ String() string }).String() != "0" {
		t.Fatalf("sys/locked-users: %v", total)
	}
	if strings.Contains(logs.String(), bad) || strings.Contains(logs.String(), secretID) {
		t.Fatal("a secret_id reached the logs")
	}
}

func TestJWTRejectedIsNotRepeated(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "jwt-gated"})
	key, pubPEM := newKey(t)
	mount := uniq(t)
	srv.EnableAuth(t, mount, "jwt")
	srv.Write(t, "auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pubPEM}})
	srv.Write(t, "auth/"+mount+"/role/app", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"sidecar"}, "token_policies": []string{policy},
	})
	now := time.Now()
	claims := josejwt.Claims{Subject: "app", Audience: josejwt.Audience{"sidecar"}, Expiry: josejwt.NewNumericDate(now.Add(time.Hour)),
		IssuedAt: josejwt.NewNumericDate(now), NotBefore: josejwt.NewNumericDate(now.Add(-time.Minute))}
	other, _ := newKey(t)
	badJWT := signJWT(t, other, claims)
	dir := t.TempDir()
	file := writeFile(t, dir, "jwt", badJWT)
	proxy := newLoginCounter(t, srv.Addr)
	c := newClient(t, Settings{
		Vault: config.Vault{Address: proxy.URL, Auth: config.Auth{
			Method: config.AuthJWT, JWT: config.JWT{Mount: mount, Role: "app", TokenFile: file},
		}},
	}, Options{})
	errs := hammer(t, c, path, 15)
	if n := proxy.count(); n != 1 {
		t.Fatalf("%d logins with one rejected JWT, want 1", n)
	}
	checkRejected(t, errs, "error validating token: error verifying token signature", badJWT)
	writeFile(t, dir, "jwt", signJWT(t, key, claims))
	mustRead(t, c, path, "jwt-gated")
	if n := proxy.count(); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
}

func TestKubernetesRejectedIsNotRepeated(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "kube-gated"})
	key, _ := newKey(t)
	sa := map[string]any{
		"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:default:myapp",
		"kubernetes.io/serviceaccount/namespace": "default", "kubernetes.io/serviceaccount/service-account.name": "myapp",
		"kubernetes.io/serviceaccount/service-account.uid": "uid-1234",
	}
	kube := &kubeAPI{jwt: signJWT(t, key, sa)}
	api := httptest.NewServer(kube)
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
	stale := signJWT(t, key, sa, map[string]any{"jti": "rotated-away"})
	dir := t.TempDir()
	file := writeFile(t, dir, "token", stale)
	proxy := newLoginCounter(t, srv.Addr)
	c := newClient(t, Settings{
		Vault: config.Vault{Address: proxy.URL, Auth: config.Auth{
			Method: config.AuthKubernetes, Kubernetes: config.Kubernetes{Mount: mount, Role: "myapp", TokenFile: file},
		}},
	}, Options{})
	errs := hammer(t, c, path, 15)
	if n := proxy.count(); n != 1 {
		t.Fatalf("%d logins with one rejected service account token, want 1", n)
	}
	checkRejected(t, errs, "permission denied (HTTP 403)", stale)
	writeFile(t, dir, "token", kube.jwt) // the kubelet rotates the projected token
	mustRead(t, c, path, "kube-gated")
	if n := proxy.count(); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
}

// TestVaultTroubleIsNotARejection: a 5xx (other than approle's answer to a
// bad secret_id) or a 429 at login is Vault's health: retried normally.
func TestVaultTroubleIsNotARejection(t *testing.T) {
	for _, fault := range []string{"500", "429"} {
		t.Run(fault, func(t *testing.T) {
			f, addr := newFaultServer(t)
			f.set(fault)
			obs := &expiryRecorder{}
			c := newClient(t, Settings{
				Vault: config.Vault{Address: addr, Auth: config.Auth{Method: config.AuthAppRole,
					AppRole: config.AppRole{RoleIDFile: writeFile(t, t.TempDir(), "role", "r")}}},
			}, Options{TokenObserver: obs})
			for range 3 {
				_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: "app", KVVersion: config.KV2})
				if err == nil || IsLoginRejected(err) || !IsUnavailable(err) {
					t.Fatalf("err = %v, want a plain failure that says Vault is unavailable", err)
				}
			}
			if n := f.hits.Load(); n != 3 {
				t.Fatalf("%d logins sent, want 3 (no holding back)", n)
			}
			if got := obs.loginCounts(); got["approle error"] != 3 || len(got) != 1 {
				t.Fatalf("logins told to the observer: %v, want 3 errors", got)
			}
		})
	}
}

// TestGateSpacing: the same credentials wait 5, 10, then 20 minutes: at
// most 3 rejections in any 15 minutes, and gaps that reset Vault's count.
func TestGateSpacing(t *testing.T) {
	g := newLoginGate()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	m := &appRole{mountPath: "approle"}
	fp := g.fingerprint("http://vault", m, map[string]any{"role_id": "r", "secret_id": "s"})
	var sent []time.Time
	for end := now.Add(2 * time.Hour); now.Before(end); now = now.Add(time.Second) {
		if g.held(fp) != nil {
			continue
		}
		sent = append(sent, now)
		g.reject(fp, "invalid secret id (HTTP 500)")
	}
	for i := range sent {
		n := 0
		for _, s := range sent[i:] {
			if s.Sub(sent[i]) < 15*time.Minute {
				n++
			}
		}
		if n >= 5 || n > 3 {
			t.Fatalf("%d attempts in the 15 minutes from %s", n, sent[i])
		}
	}
	gaps := []time.Duration{}
	for i := 1; i < len(sent); i++ {
		gaps = append(gaps, sent[i].Sub(sent[i-1]))
	}
	t.Logf("%d attempts in 2 h, gaps %v", len(sent), gaps)
	if gaps[0] != 5*time.Minute || gaps[1] != 10*time.Minute || gaps[2] != 20*time.Minute || gaps[len(gaps)-1] != 20*time.Minute {
		t.Fatalf("gaps %v", gaps)
	}
	other := g.fingerprint("http://vault", m, map[string]any{"role_id": "r", "secret_id": "new"})
	if g.held(other) != nil {
		t.Fatal("new credentials are held back")
	}
	if g.fingerprint("http://other", m, map[string]any{"role_id": "r", "secret_id": "s"}) == fp {
		t.Fatal("another server shares the fingerprint")
	}
}

// TestGateBudget: whatever the credentials, at most 3 logins are rejected
// in any 15 minutes; the fourth waits for the oldest to leave the window,
// and new credential files do not cut that wait short.
func TestGateBudget(t *testing.T) {
	g := newLoginGate()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	g.now = func() time.Time { return now }
	m := &appRole{mountPath: "approle"}
	fp := func(sid string) [32]byte {
		return g.fingerprint("http://vault", m, map[string]any{"role_id": "r", "secret_id": sid})
	}
	for i, sid := range []string{"a", "b", "c"} {
		if r := g.held(fp(sid)); r != nil {
			t.Fatalf("new credentials %d held back before the budget is spent", i)
		}
		r := g.reject(fp(sid), "invalid secret id (HTTP 500)")
		if i == 2 && (!r.budget || !r.retryAt.Equal(start.Add(15*time.Minute))) {
			t.Fatalf("third rejection: %+v, want the budget spent until 00:15", r)
		}
		now = now.Add(2 * time.Minute)
	}
	r := g.held(fp("d"))
	if r == nil || !r.budget || !r.retryAt.Equal(start.Add(15*time.Minute)) {
		t.Fatalf("fourth credentials: %+v, want held until 00:15", r)
	}
	now = start.Add(15 * time.Minute)
	if r := g.held(fp("d")); r != nil {
		t.Fatalf("held after the oldest rejection left the window: %+v", r)
	}
	g.reject(fp("d"), "invalid secret id (HTTP 500)")
	if r := g.held(fp("e")); r == nil || !r.retryAt.Equal(start.Add(17*time.Minute)) {
		t.Fatalf("after a fourth rejection at 00:15: %+v, want held until 00:17", r)
	}
}

// TestRewrittenSecretIDCannotLockTheRole: a wrong secret_id file rewritten
// with another wrong value again and again gets 3 logins to Vault, not one
// per rewrite; the error says until when nothing is sent, and that time
// comes on the gate's clock.
func TestRewrittenSecretIDCannotLockTheRole(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "budget"})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	proxy := newLoginCounter(t, srv.Addr)
	dir := t.TempDir()
	writeFile(t, dir, "secret-id", "wrong-0")
	vc := config.Vault{Address: proxy.URL, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
		Mount: mount, RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: dir + "/secret-id",
	}}}
	c := newClient(t, Settings{Vault: vc}, Options{})
	now := time.Now()
	c.gate.mu.Lock()
	c.gate.now = func() time.Time { return now }
	c.gate.mu.Unlock()
	var last error
	for i := range 7 {
		writeFile(t, dir, "secret-id", fmt.Sprintf("wrong-%d", i))
		_, last = c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if !IsLoginRejected(last) {
			t.Fatalf("rewrite %d: %v, want a rejected login", i, last)
		}
		now = now.Add(time.Second)
	}
	if n := proxy.count(); n != 3 {
		t.Fatalf("%d logins sent for 7 rewrites of a wrong secret_id, want 3", n)
	}
	var rej *LoginRejectedError
	if !errors.As(last, &rej) || !rej.Budget || !strings.Contains(last.Error(), "no login, whatever the credentials, before") {
		t.Fatalf("held login: %v", last)
	}
	writeFile(t, dir, "secret-id", secretID)
	if rej.CredentialsChanged() {
		t.Fatal("new credentials reported as worth a try while the budget is spent")
	}
	if _, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2}); !IsLoginRejected(err) || proxy.count() != 3 {
		t.Fatalf("the right secret_id was sent while the budget is spent: %v, %d logins", err, proxy.count())
	}
	now = rej.RetryAt
	mustRead(t, c, path, "budget")
	if n := proxy.count(); n != 4 {
		t.Fatalf("%d logins, want 4 (the right secret_id, once the window has room)", n)
	}
	if total := lockedUsers(t, srv); total != nil && total.(interface{ String() string }).String() != "0" {
		t.Fatalf("sys/locked-users: %v", total)
	}
}
