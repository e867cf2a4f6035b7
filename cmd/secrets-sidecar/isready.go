package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
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
	path := statusPath(statusFile)
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

// statusPath is --status-file, else $SIDECAR_STATUS_FILE, else the default.
func statusPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv("SIDECAR_STATUS_FILE"); p != "" {
		return p
	}
	return status.DefaultFile
}

// cmdStatus prints the status file (read as isready reads it: no network,
// only a file the daemon's user owns) as a table an operator reads at a
// glance, and exits 0; 1 when there is no file or it cannot be trusted.
// It shows names, sources, versions, times and error texts: never a value,
// a lease id or a token.
func cmdStatus(g globals, statusFile string) int {
	path := statusPath(statusFile)
	snap, err := status.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(g.stderr, "status: no status file at %s (the daemon has not started, or SIDECAR_STATUS_FILE differs)\n", path)
		return exitFailure
	case err != nil:
		fmt.Fprintln(g.stderr, "status:", err)
		return exitFailure
	}
	now := time.Now()
	state := "ready"
	if err := snap.Check(now, 0); err != nil {
		state = err.Error()
	}
	fmt.Fprintf(g.stdout, "%s (updated %s ago)\n\n", state, max(now.Sub(snap.UpdatedAt), 0).Round(time.Second))
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SECRET\tSOURCE\tREADY\tVERSION / LEASE EXPIRES\tCERTIFICATE\tLAST SUCCESS\tLAST CHANGE\tNEXT\tLAST ERROR")
	for _, s := range snap.Secrets {
		ver := "-"
		switch {
		case !s.LeaseExpiry.IsZero():
			ver = s.LeaseExpiry.Local().Format(time.DateTime) + " (in " + s.LeaseExpiry.Sub(now).Round(time.Second).String() + ")"
			if s.Expiring {
				ver += " EXPIRING"
			}
		case s.Version > 0:
			ver = fmt.Sprintf("v%d", s.Version)
		}
		last := "never"
		if !s.LastSuccess.IsZero() {
			last = now.Sub(s.LastSuccess).Round(time.Second).String() + " ago"
		}
		src := s.Source
		if src == "" {
			src = "kv"
		}
		errText := "-"
		if s.LastError != "" {
			errText = logging.OneLine(s.LastError, 120)
		}
		cert := "-"
		if s.CertSerial != "" {
			cert = s.CertSerial + " until " + s.CertNotAfter.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, src, s.Ready, ver, cert, last, ago(now, s.LastChange), nextStep(now, s), errText)
	}
	if err := w.Flush(); err != nil {
		return exitFailure
	}
	return exitOK
}

// ago is how long before now t was, "-" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return max(now.Sub(t), 0).Round(time.Second).String() + " ago"
}

// nextStep is what happens next to a secret: its source's own action (a
// lease's renewal or replacement, a static role's read; between them a
// refresh only renders the credential it holds), else the next refresh.
func nextStep(now time.Time, s status.SecretState) string {
	in := func(what string, at time.Time) string {
		if !at.After(now) {
			return what + " now"
		}
		return what + " in " + at.Sub(now).Round(time.Second).String()
	}
	refresh := time.Time{}
	if !s.LastSuccess.IsZero() && s.RefreshInterval > 0 {
		refresh = s.LastSuccess.Add(s.RefreshInterval)
	}
	switch {
	case s.NextAction != "":
		return in(s.NextAction, s.NextAt)
	case !refresh.IsZero():
		return in("refresh", refresh)
	}
	return "-"
}
