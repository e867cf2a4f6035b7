package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Caps on the files an operator hands the sidecar. A 10,000-secret config
// is about 2 MB; a template, a CA bundle or a certificate is kilobytes; a
// token, role_id, secret_id or private key is bytes.
const (
	MaxConfigFile     = 16 << 20
	MaxTemplateFile   = 1 << 20
	MaxCertFile       = 1 << 20 // CA bundles and client certificates
	MaxCredentialFile = 64 << 10
)

// ErrTooLarge reports a file refused because it holds more than its cap.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular reports a file refused because it is not a regular file
// (a FIFO would block the read for ever, /dev/zero would never end it).
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads a file the operator gives the sidecar: the config file,
// a template file, a CA bundle or client certificate, a credential file
// (token, role_id, secret_id, JWT). Symbolic links are followed, since
// Kubernetes mounts ConfigMaps, secrets and the service account token
// through "..data" links; such files must therefore not sit on a volume
// the application can write. What is read is bounded all the same: the
// open never blocks (O_NONBLOCK: a FIFO opens at once and is then
// refused), only a regular file is read, and never more than limit bytes.
// Errors name the file and, for a file too large, the cap; never content.
func ReadFile(path string, limit int64) ([]byte, error) {
	fd, err := open(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	data, _, err := ReadOpenFile(os.NewFile(uintptr(fd), path), limit)
	return data, err
}

func open(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// ReadOpenFile reads the regular file f, opened by the caller, and closes
// it: at most limit bytes, else an error wrapping ErrTooLarge; anything but
// a regular file is an error wrapping ErrNotRegular. The FileInfo is the
// opened file's own (fstat), for owner and mode checks that cannot be
// raced.
func ReadOpenFile(f *os.File, limit int64) ([]byte, fs.FileInfo, error) {
	defer f.Close()
	path := f.Name()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes, the cap is %s", path, ErrTooLarge, fi.Size(), Size(limit))
	}
	data, err := ReadCapped(f, path, limit)
	if err != nil {
		return nil, nil, err
	}
	return data, fi, nil
}

// ReadCapped reads r to its end, but never more than limit bytes: more is
// an error naming name and the cap, wrapping ErrTooLarge (a file that grew
// after its size was checked, or standard input).
func ReadCapped(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than the cap of %s", name, ErrTooLarge, Size(limit))
	}
	return data, nil
}

// ReadCADir reads every file under dir (a CA directory such as
// /etc/ssl/certs, walked as the Vault library walks it, links to files
// followed) with ReadFile and MaxCertFile each, in name order, and returns
// their PEM text joined. A directory of more than MaxConfigFile in all is
// refused.
func ReadCADir(dir string) ([]byte, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var all []byte
	for _, n := range names {
		b, err := ReadFile(n, MaxCertFile)
		if err != nil {
			return nil, err
		}
		if int64(len(all)+len(b)) > MaxConfigFile {
			return nil, fmt.Errorf("%s: %w: more than the cap of %s of certificates in all", dir, ErrTooLarge, Size(MaxConfigFile))
		}
		all = append(append(all, b...), '\n')
	}
	return all, nil
}

// Size is a byte count as operators write caps: "16 MiB", "64 KiB", "64 bytes".
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fileKind names a non-regular file's type for errors.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "type " + m.Type().String()
}
