package files

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A file set is written in the layout of Kubernetes projected volumes. In
// the destination directory D, for the set N:
//
//	D/..N_<stamp>      a directory holding every file of one version of the set
//	D/..N.data         a symbolic link to ..N_<stamp>, switched by one rename
//	D/<name>           a symbolic link to ..N.data/<name>, made once per file
//
// <stamp> is a UTC time and a random part, letters, digits and '-' only;
// the data link is switched through a temporary link ..N.data_tmp.<16 hex
// digits>. Because a stamp holds neither '_' nor '.', and file names never
// start with '.', the names of one set never match the patterns of
// another in the same directory (sets "a", "a_b" and "a.data" included).
const (
	setDirSep      = "_"     // ..N_<stamp>
	dataLinkSuffix = ".data" // ..N.data
	dataTempInfix  = "_tmp." // ..N.data_tmp.<hex>
	maxSetName     = 200     // leaves room for the longest derived name within NAME_MAX
	maxRemoveDepth = 16      // directories a leftover may nest before its removal gives up
	stampLayout    = "20060102T150405"
)

// ErrNotSet reports an entry where a file set expects one of its own
// links or directories and finds something else: a stable name that is
// not a link to ..N.data/<name>, a data link that does not point to a
// ..N_* directory, or an unexpected entry in the set's directory.
var ErrNotSet = errors.New("not this file set's")

// SetFile is one file of a Set.
type SetFile struct {
	Name    string      // letters, digits, '_', '.', '-'; not starting with '.'
	Content []byte      // complete content
	Mode    fs.FileMode // permission bits
	UID     *int        // owner; nil leaves it as created (this process's)
	GID     *int        // group; nil leaves it as created
}

// Set is files that change together, such as a certificate, its key and
// its chain from one issuance.
type Set struct {
	Name    string      // as SetFile.Name: names the set's entries ..Name_*, ..Name.data
	Files   []SetFile   // distinct names
	DirMode fs.FileMode // permission bits of the set's directory (0: 0755)
}

// SetResult says what WriteSet did.
type SetResult struct {
	// Written is set when what a reader sees changed: a new set directory
	// was switched to, or a stable link was made, repaired or removed.
	Written bool
	// Changed names the files whose content differs from the previous
	// set's (or that it did not have), in the order of Set.Files.
	Changed []string
	// Removed names the files of the previous set that s no longer has,
	// whose stable links were removed.
	Removed []string
	// Created is set when there was no set before (no data link of ours):
	// every file is new.
	Created bool
}

// WriteSet makes d hold the set s so that it changes all at once. When
// ..N.data points to a set directory that already holds exactly s's
// files (content, mode and owner, no other file, the directory's own mode
// and this process's ownership), nothing new is written; otherwise a new
// set directory ..N_<stamp> is made (mode s.DirMode), each file written
// into it with its mode and owner and fsynced, the directory fsynced,
// and then ..N.data is switched to it with one rename. The live directory
// is never modified.
//
// Each D/<name> is then made, or repaired, a link to ..N.data/<name>:
// whatever is there (a file, a FIFO, another link) is replaced by a
// rename, never written through; a directory there is an error, checked
// before anything is written. D is fsynced after the renames. Stable
// links of files s no longer has are removed (only links that are this
// set's). Last, the previous set directory and any other ..N_* entry
// (a crash's leftover or a co-tenant's) are removed, never following a
// link: a link there is removed itself, not its target.
//
// Guarantee: a reader that opens D/..N.data/ once and reads files through
// that one open directory (or resolves any path through ..N.data once)
// sees the files of one set, or an error if that set was removed since;
// a reader opening two stable names at two different moments may see two
// sets. One writer per set at a time (see Lock).
//
// The error names the path and what failed, never the content. When the
// set was written but removing leftovers failed, the result says what was
// written and the error what could not be removed.
func (d *Dir) WriteSet(s Set) (SetResult, error) {
	if err := s.check(); err != nil {
		return SetResult{}, err
	}
	plan, err := d.planSet(s)
	if err != nil {
		return SetResult{}, err
	}
	previous := plan.live
	res, err := d.applySet(s, &plan)
	if err != nil {
		return res, err
	}
	leftovers := plan.leftovers
	if previous != "" && previous != plan.live {
		leftovers = append(leftovers, previous) // just switched away from
	}
	if err := d.removeEntries(leftovers); err != nil {
		return res, fmt.Errorf("%w: %w", ErrLeftovers, err)
	}
	return res, nil
}

