package vault

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// TestCredentialFilesAreBounded: a credential file that is a FIFO, a
// device or larger than 64 KiB is refused at once, naming the file (and
// the cap); a link to a regular file (Kubernetes' ..data) is followed.
// A FIFO used to block the login for ever, /dev/zero to grow the process
// without end.
func TestCredentialFilesAreBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "secret-id.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := writeFile(t, dir, "big", strings.Repeat("x", config.MaxCredentialFile+1))
	ok := writeFile(t, dir, "ok", " s.token\n")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, "vault auth: read secret_id file: " + fifo + ": not a regular file (a named pipe)"},
		{"/dev/zero", "vault auth: read secret_id file: /dev/zero: not a regular file (a character device)"},
		{big, "vault auth: read secret_id file: " + big + ": file too large: 65538 bytes, the cap is 64 KiB"},
	} {
		done := make(chan error, 1)
		go func() { _, err := readCredential("secret_id file", c.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || err.Error() != c.want {
				t.Errorf("%s: %v\nwant %s", c.path, err, c.want)
			}
		case <-time.After(time.Minute): // a deadlock guard, not a timing assertion
			t.Fatalf("%s: the read still blocks after a minute", c.path)
		}
	}
	v, err := readCredential("secret_id file", link)
	if err != nil || v.Reveal() != "s.token" {
		t.Errorf("through a link: %q %v", v.Reveal(), err)
	}
}
