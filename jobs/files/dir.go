package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// dirFlags open a directory, never through a symbolic link.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// attempts bounds how often a component is made again when it disappears
// between its mkdirat and its openat (the app removed it).
const attempts = 3

// Dir is a directory opened without following a symbolic link anywhere in
// its path. Every operation on it (Lstat, Write, CleanTemp) is relative to
// the opened directory and never follows a link: renaming, removing or
// replacing a component of its path afterwards cannot redirect any of
// them. Close it when done.
type Dir struct {
	f    *os.File
	fd   int
	path string
}

// OpenDir opens the directory at path (absolute), from "/" component by
// component, each with openat(O_NOFOLLOW|O_DIRECTORY); a symbolic link
// anywhere in path is refused with ErrSymlink. With create non-zero,
// missing components are made (mkdirat, then opened no-follow like the
// others) with exactly create's permission bits, whatever the umask; with
// 0 a missing component is an error satisfying errors.Is(err,
// fs.ErrNotExist).
func OpenDir(path string, create fs.FileMode) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("directory %q is not absolute", path)
	}
	path = filepath.Clean(path)
	fd, err := openat2NoSymlinks(path)
	if err != nil {
		fd, err = walk(path, create.Perm())
		if err != nil {
			return nil, err
		}
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), fd: fd, path: path}, nil
}

// Path is the path the directory was opened at.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// Stat describes the opened directory itself (fstat): its owner and mode
// are those of the directory every operation goes to.
func (d *Dir) Stat() (fs.FileInfo, error) { return d.f.Stat() }

// Lstat describes the entry name in the directory without following it
// when it is a symbolic link. A missing entry satisfies errors.Is(err,
// fs.ErrNotExist).
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := openat(d.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.join(name))
	defer f.Close()
	return f.Stat()
}

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

// openat2NoSymlinks is the fast path: one openat2 that fails on any
// symbolic link in path. Any error (a link, a missing component, a kernel
// without openat2, a seccomp filter) sends the caller to walk, which
// creates what is missing and says precisely what is wrong.
func openat2NoSymlinks(path string) (int, error) {
	return ignoringEINTR(func() (int, error) {
		return unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
			Flags:   dirFlags,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
	})
}

// walk opens path one component at a time from "/", making missing
// components with mode when mode is not 0.
func walk(path string, mode fs.FileMode) (int, error) {
	fd, err := openat(unix.AT_FDCWD, "/", dirFlags)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	cur := "/"
	for _, name := range strings.Split(path, "/") {
		if name == "" {
			continue
		}
		next, err := openComponent(fd, cur, name, mode)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd, cur = next, filepath.Join(cur, name)
	}
	return fd, nil
}

// openComponent opens the directory name in parent, no-follow, making it
// first when it is missing and mode is not 0.
func openComponent(parent int, parentPath, name string, mode fs.FileMode) (int, error) {
	p := filepath.Join(parentPath, name)
	for range attempts {
		fd, err := openat(parent, name, dirFlags)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.ENOENT) || mode == 0 {
			return -1, componentError(parent, p, name, err)
		}
		switch err := unix.Mkdirat(parent, name, uint32(mode)); {
		case errors.Is(err, unix.EEXIST): // made by someone else meanwhile: open what is there, no-follow
			continue
		case err != nil:
			return -1, fmt.Errorf("create directory %s: %w", p, err)
		}
		fd, err = openat(parent, name, dirFlags)
		if errors.Is(err, unix.ENOENT) { // removed before we could open it: make it again
			continue
		}
		if err != nil {
			return -1, componentError(parent, p, name, err)
		}
		if err := setMadeMode(fd, mode); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("create directory %s: %w", p, err)
		}
		return fd, nil
	}
	return -1, fmt.Errorf("create directory %s: removed again each time it was made: %w", p, fs.ErrNotExist)
}

// setMadeMode gives a directory this process has just made exactly mode
// (mkdirat applied the umask). The opened directory may not be the one
// made, if the app swapped another in between: it is chmod'ed only when
// it is ours, empty and no more open than mode, so a swap can at most make
// an empty directory of ours what ours should have been.
func setMadeMode(fd int, mode fs.FileMode) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	perm := st.Mode & 0o7777
	if perm == uint32(mode) || int(st.Uid) != os.Geteuid() || perm&^uint32(mode) != 0 || !isEmpty(fd) {
		return nil
	}
	return unix.Fchmod(fd, uint32(mode))
}

// isEmpty reports whether the directory has no entries but "." and "..".
// It reads through fd and rewinds it.
func isEmpty(fd int) bool {
	defer unix.Seek(fd, 0, io.SeekStart) //nolint:errcheck // a directory fd can always rewind
	buf := make([]byte, 2048)            // room for "." and ".." and at least one more entry
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return false
	}
	_, count, _ := unix.ParseDirent(buf[:n], -1, nil)
	return count == 0
}

// componentError says why the directory name in parent could not be
// opened: a symbolic link (ErrSymlink), something else than a directory,
// or the open's own error.
func componentError(parent int, p, name string, err error) error {
	var st unix.Stat_t
	if serr := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return symlinkError(parent, p, name)
		case unix.S_IFDIR:
		default:
			return fmt.Errorf("%s is not a directory", p)
		}
	}
	if errors.Is(err, unix.ELOOP) { // a link when opened, gone since
		return fmt.Errorf("%w: %s; refusing to write through it", ErrSymlink, p)
	}
	return &fs.PathError{Op: "open", Path: p, Err: err}
}

func symlinkError(parent int, p, name string) error {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(parent, name, buf)
	if err != nil {
		return fmt.Errorf("%w: %s; refusing to write through it", ErrSymlink, p)
	}
	return fmt.Errorf("%w: %s -> %s; refusing to write through it", ErrSymlink, p, buf[:n])
}

// openat opens name in dirfd; a file it creates (O_CREAT) is 0600.
func openat(dirfd int, name string, flags int) (int, error) {
	return ignoringEINTR(func() (int, error) { return unix.Openat(dirfd, name, flags, 0o600) })
}

// ignoringEINTR retries a call a signal interrupted (FUSE and network
// filesystems do not always restart them).
func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		v, err := f()
		if !errors.Is(err, unix.EINTR) {
			return v, err
		}
	}
}

// checkName accepts a single, plain path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%q is not a file name", name)
	}
	return nil
}

// Lock takes an exclusive, non-blocking flock on the opened directory
// itself: one process at a time may own what is in it. The lock lasts
// until the directory is closed. A directory another process holds
// locked is an error wrapping ErrLocked.
func (d *Dir) Lock() error {
	err := unix.Flock(d.fd, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%s: %w", d.path, ErrLocked)
	}
	if err != nil {
		return &fs.PathError{Op: "flock", Path: d.path, Err: err}
	}
	return nil
}

// LockWait is Lock, tried again until ctx ends while another process
// holds the lock (every 10 ms at first, then up to every 250 ms); then
// the error wraps ErrLocked.
func (d *Dir) LockWait(ctx context.Context) error {
	wait := 10 * time.Millisecond
	for {
		err := d.Lock()
		if !errors.Is(err, ErrLocked) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// ErrLocked reports a directory another process holds locked.
var ErrLocked = errors.New("locked by another process")

// Remove removes the entry name of d (not a directory), relative to the
// opened directory and never through a link: a link there is removed
// itself. A missing entry is no error.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "unlink", Path: d.join(name), Err: err}
	}
	return nil
}