// ErrLeftovers is WriteSet's error when the set was written in full but
// old set directories could not all be removed: the set is live.
var ErrLeftovers = errors.New("file set written; old set directories not removed")

// setPlan is what WriteSet has to do.
type setPlan struct {
	live     string   // the set directory ..N.data points to after the write
	upToDate bool     // live already holds exactly the wanted files
	changed  []string // files whose content differs from live's
	fix      []string // stable names that are not yet the right link
	stale    []string // this set's links to names no longer in it
	temps    []string // temporary stable links a killed process left
	// leftovers are the set's other ..N_* entries and temporary data
	// links, found by the same listing (one per write, none more).
	leftovers []string
}

// planSet compares s with what is in d, changing nothing. A directory at
// a stable name is an error.
func (d *Dir) planSet(s Set) (setPlan, error) {
	var p setPlan
	target, err := readlinkat(d.fd, dataLinkName(s.Name))
	switch {
	case err == nil && isSetDirName(s.Name, target):
		p.live = target
		p.upToDate, p.changed = d.compareSetDir(s, target)
	case err != nil && d.isDir(dataLinkName(s.Name)):
		return setPlan{}, fmt.Errorf("file set %s: %s: %w", s.Name, d.join(dataLinkName(s.Name)), errIsDir)
	default:
		p.changed = s.names()
	}
	for _, f := range s.Files {
		ok, err := d.isSetLink(s.Name, f.Name)
		if err != nil {
			return setPlan{}, err
		}
		if !ok {
			p.fix = append(p.fix, f.Name)
		}
	}
	names, err := listNames(d.fd, d.path)
	if err != nil {
		return setPlan{}, err
	}
	wanted := s.names()
	p.leftovers = leftoversOf(s.Name, p.live, names)
	for _, n := range names {
		switch {
		case isStableTemp(n, wanted):
			p.temps = append(p.temps, n)
		case strings.HasPrefix(n, ".") || slices.Contains(wanted, n):
		default:
			if target, err := readlinkat(d.fd, n); err == nil && target == linkTarget(s.Name, n) {
				p.stale = append(p.stale, n)
			}
		}
	}
	slices.Sort(p.stale)
	return p, nil
}

// isSetLink reports whether the stable name is already the link
// ..N.data/<name>; a directory there is an error.
func (d *Dir) isSetLink(set, name string) (bool, error) {
	target, err := readlinkat(d.fd, name)
	if err == nil {
		return target == linkTarget(set, name), nil
	}
	if d.isDir(name) {
		return false, fmt.Errorf("file set %s: %s: %w", set, d.join(name), errIsDir)
	}
	return false, nil
}

