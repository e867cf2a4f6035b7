// Package files writes secret files atomically and safely on a volume that
// a possibly hostile application shares, and possibly as root.
//
// A write goes to a temporary file in the destination's own directory,
// which is fsynced, chown'ed and chmod'ed before it is renamed over the
// destination, and the directory is fsynced after the rename: a reader sees
// the old file or the new one, never a partial or empty one, even if the
// process is killed mid-write. Nothing is ever deleted or truncated on
// failure. A Batch (once) fsyncs each directory once after all its
// renames instead of after each.
//
// The application sharing the volume can rename, remove and plant links
// at any moment, so no operation ever goes through a path: the
// destination's directory is opened from "/" one component at a time with
// openat(O_NOFOLLOW|O_DIRECTORY) (missing ones made with mkdirat and then
// opened the same way), and everything after that (the comparison with
// the current file, the temporary file, fchown, fchmod, the rename, the
// directory fsync, the clean-up) is relative to that opened directory and
// never follows a link. A symbolic link anywhere in the destination's
// parent path is refused (ErrSymlink); a destination that is itself a
// link is replaced by the file, never written through; a FIFO or device
// there is neither opened for long nor read.
package files

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// tmpInfix marks this package's temporary files: ".<name>.secrets-sidecar-tmp-<random>".
const tmpInfix = ".secrets-sidecar-tmp-"

// defaultDirMode is File.DirMode's default.
const defaultDirMode fs.FileMode = 0o755

// ErrSymlink reports a destination whose parent path contains a symbolic
// link. Nothing was written.
var ErrSymlink = errors.New("symbolic link in the destination's parent path")

// errIsDir reports a destination that is a directory.
var errIsDir = errors.New("destination is a directory")

// File is what to write where.
type File struct {
	Path    string      // absolute destination
	Content []byte      // complete content
	Mode    fs.FileMode // permission bits
	DirMode fs.FileMode // for parent directories that have to be created (0: 0755)
	UID     *int        // owner; nil leaves it as created
	GID     *int        // group; nil leaves it as created
}

// Result says what a write did.
type Result struct {
	Written        bool // content, mode or owner was (re)written
	Created        bool // nothing existed at the destination before this write
	ContentChanged bool // something existed there whose content differs (a non-regular file or unreadable one counts as changed)
}

// Write makes f.Path hold f.Content with f.Mode and owner, atomically; it
// does nothing when the file already matches. Missing parent directories
// are made with f.DirMode.
func Write(f File) (Result, error) {
	d, e, err := open(f)
	if err != nil {
		return Result{}, err
	}
	defer d.Close()
	return d.Write(e)
}

// open opens f's directory (making missing ones) and returns the entry to
// write there.
func open(f File) (*Dir, Entry, error) {
	if !filepath.IsAbs(f.Path) {
		return nil, Entry{}, fmt.Errorf("destination %q is not absolute", f.Path)
	}
	dir, name := filepath.Split(filepath.Clean(f.Path))
	if name == "" {
		return nil, Entry{}, fmt.Errorf("destination %q names no file", f.Path)
	}
	mode := f.DirMode
	if mode == 0 {
		mode = defaultDirMode
	}
	d, err := OpenDir(dir, mode)
	if err != nil {
		return nil, Entry{}, err
	}
	return d, Entry{Name: name, Content: f.Content, Mode: f.Mode, UID: f.UID, GID: f.GID}, nil
}

// CleanSets removes the set name's stale directories in dir (a crash's
// leftovers or a co-tenant's), best effort, never through a link, and
// nothing when the directory is missing or its path holds a link, or
// while another process holds its lock (a once writing it: its new
// directory is not stale, and its write cleans up after itself).
func CleanSets(dir, name string) {
	d, err := OpenDir(dir, 0)
	if err != nil {
		return
	}
	defer d.Close()
	if d.Lock() != nil {
		return
	}
	_ = d.CleanSets(name)
}

// CleanTemp removes temporary files an earlier, killed process left next
// to path. It touches only names this package creates for that file, and
// nothing when the directory is missing or its path holds a link.
func CleanTemp(path string) {
	dir, name := filepath.Split(filepath.Clean(path))
	d, err := OpenDir(dir, 0)
	if err != nil {
		return
	}
	defer d.Close()
	d.CleanTemp(name)
}
