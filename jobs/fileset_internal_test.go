package jobs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

func versionSet(v string) files.Set {
	return files.Set{Name: "tls", DirMode: 0o750, Files: []files.SetFile{
		{Name: "tls.crt", Content: []byte("cert " + v), Mode: 0o644},
		{Name: "tls.key", Content: []byte("key " + v), Mode: 0o600},
	}}
}

// Two processes writing one set (two Syncers: their in-process mutexes
// are apart, so only the directory's flock keeps them apart) never undo
// each other: every write succeeds, and the set ends complete, one
// writer's, with no leftover directory.
func TestWriteSetLiveOneWriterAtATime(t *testing.T) {
	dir := t.TempDir()
	writers := []*Syncer{NewSyncer(nil, zap.NewNop(), SyncerOptions{}), NewSyncer(nil, zap.NewNop(), SyncerOptions{})}
	var wg sync.WaitGroup
	errs := make(chan error, 2*200)
	for w, s := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, err := s.writeSetLive(context.Background(), dir, 0o750, versionSet(fmt.Sprintf("%d-%d", w, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	d, err := files.OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.ReadSet("tls", 1<<10)
	if err != nil {
		t.Fatalf("the set after both writers: %v", err)
	}
	if crt, key := string(got["tls.crt"]), string(got["tls.key"]); crt[len("cert "):] != key[len("key "):] {
		t.Errorf("a torn set: %q beside %q", crt, key)
	}
	if dirs, _ := filepath.Glob(filepath.Join(dir, "..tls_*")); len(dirs) != 1 {
		t.Errorf("set directories left: %v", dirs)
	}
}

// A directory another process holds is waited for, and the wait ends
// with ErrLocked when the context does; released, it is written.
func TestWriteSetLiveWaitsForTheLock(t *testing.T) {
	dir := t.TempDir()
	holder, err := files.OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	s := NewSyncer(nil, zap.NewNop(), SyncerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.writeSetLive(ctx, dir, 0o750, versionSet("a")); !errors.Is(err, files.ErrLocked) {
		t.Fatalf("write beside a held lock: %v, want ErrLocked", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.writeSetLive(context.Background(), dir, 0o750, versionSet("b"))
		done <- err
	}()
	holder.Close() // releases the flock
	if err := <-done; err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
}
