package lease

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// maxRecord bounds a lease record read back from the state directory.
const maxRecord = 1 << 20

// stateDir is leases.state_dir: one record per request, so that a restart
// (or the daemon after a once init container) adopts still-valid leases
// instead of minting new ones. Every operation is fd-relative and
// no-follow; the directory is the sidecar user's alone (0700, checked)
// and flock'ed by one process at a time.
type stateDir struct {
	dir      *files.Dir
	readOnly bool // a dry run's: never written
}

// ErrStateDir is a state_dir the sidecar cannot use safely.
var ErrStateDir = errors.New("unusable leases.state_dir")

// openState opens (making it 0700 when missing) and locks path. It must
// be owned by this process's user with no group or other permissions.
// With readOnly (a dry run) it is neither made nor locked: a missing one
// is a state directory with no records (nil, nil).
func openState(path string, readOnly bool) (*stateDir, error) {
	create := fs.FileMode(0o700)
	if readOnly {
		create = 0
	}
	d, err := files.OpenDir(path, create)
	if readOnly && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrStateDir, path, err)
	}
	fail := func(format string, args ...any) (*stateDir, error) {
		_ = d.Close()
		return nil, fmt.Errorf("%w %s: %s", ErrStateDir, path, fmt.Sprintf(format, args...))
	}
	fi, err := d.Stat()
	if err != nil {
		return fail("%v", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return fail("cannot tell its owner")
	case int(st.Uid) != os.Geteuid():
		return fail("owned by uid %d, not by the sidecar's uid %d", st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fail("mode %04o gives group or others access; it holds credentials: chmod 0700", fi.Mode().Perm())
	}
	if readOnly {
		return &stateDir{dir: d, readOnly: true}, nil
	}
	if err := d.Lock(); err != nil {
		return fail("%v (another sidecar uses it)", err)
	}
	return &stateDir{dir: d}, nil
}

// record is what the state directory keeps of one lease: never a token,
// only when the token it was made under expires (as last known).
type record struct {
	Path        string          `json:"path"`
	Method      string          `json:"method"`
	LeaseID     string          `json:"lease_id"`
	Issued      time.Time       `json:"issued"`
	End         time.Time       `json:"end"`
	Renewable   bool            `json:"renewable"`
	Final       bool            `json:"final"`
	TokenExpiry time.Time       `json:"token_expiry,omitzero"`
	Data        json.RawMessage `json:"data"`
}

func recordName(fp string) string { return fp + ".json" }

// save writes l's record atomically and durably (temporary file, fsync,
// rename, directory fsync), owner-only. The caller holds l.mu.
func (s *stateDir) save(l *lease, tokenExpiry time.Time) error {
	if s.readOnly {
		return nil
	}
	data, err := json.Marshal(l.cur.Data)
	if err != nil {
		return fmt.Errorf("lease record: %w", err)
	}
	rec := record{Path: l.req.Path, Method: l.req.Method, LeaseID: l.cur.ID.Reveal(), Issued: l.issued, End: l.end,
		Renewable: l.cur.Renewable, Final: l.final, TokenExpiry: tokenExpiry, Data: data}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("lease record: %w", err)
	}
	_, err = s.dir.Write(files.Entry{Name: recordName(l.fp), Content: b, Mode: 0o600})
	return err
}

// load reads the record of request fp; a missing one is (nil, nil).
func (s *stateDir) load(fp string) (*record, error) {
	b, _, err := s.dir.ReadNoFollow(recordName(fp), maxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		// encoding/json's messages quote the character they stopped at,
		// which may be a credential's: say where, never what.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("lease record %s: not a record (malformed JSON at byte %d)", recordName(fp), se.Offset)
		}
		return nil, fmt.Errorf("lease record %s: not a record", recordName(fp))
	}
	return &rec, nil
}

// values decodes a record's data as the source returns data (numbers as
// json.Number).
func (r *record) values() (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || len(m) == 0 {
		return nil, fmt.Errorf("lease record: no data")
	}
	return m, nil
}

func (s *stateDir) remove(fp string) error {
	if s.readOnly {
		return nil
	}
	return s.dir.Remove(recordName(fp))
}

func (s *stateDir) close() error { return s.dir.Close() }

// id is the record's lease id, redacted.
func (r *record) id() logging.Redacted { return logging.Redacted(r.LeaseID) }
