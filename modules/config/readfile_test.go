package config_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// returns fails the test when f has not returned after a minute: reading a
// FIFO used to block for ever. The bound is a deadlock guard, not a timing
// assertion.
func returns[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s: still blocked after a minute", what)
	}
	var zero T
	return zero
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sparse makes a file of size bytes without writing them.
func sparse(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadRefusesUnboundedInput: a config that is a device, a FIFO, a
// directory or larger than 16 MiB is refused at once, with the file and
// the cap named. /dev/zero used to grow the process without end and a
// FIFO to block it for ever.
func TestLoadRefusesUnboundedInput(t *testing.T) {
	dir := t.TempDir()
	fifo := mkfifo(t, filepath.Join(dir, "fifo.yaml"))
	big := sparse(t, filepath.Join(dir, "big.yaml"), config.MaxConfigFile+1)
	link := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path, want string }{
		{"dev-zero", "/dev/zero", "/dev/zero: cannot read config: not a regular file (a character device)"},
		{"link-to-dev-zero", link, link + ": cannot read config: not a regular file (a character device)"},
		{"fifo", fifo, fifo + ": cannot read config: not a regular file (a named pipe)"},
		{"directory", dir, dir + ": cannot read config: not a regular file (a directory)"},
		{"over-16MiB", big, fmt.Sprintf("%s: cannot read config: file too large: %d bytes, the cap is 16 MiB", big, config.MaxConfigFile+1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := returns(t, c.path, func() error { _, err := config.Loader{LookupEnv: noEnv}.Load(c.path); return err })
			var probs config.Problems
			if !errors.As(err, &probs) || probs.Error() != c.want {
				t.Errorf("Load(%s) = %v\nwant %s", c.path, err, c.want)
			}
		})
	}
	// At the cap exactly is still read (and then judged as YAML).
	exact := filepath.Join(dir, "exact.yaml")
	body := "secrets: [{name: a, path: p, destination: /d/a, key: k}]\n"
	if err := os.WriteFile(exact, []byte(body+strings.Repeat("#", config.MaxConfigFile-len(body))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (config.Loader{LookupEnv: noEnv}).Load(exact); err != nil {
		t.Errorf("a config of exactly 16 MiB: %v", err)
	}
}

// endless is standard input that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// TestLoadReaderIsCapped: validate - reads standard input, capped too.
func TestLoadReaderIsCapped(t *testing.T) {
	_, err := config.Loader{LookupEnv: noEnv}.LoadReader(config.Stdin, endless{})
	want := "<stdin>: cannot read config: file too large: more than the cap of 16 MiB"
	if err == nil || err.Error() != want {
		t.Errorf("endless standard input: %v, want %s", err, want)
	}
	cfg, err := config.Loader{LookupEnv: noEnv}.LoadReader(config.Stdin,
		strings.NewReader("secrets: [{name: a, path: p, destination: /d/a, key: k}]\n"))
	if err != nil || len(cfg.Secrets) != 1 {
		t.Errorf("a config on standard input: %v", err)
	}
}

// TestTemplateFileRefusesUnboundedInput: a template_file that is a FIFO, a
// device or larger than 1 MiB is a problem at its line, naming the cap.
func TestTemplateFileRefusesUnboundedInput(t *testing.T) {
	dir := t.TempDir()
	mkfifo(t, filepath.Join(dir, "fifo.tmpl"))
	sparse(t, filepath.Join(dir, "big.tmpl"), config.MaxTemplateFile+1)
	if err := os.WriteFile(filepath.Join(dir, "ok.tmpl"), []byte(strings.Repeat("x", config.MaxTemplateFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`secrets:
  - {name: a, path: p, destination: /d/a, template_file: fifo.tmpl}
  - {name: b, path: p, destination: /d/b, template_file: /dev/zero}
  - {name: c, path: p, destination: /d/c, template_file: big.tmpl}
  - {name: d, path: p, destination: /d/d, template_file: ok.tmpl}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := returns(t, "template FIFO", func() error { _, err := config.Loader{LookupEnv: noEnv}.Load(cfg); return err })
	want := strings.Join([]string{
		cfg + `:2: secrets[0].template_file: cannot read "fifo.tmpl": not a regular file (a named pipe)`,
		cfg + `:3: secrets[1].template_file: cannot read "/dev/zero": not a regular file (a character device)`,
		cfg + fmt.Sprintf(`:4: secrets[2].template_file: cannot read "big.tmpl": file too large: %d bytes, the cap is 1 MiB`, config.MaxTemplateFile+1),
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// TestReadFile: the shared reader follows links (Kubernetes' ..data) but
// reads regular files only, capped.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "..data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "token"), []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "token")
	if err := os.Symlink("..data/token", link); err != nil {
		t.Fatal(err)
	}
	got, err := config.ReadFile(link, 3)
	if err != nil || string(got) != "tok" {
		t.Fatalf("through a link: %q %v", got, err)
	}
	if _, err := config.ReadFile(link, 2); !errors.Is(err, config.ErrTooLarge) || !strings.Contains(err.Error(), "the cap is 2 bytes") {
		t.Errorf("over the cap: %v", err)
	}
	fifo := mkfifo(t, filepath.Join(dir, "fifo"))
	if err := returns(t, "fifo", func() error { _, err := config.ReadFile(fifo, 64); return err }); !errors.Is(err, config.ErrNotRegular) {
		t.Errorf("fifo: %v", err)
	}
	if _, err := config.ReadFile(filepath.Join(dir, "missing"), 64); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if got, err := config.ReadCapped(io.LimitReader(endless{}, 10), "r", 10); err != nil || len(got) != 10 {
		t.Errorf("exactly the cap: %d %v", len(got), err)
	}
}