// isDir reports whether the entry name of d is a directory (not a link
// to one).
func (d *Dir) isDir(name string) bool {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// applySet carries plan out: a new set directory unless it is up to date
// (plan.live is then the new one), the data link, the stable links, D's
// fsync.
func (d *Dir) applySet(s Set, plan *setPlan) (SetResult, error) {
	var res SetResult
	if !plan.upToDate {
		dir, err := d.makeSetDir(s)
		if err != nil {
			return SetResult{}, err
		}
		if err := d.switchData(s.Name, dir); err != nil {
			_ = removeAll(d.fd, d.path, dir, 0) // ours, never made live
			return SetResult{}, err
		}
		res = SetResult{Written: true, Changed: plan.changed, Created: plan.live == ""}
		plan.live = dir
	}
	for _, n := range plan.fix {
		if err := d.makeSetLink(s.Name, n); err != nil {
			return res, d.syncAfter(err)
		}
		res.Written = true
	}
	for _, n := range plan.stale {
		if ok, err := d.isSetLink(s.Name, n); err != nil || !ok {
			continue // replaced by someone else meanwhile: theirs now
		}
		if err := d.Remove(n); err != nil {
			return res, d.syncAfter(err)
		}
		res.Written = true
		res.Removed = append(res.Removed, n)
	}
	for _, n := range plan.temps {
		_ = unix.Unlinkat(d.fd, n, 0) // a leftover temporary link, never a directory
	}
	if !res.Written {
		return res, nil
	}
	if err := d.sync(); err != nil {
		return res, fmt.Errorf("file set %s: %w", s.Name, err)
	}
	return res, nil
}

// syncAfter fsyncs d after a failed step, so what was done before it is
// durable, and returns the step's error.
func (d *Dir) syncAfter(err error) error {
	_ = d.sync()
	return err
}

// compareSetDir reports whether the set directory dir holds exactly s's
// files, and which files' content differ. Anything unexpected (dir is a
// link, unreadable, has another mode or owner) makes it not up to date.
func (d *Dir) compareSetDir(s Set, dir string) (upToDate bool, changed []string) {
	sd, err := d.openSub(dir)
	if err != nil {
		return false, s.names()
	}
	defer sd.Close()
	var st unix.Stat_t
	if err := unix.Fstat(sd.fd, &st); err != nil {
		return false, s.names()
	}
	names, err := listNames(sd.fd, sd.path)
	if err != nil {
		return false, s.names()
	}
	euid := os.Geteuid()
	upToDate = int(st.Uid) == euid && st.Mode&0o7777 == uint32(s.dirMode()) && len(names) == len(s.Files)
	for _, f := range s.Files {
		e := f.entry()
		if e.UID == nil { // as created: by this process
			e.UID = &euid
		}
		diff, err := sd.current(e, nil)
		if err != nil || !diff.UpToDate() {
			upToDate = false
		}
		if err != nil || !diff.Exists || diff.Content {
			changed = append(changed, f.Name)
		}
	}
	return upToDate, changed
}

// makeSetDir makes a new set directory holding s's files, each fsynced,
// and fsyncs it. It returns the directory's name in d.
func (d *Dir) makeSetDir(s Set) (string, error) {
	for range attempts {
		name, err := newSetDirName(s.Name)
		if err != nil {
			return "", err
		}
		err = unix.Mkdirat(d.fd, name, uint32(s.dirMode()))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", &fs.PathError{Op: "mkdir", Path: d.join(name), Err: err}
		}
		if err := d.fillSetDir(s, name); err != nil {
			_ = removeAll(d.fd, d.path, name, 0) // ours, never made live
			return "", err
		}
		return name, nil
	}
	return "", fmt.Errorf("file set %s: no free directory name in %s", s.Name, d.path)
}

// fillSetDir writes s's files into the set directory name just made.
func (d *Dir) fillSetDir(s Set, name string) error {
	sd, err := d.openSub(name)
	if err != nil {
		return err
	}
	defer sd.Close()
	if err := ownEmptyDir(sd, s.dirMode()); err != nil {
		return err
	}
	for _, f := range s.Files {
		if err := sd.replace(f.entry()); err != nil {
			return fmt.Errorf("write %s: %w", sd.join(f.Name), err)
		}
	}
	return sd.sync()
}

// ownEmptyDir checks that the directory just made and opened is this
// process's and empty (not one a co-tenant swapped in), and gives it
// exactly mode (mkdirat applied the umask).
func ownEmptyDir(sd *Dir, mode fs.FileMode) error {
	var st unix.Stat_t
	if err := unix.Fstat(sd.fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: sd.path, Err: err}
	}
	if int(st.Uid) != os.Geteuid() || !isEmpty(sd.fd) {
		return fmt.Errorf("%s: swapped for another directory after it was made", sd.path)
	}
	if err := unix.Fchmod(sd.fd, uint32(mode)); err != nil {
		return &fs.PathError{Op: "chmod", Path: sd.path, Err: err}
	}
	return nil
}

// switchData points ..N.data at the set directory dir with one rename of
// a fresh temporary link over it.
func (d *Dir) switchData(set, dir string) error {
	suffix, err := randomHex()
	if err != nil {
		return err
	}
	link := dataLinkName(set)
	return d.renameLink(dir, link+dataTempInfix+suffix, link)
}

// makeSetLink makes the stable name the link ..N.data/<name>, replacing
// whatever is there but a directory.
func (d *Dir) makeSetLink(set, name string) error {
	tmp, err := tempName(name)
	if err != nil {
		return err
	}
	return d.renameLink(linkTarget(set, name), tmp, name)
}

// renameLink makes the link tmp to target and renames it over name.
func (d *Dir) renameLink(target, tmp, name string) error {
	if err := unix.Symlinkat(target, d.fd, tmp); err != nil {
		return &fs.PathError{Op: "symlink", Path: d.join(tmp), Err: err}
	}
	err := unix.Renameat(d.fd, tmp, d.fd, name)
	if err == nil {
		return nil
	}
	_ = unix.Unlinkat(d.fd, tmp, 0) // our own temporary link
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s: %w", d.join(name), errIsDir)
	}
	return &os.LinkError{Op: "rename", Old: d.join(tmp), New: d.join(name), Err: err}
}

