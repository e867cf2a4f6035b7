package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetEntryNamesAreDisjoint: no name one set makes (its directories,
// data link, temporary data links, stable links and their temporary
// links) is taken for a leftover of another set, for names built to
// collide.
func TestSetEntryNamesAreDisjoint(t *testing.T) {
	sets := []string{"a", "a_b", "a.data", "a.data_tmp", "a.data_tmp.", "a_tmp", "a-b", "a_b_c", "data", "a.", "a_"}
	made := map[string]string{} // name -> the set that makes it
	for _, s := range sets {
		dir, err := newSetDirName(s)
		if err != nil {
			t.Fatal(err)
		}
		suffix, err := randomHex()
		if err != nil {
			t.Fatal(err)
		}
		stableTemp, err := tempName("f")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{dir, dataLinkName(s), dataLinkName(s) + dataTempInfix + suffix, "f", stableTemp} {
			made[n] = s
		}
		if !isSetDirName(s, dir) || !isDataTemp(s, dataLinkName(s)+dataTempInfix+suffix) {
			t.Errorf("set %s does not recognise its own names", s)
		}
	}
	for n, owner := range made {
		for _, s := range sets {
			if s == owner {
				continue
			}
			if isSetDirName(s, n) || isDataTemp(s, n) {
				t.Errorf("set %s would remove %s, made by set %s", s, n, owner)
			}
		}
	}
}

// TestRemoveAllBounded: a leftover nested deeper than maxRemoveDepth is
// an error naming it, not a recursion without end; a shallower one with
// links to the outside is removed, the outside is not.
func TestRemoveAllBounded(t *testing.T) {
	base, out := t.TempDir(), t.TempDir()
	canary := filepath.Join(out, "canary")
	if err := os.WriteFile(canary, []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(base, "..s_deep", strings.Repeat("d/", maxRemoveDepth+1))
	shallow := filepath.Join(base, "..s_shallow", "x", "y")
	for _, err := range []error{
		os.MkdirAll(deep, 0o755),
		os.MkdirAll(shallow, 0o755),
		os.Symlink(out, filepath.Join(shallow, "out")),
		os.Symlink(canary, filepath.Join(shallow, "canary")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenDir(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := removeAll(d.fd, d.path, "..s_shallow", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(base, "..s_shallow")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("..s_shallow still there (%v)", err)
	}
	if got, err := os.ReadFile(canary); err != nil || string(got) != "canary" {
		t.Fatalf("outside canary: %q, %v", got, err)
	}
	if err := removeAll(d.fd, d.path, "..s_deep", 0); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Fatalf("too deep: %v, want an error", err)
	}
}

// TestWriteSetDirectoryAtDataLink: a directory where the data link goes
// is an error naming it, found before a set directory is made.
func TestWriteSetDirectoryAtDataLink(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "..s.data"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.WriteSet(Set{Name: "s", Files: []SetFile{{Name: "f", Content: []byte("x"), Mode: 0o600}}})
	if !errors.Is(err, errIsDir) || !strings.Contains(err.Error(), filepath.Join(base, "..s.data")) {
		t.Fatalf("error %v, want a directory at ..s.data", err)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 {
		t.Fatalf("entries %v, want ..s.data alone", entries)
	}
}
