package files

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// maxBatchDirs bounds the directories a Batch keeps open: a write into
// one more directory fsyncs it at once, as Write does.
const maxBatchDirs = 64

// Batch writes many files like Write, but makes their renames durable
// with one fsync per directory in Sync instead of one per file. A file is
// complete (its content fsynced) before it is renamed into place, so a
// reader and a crash both see the old file or the new one, never a
// partial one; what a crash before Sync can lose is a rename, leaving the
// old file or none, as if the write had not happened. Use it where one
// outcome covers all the files (once: exit 0 only after Sync succeeded).
//
// The directories are kept open by descriptor between the writes and
// Sync, so Sync fsyncs exactly the directories that were written into,
// whatever is renamed or swapped in their paths meanwhile. It is safe for
// concurrent use.
type Batch struct {
	mu   sync.Mutex
	dirs map[dirID]*Dir
}

type dirID struct{ dev, ino uint64 }

// NewBatch returns an empty batch.
func NewBatch() *Batch { return &Batch{dirs: map[dirID]*Dir{}} }

// Write is Write with the directory fsync left to Sync.
func (b *Batch) Write(f File) (Result, error) {
	d, e, err := open(f)
	if err != nil {
		return Result{}, err
	}
	res, err := d.write(e)
	if err != nil || !res.Written {
		_ = d.Close()
		return res, err
	}
	return res, b.keep(d)
}

// keep takes d over: the first descriptor of each directory waits for
// Sync, others are closed. Past maxBatchDirs directories, d is fsynced
// now.
func (b *Batch) keep(d *Dir) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		defer d.Close()
		return d.sync()
	}
	id := dirID{dev: st.Dev, ino: st.Ino}
	b.mu.Lock()
	_, have := b.dirs[id]
	full := len(b.dirs) >= maxBatchDirs
	if !have && !full {
		b.dirs[id] = d
	}
	b.mu.Unlock()
	switch {
	case have:
		return d.Close()
	case full:
		defer d.Close()
		return d.sync()
	}
	return nil
}

// Sync fsyncs every directory written into since the last Sync and
// closes it. The error names each directory whose fsync failed: the
// renames into it may not survive a crash.
func (b *Batch) Sync() error {
	b.mu.Lock()
	dirs := b.dirs
	b.dirs = map[dirID]*Dir{}
	b.mu.Unlock()
	var errs []error
	for _, d := range dirs {
		if err := d.sync(); err != nil {
			errs = append(errs, err)
		}
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close directory %s: %w", d.path, err))
		}
	}
	return errors.Join(errs...)
}
