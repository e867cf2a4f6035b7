package files_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

func stat(t *testing.T, p string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

func TestWriteCreatesDirsAndFile(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "a", "b", "db.env")
	res, err := files.Write(files.File{Path: dest, Content: []byte("x=1\n"), Mode: 0o440, DirMode: 0o750})
	if err != nil || !res.Written {
		t.Fatalf("Write: %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "x=1\n" {
		t.Fatalf("content %q", got)
	}
	if fi, _ := stat(t, dest); fi.Mode().Perm() != 0o440 || !fi.Mode().IsRegular() {
		t.Errorf("file mode %v", fi.Mode())
	}
	for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b")} {
		if fi, _ := stat(t, d); fi.Mode().Perm() != 0o750 {
			t.Errorf("%s mode %v, want 0750", d, fi.Mode().Perm())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(base, "a", "b", ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestUnchangedIsNotRewritten: same content, mode and owner leave the
// inode and mtime alone; any difference rewrites through a new inode.
func TestUnchangedIsNotRewritten(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "s.txt")
	f := files.File{Path: dest, Content: []byte("v1"), Mode: 0o400}
	if _, err := files.Write(f); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(dest, old, old); err != nil {
		t.Fatal(err)
	}
	fi1, st1 := stat(t, dest)
	res, err := files.Write(f)
	if err != nil || res.Written {
		t.Fatalf("identical write: %+v, %v", res, err)
	}
	fi2, st2 := stat(t, dest)
	if st1.Ino != st2.Ino || !fi2.ModTime().Equal(fi1.ModTime()) {
		t.Errorf("unchanged file was touched: inode %d->%d mtime %v->%v", st1.Ino, st2.Ino, fi1.ModTime(), fi2.ModTime())
	}

	for _, change := range []struct {
		name string
		f    files.File
	}{
		{"content", files.File{Path: dest, Content: []byte("v2"), Mode: 0o400}},
		{"same size content", files.File{Path: dest, Content: []byte("v3"), Mode: 0o400}},
		{"mode", files.File{Path: dest, Content: []byte("v3"), Mode: 0o440}},
	} {
		_, before := stat(t, dest)
		res, err := files.Write(change.f)
		if err != nil || !res.Written {
			t.Fatalf("%s change: %+v, %v", change.name, res, err)
		}
		fi, after := stat(t, dest)
		got, _ := os.ReadFile(dest)
		if before.Ino == after.Ino || !bytes.Equal(got, change.f.Content) || fi.Mode().Perm() != change.f.Mode {
			t.Errorf("%s change not applied atomically: inode %d->%d content %q mode %v", change.name, before.Ino, after.Ino, got, fi.Mode())
		}
	}
}

func TestOwnerAndGroup(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "owned")
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 { // root can give the file away, as the sidecar does for its app
		uid, gid = 1234, 5678
	}
	if _, err := files.Write(files.File{Path: dest, Content: []byte("x"), Mode: 0o400, UID: &uid, GID: &gid}); err != nil {
		t.Fatal(err)
	}
	_, st := stat(t, dest)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	res, err := files.Write(files.File{Path: dest, Content: []byte("x"), Mode: 0o400, UID: &uid, GID: &gid})
	if err != nil || res.Written {
		t.Fatalf("same owner rewrote: %+v %v", res, err)
	}
	if os.Geteuid() == 0 {
		other := 4321
		if res, err := files.Write(files.File{Path: dest, Content: []byte("x"), Mode: 0o400, UID: &other}); err != nil || !res.Written {
			t.Fatalf("owner change: %+v %v", res, err)
		}
		// An unset group is left as created: the writer's own.
		if _, st := stat(t, dest); int(st.Uid) != other || int(st.Gid) != os.Getegid() {
			t.Fatalf("after owner change %d:%d", st.Uid, st.Gid)
		}
	}
}

// TestSymlinkedParentRefused plays the hostile app: it replaces the
// destination's directory with a symlink to somewhere else. Nothing may be
// written there, and the error says why.
func TestSymlinkedParentRefused(t *testing.T) {
	base := t.TempDir()
	volume := filepath.Join(base, "volume")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{volume, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(volume, "app", "db.env")
	if _, err := files.Write(files.File{Path: dest, Content: []byte("good"), Mode: 0o400}); err != nil {
		t.Fatal(err)
	}

	// "becomes a symlink": the app swaps its directory for a link.
	if err := os.Rename(filepath.Join(volume, "app"), filepath.Join(base, "app-moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(volume, "app")); err != nil {
		t.Fatal(err)
	}
	_, err := files.Write(files.File{Path: dest, Content: []byte("secret"), Mode: 0o400})
	if !errors.Is(err, files.ErrSymlink) {
		t.Fatalf("write through symlinked parent: %v, want ErrSymlink", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside the volume: %v", entries)
	}
	if got, _ := os.ReadFile(filepath.Join(base, "app-moved", "db.env")); string(got) != "good" {
		t.Fatalf("old file changed: %q", got)
	}

	// "is a symlink" before the first write, with directories still to create.
	deep := filepath.Join(volume, "app", "x", "y", "tls.key")
	if _, err := files.Write(files.File{Path: deep, Content: []byte("k"), Mode: 0o400}); !errors.Is(err, files.ErrSymlink) {
		t.Fatalf("deep write: %v, want ErrSymlink", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("created a directory through the symlink: %v", err)
	}
}

// TestSymlinkDestinationReplaced: a destination that is itself a symlink
// is replaced by the secret file; the link's target is never written.
func TestSymlinkDestinationReplaced(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "target")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(base, "dest")
	if err := os.Symlink(target, dest); err != nil {
		t.Fatal(err)
	}
	if _, err := files.Write(files.File{Path: dest, Content: []byte("precious"), Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := stat(t, dest); !fi.Mode().IsRegular() {
		t.Fatalf("destination still a %v", fi.Mode().Type())
	}
	if got, _ := os.ReadFile(target); string(got) != "precious" {
		t.Fatalf("link target modified: %q", got)
	}
}

func TestFailureLeavesOldFile(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "d", "f")
	if _, err := files.Write(files.File{Path: dest, Content: []byte("old"), Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	// A regular file where a directory must be: the write fails before
	// anything is touched.
	if _, err := files.Write(files.File{Path: filepath.Join(dest, "child"), Content: []byte("new"), Mode: 0o600}); err == nil {
		t.Fatal("write below a regular file succeeded")
	}
	if got, _ := os.ReadFile(dest); string(got) != "old" {
		t.Fatalf("old file damaged: %q", got)
	}
	if _, err := files.Write(files.File{Path: "relative/path", Content: []byte("x")}); err == nil {
		t.Fatal("relative destination accepted")
	}
}

func TestCleanTempRemovesOnlyOurs(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "db.env")
	ours := filepath.Join(base, ".db.env.secrets-sidecar-tmp-0011223344556677")
	other := filepath.Join(base, ".other.secrets-sidecar-tmp-00")
	keep := filepath.Join(base, ".db.env.swp")
	for _, p := range []string{ours, other, keep, dest} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files.CleanTemp(dest)
	if _, err := os.Stat(ours); !errors.Is(err, fs.ErrNotExist) {
		t.Error("stale temp file kept")
	}
	for _, p := range []string{other, keep, dest} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

// TestReadersNeverSeePartialFiles rewrites a file continuously with
// contents of different sizes while readers read it in a tight loop: every
// read must be one complete version.
func TestReadersNeverSeePartialFiles(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "hot.env")
	versions := make([][]byte, 8)
	valid := map[string]bool{}
	for i := range versions {
		versions[i] = bytes.Repeat([]byte(fmt.Sprintf("v%d=%d\n", i, i)), 1+i*512)
		valid[string(versions[i])] = true
	}
	if _, err := files.Write(files.File{Path: dest, Content: versions[0], Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := os.ReadFile(dest)
				reads.Add(1)
				if err != nil || !valid[string(got)] {
					bad.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 400; i++ {
		if _, err := files.Write(files.File{Path: dest, Content: versions[i%len(versions)], Mode: 0o644}); err != nil {
			t.Error(err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d reads saw a missing, partial or empty file", bad.Load(), reads.Load())
	}
	t.Logf("%d reads, all complete", reads.Load())
}
