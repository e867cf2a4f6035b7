package files

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetMadeMode: a directory opened right after mkdirat is chmod'ed only
// when it can be the one just made (ours, empty, no more open than asked):
// one the app swapped in keeps its mode.
func TestSetMadeMode(t *testing.T) {
	base := t.TempDir()
	for _, c := range []struct {
		name    string
		mode    uint32
		content bool
		want    uint32
	}{
		{"made and narrowed by the umask", 0o700, false, 0o755},
		{"already right", 0o755, false, 0o755},
		{"not empty: swapped in", 0o700, true, 0o700},
		{"more open than asked: swapped in", 0o777, false, 0o777},
	} {
		dir := filepath.Join(base, c.name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, os.FileMode(c.mode)); err != nil {
			t.Fatal(err)
		}
		if c.content {
			if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		fd, err := unix.Open(dir, dirFlags, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := setMadeMode(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		if c.content && isEmpty(fd) { // setMadeMode rewound: the entry is seen again
			t.Errorf("%s: isEmpty after rewinding", c.name)
		}
		unix.Close(fd)
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := uint32(fi.Mode().Perm()); got != c.want {
			t.Errorf("%s: %o, want %o", c.name, got, c.want)
		}
	}
}

// TestWalkMatchesOpenat2: the component walk (the fallback when openat2 is
// missing or refuses) and the fast path open the directory at the path.
func TestWalkMatchesOpenat2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(dir, &want); err != nil {
		t.Fatal(err)
	}
	check := func(name string, fd int) {
		t.Helper()
		defer unix.Close(fd)
		var got unix.Stat_t
		if err := unix.Fstat(fd, &got); err != nil {
			t.Fatal(err)
		}
		if got.Ino != want.Ino || got.Dev != want.Dev {
			t.Errorf("%s opened %d:%d, want %d:%d", name, got.Dev, got.Ino, want.Dev, want.Ino)
		}
	}
	slow, err := walk(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("walk", slow)
	if fast, err := openat2NoSymlinks(dir); err == nil {
		check("openat2", fast)
	} else {
		t.Logf("openat2 unavailable here (%v): the walk is the only path", err)
	}
}
