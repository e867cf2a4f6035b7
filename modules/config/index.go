package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// index maps field paths ("secrets[2].mode") to the YAML nodes that set
// them, so validation can name the line of every problem. It is filled by
// the decoder, which knows the path of every node it decodes: a line alone
// cannot tell apart the fields of a flow mapping ({name: a, path: [1]}).
type index struct {
	file  string
	nodes map[string]*yaml.Node
	// broken holds the paths whose value could not be decoded (wrong type,
	// duplicate key). Their Go value is the zero value, so validation must
	// not report it, or anything inside it, a second time.
	broken map[string]bool
	// expanded maps each scalar whose value came from ${...} to the text
	// written in the file, so messages can name it instead of the value.
	expanded map[*yaml.Node]string
}

func newIndex(file string) *index {
	return &index{file: file, nodes: map[string]*yaml.Node{}, broken: map[string]bool{}, expanded: map[*yaml.Node]string{}}
}

// node returns the node that set path, or the nearest enclosing one.
func (x *index) node(path string) *yaml.Node {
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := x.nodes[p]; ok {
			return n
		}
	}
	return nil
}

func (x *index) line(path string) int {
	if n := x.node(path); n != nil {
		return n.Line
	}
	return 0
}

// has reports whether the file sets path (to anything, null included).
func (x *index) has(path string) bool {
	_, ok := x.nodes[path]
	return ok
}

// given reports whether the file sets path to something other than null.
// A null value ("on_change:" with nothing after it, "~") counts as unset,
// as it does for owner and group: the default applies.
func (x *index) given(path string) bool {
	n, ok := x.nodes[path]
	return ok && !isNull(n)
}

// brokenAt reports whether path, or something inside it, failed to decode.
func (x *index) brokenAt(path string) bool {
	if x.broken[path] {
		return true
	}
	for p := range x.broken {
		if isInside(p, path) {
			return true
		}
	}
	return false
}

// brokenAbove reports whether path or a field enclosing it failed to decode.
func (x *index) brokenAbove(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if x.broken[p] {
			return true
		}
	}
	return false
}

// isInside reports whether path p lies strictly inside path outer.
func isInside(p, outer string) bool {
	rest, ok := strings.CutPrefix(p, outer)
	return ok && rest != "" && (rest[0] == '.' || rest[0] == '[')
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps a struct's YAML keys to its field indexes.
func structFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = i
	}
	return out
}

func unknownFieldMsg(key string, fields map[string]int) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if d := editDistance(key, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", key, best)
	}
	return fmt.Sprintf("unknown field %q (known: %s)", key, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
