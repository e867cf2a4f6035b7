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
