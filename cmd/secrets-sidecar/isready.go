package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
)

// cmdIsReady answers Docker's HEALTHCHECK from the status file: exit 0
// when it says ready and is younger than maxAge (0: twice the longest
// refresh interval it records) and not from the future, else 1 with one
// line on stderr saying why. In a shared /tmp another user may have put
// the file there: status.ReadFile refuses a symlink, anything but a
// regular file, a file not owned by our own uid or writable by group or
// others, and more than 1 MiB.
// It reads only SIDECAR_STATUS_FILE from the environment (a bad unrelated
// SIDECAR_* variable must not fail the healthcheck) and uses no network.
func cmdIsReady(g globals, statusFile string, maxAge time.Duration) int {
	if maxAge < 0 {
		fmt.Fprintln(g.stderr, "isready: --max-age must not be negative")
		return exitUsage
	}
	path := statusFile
	if path == "" {
		path = os.Getenv("SIDECAR_STATUS_FILE")
	}
	if path == "" {
		path = status.DefaultFile
	}
	snap, err := status.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(g.stderr, "isready: no status file at %s (the daemon has not started, or SIDECAR_STATUS_FILE differs)\n", path)
		return exitFailure
	case err != nil:
		fmt.Fprintln(g.stderr, "isready:", err)
		return exitFailure
	}
	now := time.Now()
	if err := snap.Check(now, maxAge); err != nil {
		fmt.Fprintf(g.stderr, "isready: %s: %v\n", path, err)
		return exitFailure
	}
	fmt.Fprintf(g.stdout, "ready: %d secrets, updated %s ago\n", len(snap.Secrets), max(now.Sub(snap.UpdatedAt), 0).Round(time.Second))
	return exitOK
}
