package files

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is a file to write into an opened directory.
type Entry struct {
	Name    string      // a single path component
	Content []byte      // complete content
	Mode    fs.FileMode // permission bits
	UID     *int        // owner; nil leaves it as created
	GID     *int        // group; nil leaves it as created
}

// Write makes the entry e.Name of d hold e.Content with e.Mode and owner,
// atomically (temporary file, fsync, fchown, fchmod, renameat, directory
// fsync), unless it already does. Whatever is at the name (a link, a FIFO,
// a device) is replaced, never written through or read from; a directory
// there is an error.
func (d *Dir) Write(e Entry) (Result, error) {
	res, err := d.write(e)
	if err != nil || !res.Written {
		return res, err
	}
	if err := d.sync(); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", d.join(e.Name), err)
	}
	return res, nil
}

// write is Write without the directory fsync: the rename is done, but
// not yet durable.
func (d *Dir) write(e Entry) (Result, error) {
	if err := checkName(e.Name); err != nil {
		return Result{}, err
	}
	cur, err := d.current(e)
	if err != nil {
		return Result{}, err
	}
	if cur.existed && cur.sameContent && cur.sameMeta {
		return Result{}, nil
	}
	if err := d.replace(e); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", d.join(e.Name), err)
	}
	return Result{Written: true, Created: !cur.existed, ContentChanged: cur.existed && !cur.sameContent}, nil
}

// state is what is at a destination before a write.
type state struct {
	existed     bool
	sameContent bool // a regular file holding exactly the new content
	sameMeta    bool // a regular file with the new mode and owner
}

// current compares what is at e.Name with e: fstatat without following,
// then, for a regular file, an open that neither follows a link nor
// blocks on a FIFO swapped in meanwhile, and an fstat of what was opened
// before anything is read.
func (d *Dir) current(e Entry) (state, error) {
	p := d.join(e.Name)
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, e.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return state{}, nil
	}
	if err != nil {
		return state{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return state{}, fmt.Errorf("%s: %w", p, errIsDir)
	case unix.S_IFREG:
	default:
		return state{existed: true}, nil // a link, FIFO, device or socket: replace it
	}
	fd, err := openat(d.fd, e.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return state{existed: true}, nil //nolint:nilerr // unreadable (mode 0000 for us) or swapped: rewrite it
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return state{existed: true}, nil //nolint:nilerr // swapped for something else: rewrite it
	}
	s := state{existed: true, sameMeta: st.Mode&0o7777 == uint32(e.Mode.Perm()) &&
		(e.UID == nil || int(st.Uid) == *e.UID) && (e.GID == nil || int(st.Gid) == *e.GID)}
	if st.Size != int64(len(e.Content)) {
		return s, nil
	}
	old, err := io.ReadAll(io.LimitReader(f, int64(len(e.Content))+1))
	s.sameContent = err == nil && bytes.Equal(old, e.Content)
	return s, nil
}

// replace writes e to a new temporary file in d and renames it over
// e.Name. The caller makes the rename durable (d.sync).
func (d *Dir) replace(e Entry) (err error) {
	tmp, err := tempName(e.Name)
	if err != nil {
		return err
	}
	fd, err := openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return &fs.PathError{Op: "create", Path: d.join(tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.join(tmp))
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = unix.Unlinkat(d.fd, tmp, 0) // only our own temporary file, never the destination
		}
	}()
	if _, err = f.Write(e.Content); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if e.UID != nil || e.GID != nil {
		uid, gid := -1, -1
		if e.UID != nil {
			uid = *e.UID
		}
		if e.GID != nil {
			gid = *e.GID
		}
		if err = f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err = f.Chmod(e.Mode.Perm()); err != nil { // after chown: chown may clear setid bits
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = unix.Renameat(d.fd, tmp, d.fd, e.Name); err != nil {
		if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return errIsDir // a directory appeared there
		}
		return &os.LinkError{Op: "rename", Old: d.join(tmp), New: d.join(e.Name), Err: err}
	}
	return nil
}

func tempName(name string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "." + name + tmpInfix + hex.EncodeToString(b[:]), nil
}

// sync makes a rename in d durable.
func (d *Dir) sync() error {
	if err := d.f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) { // some filesystems cannot fsync a directory
		return fmt.Errorf("sync directory %s: %w", d.path, err)
	}
	return nil
}

// CleanTemp removes the temporary files of name (this package's, left by
// a killed process) from d, never following a link.
func (d *Dir) CleanTemp(name string) {
	fd, err := openat(d.fd, ".", dirFlags) // a fresh read position of its own
	if err != nil {
		return
	}
	list := os.NewFile(uintptr(fd), d.path)
	names, _ := list.Readdirnames(-1)
	_ = list.Close()
	prefix := "." + name + tmpInfix
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			_ = unix.Unlinkat(d.fd, n, 0)
		}
	}
}