// ReadSet reads the set name as a reader sees it through its data link,
// at most limit bytes per file (more is an error wrapping ErrTooLarge),
// and verifies it is the set WriteSet made: ..N.data must be a link to a
// ..N_* directory, every entry there a regular file whose stable name in
// d is exactly the link ..N.data/<name>. Anything else is an error
// wrapping ErrNotSet; a set never written is an error satisfying
// errors.Is(err, fs.ErrNotExist). Nothing is followed but the data link,
// and that only after its target was checked.
func (d *Dir) ReadSet(name string, limit int64) (map[string][]byte, error) {
	if err := checkSetName(name); err != nil {
		return nil, err
	}
	sd, err := d.openLive(name)
	if err != nil {
		return nil, err
	}
	defer sd.Close()
	names, err := listNames(sd.fd, sd.path)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		if checkSetName(n) != nil {
			return nil, fmt.Errorf("%s: %w: unexpected entry", sd.join(n), ErrNotSet)
		}
		if target, err := readlinkat(d.fd, n); err != nil || target != linkTarget(name, n) {
			return nil, fmt.Errorf("%s: %w: not a link to %s", d.join(n), ErrNotSet, linkTarget(name, n))
		}
		content, _, err := sd.ReadNoFollow(n, limit)
		if err != nil {
			return nil, err
		}
		out[n] = content
	}
	return out, nil
}

// openLive opens the set directory the data link of set points to,
// no-follow, after checking the link's target is one of the set's.
func (d *Dir) openLive(set string) (*Dir, error) {
	link := dataLinkName(set)
	target, err := readlinkat(d.fd, link)
	switch {
	case errors.Is(err, unix.EINVAL):
		return nil, fmt.Errorf("%s: %w: not a symbolic link", d.join(link), ErrNotSet)
	case err != nil:
		return nil, &fs.PathError{Op: "readlink", Path: d.join(link), Err: err}
	case !isSetDirName(set, target):
		return nil, fmt.Errorf("%s: %w: points to %q", d.join(link), ErrNotSet, target)
	}
	sd, err := d.openSub(target)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil, fmt.Errorf("%s: %w: not a directory", d.join(target), ErrNotSet)
	}
	return sd, err
}

// CleanSets removes the set name's leftovers from d: every ..N_* entry
// but the directory ..N.data points to, and temporary data links, as a
// process killed mid-write or a co-tenant left them. Nothing is followed:
// a link is removed itself. Use it at start-up; WriteSet does it after
// each write.
func (d *Dir) CleanSets(name string) error {
	if err := checkSetName(name); err != nil {
		return err
	}
	live, err := readlinkat(d.fd, dataLinkName(name))
	if err != nil || !isSetDirName(name, live) {
		live = ""
	}
	names, err := listNames(d.fd, d.path)
	if err != nil {
		return err
	}
	return d.removeEntries(leftoversOf(name, live, names))
}

// leftoversOf are the entries among names that are set's ..N_* entries
// but live, or its temporary data links.
func leftoversOf(set, live string, names []string) []string {
	var out []string
	for _, n := range names {
		if n != live && (isSetDirName(set, n) || isDataTemp(set, n)) {
			out = append(out, n)
		}
	}
	return out
}

// removeEntries removes each of names from d, never through a link.
func (d *Dir) removeEntries(names []string) error {
	var errs []error
	for _, n := range names {
		if err := removeAll(d.fd, d.path, n, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeAll removes the entry name of the directory open at parent, and
// everything in it when it is a directory, each step relative to an
// opened directory and never through a link: a link is unlinked itself.
// An entry swapped meanwhile (a directory for a link, or back) is
// removed again, a bounded number of times.
func removeAll(parent int, parentPath, name string, depth int) error {
	p := filepath.Join(parentPath, name)
	for range attempts {
		err := unix.Unlinkat(parent, name, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) {
			return &fs.PathError{Op: "unlink", Path: p, Err: err}
		}
		if depth >= maxRemoveDepth {
			return fmt.Errorf("remove %s: more than %d directories deep", p, maxRemoveDepth)
		}
		fd, err := openat(parent, name, dirFlags)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
			continue // swapped for a link or a file, or gone: unlink again
		}
		if err != nil {
			return &fs.PathError{Op: "open", Path: p, Err: err}
		}
		err = removeContents(fd, p, depth+1)
		unix.Close(fd)
		if err != nil {
			return err
		}
		err = unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTDIR):
			continue // refilled or swapped meanwhile
		default:
			return &fs.PathError{Op: "rmdir", Path: p, Err: err}
		}
	}
	return fmt.Errorf("remove %s: changed again each time it was removed", p)
}

