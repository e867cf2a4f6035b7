// Package files writes secret files atomically and safely on a volume that
// a possibly hostile application shares.
//
// A write goes to a temporary file in the destination's own directory,
// which is fsynced, chmod'ed and chown'ed before it is renamed over the
// destination, and the directory is fsynced after the rename: a reader sees
// the old file or the new one, never a partial or empty one, even if the
// process is killed mid-write. Nothing is ever deleted or truncated on
// failure.
//
// The destination's parent path must not contain a symbolic link: the
// application sharing the volume could otherwise redirect a secret to any
// place the sidecar can write. Every write checks the path, then opens the
// directory as an os.Root (which confines every later operation to it) and
// checks again that the opened directory is the one at the path.
package files

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tmpInfix marks this package's temporary files: ".<name>.secrets-sidecar-tmp-<random>".
const tmpInfix = ".secrets-sidecar-tmp-"

// ErrSymlink reports a destination whose parent path contains a symbolic
// link. Nothing was written.
var ErrSymlink = errors.New("symbolic link in the destination's parent path")

// File is what to write where.
type File struct {
	Path    string      // absolute destination
	Content []byte      // complete content
	Mode    fs.FileMode // permission bits
	DirMode fs.FileMode // for parent directories that have to be created
	UID     *int        // owner; nil leaves it as created
	GID     *int        // group; nil leaves it as created
}

// Result says what a write did.
type Result struct {
	// Written is false when the file already had this content, mode and owner.
	Written bool
}

// Write makes f.Path hold f.Content with f.Mode and owner, atomically; it
// does nothing when the file already matches.
func Write(f File) (Result, error) {
	if !filepath.IsAbs(f.Path) {
		return Result{}, fmt.Errorf("destination %q is not absolute", f.Path)
	}
	dir, name := filepath.Split(filepath.Clean(f.Path))
	dir = filepath.Clean(dir)
	if err := ensureDir(dir, f.DirMode); err != nil {
		return Result{}, err
	}
	root, err := openDir(dir)
	if err != nil {
		return Result{}, err
	}
	defer root.Close()

	if same, err := matches(root, name, f); err != nil {
		return Result{}, err
	} else if same {
		return Result{}, nil
	}
	if err := replace(root, name, f); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", f.Path, err)
	}
	return Result{Written: true}, nil
}

// ensureDir creates dir and its missing parents with mode, refusing to
// create anything through a symbolic link.
func ensureDir(dir string, mode fs.FileMode) error {
	if mode == 0 {
		mode = 0o755
	}
	if err := checkNoSymlinks(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var missing []string
	p := dir
	for {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create directory %s: %w", dir, err)
		}
		missing = append(missing, p)
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if err := checkNoSymlinks(p); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %s: %w", missing[i], err)
		}
		if err := os.Chmod(missing[i], mode); err != nil { // exact mode, whatever the umask
			return fmt.Errorf("create directory %s: %w", missing[i], err)
		}
	}
	return checkNoSymlinks(dir)
}

// checkNoSymlinks fails with ErrSymlink when any component of dir is a
// symbolic link, and with fs.ErrNotExist when a component is missing.
func checkNoSymlinks(dir string) error {
	p := dir
	for {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			return fmt.Errorf("%w: %s -> %s; refusing to write through it", ErrSymlink, p, target)
		}
		if p == dir && !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// openDir opens dir as an os.Root and proves the opened directory is the
// one at dir with no symlink in between, closing the window between the
// check and the open.
func openDir(dir string) (*os.Root, error) {
	if err := checkNoSymlinks(dir); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", dir, err)
	}
	opened, err := root.Stat(".")
	if err == nil {
		err = checkNoSymlinks(dir)
	}
	var atPath fs.FileInfo
	if err == nil {
		atPath, err = os.Lstat(dir)
	}
	if err == nil && !os.SameFile(opened, atPath) {
		err = fmt.Errorf("%w: %s changed while it was opened; refusing to write", ErrSymlink, dir)
	}
	if err != nil {
		root.Close()
		return nil, err
	}
	return root, nil
}

// matches reports whether name already is a regular file with f's
// content, mode and (when set) owner.
func matches(root *os.Root, name string, f File) (bool, error) {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != f.Mode.Perm() || fi.Size() != int64(len(f.Content)) {
		return false, nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if (f.UID != nil && int(st.Uid) != *f.UID) || (f.GID != nil && int(st.Gid) != *f.GID) {
			return false, nil
		}
	}
	old, err := root.ReadFile(name)
	if err != nil {
		return false, nil //nolint:nilerr // unreadable (e.g. mode 0000 for us): rewrite it
	}
	return bytes.Equal(old, f.Content), nil
}

func replace(root *os.Root, name string, f File) (err error) {
	tmp, err := tempName(name)
	if err != nil {
		return err
	}
	file, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			file.Close()
			_ = root.Remove(tmp) // only our own temporary file, never the destination
		}
	}()
	if _, err = file.Write(f.Content); err != nil {
		return err
	}
	if err = file.Sync(); err != nil {
		return err
	}
	if f.UID != nil || f.GID != nil {
		uid, gid := -1, -1
		if f.UID != nil {
			uid = *f.UID
		}
		if f.GID != nil {
			gid = *f.GID
		}
		if err = file.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err = file.Chmod(f.Mode.Perm()); err != nil { // after chown: chown may clear setid bits
		return err
	}
	if err = file.Close(); err != nil {
		return err
	}
	if err = root.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(root)
}

func tempName(name string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "." + name + tmpInfix + hex.EncodeToString(b[:]), nil
}

func syncDir(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) { // some filesystems cannot fsync a directory
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// CleanTemp removes temporary files an earlier, killed process left next
// to path. It touches only names this package creates for that file.
func CleanTemp(path string) {
	dir, name := filepath.Split(filepath.Clean(path))
	root, err := openDir(filepath.Clean(dir))
	if err != nil {
		return
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	prefix := "." + name + tmpInfix
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			_ = root.Remove(n)
		}
	}
}
