package jobs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// setWriter writes a files: set into its directory: Syncer.writeSetLive
// for a sync, a planner's for a dry run.
type setWriter func(ctx context.Context, dir string, dirMode fs.FileMode, set files.Set) (files.SetResult, error)

// setLockWait bounds how long a sync waits for another process's write
// of the same directory (a once started beside a running daemon).
const setLockWait = 30 * time.Second

// writeSetLive opens the set's directory (made with dirMode when
// missing, never through a link), locks it and writes the set. One
// writer at a time: syncs of this process take the directory's mutex,
// other processes (a once beside the daemon on the same volume) its
// flock, so one's clean-up never removes the directory another is about
// to switch the set to.
func (s *Syncer) writeSetLive(ctx context.Context, dir string, dirMode fs.FileMode, set files.Set) (files.SetResult, error) {
	unlock := s.dirs.lock(dir)
	defer unlock()
	d, err := files.OpenDir(dir, dirMode)
	if err != nil {
		return files.SetResult{}, err
	}
	defer d.Close() // and with it the flock
	lctx, cancel := context.WithTimeout(ctx, setLockWait)
	defer cancel()
	if err := d.LockWait(lctx); err != nil {
		return files.SetResult{}, fmt.Errorf("%w (another sidecar, or a once, writing the same set?)", err)
	}
	return d.WriteSet(set)
}

// dirMutexes are this process's per-directory mutexes (writeSetLive).
type dirMutexes struct {
	mu   sync.Mutex
	dirs map[string]*dirMutex
}

type dirMutex struct {
	sync.Mutex
	users int
}

// lock takes dir's mutex and returns its release; a mutex no sync holds
// or waits for is dropped.
func (m *dirMutexes) lock(dir string) (unlock func()) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	if m.dirs == nil {
		m.dirs = map[string]*dirMutex{}
	}
	dm := m.dirs[dir]
	if dm == nil {
		dm = &dirMutex{}
		m.dirs[dir] = dm
	}
	dm.users++
	m.mu.Unlock()
	dm.Lock()
	return func() {
		dm.Unlock()
		m.mu.Lock()
		if dm.users--; dm.users == 0 {
			delete(m.dirs, dir)
		}
		m.mu.Unlock()
	}
}

// setStage renders every file of j's set from data and hands the set to
// write. The result's Written, Created and ContentChanged are the set's;
// changed lists the paths whose content changed (every path when the
// set was created).
func (s *Syncer) setStage(ctx context.Context, j *Job, data *source.Data, write setWriter) (
	int, writeResult, [32]byte, *SyncError,
) {
	sec := &j.Secret
	fail := func(stage metrics.Stage, err error) (int, writeResult, [32]byte, *SyncError) {
		return 0, writeResult{}, [32]byte{}, &SyncError{Secret: sec.Name, Stage: stage, Err: err}
	}
	dir := sec.SetDir()
	set := files.Set{Name: sec.Name, DirMode: sec.DirMode.FileMode}
	sum := sha256.New()
	var cs certs
	_, rspan := s.tracer.Start(ctx, "render")
	for _, o := range j.outputs {
		content, err := o.renderer.RenderLease(data.Values, (*render.Lease)(data.Lease))
		if err != nil {
			endSpan(rspan, err)
			return fail(metrics.StageRender, err)
		}
		name := filepath.Base(o.file.Destination)
		set.Files = append(set.Files, files.SetFile{Name: name, Content: content, Mode: o.file.Mode.FileMode, UID: o.file.Owner, GID: o.file.Group})
		_, _ = sum.Write([]byte(name + "\x00"))
		_, _ = sum.Write(content)
		c := certificates(content)
		if cs.leafSerial == "" {
			cs.leafSerial, cs.leafNotAfter = c.leafSerial, c.leafNotAfter
		}
		if !c.earliest.IsZero() && (cs.earliest.IsZero() || c.earliest.Before(cs.earliest)) {
			cs.earliest = c.earliest
		}
		cs.malformed += c.malformed
	}
	endSpan(rspan, nil)

	_, wspan := s.tracer.Start(ctx, "write", trace.WithAttributes(attribute.String("file.path", dir), attribute.Int("files", len(set.Files))))
	sr, err := write(ctx, dir, sec.DirMode.FileMode, set)
	wspan.SetAttributes(attribute.Bool("file.written", sr.Written), attribute.Int("files.changed", len(sr.Changed)))
	endSpan(wspan, err)
	switch {
	case errors.Is(err, files.ErrLeftovers):
		// The new set is live; only old directories stayed behind. The
		// application must still hear of it: a retry would find the set
		// up to date and tell nobody.
		log := s.log.Debug // an up-to-date set's leftovers: said when it was written
		if sr.Written {
			log = s.log.Warn
		}
		log("file set written, with leftovers", zap.String("secret_name", sec.Name), zap.String("destination", dir), zap.Error(err))
	case err != nil:
		return fail(metrics.StageWrite, err)
	}
	res := writeResult{
		Result: files.Result{Written: sr.Written, Created: sr.Created, ContentChanged: !sr.Created && len(sr.Changed) > 0},
		data:   data.Values, created: data.Created, certs: cs, lease: data.Lease, next: data.NextAction, nextAt: data.NextAt,
	}
	for _, n := range sr.Changed {
		res.paths = append(res.paths, filepath.Join(dir, n))
	}
	var checksum [32]byte
	copy(checksum[:], sum.Sum(nil))
	return data.Version, res, checksum, nil
}

// destinationText is what logs call a secret's destination: its file, or
// its set's directory.
func destinationText(sec *config.Secret) string {
	if sec.HasFiles() {
		return sec.SetDir() + "/"
	}
	return sec.Destination
}
