package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
)

// statusDirMode is the mode of a status directory the daemon makes.
const statusDirMode fs.FileMode = 0o700

// statusFileMode: the file holds no secret, and the directory guards it.
const statusFileMode fs.FileMode = 0o644

// ErrUntrusted reports a status directory or file that someone else
// controls: the daemon does not write there (isready then reports not
// ready), since another user could swap or forge what it writes.
var ErrUntrusted = errors.New("refusing to use it")

// writeFile writes the snapshot to path atomically through the files
// package (temporary file, fsync, renameat, directory fsync, all relative
// to the directory opened without following a link). A missing directory
// is made 0700; an existing one is used only when it is trusted (see
// trustedDir). The file is 0644 (it holds no secret).
func writeFile(path string, s Snapshot) error {
	data, err := encodeFile(s)
	if err != nil {
		return err
	}
	dir, name := filepath.Split(filepath.Clean(path))
	d, err := files.OpenDir(dir, statusDirMode)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := trustedDir(d, name); err != nil {
		return err
	}
	_, err = d.Write(files.Entry{Name: name, Content: data, Mode: statusFileMode})
	return err
}

// encodeFile is the status file's text: compact JSON with one secret per
// line, so that 10,000 secrets stay a few MiB (about 150 bytes for a
// ready secret, never more than a few KiB for one with an error and an
// action) and a line still reads as one secret.
func encodeFile(s Snapshot) ([]byte, error) {
	secrets := s.Secrets
	s.Secrets = nil
	head, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	const empty = `"secrets":[]}`
	if !bytes.HasSuffix(head, []byte(empty)) {
		return nil, errors.New("status: unexpected snapshot encoding")
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(head)+200*len(secrets)))
	buf.Write(head[:len(head)-len(empty)])
	buf.WriteString(`"secrets":[`)
	for i, sec := range secrets {
		b, err := json.Marshal(sec)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n")
		buf.Write(b)
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes(), nil
}

// trustedDir accepts the opened status directory when nobody else can
// change its entries: it is ours (owner == euid) and neither group- nor
// world-writable; or it is sticky and owned by root or us, like /tmp, so
// others cannot rename or remove our entries, and the status file, if
// there is one, is ours.
func trustedDir(d *files.Dir, name string) error {
	fi, err := d.Stat()
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	owner := ownerOf(fi)
	switch {
	case owner == euid && fi.Mode().Perm()&0o022 == 0:
		return nil
	case fi.Mode()&fs.ModeSticky != 0 && (owner == 0 || owner == euid):
		efi, err := d.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if o := ownerOf(efi); o != euid {
			return fmt.Errorf("status file %s is owned by uid %d, not by this process (uid %d), in the shared directory %s: %w",
				filepath.Join(d.Path(), name), o, euid, d.Path(), ErrUntrusted)
		}
		return nil
	case owner != euid:
		return fmt.Errorf("status directory %s is owned by uid %d, not by this process (uid %d), and not sticky: %w",
			d.Path(), owner, euid, ErrUntrusted)
	default:
		return fmt.Errorf("status directory %s is writable by group or others (mode %04o) and not sticky: %w",
			d.Path(), fi.Mode().Perm(), ErrUntrusted)
	}
}

// ownerOf is a FileInfo's owner uid (-1 when unknown).
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
