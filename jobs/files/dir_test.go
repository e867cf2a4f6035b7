package files_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

// TestResultFlags: Created only when nothing was there, ContentChanged
// only when something with other content was, Written for any repair.
func TestResultFlags(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "s")
	write := func(content string, mode fs.FileMode, uid *int) files.Result {
		t.Helper()
		res, err := files.Write(files.File{Path: dest, Content: []byte(content), Mode: mode, UID: uid})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	steps := []struct {
		name string
		do   func() files.Result
		want files.Result
	}{
		{"created", func() files.Result { return write("v1", 0o600, nil) }, files.Result{Written: true, Created: true}},
		{"unchanged", func() files.Result { return write("v1", 0o600, nil) }, files.Result{}},
		{"mode only", func() files.Result { return write("v1", 0o640, nil) }, files.Result{Written: true}},
		{"same size content", func() files.Result { return write("v2", 0o640, nil) }, files.Result{Written: true, ContentChanged: true}},
		{"content and mode", func() files.Result { return write("v3 longer", 0o400, nil) }, files.Result{Written: true, ContentChanged: true}},
	}
	if os.Geteuid() == 0 {
		other := 4242
		steps = append(steps, struct {
			name string
			do   func() files.Result
			want files.Result
		}{"owner only", func() files.Result { return write("v3 longer", 0o400, &other) }, files.Result{Written: true}})
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Errorf("%s: %+v, want %+v", s.name, got, s.want)
		}
	}
	// Something other than a regular file counts as changed content.
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", dest); err != nil {
		t.Fatal(err)
	}
	if got := write("v3 longer", 0o400, nil); got != (files.Result{Written: true, ContentChanged: true}) {
		t.Errorf("symlink replaced: %+v", got)
	}
}

