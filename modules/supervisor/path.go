package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned when the command does not exist: not in PATH, or
// no file at the path given (a shell's 127).
var ErrNotFound = errors.New("executable file not found")

// ErrNotExecutable is returned when the command exists but cannot be run:
// not a regular file, no execute bit, or no permission (a shell's 126).
var ErrNotExecutable = errors.New("not executable")

// lookPath resolves name as exec.LookPath does, against path (the
// sidecar's own PATH, never the child's environment: a secret field named
// PATH must not choose the program the sidecar runs). Relative PATH
// entries (and empty ones, which mean ".") are skipped: the sidecar does
// not run a program it found in its working directory. A name found only
// as a file that cannot be run is ErrNotExecutable, as a shell says.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("command %q: %w", name, err)
		}
		return name, nil
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && errors.Is(err, ErrNotExecutable) {
			denied = fmt.Errorf("command %q: %s: %w", name, p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("command %q: %w in PATH", name, ErrNotFound)
}

// executable is nil when p is a regular file with an execute bit that
// this process may execute; otherwise ErrNotFound or ErrNotExecutable.
func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("%w: %w", ErrNotExecutable, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: not a regular file", ErrNotExecutable)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%w: no execute permission", ErrNotExecutable)
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("%w: %w", ErrNotExecutable, err)
	}
	return nil
}
