package files

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestBatchOneDescriptorPerDirectory: concurrent writes into two
// directories keep one open descriptor each until Sync, which closes them;
// the files are complete and in place before Sync.
func TestBatchOneDescriptorPerDirectory(t *testing.T) {
	base := t.TempDir()
	b := NewBatch()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := filepath.Join(base, fmt.Sprintf("d%d", i%2), fmt.Sprintf("f%d", i))
			res, err := b.Write(File{Path: p, Content: []byte(p), Mode: 0o640})
			if err == nil && (!res.Written || !res.Created) {
				err = fmt.Errorf("%s: result %+v, want written and created", p, res)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(b.dirs) != 2 {
		t.Fatalf("%d directories kept for Sync, want 2", len(b.dirs))
	}
	for i := range 40 {
		p := filepath.Join(base, fmt.Sprintf("d%d", i%2), fmt.Sprintf("f%d", i))
		got, err := os.ReadFile(p)
		if err != nil || string(got) != p {
			t.Fatalf("%s before Sync: %q, %v", p, got, err)
		}
	}
	kept := make([]*Dir, 0, len(b.dirs))
	for _, d := range b.dirs {
		kept = append(kept, d)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if len(b.dirs) != 0 {
		t.Errorf("%d directories still kept after Sync", len(b.dirs))
	}
	for _, d := range kept {
		if err := d.f.Close(); err == nil {
			t.Errorf("%s still open after Sync", d.path)
		}
	}
	// A file already up to date keeps nothing open.
	if res, err := b.Write(File{Path: filepath.Join(base, "d0", "f0"), Content: []byte(filepath.Join(base, "d0", "f0")), Mode: 0o640}); err != nil || res.Written {
		t.Fatalf("rewrite of an up-to-date file: %+v, %v", res, err)
	}
	if len(b.dirs) != 0 {
		t.Errorf("an unchanged file kept its directory for Sync")
	}
}

// TestBatchBounded: past maxBatchDirs directories a write fsyncs its
// directory at once instead of keeping it open.
func TestBatchBounded(t *testing.T) {
	base := t.TempDir()
	b := NewBatch()
	for i := range maxBatchDirs + 5 {
		if _, err := b.Write(File{Path: filepath.Join(base, fmt.Sprint(i), "f"), Content: []byte("x"), Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.dirs) != maxBatchDirs {
		t.Errorf("%d directories kept, want the bound %d", len(b.dirs), maxBatchDirs)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestBatchSyncsTheDirectoryWrittenInto: a directory renamed away after
// the write is still the one Sync fsyncs and closes (its descriptor, not
// its path), and a new directory at the old path is not touched.
func TestBatchSyncsTheDirectoryWrittenInto(t *testing.T) {
	base := t.TempDir()
	b := NewBatch()
	p := filepath.Join(base, "d", "f")
	if _, err := b.Write(File{Path: p, Content: []byte("x"), Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(base, "d"), filepath.Join(base, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(base, "d")); err != nil {
		t.Fatal(err)
	}
	for _, d := range b.dirs {
		if got, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", d.fd)); got != filepath.Join(base, "moved") {
			t.Errorf("kept descriptor is %q, want the renamed directory", got)
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}
