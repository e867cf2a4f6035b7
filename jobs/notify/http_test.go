package notify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// receiver is the application's reload endpoint.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func httpAction(url string, timeout time.Duration, headers map[string]string, headersFile string) config.Action {
	if timeout <= 0 {
		timeout = config.DefaultHTTPTimeout // what config.Load fills in
	}
	a := &config.HTTPAction{URL: url, Headers: headers, HeadersFile: headersFile, Timeout: config.NewDuration(timeout)}
	return config.Action{HTTP: a}
}

func TestHTTPOncePerWindow(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	headers := filepath.Join(t.TempDir(), "headers")
	if err := os.WriteFile(headers, []byte("# the reload token\n\nAuthorization: Bearer file-token-0001\r\nX-Both: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(rc.URL, "http://", "http://hookuser:url-password-0002@", 1) + "/-/reload?token=query-token-0003"
	action := httpAction(url, 0, map[string]string{"x-tenant": "t1", "X-Both": "from-config"}, headers)
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(3)}, notify.Options{Log: log, Recorder: r, Status: status{r}})

	n.Changed(change("db", action))
	n.Changed(change("api", action))
	n.Changed(change("tls", action))
	r.wait(t, 1) // the window's run is over; another request needs another window
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests for one window, want 1", len(reqs))
	}
	req := reqs[0]
	if req.method != http.MethodPost || req.path != "/-/reload" {
		t.Errorf("request %s %s", req.method, req.path)
	}
	for k, v := range map[string]string{
		"Authorization": "Bearer file-token-0001", "X-Tenant": "t1", "X-Both": "from-file",
		"Content-Type": "application/json", "User-Agent": "secrets-sidecar",
	} {
		if got := req.header.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	var body struct{ Secrets, Files []string }
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatalf("body %q: %v", req.body, err)
	}
	if strings.Join(body.Secrets, ",") != "api,db,tls" || len(body.Files) != 3 || body.Files[0] != "/secrets/api.json" {
		t.Errorf("body %s", req.body)
	}

	n.Changed(change("db", action))
	r.wait(t, 2)
	if got := len(rc.requests()); got != 2 {
		t.Fatalf("%d requests after 2 windows, want 2", got)
	}
	rep := r.reports("db")[0]
	if rep.Result != metrics.ResultSuccess || rep.Target != rc.URL+"/-/reload" {
		t.Fatalf("report: %+v", rep)
	}
	for _, leak := range []string{"file-token-0001", "url-password-0002", "query-token-0003", "hookuser"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("log holds %q", leak)
		}
	}
}

func TestHTTPFailures(t *testing.T) {
	ok := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	redirect := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ok.URL+"/elsewhere", http.StatusFound)
	})
	release := make(chan struct{})
	slow := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	dir := t.TempDir()
	badHeaders := filepath.Join(dir, "bad")
	if err := os.WriteFile(badHeaders, []byte("X-Ok: 1\n# comment\nBearer header-token-0004\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "linked")
	if err := os.Symlink(badHeaders, linked); err != nil {
		t.Fatal(err)
	}
	// A valid headers file reached through a parent directory a co-tenant
	// replaced with a link: not read, nothing sent.
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "headers"), []byte("Authorization: Bearer other-token-0006\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "shared")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		secret   string
		action   config.Action
		want     string
		attempts int
		requests func() int
	}{
		{"server-error", httpAction(failing.URL, 0, nil, ""), "answered 500 Internal Server Error", 3, func() int { return len(failing.requests()) }},
		{"redirect", httpAction(redirect.URL, 0, nil, ""), "answered 302 Found; redirects are not followed", 3, func() int { return len(redirect.requests()) }},
		{"timeout", httpAction(slow.URL, 200*time.Millisecond, nil, ""), "no answer within 200ms", 3, func() int { return len(slow.requests()) }},
		{"malformed headers_file", httpAction(ok.URL, 0, nil, badHeaders), badHeaders + `:3: not a "Name: value" line`, 3, func() int { return 0 }},
		{"symlinked headers_file", httpAction(ok.URL, 0, nil, linked), "symbolic link", 3, func() int { return 0 }},
		{"headers_file behind a linked directory", httpAction(ok.URL, 0, nil, filepath.Join(dir, "shared", "headers")), "a directory on its path is a symbolic link", 3, func() int { return 0 }},
		{"bad URL", httpAction("ftp://user:url-password-0005@host/x", 0, nil, ""), "not an absolute http or https URL", 1, func() int { return 0 }},
	}
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(3), Backoff: 10 * time.Millisecond}, notify.Options{Log: log, Recorder: r, Status: status{r}})
	for i, c := range cases {
		began := time.Now()
		n.Changed(change(c.secret, c.action))
		r.wait(t, i+1)
		rep := r.reports(c.secret)[0]
		t.Logf("%s: after %s: %s", c.secret, time.Since(began).Round(time.Millisecond), rep.Error)
		if rep.Result != metrics.ResultError || rep.Attempts != c.attempts || !strings.Contains(rep.Error, c.want) {
			t.Errorf("%s: report %+v, want %d attempts and an error containing %q", c.secret, rep, c.attempts, c.want)
		}
		if got := c.requests(); got != 0 && got != c.attempts {
			t.Errorf("%s: %d requests, want %d", c.secret, got, c.attempts)
		}
	}
	if got := len(ok.requests()); got != 0 {
		t.Errorf("the redirect was followed or a bad headers_file was sent: %d requests", got)
	}
	for _, leak := range []string{"header-token-0004", "url-password-0005"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("log holds %q", leak)
		}
	}
}
