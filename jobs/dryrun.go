package jobs

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// What a dry run found a sync would do to a destination.
const (
	PlanCreate    = "create"
	PlanUpdate    = "update"
	PlanUnchanged = "unchanged"
	PlanError     = "error"
)

// maxExisting bounds how much of an existing destination a dry run reads.
const maxExisting = 16 << 20

// Plan is what a sync of one secret would do, found without writing: its
// text names the fields and keys that would change, never a value.
type Plan struct {
	Secret      string
	Destination string
	Action      string   // PlanCreate, PlanUpdate, PlanUnchanged or PlanError
	Changes     []string // for PlanUpdate: "content", "mode", "owner", "group"
	Keys        KeyDiff  // for a format (env, properties, json, yaml) whose content changes
	Err         error    // for PlanError
}

// Changed reports whether a sync would write the destination.
func (p Plan) Changed() bool { return p.Action == PlanCreate || p.Action == PlanUpdate }

// String is the plan as one line: "update db /s/db.env (content) keys: +A ~B".
func (p Plan) String() string {
	line := p.Action + " " + p.Secret + " " + p.Destination
	switch p.Action {
	case PlanUpdate:
		line += " (" + strings.Join(p.Changes, ", ") + ")"
		if k := p.Keys.String(); k != "" {
			line += " keys: " + k
		}
	case PlanError:
		var se *SyncError
		if errors.As(p.Err, &se) {
			line += ": " + string(se.Stage) + ": " + se.Err.Error()
		} else {
			line += ": " + p.Err.Error()
		}
	}
	return line
}

// destError is a destination a dry run cannot inspect (a link, a
// directory, permission denied): retrying does not help.
type destError struct{ error }

func (e destError) Unwrap() error { return e.error }

// Plan reads and renders j's secret as Sync does and compares the result
// with the destination, which it reads without following links and never
// writes: no file, directory, status, metric or change action.
func (s *Syncer) Plan(ctx context.Context, j *Job) (Plan, error) {
	sec := &j.Secret
	p := Plan{Secret: sec.Name, Destination: sec.Destination}
	fail := func(stage metrics.Stage, err error) (Plan, error) {
		return p, &SyncError{Secret: sec.Name, Stage: stage, Err: err}
	}
	secret, err := s.read(ctx, j.readRequest())
	if err != nil {
		stage := metrics.StageFetch
		if vault.IsAuthError(err) {
			stage = metrics.StageAuth
		}
		return fail(stage, err)
	}
	content, err := j.renderer.Render(secret.Data)
	if err != nil {
		return fail(metrics.StageRender, err)
	}
	old, fi, err := readDestination(sec.Destination)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Action = PlanCreate
		return p, nil
	case err != nil:
		return fail(metrics.StageWrite, destError{err})
	}
	if string(old) != string(content) {
		p.Changes = append(p.Changes, "content")
		p.Keys = diffKeys(sec.Format, old, content)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if uint32(fi.Mode().Perm()) != uint32(sec.Mode.Perm()) || fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		p.Changes = append(p.Changes, "mode")
	}
	if st != nil && sec.Owner != nil && int(st.Uid) != *sec.Owner {
		p.Changes = append(p.Changes, "owner")
	}
	if st != nil && sec.Group != nil && int(st.Gid) != *sec.Group {
		p.Changes = append(p.Changes, "group")
	}
	p.Action = PlanUnchanged
	if len(p.Changes) > 0 {
		p.Action = PlanUpdate
	}
	return p, nil
}

// readDestination reads what is at path through a directory opened
// without following links and without creating anything; a missing parent
// directory is fs.ErrNotExist, like a missing file.
func readDestination(path string) ([]byte, fs.FileInfo, error) {
	dir, name := filepath.Split(filepath.Clean(path))
	d, err := files.OpenDir(dir, 0)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	return d.ReadNoFollow(name, maxExisting)
}

// KeyDiff names the keys of a structured file that a sync would add,
// remove or change.
type KeyDiff struct {
	Added, Removed, Changed []string
}

// String is "+NEW -OLD ~CHANGED", each name quoted when it is not plain.
func (k KeyDiff) String() string {
	var parts []string
	for _, g := range []struct {
		sign  string
		names []string
	}{{"+", k.Added}, {"-", k.Removed}, {"~", k.Changed}} {
		for _, n := range g.names {
			if n == "" || strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
				n = strconv.Quote(n)
			}
			parts = append(parts, g.sign+n)
		}
	}
	return strings.Join(parts, " ")
}
