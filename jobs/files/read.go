package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// ErrTooLarge reports a file ReadNoFollow refused because it holds more
// than the limit (config.ErrTooLarge: one sentinel for every capped read).
var ErrTooLarge = config.ErrTooLarge

// ReadNoFollow reads a small file that a hostile neighbour may control (a
// pid file, a headers file, the status file): a symbolic link as the last
// path component is refused rather than followed, only a regular file is
// read (opening never blocks on a FIFO), and never more than limit bytes:
// a larger file is an error wrapping ErrTooLarge. The returned FileInfo is
// the opened file's own (fstat), for owner and mode checks that cannot be
// raced. Errors name the path, never the content.
func ReadNoFollow(path string, limit int64) ([]byte, fs.FileInfo, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, fmt.Errorf("%s: %w: refusing to follow it", path, ErrSymlinkFile)
		}
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return readOpened(fd, path, limit)
}

// ReadNoFollow reads the entry name of d as the package-level ReadNoFollow
// reads a path, relative to the opened directory: no component of the
// directory's path, nor name itself, is followed when it is a link. A
// missing entry satisfies errors.Is(err, fs.ErrNotExist).
func (d *Dir) ReadNoFollow(name string, limit int64) ([]byte, fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	p := d.join(name)
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, fmt.Errorf("%s: %w: refusing to follow it", p, ErrSymlinkFile)
		}
		return nil, nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return readOpened(fd, p, limit)
}

// readOpened reads the regular file open at fd (and closes it), as the
// operator files are read: regular-file-only and capped.
func readOpened(fd int, path string, limit int64) ([]byte, fs.FileInfo, error) {
	return config.ReadOpenFile(os.NewFile(uintptr(fd), path), limit)
}

// ErrSymlinkFile reports a path whose last component is a symbolic link
// where a plain file was expected.
var ErrSymlinkFile = errors.New("is a symbolic link")

// ErrLinkInPath reports a file whose directory path holds a symbolic link
// (or a /proc magic link such as /proc/PID/root) where none may be.
var ErrLinkInPath = errors.New("a directory on its path is a symbolic link")

// ReadNoLinks is ReadNoFollow for a file whose whole path a hostile
// neighbour may redirect (a pid file, a headers file on a shared volume):
// no component is followed when it is a link, magic links of /proc
// included, so replacing a parent directory with a link to another
// directory cannot make the sidecar read a file there. The directory is
// opened with openat2(RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS), or one
// no-follow component at a time where openat2 is not available, and the
// file is read relative to it. path must be absolute.
func ReadNoLinks(path string, limit int64) ([]byte, fs.FileInfo, error) {
	if !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("%s: not an absolute path", path)
	}
	path = filepath.Clean(path)
	d, err := OpenDir(filepath.Dir(path), 0)
	if err != nil {
		if errors.Is(err, ErrSymlink) {
			return nil, nil, fmt.Errorf("%s: %w: refusing to follow it (name the file by its real path, e.g. /run instead of /var/run)", path, ErrLinkInPath)
		}
		return nil, nil, err
	}
	defer d.Close()
	return d.ReadNoFollow(filepath.Base(path), limit)
}
