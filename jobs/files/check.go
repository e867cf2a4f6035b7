package files

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// Check compares f with what is at f.Path exactly as Write does before it
// writes, and changes nothing: no directory is made, no link followed
// (fd-relative and no-follow like Write). A missing directory is a file
// that would be created. When the content differs, old holds the current
// content, at most limit bytes (a larger file is an error wrapping
// ErrTooLarge).
func Check(f File, limit int64) (diff Diff, old []byte, err error) {
	if !filepath.IsAbs(f.Path) {
		return Diff{}, nil, fmt.Errorf("destination %q is not absolute", f.Path)
	}
	dir, name := filepath.Split(filepath.Clean(f.Path))
	if err := checkName(name); err != nil {
		return Diff{}, nil, err
	}
	d, err := OpenDir(dir, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Diff{}, nil, nil
		}
		return Diff{}, nil, err
	}
	defer d.Close()
	e := Entry{Name: name, Content: f.Content, Mode: f.Mode, UID: f.UID, GID: f.GID}
	cur := &existing{limit: limit}
	diff, err = d.current(e, cur)
	if err != nil {
		return Diff{}, nil, err
	}
	if diff.Content {
		old = cur.content
	}
	return diff, old, nil
}
