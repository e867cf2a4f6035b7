package files_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

// Check agrees with Write: what it calls up to date, Write leaves alone,
// and what it calls changed, Write rewrites; and it never creates,
// follows or changes anything itself.
func TestCheckAgreesWithWrite(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "missing", "db.env")
	f := files.File{Path: dest, Content: []byte("A=1\n"), Mode: 0o640}

	diff, old, err := files.Check(f, 1<<10)
	if err != nil || diff.Exists || old != nil || diff.UpToDate() {
		t.Fatalf("missing directory: %+v, %q, %v; want a file to create", diff, old, err)
	}
	if _, err := os.Lstat(filepath.Dir(dest)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Check made the directory: %v", err)
	}
	if res := diff.Result(); !res.Written || !res.Created || res.ContentChanged {
		t.Errorf("missing file: Result %+v, want written and created", res)
	}
	wres, err := files.Write(f)
	if err != nil {
		t.Fatal(err)
	}
	if wres != diff.Result() {
		t.Errorf("Write did %+v, Check said %+v", wres, diff.Result())
	}

	diff, _, err = files.Check(f, 1<<10)
	if err != nil || !diff.UpToDate() {
		t.Fatalf("after the write: %+v, %v; want up to date", diff, err)
	}

	// New content and a new mode: both differ, the old content comes back.
	if err := os.Chmod(dest, 0o600); err != nil {
		t.Fatal(err)
	}
	g := f
	g.Content = []byte("A=2\n")
	diff, old, err = files.Check(g, 1<<10)
	if err != nil || !diff.Content || !diff.Mode || diff.Owner || diff.Group || string(old) != "A=1\n" {
		t.Fatalf("changed: %+v, old %q, %v; want content and mode, old A=1", diff, old, err)
	}
	want := diff.Result()
	if wres, err := files.Write(g); err != nil || wres != want {
		t.Fatalf("Write did %+v (%v), Check said %+v", wres, err, want)
	}

	// The same size, other bytes: still a content change.
	h := g
	h.Content = []byte("A=3\n")
	if diff, _, err = files.Check(h, 1<<10); err != nil || !diff.Content || diff.Mode {
		t.Errorf("same size, other content: %+v, %v", diff, err)
	}

	// An owner it would change (another uid than the file's).
	other := os.Getuid() + 1
	h.Content, h.UID = g.Content, &other
	if diff, _, err = files.Check(h, 1<<10); err != nil || diff.Content || !diff.Owner {
		t.Errorf("other owner: %+v, %v; want only the owner", diff, err)
	}

	// Larger than the limit: an error, not a partial read.
	if _, _, err := files.Check(files.File{Path: dest, Content: []byte("x"), Mode: 0o640}, 2); !errors.Is(err, files.ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
}

// A link or a FIFO at the destination is reported as what it is, never
// followed or opened for reading; a link among the parents is refused.
func TestCheckDoesNotFollow(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "target")
	if err := os.WriteFile(target, []byte("A=1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	diff, old, err := files.Check(files.File{Path: link, Content: []byte("A=1\n"), Mode: 0o640}, 1<<10)
	if err != nil || !diff.Exists || diff.Kind != os.ModeSymlink || diff.UpToDate() || old != nil {
		t.Errorf("link: %+v, %q, %v; want a link that a write replaces", diff, old, err)
	}
	fifo := filepath.Join(base, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	diff, _, err = files.Check(files.File{Path: fifo, Content: []byte("x"), Mode: 0o600}, 1<<10)
	if err != nil || diff.Kind != os.ModeNamedPipe {
		t.Errorf("fifo: %+v, %v", diff, err)
	}
	dirLink := filepath.Join(base, "dirlink")
	if err := os.Symlink(base, dirLink); err != nil {
		t.Fatal(err)
	}
	if _, _, err := files.Check(files.File{Path: filepath.Join(dirLink, "target"), Content: []byte("A=1\n"), Mode: 0o640}, 1<<10); !errors.Is(err, files.ErrSymlink) {
		t.Errorf("a link among the parents: %v, want ErrSymlink", err)
	}
	if _, _, err := files.Check(files.File{Path: base, Content: nil, Mode: 0o640}, 1<<10); err == nil {
		t.Error("a directory at the destination: no error")
	}
}
