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
	cur, err := d.current(e, nil)
	if err != nil {
		return Result{}, err
	}
	if cur.UpToDate() {
		return Result{}, nil
	}
	if err := d.replace(e); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", d.join(e.Name), err)
	}
	return cur.Result(), nil
}

// Diff is how what is at a destination differs from the file meant to be
// there: the one definition of "up to date" that a write acts on and a
// dry run reports.
type Diff struct {
	Exists bool        // something is at the name
	Kind   fs.FileMode // what it is: 0 a regular file, else its type bits (a link, a FIFO, ...), which a write replaces
	// Unreadable is why a regular file there could not be opened (mode
	// 0000 for this user, swapped meanwhile): a write replaces it.
	Unreadable error
	// For a regular file that was read: what differs. Content is also
	// set for anything that is not a readable regular file.
	Content, Mode, Owner, Group bool
}

// UpToDate reports whether a write has nothing to do.
func (d Diff) UpToDate() bool {
	return d.Exists && d.Kind == 0 && d.Unreadable == nil && !d.Content && !d.Mode && !d.Owner && !d.Group
}

// Result is what a write that acts on d does.
func (d Diff) Result() Result {
	if d.UpToDate() {
		return Result{}
	}
	return Result{Written: true, Created: !d.Exists, ContentChanged: d.Exists && d.Content}
}

// current compares what is at e.Name with e: fstatat without following,
// then, for a regular file, an open that neither follows a link nor
// blocks on a FIFO swapped in meanwhile, and an fstat of what was opened
// before anything is read. With old set, the current content (at most
// limit bytes, else an error wrapping ErrTooLarge) goes there.
func (d *Dir) current(e Entry, old *existing) (Diff, error) {
	p := d.join(e.Name)
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, e.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return Diff{}, nil
	}
	if err != nil {
		return Diff{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	changed := Diff{Exists: true, Content: true, Mode: true, Owner: e.UID != nil, Group: e.GID != nil}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return Diff{}, fmt.Errorf("%s: %w", p, errIsDir)
	case unix.S_IFREG:
	default:
		changed.Kind = fileType(st.Mode)
		return changed, nil // a link, FIFO, device or socket: replace it
	}
	fd, err := openat(d.fd, e.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		changed.Unreadable = &fs.PathError{Op: "open", Path: p, Err: err}
		return changed, nil // unreadable (mode 0000 for us) or swapped: rewrite it
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		changed.Unreadable = fmt.Errorf("%s: swapped while it was opened", p)
		return changed, nil // swapped for something else: rewrite it
	}
	diff := Diff{Exists: true, Mode: st.Mode&0o7777 != uint32(e.Mode.Perm()),
		Owner: e.UID != nil && int(st.Uid) != *e.UID, Group: e.GID != nil && int(st.Gid) != *e.GID}
	limit := int64(len(e.Content)) + 1
	if old != nil {
		if st.Size > old.limit {
			return Diff{}, fmt.Errorf("%s: %w (%d bytes, the limit is %d)", p, ErrTooLarge, st.Size, old.limit)
		}
		limit = old.limit + 1
	} else if st.Size != int64(len(e.Content)) {
		diff.Content = true
		return diff, nil
	}
	content, err := io.ReadAll(io.LimitReader(f, limit))
	diff.Content = err != nil || !bytes.Equal(content, e.Content)
	if old != nil {
		if err != nil {
			return Diff{}, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		old.content = content
	}
	return diff, nil
}

// existing asks current for the current content, up to limit bytes.
type existing struct {
	limit   int64
	content []byte
}

// fileType is the fs.FileMode type bits of a stat mode that is not a
// regular file.
func fileType(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	}
	return fs.ModeDevice
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
