package vault

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

const (
	proxyUser = "proxyuser-7f3a"
	proxyPass = "proxypass-9d1c"
)

// basicAuthProxy is a reverse proxy in front of Vault that wants HTTP basic
// auth, as some ingress proxies do; Vault's URL then carries userinfo.
func basicAuthProxy(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != proxyUser || pass != proxyPass {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":["proxy: basic auth required"]}`))
			return
		}
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func withUserinfo(addr string) string {
	return strings.Replace(addr, "http://", "http://"+proxyUser+":"+proxyPass+"@", 1)
}

// TestURLUserinfoNeverShown: a Vault URL with user and password keeps
// working (the proxy gets basic auth) while neither the user name nor the
// password appears in logs, errors, the breaker's cause or spans.
func TestURLUserinfoNeverShown(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, _ := seedSecret(t, srv, map[string]any{"password": "through-the-proxy"})
	proxy := basicAuthProxy(t, srv.Addr)
	log, logs := newLogger(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	b := breaker.NewBreaker(breaker.Settings{MaxFailures: 2, OpenTimeout: time.Minute, Interval: time.Minute}, log, nil)
	vc := config.Vault{Address: withUserinfo(proxy.URL), Auth: config.Auth{Method: config.AuthToken}}
	c := newClient(t, Settings{Vault: vc, LookupEnv: env("VAULT_TOKEN", srv.Token)},
		Options{Logger: log, Breaker: b, TracerProvider: tp})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "through-the-proxy") // basic auth still reaches the proxy

	vc.Timeout = config.NewDuration(time.Second) // a hot reload: "vault client reconfigured"
	if err := c.Update(t.Context(), vc); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "through-the-proxy")

	// Nothing listens there any more: url.Error, then an open breaker.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	vc.Address = withUserinfo(dead)
	if err := c.Update(t.Context(), vc); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for range 3 {
		_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if err == nil {
			t.Fatal("read through a closed port succeeded")
		}
		errs = append(errs, err)
	}
	if !errors.Is(errs[2], breaker.ErrOpen) {
		t.Fatalf("third error %v, want the open breaker", errs[2])
	}
	// A proxy that rejects the request: the library's ResponseError.
	vc.Address = strings.Replace(proxy.URL, "http://", "http://"+proxyUser+":wrong-"+proxyPass+"@", 1)
	if err := c.Update(t.Context(), vc); err != nil {
		t.Fatal(err)
	}
	b.Update(breaker.Settings{MaxFailures: 3, OpenTimeout: time.Minute, Interval: time.Minute})
	_, err = c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
	if err == nil {
		t.Fatal("the proxy let a wrong password through")
	}
	errs = append(errs, err)

	var shown []string
	for _, err := range errs {
		shown = append(shown, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		var re interface{ Error() string }
		if errors.As(err, &re) {
			shown = append(shown, re.Error())
		}
	}
	shown = append(shown, logs.String())
	spans := rec.Ended()
	if len(spans) == 0 {
		t.Fatal("no spans")
	}
	for _, s := range spans {
		for _, a := range s.Attributes() {
			shown = append(shown, string(a.Key)+"="+a.Value.String())
		}
		for _, ev := range s.Events() {
			for _, a := range ev.Attributes {
				shown = append(shown, string(a.Key)+"="+a.Value.String())
			}
		}
		shown = append(shown, s.Status().Description)
	}
	all := strings.Join(shown, "\n")
	for _, bad := range []string{proxyUser, proxyPass} {
		if strings.Contains(all, bad) {
			i := strings.Index(all, bad)
			t.Fatalf("%q is shown: ...%s...", bad, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	for _, want := range []string{`"vault reachable"`, `"vault client reconfigured"`, `"address":"http://***@127.0.0.1:`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if !strings.Contains(errs[0].Error(), "http://***@"+strings.TrimPrefix(dead, "http://")) {
		t.Errorf("the error no longer says which server: %v", errs[0])
	}
	if !strings.Contains(all, "url.full=http://127.0.0.1:") {
		t.Errorf("no url.full attribute checked")
	}
}
