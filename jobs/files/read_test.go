package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadNoFollow(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "pid")
	if err := os.WriteFile(plain, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, fi, err := ReadNoFollow(plain, 64)
	if err != nil || string(data) != "1234\n" || fi.Size() != 5 {
		t.Fatalf("plain file: %q %v", data, err)
	}

	link := filepath.Join(dir, "link")
	if err := os.Symlink(plain, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadNoFollow(link, 64); !errors.Is(err, ErrSymlinkFile) {
		t.Errorf("symlink: %v, want ErrSymlinkFile", err)
	}

	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 65)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadNoFollow(big, 64); !errors.Is(err, ErrTooLarge) {
		t.Errorf("65 bytes with limit 64: %v, want ErrTooLarge", err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadNoFollow(fifo, 64); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v, want a refusal that does not block", err)
	}
	if _, _, err := ReadNoFollow(dir, 64); err == nil {
		t.Error("a directory was read")
	}
	if _, _, err := ReadNoFollow(filepath.Join(dir, "missing"), 64); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v, want ErrNotExist", err)
	}
}

// TestDirReadNoFollow: reading an entry of an opened directory follows no
// link, reads only regular files and reports a missing one as not-exist.
func TestDirReadNoFollow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "f"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data, fi, err := d.ReadNoFollow("f", 64)
	if err != nil || string(data) != "data" || fi.Mode().Perm() != 0o640 {
		t.Errorf("regular file: %q %v %v", data, fi, err)
	}
	if _, _, err := d.ReadNoFollow("link", 64); !errors.Is(err, ErrSymlinkFile) {
		t.Errorf("link: %v, want ErrSymlinkFile", err)
	}
	if _, _, err := d.ReadNoFollow("sub", 64); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, _, err := d.ReadNoFollow("missing", 64); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v, want not-exist", err)
	}
	if _, _, err := d.ReadNoFollow("../f", 64); err == nil {
		t.Error("a name with a slash was accepted")
	}
	if _, _, err := d.ReadNoFollow("f", 2); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
}
