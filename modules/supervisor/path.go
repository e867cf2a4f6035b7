package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound is returned when the command is not in the child's PATH.
var ErrNotFound = errors.New("executable file not found in the child's PATH")

// lookPath resolves name as exec.LookPath does, but against the PATH of the
// child's environment env (the sidecar's own PATH when env has none).
// Relative PATH entries (and empty ones, which mean ".") are skipped: the
// sidecar does not run a program it found in its working directory. The
// error names the command, never the PATH (which may come from a secret).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("command %q: %w", name, err)
		}
		return name, nil
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q: %w", name, ErrNotFound)
}

// executable is nil when p is a regular file with an execute bit.
func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: not a regular file", fs.ErrPermission)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%w: not executable", fs.ErrPermission)
	}
	return nil
}

// lookupEnv is the value of the last name= entry of env.
func lookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}