// TestFIFODestination: a FIFO at the destination neither blocks the write
// nor is read; it is replaced by the file.
func TestFIFODestination(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(dest, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := writeWithin(t, files.File{Path: dest, Content: []byte("secret"), Mode: 0o600})
	if err != nil || res != (files.Result{Written: true, ContentChanged: true}) {
		t.Fatalf("FIFO destination: %+v %v", res, err)
	}
	if fi, _ := stat(t, dest); !fi.Mode().IsRegular() {
		t.Fatalf("still a %v", fi.Mode().Type())
	}
}

// TestDeviceDestination: as root, a device node at the destination is
// replaced without being read (a /dev/zero would never end).
func TestDeviceDestination(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "zero")
	if os.Geteuid() != 0 {
		// Only root can make a device node; the same code path is the
		// FIFO's (TestFIFODestination). Prove the node kind is refused
		// for reading through a socket instead, which anyone can make.
		dest = filepath.Join(dir, "sock")
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: dest}); err != nil {
			t.Fatal(err)
		}
	} else if err := unix.Mknod(dest, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil { // /dev/zero
		t.Fatal(err)
	}
	res, err := writeWithin(t, files.File{Path: dest, Content: []byte("secret"), Mode: 0o600})
	if err != nil || res != (files.Result{Written: true, ContentChanged: true}) {
		t.Fatalf("special file destination: %+v %v", res, err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "secret" {
		t.Fatalf("content %q", got)
	}
}

// writeWithin fails the test when a write blocks.
func writeWithin(t *testing.T, f files.File) (files.Result, error) {
	t.Helper()
	type result struct {
		res files.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := files.Write(f)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("the write blocked on the destination")
		return files.Result{}, nil
	}
}

// TestDirectoryDestination: a directory at the destination is an error
// saying so; it and its content are left alone, and no temp file stays.
func TestDirectoryDestination(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "db.env")
	if err := os.MkdirAll(filepath.Join(dest, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := files.Write(files.File{Path: dest, Content: []byte("x"), Mode: 0o600})
	if err == nil || !strings.Contains(err.Error(), dest+": destination is a directory") {
		t.Fatalf("want %q, got %v", dest+": destination is a directory", err)
	}
	if fi, _ := stat(t, filepath.Join(dest, "inner")); !fi.IsDir() {
		t.Fatal("the directory's content changed")
	}
	if entries, _ := os.ReadDir(base); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestSymlinkInParentAppearsBetweenWrites: a parent that is a directory
// for one write and a symlink for the next is refused the second time,
// and the link's target (file or directory) is neither changed nor
// written into, whatever component the link replaces.
func TestSymlinkInParentAppearsBetweenWrites(t *testing.T) {
	base := t.TempDir()
	vol := filepath.Join(base, "vol")
	victimDir := filepath.Join(base, "victim-dir")
	victimFile := filepath.Join(base, "victim.key")
	if err := os.Mkdir(victimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victimFile, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(vol, "a", "b", "x")
	for i, swap := range []string{"a", "a/b"} {
		for _, target := range []string{victimDir, victimFile, filepath.Join(base, "missing")} {
			if _, err := files.Write(files.File{Path: dest, Content: []byte("v"), Mode: 0o600, DirMode: 0o755}); err != nil {
				t.Fatalf("%d: %v", i, err)
			}
			link := filepath.Join(vol, swap)
			if err := os.Rename(link, filepath.Join(base, "moved-"+strings.ReplaceAll(swap, "/", "-")+filepath.Base(target))); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			_, err := files.Write(files.File{Path: dest, Content: []byte("v"), Mode: 0o600, DirMode: 0o755})
			if !errors.Is(err, files.ErrSymlink) || !strings.Contains(err.Error(), link+" -> "+target) {
				t.Fatalf("%s -> %s: %v, want ErrSymlink naming the link", swap, target, err)
			}
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			if swap == "a/b" {
				os.RemoveAll(filepath.Join(vol, "a"))
			}
		}
	}
	if fi, _ := stat(t, victimDir); fi.Mode() != fs.ModeDir|0o700 {
		t.Errorf("victim directory now %v", fi.Mode())
	}
	if entries, _ := os.ReadDir(victimDir); len(entries) != 0 {
		t.Errorf("written into the victim directory: %v", entries)
	}
	if fi, _ := stat(t, victimFile); fi.Mode() != 0o600 {
		t.Errorf("victim file now %v", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(base, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dangling link's target was created: %v", err)
	}
}

// TestOpenedDirIsNotRedirected: once a Dir is open, replacing its path
// with a symlink moves nothing: the write lands in the opened directory
// (wherever it was moved), never at the link's target.
func TestOpenedDirIsNotRedirected(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "dir")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d, err := files.OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	moved := filepath.Join(base, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(moved, ".s"+".secrets-sidecar-tmp-00"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := d.Write(files.Entry{Name: "s", Content: []byte("v"), Mode: 0o600})
	if err != nil || !res.Created {
		t.Fatalf("%+v %v", res, err)
	}
	d.CleanTemp("s")
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("redirected to the link's target: %v", entries)
	}
	if entries, _ := os.ReadDir(moved); len(entries) != 1 || entries[0].Name() != "s" {
		t.Fatalf("the opened directory holds %v, want just s", entries)
	}
	if fi, err := d.Lstat("s"); err != nil || !fi.Mode().IsRegular() || fi.Size() != 1 {
		t.Fatalf("Lstat: %v %v", fi, err)
	}
	if _, err := d.Lstat("../escape"); err == nil {
		t.Fatal("Lstat accepted a path")
	}
	if _, err := d.Write(files.Entry{Name: "../escape", Content: []byte("v"), Mode: 0o600}); err == nil {
		t.Fatal("Write accepted a path")
	}
}

// TestCleanTempNeverFollows: a symlink named like a temporary file is
// removed as a link; its target stays.
func TestCleanTempNeverFollows(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(base, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(vol, ".x.secrets-sidecar-tmp-aa")); err != nil {
		t.Fatal(err)
	}
	// A directory named like one is not removed either (unlinkat without AT_REMOVEDIR).
	if err := os.Mkdir(filepath.Join(vol, ".x.secrets-sidecar-tmp-bb"), 0o755); err != nil {
		t.Fatal(err)
	}
	files.CleanTemp(filepath.Join(vol, "x"))
	if _, err := os.Lstat(filepath.Join(vol, ".x.secrets-sidecar-tmp-aa")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("link kept: %v", err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "keep" {
		t.Errorf("target: %q %v", got, err)
	}
	// Through a symlinked parent, nothing at all.
	if err := os.Symlink(vol, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	files.CleanTemp(filepath.Join(base, "link", "x"))
	if _, err := os.Lstat(filepath.Join(vol, ".x.secrets-sidecar-tmp-bb")); err != nil {
		t.Errorf("cleaned through a symlinked parent: %v", err)
	}
}

// TestDirModeIgnoresUmask: directories get exactly DirMode.
func TestDirModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	base := t.TempDir()
	dest := filepath.Join(base, "a", "b", "x")
	if _, err := files.Write(files.File{Path: dest, Content: []byte("v"), Mode: 0o644, DirMode: 0o751}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b")} {
		if fi, _ := stat(t, d); fi.Mode().Perm() != 0o751 {
			t.Errorf("%s: %v, want 0751", d, fi.Mode().Perm())
		}
	}
	// An existing directory keeps its mode.
	if err := os.Chmod(filepath.Join(base, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := files.Write(files.File{Path: dest, Content: []byte("v2"), Mode: 0o644, DirMode: 0o751}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := stat(t, filepath.Join(base, "a")); fi.Mode().Perm() != 0o700 {
		t.Errorf("existing directory chmod'ed to %v", fi.Mode().Perm())
	}
}

// TestOpenDir: the opened directory, missing ones made, and its errors.
func TestOpenDir(t *testing.T) {
	base := t.TempDir()
	if _, err := files.OpenDir(filepath.Join(base, "missing"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing without create: %v", err)
	}
	if _, err := files.OpenDir("relative", 0o700); err == nil {
		t.Error("relative path accepted")
	}
	plain := filepath.Join(base, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := files.OpenDir(filepath.Join(plain, "sub"), 0o700); err == nil || !strings.Contains(err.Error(), plain+" is not a directory") {
		t.Errorf("below a file: %v", err)
	}
	d, err := files.OpenDir(filepath.Join(base, "new", "dir"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || d.Path() != filepath.Join(base, "new", "dir") {
		t.Fatalf("%v %v %s", fi, err, d.Path())
	}
}
