package files_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

// openSetDir opens a fresh destination directory.
func openSetDir(t *testing.T) (*files.Dir, string) {
	t.Helper()
	base := t.TempDir()
	d, err := files.OpenDir(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, base
}

// certSet is a set "tls" of three files whose content ends in v.
func certSet(v string) files.Set {
	return files.Set{Name: "tls", DirMode: 0o750, Files: []files.SetFile{
		{Name: "tls.crt", Content: []byte("cert " + v), Mode: 0o644},
		{Name: "tls.key", Content: []byte("key " + v), Mode: 0o600},
		{Name: "ca.crt", Content: []byte("chain " + v), Mode: 0o644},
	}}
}

// setDirs lists the entries of base named ..<set>_*.
func setDirs(t *testing.T, base, set string) []string {
	t.Helper()
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".."+set+"_") {
			out = append(out, e.Name())
		}
	}
	return out
}

func writeSet(t *testing.T, d *files.Dir, s files.Set) files.SetResult {
	t.Helper()
	res, err := d.WriteSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkStable fails unless every file of s reads through its stable name
// with its content and mode, and the stable name is the set's link.
func checkStable(t *testing.T, base string, s files.Set) {
	t.Helper()
	for _, f := range s.Files {
		p := filepath.Join(base, f.Name)
		if target, err := os.Readlink(p); err != nil || target != ".."+s.Name+".data/"+f.Name {
			t.Errorf("%s: link to %q (%v)", p, target, err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(f.Content) {
			t.Errorf("%s: %q, %v; want %q", p, got, err, f.Content)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != f.Mode {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, f.Mode)
		}
	}
}

// TestWriteSetBasic: a set is written behind stable links; the same set
// again writes nothing; a change makes one new directory, removes the old
// one and names the changed files; modes and owners are applied.
func TestWriteSetBasic(t *testing.T) {
	d, base := openSetDir(t)
	s := certSet("1")
	res := writeSet(t, d, s)
	if !res.Written || !res.Created || !slices.Equal(res.Changed, []string{"tls.crt", "tls.key", "ca.crt"}) {
		t.Fatalf("first write: %+v", res)
	}
	checkStable(t, base, s)
	first := setDirs(t, base, "tls")
	if len(first) != 1 {
		t.Fatalf("set directories %v, want one", first)
	}
	if fi, err := os.Lstat(filepath.Join(base, first[0])); err != nil || fi.Mode().Perm() != 0o750 || !fi.IsDir() {
		t.Fatalf("set directory %s: %v %v, want a 0750 directory", first[0], fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(base, "..tls.data")); err != nil || target != first[0] {
		t.Fatalf("..tls.data -> %q (%v), want %s", target, err, first[0])
	}

	if res := writeSet(t, d, s); res.Written || len(res.Changed) != 0 {
		t.Fatalf("same set again: %+v, want nothing written", res)
	}
	if got := setDirs(t, base, "tls"); !slices.Equal(got, first) {
		t.Fatalf("same set again: directories %v, want %v", got, first)
	}

	s2 := certSet("1")
	s2.Files[0].Content = []byte("cert 2")
	s2.Files[1].Content = []byte("key 2")
	if res := writeSet(t, d, s2); !res.Written || res.Created || !slices.Equal(res.Changed, []string{"tls.crt", "tls.key"}) {
		t.Fatalf("changed set: %+v, want tls.crt and tls.key changed", res)
	}
	checkStable(t, base, s2)
	second := setDirs(t, base, "tls")
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("after a change: directories %v, want one other than %s", second, first[0])
	}

	if os.Geteuid() != 0 {
		return // chown to another user needs root
	}
	uid, gid := 4242, 4343
	s3 := certSet("1")
	s3.Files[1].UID, s3.Files[1].GID = &uid, &gid
	if res := writeSet(t, d, s3); !res.Written {
		t.Fatalf("owner change: %+v, want written", res)
	}
	fi, err := os.Stat(filepath.Join(base, "tls.key")) // through the link
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("tls.key owned by %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if res := writeSet(t, d, s3); res.Written {
		t.Fatalf("same owners again: %+v, want nothing written", res)
	}
}

// outside makes a directory outside the destination with a canary file
// and returns both paths.
func outside(t *testing.T) (dir, canary string) {
	t.Helper()
	dir = t.TempDir()
	canary = filepath.Join(dir, "canary")
	if err := os.WriteFile(canary, []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, canary
}

func checkCanary(t *testing.T, canary string) {
	t.Helper()
	if got, err := os.ReadFile(canary); err != nil || string(got) != "canary" {
		t.Fatalf("outside canary %s: %q, %v", canary, got, err)
	}
}

// plantLeftovers makes a stale ..tls_old directory (with a link to the
// outside and a subdirectory) and a ..tls_x link to the outside directory.
func plantLeftovers(t *testing.T, base, out, canary string) {
	t.Helper()
	old := filepath.Join(base, "..tls_old")
	for _, err := range []error{
		os.MkdirAll(filepath.Join(old, "sub"), 0o755),
		os.WriteFile(filepath.Join(old, "tls.key"), []byte("old key"), 0o600),
		os.Symlink(canary, filepath.Join(old, "canary-link")),
		os.Symlink(out, filepath.Join(old, "sub", "dir-link")),
		os.Symlink(out, filepath.Join(base, "..tls_x")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteSetRemovesLeftoversWithoutFollowing: a stale set directory and
// a stale link to a directory outside are removed, themselves only.
func TestWriteSetRemovesLeftoversWithoutFollowing(t *testing.T) {
	d, base := openSetDir(t)
	out, canary := outside(t)
	plantLeftovers(t, base, out, canary)
	writeSet(t, d, certSet("1"))
	checkCanary(t, canary)
	for _, n := range []string{"..tls_old", "..tls_x"} {
		if _, err := os.Lstat(filepath.Join(base, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there (%v)", n, err)
		}
	}
	if got := setDirs(t, base, "tls"); len(got) != 1 {
		t.Fatalf("set directories %v, want only the live one", got)
	}
}

// TestCleanSets: leftovers planted next to a live set are removed, the
// live set and the outside are not touched.
func TestCleanSets(t *testing.T) {
	d, base := openSetDir(t)
	s := certSet("1")
	writeSet(t, d, s)
	live := setDirs(t, base, "tls")
	out, canary := outside(t)
	plantLeftovers(t, base, out, canary)
	tmpLink := filepath.Join(base, "..tls.data_tmp.0123456789abcdef")
	if err := os.Symlink(out, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := d.CleanSets("tls"); err != nil {
		t.Fatal(err)
	}
	checkCanary(t, canary)
	if got := setDirs(t, base, "tls"); !slices.Equal(got, live) {
		t.Fatalf("after CleanSets: %v, want %v", got, live)
	}
	if _, err := os.Lstat(tmpLink); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary data link still there (%v)", err)
	}
	checkStable(t, base, s)
}

// TestWriteSetReplacesForeignStableNames: a stable name that is a link to
// an outside file, a regular file or a FIFO becomes the set's link; the
// outside file is not written.
func TestWriteSetReplacesForeignStableNames(t *testing.T) {
	d, base := openSetDir(t)
	_, canary := outside(t)
	if err := os.Symlink(canary, filepath.Join(base, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "tls.key"), []byte("planted"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(base, "ca.crt"), 0o666); err != nil {
		t.Fatal(err)
	}
	s := certSet("1")
	writeSet(t, d, s)
	checkCanary(t, canary)
	checkStable(t, base, s)
	if res := writeSet(t, d, s); res.Written {
		t.Fatalf("second write: %+v, want nothing written", res)
	}
}

// TestWriteSetReplacesForeignDataLink: a data link pointing outside is
// replaced; the outside directory is neither written nor removed.
func TestWriteSetReplacesForeignDataLink(t *testing.T) {
	d, base := openSetDir(t)
	out, canary := outside(t)
	if err := os.Symlink(out, filepath.Join(base, "..tls.data")); err != nil {
		t.Fatal(err)
	}
	s := certSet("1")
	if res := writeSet(t, d, s); !res.Written || len(res.Changed) != 3 {
		t.Fatalf("write: %+v, want all three files written", res)
	}
	checkCanary(t, canary)
	if entries, err := os.ReadDir(out); err != nil || len(entries) != 1 {
		t.Fatalf("outside directory: %v, %v; want the canary alone", entries, err)
	}
	checkStable(t, base, s)
}

// TestWriteSetRepairsLinksOnly: with the data up to date, a missing or
// wrong stable link is repaired without a new set directory.
func TestWriteSetRepairsLinksOnly(t *testing.T) {
	d, base := openSetDir(t)
	s := certSet("1")
	writeSet(t, d, s)
	before := setDirs(t, base, "tls")
	if err := os.Remove(filepath.Join(base, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(before[0], "tls.key"), filepath.Join(base, "tls.key")+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(base, "tls.key")+".new", filepath.Join(base, "tls.key")); err != nil {
		t.Fatal(err)
	}
	if res := writeSet(t, d, s); !res.Written || len(res.Changed) != 0 {
		t.Fatalf("repair: %+v, want written, nothing changed", res)
	}
	if got := setDirs(t, base, "tls"); !slices.Equal(got, before) {
		t.Fatalf("repair made directories %v, had %v", got, before)
	}
	checkStable(t, base, s)
}

// TestWriteSetDirectoryAtStableName: a directory at a stable name is an
// error naming it, found before anything is written.
func TestWriteSetDirectoryAtStableName(t *testing.T) {
	d, base := openSetDir(t)
	dir := filepath.Join(base, "tls.key")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := d.WriteSet(certSet("1"))
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v, want one naming %s", err, dir)
	}
	if strings.Contains(err.Error(), "key 1") {
		t.Fatalf("error %q holds content", err)
	}
	if got := setDirs(t, base, "tls"); len(got) != 0 {
		t.Fatalf("set directories %v made before the error", got)
	}
}

// TestWriteSetRemovedFiles: a file dropped from the set loses its stable
// link; a name someone else took over is left alone.
func TestWriteSetRemovedFiles(t *testing.T) {
	d, base := openSetDir(t)
	s := certSet("1")
	writeSet(t, d, s)
	theirs := filepath.Join(base, "tls.crt")
	if err := os.Remove(theirs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(theirs, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Files = s.Files[1:2] // tls.key only
	res := writeSet(t, d, s)
	if !res.Written || !slices.Equal(res.Removed, []string{"ca.crt"}) {
		t.Fatalf("result %+v, want ca.crt removed", res)
	}
	if _, err := os.Lstat(filepath.Join(base, "ca.crt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ca.crt still there (%v)", err)
	}
	if got, err := os.ReadFile(theirs); err != nil || string(got) != "theirs" {
		t.Errorf("the other file: %q, %v", got, err)
	}
	checkStable(t, base, s)
}

// TestSetsShareADirectory: sets whose names are prefixes of each other's
// entries ("a", "a_b", "a.data", "a.data_tmp") never remove each other's.
func TestSetsShareADirectory(t *testing.T) {
	d, base := openSetDir(t)
	names := []string{"a", "a_b", "a.data", "a.data_tmp"}
	set := func(i int, v string) files.Set {
		return files.Set{Name: names[i], Files: []files.SetFile{{Name: fmt.Sprintf("f%d", i), Content: []byte(v), Mode: 0o600}}}
	}
	for round := range 3 {
		for i := range names {
			writeSet(t, d, set(i, fmt.Sprintf("%d-%d", i, round)))
		}
	}
	for i, n := range names {
		got, err := d.ReadSet(n, 1024)
		want := fmt.Sprintf("%d-2", i)
		if err != nil || len(got) != 1 || string(got[fmt.Sprintf("f%d", i)]) != want {
			t.Errorf("set %s: %q, %v; want f%d=%s", n, got, err, i, want)
		}
		if err := d.CleanSets(n); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range names {
		if got, err := d.ReadSet(n, 1024); err != nil || len(got) != 1 {
			t.Errorf("set %s after every CleanSets: %q, %v", n, got, err)
		}
		if dirs := setDirs(t, base, n); len(dirs) == 0 {
			t.Errorf("set %d (%s) lost its directory", i, n)
		}
	}
}

// TestReadSet: the set reads back through its data link; a stable link
// with another target, or a missing set, is refused.
func TestReadSet(t *testing.T) {
	d, base := openSetDir(t)
	if _, err := d.ReadSet("tls", 1024); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("never written: %v, want not exist", err)
	}
	s := certSet("1")
	writeSet(t, d, s)
	got, err := d.ReadSet("tls", 1024)
	if err != nil || len(got) != 3 || string(got["tls.key"]) != "key 1" {
		t.Fatalf("ReadSet: %q, %v", got, err)
	}
	if _, err := d.ReadSet("tls", 3); !errors.Is(err, files.ErrTooLarge) {
		t.Fatalf("limit 3: %v, want too large", err)
	}
	live := setDirs(t, base, "tls")[0]
	key := filepath.Join(base, "tls.key")
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(live+"/tls.key", key); err != nil { // right file, not through the data link
		t.Fatal(err)
	}
	if _, err := d.ReadSet("tls", 1024); !errors.Is(err, files.ErrNotSet) || !strings.Contains(err.Error(), key) {
		t.Fatalf("foreign stable link: %v, want ErrNotSet naming %s", err, key)
	}
	if err := os.Remove(filepath.Join(base, "..tls.data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(base, "..tls.data")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadSet("tls", 1024); !errors.Is(err, files.ErrNotSet) {
		t.Fatalf("foreign data link: %v, want ErrNotSet", err)
	}
}

// TestSetNames: names that are not one plain component, or start with a
// dot, are refused before anything is written.
func TestSetNames(t *testing.T) {
	d, base := openSetDir(t)
	for _, n := range []string{"", ".", "..", ".hidden", "a/b", "a b", "a\x00", strings.Repeat("x", 201)} {
		if _, err := d.WriteSet(files.Set{Name: n}); err == nil {
			t.Errorf("set name %q accepted", n)
		}
		s := certSet("1")
		s.Files[0].Name = n
		if _, err := d.WriteSet(s); err == nil {
			t.Errorf("file name %q accepted", n)
		}
	}
	s := certSet("1")
	s.Files[1].Name = s.Files[0].Name
	if _, err := d.WriteSet(s); err == nil {
		t.Error("a file given twice accepted")
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Fatalf("refused sets wrote %v", entries)
	}
}

// TestSetReadersNeverSeeTwoSets writes 200 successive sets whose files a
// and b hold the same counter. Readers that open ..c.data once per read
// always see a and b match; readers by stable name may not (counted).
func TestSetReadersNeverSeeTwoSets(t *testing.T) {
	d, base := openSetDir(t)
	set := func(i int) files.Set {
		v := []byte(fmt.Sprintf("%d", i))
		return files.Set{Name: "c", Files: []files.SetFile{{Name: "a", Content: v, Mode: 0o644}, {Name: "b", Content: v, Mode: 0o644}}}
	}
	writeSet(t, d, set(0))
	done := make(chan struct{})
	var torn, reads, gone, stableMismatch, stableReads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !isDone(done) {
				a, b, err := readThroughData(filepath.Join(base, "..c.data"))
				switch {
				case errors.Is(err, fs.ErrNotExist):
					gone.Add(1) // the set opened was removed meanwhile
				case err != nil:
					t.Error(err)
					return
				case a != b:
					torn.Add(1)
				default:
					reads.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for !isDone(done) {
			a, errA := os.ReadFile(filepath.Join(base, "a"))
			b, errB := os.ReadFile(filepath.Join(base, "b"))
			if errA == nil && errB == nil {
				stableReads.Add(1)
				if string(a) != string(b) {
					stableMismatch.Add(1)
				}
			}
		}
	})
	for i := 1; i <= 200; i++ {
		if _, err := d.WriteSet(set(i)); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	wg.Wait()
	if torn.Load() != 0 {
		t.Fatalf("%d reads through one open ..c.data saw two sets", torn.Load())
	}
	t.Logf("through ..c.data: %d consistent reads, %d of a removed set; by stable name: %d of %d reads saw two sets",
		reads.Load(), gone.Load(), stableMismatch.Load(), stableReads.Load())
}

func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// readThroughData opens the data link's directory once and reads a and b
// relative to it.
func readThroughData(data string) (a, b string, err error) {
	dir, err := os.Open(data)
	if err != nil {
		return "", "", err
	}
	defer dir.Close()
	fsys := os.DirFS(fmt.Sprintf("/proc/self/fd/%d", dir.Fd()))
	ca, err := fs.ReadFile(fsys, "a")
	if err != nil {
		return "", "", err
	}
	cb, err := fs.ReadFile(fsys, "b")
	if err != nil {
		return "", "", err
	}
	return string(ca), string(cb), nil
}

// A leftover the writer cannot remove (nested deeper than it goes) does
// not undo the write: the set is live, and the error says only that
// leftovers stayed (ErrLeftovers), so a caller still tells the application.
func TestWriteSetLeftoversDoNotUndoTheWrite(t *testing.T) {
	d, base := openSetDir(t)
	deep := filepath.Join(base, "..tls_19990101T000000-0000000000000000")
	for range 20 {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	s := certSet("1")
	res, err := d.WriteSet(s)
	if !errors.Is(err, files.ErrLeftovers) {
		t.Fatalf("err = %v, want ErrLeftovers", err)
	}
	if !res.Written || !res.Created || len(res.Changed) != 3 {
		t.Errorf("result %+v: the set was written", res)
	}
	checkStable(t, base, s)
}
