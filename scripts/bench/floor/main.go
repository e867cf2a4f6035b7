// Command floor is the init-container floor of `make bench`: the least a
// program can do for what `once` does. It reads N KV v2 secrets with
// -workers (default 16) workers over one kept-alive HTTP client and writes each to its file
// atomically (temp file, fsync, rename), with no config, template engine,
// logging or retries, then exits. Process start counts, as for the tools.
//
//	VAULT_ADDR=... VAULT_TOKEN=... floor -n 1000 -prefix bench -out DIR [-workers 16]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// fields are the secret's fields in the order the file lists them (the
// benchmark's template).
var fields = []struct{ env, key string }{
	{"USER", "user"}, {"PASS", "pass"}, {"HOST", "host"}, {"PORT", "port"}, {"DB", "db"},
}

func main() {
	n := flag.Int("n", 0, "secrets to read (secret/<prefix>/s0000...)")
	prefix := flag.String("prefix", "bench", "path prefix in secret/")
	out := flag.String("out", "", "output directory")
	workers := flag.Int("workers", 16, "secrets read and written at the same time")
	flag.Parse()
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if *n <= 0 || *out == "" || *workers <= 0 || addr == "" || token == "" {
		fmt.Fprintln(os.Stderr, "floor: -n, -out, a positive -workers, VAULT_ADDR and VAULT_TOKEN are required")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *workers}
	c := &http.Client{Transport: tr}
	next := make(chan int)
	errs := make(chan error, *n)
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for i := range next {
				if err := one(c, addr, token, *prefix, *out, i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range *n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func one(c *http.Client, addr, token, prefix, out string, i int) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, fmt.Sprintf("%s/v1/secret/data/%s/s%04d", addr, prefix, i), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("secret %d: %s", i, resp.Status)
	}
	var body struct {
		Data struct {
			Data map[string]string `json:"data"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "%s=%s\n", f.env, body.Data.Data[f.key])
	}
	return writeAtomic(filepath.Join(out, fmt.Sprintf("s%04d.env", i)), b.String())
}

func writeAtomic(path, content string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.WriteString(content)
	cerr := f.Chmod(0o400)
	serr := f.Sync()
	if err := errors.Join(werr, cerr, serr, f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
