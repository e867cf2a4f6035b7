package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
)

// What a dry run found a sync would do to a destination.
const (
	PlanCreate    = "create"
	PlanUpdate    = "update"
	PlanUnchanged = "unchanged"
	PlanError     = "error"
	// PlanMint: only a new credential (a lease) could answer; a dry run
	// never mints one, so what would be written is not known.
	PlanMint = "mint"
)

// maxExisting bounds how much of an existing destination a dry run reads.
const maxExisting = 16 << 20

// Plan is what a sync of one secret would do, found without writing: its
// text names the fields and keys that would change, never a value.
type Plan struct {
	Secret      string
	Destination string
	Action      string   // PlanCreate, PlanUpdate, PlanUnchanged, PlanMint or PlanError
	Changes     []string // for PlanUpdate: "content", "mode", "owner", "group"
	Keys        KeyDiff  // for a format (env, properties, json, yaml) whose content changes
	Err         error    // for PlanError
	// Files are a files: set's plans, one per file (Action then sums
	// them up: create when all are new, update when any changes).
	Files []Plan
}

// Changed reports whether a sync would write the destination.
func (p Plan) Changed() bool {
	return p.Action == PlanCreate || p.Action == PlanUpdate || p.Action == PlanMint
}

// String is the plan as one line: "update db /s/db.env (content) keys: +A ~B";
// a files: set's plan is one such line per file.
func (p Plan) String() string {
	if len(p.Files) > 0 {
		lines := make([]string, len(p.Files))
		for i, f := range p.Files {
			lines[i] = f.String()
		}
		return strings.Join(lines, "\n")
	}
	line := p.Action + " " + p.Secret + " " + p.Destination
	switch p.Action {
	case PlanUpdate:
		line += " (" + strings.Join(p.Changes, ", ") + ")"
		if k := p.Keys.String(); k != "" {
			line += " keys: " + k
		}
	case PlanMint:
		line += " (would mint a new lease; a dry run does not)"
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

// Plan runs j's pipeline as Sync does, with the source in source.Peek
// mode (no side effect in Vault) and a planner in the write stage: it
// compares the result with the destination through files.Check, the
// comparison a write acts on, and writes nothing: no file, directory,
// status, metric or change action.
func (s *Syncer) Plan(ctx context.Context, j *Job) (Plan, error) {
	pl := planner{plan: Plan{Secret: j.Secret.Name, Destination: destinationText(&j.Secret)}, format: j.Secret.Format}
	if _, _, _, serr := s.pipeline(ctx, j, source.Peek, pl.write, pl.writeSet); serr != nil {
		if errors.Is(serr, source.ErrWouldChange) {
			pl.plan.Action = PlanMint
			if j.Secret.HasFiles() {
				pl.plan.Files = nil
				for _, d := range j.Secret.Destinations() {
					pl.plan.Files = append(pl.plan.Files, Plan{Secret: j.Secret.Name, Destination: d, Action: PlanMint})
				}
			}
			return pl.plan, nil
		}
		return pl.plan, serr
	}
	return pl.plan, nil
}

// writeSet is the dry run's set stage: each file against what the set's
// data link shows now (content only; a set a sync would find not its own
// is all new).
func (p *planner) writeSet(_ context.Context, dir string, _ fs.FileMode, set files.Set) (files.SetResult, error) {
	var cur map[string][]byte
	d, err := files.OpenDir(dir, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return files.SetResult{}, destError{err}
	default:
		defer d.Close()
		cur, err = d.ReadSet(set.Name, maxExisting)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, files.ErrNotSet) {
			return files.SetResult{}, destError{err}
		}
	}
	created, changed := 0, 0
	for _, f := range set.Files {
		fp := Plan{Secret: p.plan.Secret, Destination: filepath.Join(dir, f.Name), Action: PlanUnchanged}
		old, ok := cur[f.Name]
		switch {
		case !ok:
			fp.Action = PlanCreate
			created++
		case !bytes.Equal(old, f.Content):
			fp.Action, fp.Changes = PlanUpdate, []string{"content"}
			changed++
		}
		p.plan.Files = append(p.plan.Files, fp)
	}
	switch {
	case created == len(set.Files):
		p.plan.Action = PlanCreate
	case created+changed > 0:
		p.plan.Action = PlanUpdate
	default:
		p.plan.Action = PlanUnchanged
	}
	return files.SetResult{}, nil
}

// planner is the dry run's write stage: it records what a write would do.
type planner struct {
	plan   Plan
	format string
}

func (p *planner) write(f files.File) (files.Result, error) {
	diff, old, err := files.Check(f, maxExisting)
	if err != nil {
		return files.Result{}, destError{err}
	}
	switch {
	case !diff.Exists:
		p.plan.Action = PlanCreate
		return diff.Result(), nil
	case diff.Kind == fs.ModeSymlink:
		return files.Result{}, destError{fmt.Errorf("%s: %w: refusing to follow it", f.Path, files.ErrSymlinkFile)}
	case diff.Kind != 0:
		return files.Result{}, destError{fmt.Errorf("%s: not a regular file (%s)", f.Path, kindName(diff.Kind))}
	case diff.Unreadable != nil:
		return files.Result{}, destError{diff.Unreadable}
	}
	if diff.Content {
		p.plan.Changes = append(p.plan.Changes, "content")
		p.plan.Keys = diffKeys(p.format, old, f.Content)
	}
	for _, c := range []struct {
		differs bool
		name    string
	}{{diff.Mode, "mode"}, {diff.Owner, "owner"}, {diff.Group, "group"}} {
		if c.differs {
			p.plan.Changes = append(p.plan.Changes, c.name)
		}
	}
	p.plan.Action = PlanUnchanged
	if len(p.plan.Changes) > 0 {
		p.plan.Action = PlanUpdate
	}
	return diff.Result(), nil
}

// kindName names a file type that a dry run does not look into.
func kindName(kind fs.FileMode) string {
	switch {
	case kind&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case kind&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a device"
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