// removeContents removes every entry of the directory open at fd.
func removeContents(fd int, p string, depth int) error {
	names, err := listNames(fd, p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAll(fd, p, n, depth); err != nil {
			return err
		}
	}
	return nil
}

// listNames lists the directory open at fd through a descriptor of its
// own (fd's read position is left alone). Only names: Go's ReadDir may
// lstat entries by path.
func listNames(fd int, p string) ([]string, error) {
	own, err := openat(fd, ".", dirFlags)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(own), p)
	defer f.Close()
	return f.Readdirnames(-1)
}

// openSub opens the directory name of d, no-follow.
func (d *Dir) openSub(name string) (*Dir, error) {
	p := d.join(name)
	fd, err := openat(d.fd, name, dirFlags)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &Dir{f: os.NewFile(uintptr(fd), p), fd: fd, path: p}, nil
}

// readlinkat reads the target of the link name in dirfd. A target as long
// as the buffer is returned truncated, and so matches no name of ours.
func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := ignoringEINTR(func() (int, error) { return unix.Readlinkat(dirfd, name, buf) })
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// check validates the set's and its files' names.
func (s Set) check() error {
	if err := checkSetName(s.Name); err != nil {
		return fmt.Errorf("file set: %w", err)
	}
	seen := make(map[string]bool, len(s.Files))
	for _, f := range s.Files {
		if err := checkSetName(f.Name); err != nil {
			return fmt.Errorf("file set %s: %w", s.Name, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("file set %s: file %q given twice", s.Name, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

func (s Set) names() []string {
	names := make([]string, len(s.Files))
	for i, f := range s.Files {
		names[i] = f.Name
	}
	return names
}

func (s Set) dirMode() fs.FileMode {
	if s.DirMode == 0 {
		return defaultDirMode
	}
	return s.DirMode.Perm()
}

func (f SetFile) entry() Entry {
	return Entry(f) // the same fields: a field added to one must be added to the other
}

// checkSetName accepts a set's or a set file's name: one path component
// of letters, digits, '_', '.' and '-', not starting with '.'.
func checkSetName(name string) error {
	if name == "" || len(name) > maxSetName || name[0] == '.' {
		return fmt.Errorf("%q is not a file set name (letters, digits, _ . -, not starting with .)", name)
	}
	for _, c := range name {
		if !isNameChar(c) && c != '_' && c != '.' {
			return fmt.Errorf("%q is not a file set name (letters, digits, _ . -, not starting with .)", name)
		}
	}
	return nil
}

// isNameChar reports a letter, a digit or '-': what a stamp is made of.
func isNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func dataLinkName(set string) string { return ".." + set + dataLinkSuffix }

func linkTarget(set, name string) string { return dataLinkName(set) + "/" + name }

// isSetDirName reports whether name is ..set_<stamp>: a stamp of letters,
// digits and '-' only, whoever made it.
func isSetDirName(set, name string) bool {
	stamp, ok := strings.CutPrefix(name, ".."+set+setDirSep)
	if !ok || stamp == "" {
		return false
	}
	for _, c := range stamp {
		if !isNameChar(c) {
			return false
		}
	}
	return true
}

// isDataTemp reports whether name is a temporary data link of set:
// ..set.data_tmp.<16 hex digits>.
func isDataTemp(set, name string) bool {
	suffix, ok := strings.CutPrefix(name, dataLinkName(set)+dataTempInfix)
	if !ok || len(suffix) != 16 {
		return false
	}
	_, err := hex.DecodeString(suffix)
	return err == nil
}

// isStableTemp reports whether name is a temporary link of one of the
// stable names (see tempName).
func isStableTemp(name string, stable []string) bool {
	for _, s := range stable {
		if strings.HasPrefix(name, "."+s+tmpInfix) {
			return true
		}
	}
	return false
}

// newSetDirName returns ..set_<UTC time>-<random>.
func newSetDirName(set string) (string, error) {
	suffix, err := randomHex()
	if err != nil {
		return "", err
	}
	return ".." + set + setDirSep + time.Now().UTC().Format(stampLayout) + "-" + suffix, nil
}

// randomHex returns 16 random hex digits.
func randomHex() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
