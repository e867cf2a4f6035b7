package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

const (
	// maxHeadersFile is the most a headers_file may hold.
	maxHeadersFile = 64 << 10
	// maxDrain is how much of a response body is read (and discarded).
	maxDrain = 64 << 10
	// userAgent is sent with every request.
	userAgent = "secrets-sidecar"
)

// httpClient is the client every http action shares: no redirects (a 3xx
// is the answer, and fails), no keep-alive (a call per rotation gains
// nothing from it, and leaves no idle connection behind).
type httpClient struct{ c *http.Client }

func newHTTPClient() *httpClient {
	t, ok := http.DefaultTransport.(*http.Transport)
	var rt http.RoundTripper = &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}
	if ok {
		c := t.Clone()
		c.DisableKeepAlives = true
		rt = c
	}
	return &httpClient{c: &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// httpAction calls a URL.
type httpAction struct {
	method      string
	url         *url.URL
	summary     string
	timeout     time.Duration
	headers     http.Header
	headersFile string
}

func (a *httpAction) kind() string   { return KindHTTP }
func (a *httpAction) target() string { return a.summary }

type httpBody struct {
	Secrets []string `json:"secrets"`
	Files   []string `json:"files"`
}

func (a *httpAction) run(ctx context.Context, n *Notifier, in input) ([]zap.Field, error) {
	headers := a.headers.Clone()
	if a.headersFile != "" {
		more, err := readHeadersFile(a.headersFile)
		if err != nil {
			return nil, err
		}
		for k, v := range more {
			headers[k] = v
		}
	}
	body, err := json.Marshal(httpBody{Secrets: nonNil(in.secrets), Files: nonNil(in.files)})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", a.method, a.summary, err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, a.method, a.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: cannot build the request", a.method, a.summary)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Host") && len(v) > 0 {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := n.client.c.Do(req)
	if err != nil {
		// url.Error repeats the URL, query and all: keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: no answer within %s", a.method, a.summary, a.timeout)
		}
		return nil, fmt.Errorf("%s %s: %w", a.method, a.summary, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	fields := []zap.Field{zap.String("method", a.method), zap.Int("status_code", resp.StatusCode)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return fields, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fields, fmt.Errorf("%s %s: answered %d %s; redirects are not followed (the headers may carry tokens)",
			a.method, a.summary, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return fields, fmt.Errorf("%s %s: answered %d %s", a.method, a.summary, resp.StatusCode, http.StatusText(resp.StatusCode))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readHeadersFile reads "Name: value" lines, no-follow, at most 64 KiB;
// blank lines and lines starting with # are ignored. Errors name the file
// and line, never a value.
func readHeadersFile(path string) (http.Header, error) {
	data, _, err := files.ReadNoLinks(path, maxHeadersFile)
	if err != nil {
		return nil, fmt.Errorf("headers_file: %w", err)
	}
	h := http.Header{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !validToken(name) {
			return nil, fmt.Errorf("headers_file %s:%d: not a \"Name: value\" line", path, i+1)
		}
		if !validHeaderValue(value) {
			return nil, fmt.Errorf("headers_file %s:%d: header %s: the value holds control characters", path, i+1, name)
		}
		h.Set(name, value)
	}
	return h, nil
}

// validToken reports whether s is an HTTP token (a header name, a method).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v holds no control character but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
